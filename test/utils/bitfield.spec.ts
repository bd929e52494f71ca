import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { Bitfield } from '../../src/utils/bitfield.ts'

describe('utils/bitfield', () => {
  describe('constructor', () => {
    it('starts empty with ceil(length / 8) bytes', () => {
      for (const [length, bytes] of [[0, 0], [1, 1], [7, 1], [8, 1], [9, 2], [16, 2], [17, 3]]) {
        const b = new Bitfield(length)
        expect(b.length).to.equal(length)
        expect(b.toBytes()).to.deep.equal(new Uint8Array(bytes))
        expect(b.count()).to.equal(0)
      }
    })

    it('rejects negative, fractional and non-finite lengths', () => {
      for (const length of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => new Bitfield(length)).to.throw().with.property('name', 'InvalidParametersError')
      }
    })
  })

  describe('layout', () => {
    it('is MSB-first: bit 0 is 0x80 of byte 0, bit 7 is 0x01, bit 8 is 0x80 of byte 1', () => {
      const b = new Bitfield(16)
      b.set(0)
      expect(b.toBytes()).to.deep.equal(Uint8Array.of(0x80, 0x00))
      b.set(7)
      expect(b.toBytes()).to.deep.equal(Uint8Array.of(0x81, 0x00))
      b.set(8)
      expect(b.toBytes()).to.deep.equal(Uint8Array.of(0x81, 0x80))
      b.set(13)
      expect(b.toBytes()).to.deep.equal(Uint8Array.of(0x81, 0x84))
    })

    it('matches the mask formula for every bit of a 24-bit field', () => {
      for (let i = 0; i < 24; i++) {
        const b = new Bitfield(24)
        b.set(i)
        const expected = new Uint8Array(3)
        expected[i >> 3] = 0x80 >> (i & 7)
        expect(b.toBytes()).to.deep.equal(expected)
      }
    })
  })

  describe('get/set/clear', () => {
    it('sets and clears single bits without touching neighbours', () => {
      const b = new Bitfield(20)
      b.set(3)
      b.set(4)
      b.set(19)
      expect(b.get(2)).to.equal(false)
      expect(b.get(3)).to.equal(true)
      expect(b.get(4)).to.equal(true)
      expect(b.get(5)).to.equal(false)
      expect(b.get(19)).to.equal(true)
      b.clear(3)
      expect(b.get(3)).to.equal(false)
      expect(b.get(4)).to.equal(true)
      expect(b.count()).to.equal(2)
    })

    it('is idempotent and keeps count exact', () => {
      const b = new Bitfield(10)
      b.set(1)
      b.set(1)
      expect(b.count()).to.equal(1)
      b.clear(1)
      b.clear(1)
      expect(b.count()).to.equal(0)
      b.clear(2)
      expect(b.count()).to.equal(0)
    })

    it('rejects out-of-range and non-integer indexes', () => {
      const b = new Bitfield(10)
      for (const i of [-1, 10, 11, 1.5, Number.NaN]) {
        expect(() => b.get(i)).to.throw().with.property('name', 'InvalidParametersError')
        expect(() => { b.set(i) }).to.throw().with.property('name', 'InvalidParametersError')
        expect(() => { b.clear(i) }).to.throw().with.property('name', 'InvalidParametersError')
      }
      expect(b.count()).to.equal(0)
      expect(b.toBytes()).to.deep.equal(new Uint8Array(2))
    })
  })

  describe('count/isFull', () => {
    it('is full only when every bit is set', () => {
      const b = new Bitfield(9)
      for (let i = 0; i < 9; i++) {
        expect(b.isFull()).to.equal(false)
        b.set(i)
        expect(b.count()).to.equal(i + 1)
      }
      expect(b.isFull()).to.equal(true)
      expect(b.toBytes()).to.deep.equal(Uint8Array.of(0xff, 0x80))
      b.clear(8)
      expect(b.isFull()).to.equal(false)
    })

    it('treats a zero-length bitfield as full', () => {
      expect(new Bitfield(0).isFull()).to.equal(true)
    })
  })

  describe('indexes/missingIndexes', () => {
    it('lists set and clear bits in ascending order', () => {
      const b = new Bitfield(19)
      for (const i of [18, 0, 9, 8, 7]) {
        b.set(i)
      }
      expect(b.indexes()).to.deep.equal([0, 7, 8, 9, 18])
      expect(b.missingIndexes()).to.deep.equal([1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17])
    })

    it('never lists spare bits past length', () => {
      const b = new Bitfield(3)
      expect(b.missingIndexes()).to.deep.equal([0, 1, 2])
      b.set(0)
      b.set(1)
      b.set(2)
      expect(b.indexes()).to.deep.equal([0, 1, 2])
      expect(b.missingIndexes()).to.deep.equal([])
    })

    it('agrees with get() for random bit sets (property)', () => {
      fc.assert(fc.property(
        fc.integer({ min: 0, max: 200 }).chain(length => fc.tuple(fc.constant(length), fc.uniqueArray(fc.nat({ max: Math.max(0, length - 1) }), { maxLength: length }))),
        ([length, set]) => {
          const b = new Bitfield(length)
          const bits = length === 0 ? [] : set
          for (const i of bits) {
            b.set(i)
          }
          const sorted = Array.from(new Int32Array(bits).sort())
          expect(b.indexes()).to.deep.equal(sorted)
          expect(b.count()).to.equal(bits.length)
          const missing = b.missingIndexes()
          expect(missing.length + sorted.length).to.equal(length)
          for (const i of missing) {
            expect(b.get(i)).to.equal(false)
          }
          expect(Bitfield.from(b.toBytes(), length).indexes()).to.deep.equal(sorted)
        }
      ))
    })
  })

  describe('from/toBytes', () => {
    it('round-trips wire bytes and recounts bits', () => {
      const bytes = Uint8Array.of(0xa5, 0xc0)
      const b = Bitfield.from(bytes, 10)
      expect(b.indexes()).to.deep.equal([0, 2, 5, 7, 8, 9])
      expect(b.count()).to.equal(6)
      expect(b.toBytes()).to.deep.equal(bytes)
    })

    it('copies the input and the output', () => {
      const bytes = Uint8Array.of(0x80)
      const b = Bitfield.from(bytes, 8)
      bytes[0] = 0xff
      expect(b.count()).to.equal(1)
      const out = b.toBytes()
      out[0] = 0xff
      expect(b.count()).to.equal(1)
      expect(b.get(1)).to.equal(false)
    })

    it('rejects a byte length that does not match the piece count', () => {
      expect(() => Bitfield.from(new Uint8Array(1), 9)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => Bitfield.from(new Uint8Array(3), 9)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => Bitfield.from(new Uint8Array(1), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(Bitfield.from(new Uint8Array(0), 0).length).to.equal(0)
    })

    it('rejects set spare bits', () => {
      // 10 pieces: the last byte may only use its top two bits
      expect(() => Bitfield.from(Uint8Array.of(0x00, 0x20), 10)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => Bitfield.from(Uint8Array.of(0x00, 0x01), 10)).to.throw().with.property('name', 'InvalidParametersError')
      expect(Bitfield.from(Uint8Array.of(0x00, 0xc0), 10).count()).to.equal(2)
      // a whole number of bytes has no spare bits
      expect(Bitfield.from(Uint8Array.of(0xff), 8).isFull()).to.equal(true)
    })
  })

  describe('clone', () => {
    it('is independent of the original', () => {
      const a = new Bitfield(12)
      a.set(11)
      const b = a.clone()
      b.set(0)
      a.clear(11)
      expect(a.indexes()).to.deep.equal([])
      expect(b.indexes()).to.deep.equal([0, 11])
      expect(b.count()).to.equal(2)
    })
  })
})
