import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { encodeFrame, encodeVarint, maxVarintBytes, readVarintPrefix } from '../../src/transfer/framing.ts'

describe('transfer: framing', function () {
  it('round-trips varints below the maximum', function () {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n) => {
      const encoded = encodeVarint(n)
      expect(encoded.byteLength).to.equal(maxVarintBytes(n))
      const prefix = readVarintPrefix(new Uint8ArrayList(encoded, Uint8Array.from([1, 2, 3])), 2 ** 32 - 1, 'test')
      expect(prefix).to.deep.equal({ value: n, bytes: encoded.byteLength })
    }))
  })

  it('asks for more bytes while a prefix is incomplete', function () {
    const encoded = encodeVarint(16000)
    expect(readVarintPrefix(new Uint8ArrayList(encoded.subarray(0, 1)), 16384, 'test')).to.be.undefined()
    expect(readVarintPrefix(new Uint8ArrayList(), 16384, 'test')).to.be.undefined()
  })

  it('rejects a prefix above the maximum as soon as it is certain', function () {
    // 1 GiB announced: rejected from its bytes alone, nothing else is needed
    expect(() => readVarintPrefix(new Uint8ArrayList(encodeVarint(2 ** 30)), 16 * 1024, 'request'))
      .to.throw(/length prefix/).with.property('name', 'FrameTooLargeError')
    expect(() => readVarintPrefix(new Uint8ArrayList(encodeVarint(1025)), 1024, 'header'))
      .to.throw().with.property('name', 'FrameTooLargeError')
    // a non-minimal, endless prefix is rejected after maxVarintBytes(max) bytes
    expect(() => readVarintPrefix(new Uint8ArrayList(Uint8Array.from([0x80, 0x80, 0x80])), 1024, 'header'))
      .to.throw().with.property('name', 'FrameTooLargeError')
    expect(readVarintPrefix(new Uint8ArrayList(encodeVarint(1024)), 1024, 'header')).to.deep.equal({ value: 1024, bytes: 2 })
  })

  it('frames a message behind its length', function () {
    const frame = encodeFrame(new Uint8Array(300).fill(9))
    const prefix = readVarintPrefix(new Uint8ArrayList(frame), 1024, 'test')
    expect(prefix).to.deep.equal({ value: 300, bytes: 2 })
    expect(frame.byteLength).to.equal(302)
  })
})
