import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { TokenBucket } from '../../src/transfer/token-bucket.ts'
import { KiB, MiB } from './fixtures.ts'

describe('transfer: TokenBucket', function () {
  it('is unlimited with rate 0 or undefined', async function () {
    for (const bucket of [new TokenBucket(), new TokenBucket({ rateBps: 0 })]) {
      expect(bucket.unlimited).to.be.true()
      const started = Date.now()
      await bucket.take(1024 * MiB)
      expect(Date.now() - started).to.be.below(100)
    }
  })

  it('lets a burst through at once, then holds the rate', async function () {
    const bucket = new TokenBucket({ rateBps: MiB, burstBytes: 256 * KiB })
    const started = Date.now()
    await bucket.take(256 * KiB)
    expect(Date.now() - started).to.be.below(100)
    // 512 KiB more at 1 MiB/s: about 0.5 s
    await bucket.take(512 * KiB)
    const elapsed = Date.now() - started
    expect(elapsed).to.be.at.least(400)
    expect(elapsed).to.be.below(5000)
  })

  it('consumes a take larger than the burst in slices', async function () {
    const bucket = new TokenBucket({ rateBps: 8 * MiB, burstBytes: 64 * KiB })
    const started = Date.now()
    await bucket.take(2 * MiB)
    const elapsed = Date.now() - started
    // (2 MiB - 64 KiB) / 8 MiB/s ≈ 242 ms
    expect(elapsed).to.be.at.least(200)
    expect(elapsed).to.be.below(5000)
  })

  it('serves concurrent takers first come, first served', async function () {
    const bucket = new TokenBucket({ rateBps: MiB, burstBytes: 64 * KiB })
    await bucket.take(64 * KiB) // empty it
    const order: string[] = []
    await Promise.all([
      bucket.take(64 * KiB).then(() => order.push('a')),
      bucket.take(64 * KiB).then(() => order.push('b')),
      bucket.take(64 * KiB).then(() => order.push('c'))
    ])
    expect(order).to.deep.equal(['a', 'b', 'c'])
  })

  it('rejects a waiting take when aborted and lets the next waiter through', async function () {
    const bucket = new TokenBucket({ rateBps: 64 * KiB, burstBytes: 64 * KiB })
    await bucket.take(64 * KiB)
    const controller = new AbortController()
    const waiting = bucket.take(64 * KiB, { signal: controller.signal })
    const next = bucket.take(1)
    controller.abort()
    await expect(waiting).to.eventually.be.rejected.with.property('name', 'AbortError')
    await next
  })

  it('refuses nonsense parameters', function () {
    expect(() => new TokenBucket({ rateBps: -1 })).to.throw().with.property('name', 'InvalidParametersError')
    expect(() => new TokenBucket({ rateBps: 10, burstBytes: 0 })).to.throw().with.property('name', 'InvalidParametersError')
  })
})
