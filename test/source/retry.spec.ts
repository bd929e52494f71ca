import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { backoffDelay, isRetryableStatus, parseRetryAfter } from '../../src/source/retry.ts'

const policy = { baseDelayMs: 250, maxDelayMs: 10_000 }

describe('source/retry', () => {
  describe('isRetryableStatus', () => {
    it('retries 408, 429 and 5xx except 501', () => {
      for (const status of [408, 429, 500, 502, 503, 504, 599]) {
        expect(isRetryableStatus(status)).to.equal(true, String(status))
      }

      for (const status of [200, 206, 301, 400, 401, 403, 404, 410, 416, 501]) {
        expect(isRetryableStatus(status)).to.equal(false, String(status))
      }
    })
  })

  describe('backoffDelay', () => {
    it('is 0 at random 0 and just under the ceiling at random → 1', () => {
      expect(backoffDelay(1, policy, 0)).to.equal(0)
      expect(backoffDelay(1, policy, 0.9999)).to.equal(249)
      expect(backoffDelay(2, policy, 0.9999)).to.equal(499)
      expect(backoffDelay(3, policy, 0.9999)).to.equal(999)
    })

    it('never exceeds the cap, even for absurd retry counts', () => {
      expect(backoffDelay(1000, policy, 0.9999)).to.equal(9999)
    })

    it('stays in [0, min(max, base * 2^(n-1))) for any retry and random', () => {
      fc.assert(fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (retry, random) => {
        const delay = backoffDelay(retry, policy, random)
        const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry - 1, 31))
        return Number.isInteger(delay) && delay >= 0 && delay < ceiling
      }))
    })
  })

  describe('parseRetryAfter', () => {
    const now = Date.parse('2025-06-01T12:00:00Z')

    it('reads delay-seconds', () => {
      expect(parseRetryAfter('1', 60_000, now)).to.equal(1000)
      expect(parseRetryAfter(' 0 ', 60_000, now)).to.equal(0)
    })

    it('reads an HTTP-date relative to now', () => {
      expect(parseRetryAfter('Sun, 01 Jun 2025 12:00:05 GMT', 60_000, now)).to.equal(5000)
    })

    it('a date in the past means no wait', () => {
      expect(parseRetryAfter('Sun, 01 Jun 2025 11:00:00 GMT', 60_000, now)).to.equal(0)
    })

    it('caps long waits', () => {
      expect(parseRetryAfter('3600', 60_000, now)).to.equal(60_000)
      expect(parseRetryAfter('Mon, 02 Jun 2025 12:00:00 GMT', 60_000, now)).to.equal(60_000)
    })

    it('ignores a missing or unparseable header', () => {
      expect(parseRetryAfter(undefined, 60_000, now)).to.be.undefined()
      expect(parseRetryAfter('soon', 60_000, now)).to.be.undefined()
      expect(parseRetryAfter('-5', 60_000, now)).to.be.undefined()
    })
  })
})
