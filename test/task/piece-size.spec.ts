import { expect } from 'aegir/chai'
import { MAX_CONTENT_LENGTH, MAX_PIECE_COUNT, MAX_PIECE_SIZE, MIN_PIECE_SIZE, choosePieceSize, pieceCount, pieceRange } from '../../src/task/piece-size.ts'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const TiB = 1024 * GiB

function expectThrowsNamed (fn: () => unknown, name: string): Error {
  try {
    fn()
  } catch (err: any) {
    expect(err.name).to.equal(name)
    return err
  }

  throw new Error(`expected ${name}`)
}

describe('task/piece-size', () => {
  it('has the documented limits', () => {
    expect(MIN_PIECE_SIZE).to.equal(MiB / 2)
    expect(MAX_PIECE_SIZE).to.equal(64 * MiB)
    expect(MAX_PIECE_COUNT).to.equal(65536)
    expect(MAX_CONTENT_LENGTH).to.equal(4 * TiB)
  })

  describe('choosePieceSize', () => {
    const cases: Array<[number, number]> = [
      [0, MiB / 2],
      [1, MiB / 2],
      [MiB, MiB / 2],
      [256 * MiB, MiB / 2],
      [256 * MiB + 1, MiB / 2],
      [512 * MiB, MiB / 2],
      [512 * MiB + 1, MiB],
      [GiB - 1, MiB],
      [GiB, MiB],
      [GiB + 1, 2 * MiB],
      [2 * GiB, 2 * MiB],
      [2 * GiB + 1, 4 * MiB],
      [10 * GiB, 16 * MiB],
      [32 * GiB, 32 * MiB],
      [32 * GiB + 1, 64 * MiB],
      [64 * GiB, 64 * MiB],
      [TiB, 64 * MiB],
      [4 * TiB, 64 * MiB]
    ]

    for (const [length, size] of cases) {
      it(`${length} bytes → ${size / MiB} MiB`, () => {
        expect(choosePieceSize(length)).to.equal(size)
      })
    }

    it('always returns a power of two within the bounds and a valid piece count', () => {
      for (let length = 1; length <= MAX_CONTENT_LENGTH; length = Math.ceil(length * 1.7) + 13) {
        const size = choosePieceSize(length)
        expect(size).to.be.within(MIN_PIECE_SIZE, MAX_PIECE_SIZE)
        expect(Math.log2(size) % 1).to.equal(0)
        expect(pieceCount(length, size)).to.be.at.most(MAX_PIECE_COUNT)
      }
    })

    it('rejects files larger than MAX_CONTENT_LENGTH with TaskTooLargeError', () => {
      const err = expectThrowsNamed(() => choosePieceSize(4 * TiB + 1), 'TaskTooLargeError')
      expect(err.message).to.include(String(4 * TiB + 1))
    })

    it('rejects bad lengths with InvalidParametersError', () => {
      for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
        expectThrowsNamed(() => choosePieceSize(bad), 'InvalidParametersError')
      }
    })
  })

  describe('pieceCount', () => {
    it('counts pieces at the boundaries', () => {
      expect(pieceCount(0, MiB)).to.equal(0)
      expect(pieceCount(1, MiB)).to.equal(1)
      expect(pieceCount(MiB - 1, MiB)).to.equal(1)
      expect(pieceCount(MiB, MiB)).to.equal(1)
      expect(pieceCount(MiB + 1, MiB)).to.equal(2)
      expect(pieceCount(MAX_CONTENT_LENGTH, MAX_PIECE_SIZE)).to.equal(MAX_PIECE_COUNT)
    })

    it('rejects more than MAX_PIECE_COUNT pieces with TaskTooLargeError', () => {
      expect(pieceCount(MAX_PIECE_COUNT * KiB, KiB)).to.equal(MAX_PIECE_COUNT)
      expectThrowsNamed(() => pieceCount(MAX_PIECE_COUNT * KiB + 1, KiB), 'TaskTooLargeError')
    })

    it('rejects bad piece sizes with InvalidParametersError', () => {
      for (const bad of [0, -1, 1.5, MAX_PIECE_SIZE + 1, Number.NaN]) {
        expectThrowsNamed(() => pieceCount(MiB, bad), 'InvalidParametersError')
      }
    })
  })

  describe('pieceRange', () => {
    it('returns exclusive ranges that tile the file', () => {
      const length = 5 * MiB + 123
      const count = pieceCount(length, MiB)
      let next = 0

      for (let i = 0; i < count; i++) {
        const range = pieceRange(i, length, MiB)
        expect(range.start).to.equal(next)
        expect(range.length).to.equal(range.end - range.start)
        next = range.end
      }

      expect(next).to.equal(length)
    })

    it('makes the last piece short', () => {
      expect(pieceRange(0, MiB + 1, MiB)).to.deep.equal({ start: 0, end: MiB, length: MiB })
      expect(pieceRange(1, MiB + 1, MiB)).to.deep.equal({ start: MiB, end: MiB + 1, length: 1 })
      expect(pieceRange(1, 2 * MiB, MiB)).to.deep.equal({ start: MiB, end: 2 * MiB, length: MiB })
    })

    it('handles the largest task', () => {
      expect(pieceRange(MAX_PIECE_COUNT - 1, MAX_CONTENT_LENGTH, MAX_PIECE_SIZE)).to.deep.equal({
        start: MAX_CONTENT_LENGTH - MAX_PIECE_SIZE,
        end: MAX_CONTENT_LENGTH,
        length: MAX_PIECE_SIZE
      })
    })

    it('rejects indexes outside the file with InvalidParametersError', () => {
      for (const bad of [-1, 2, 1.5, Number.NaN]) {
        expectThrowsNamed(() => pieceRange(bad, MiB + 1, MiB), 'InvalidParametersError')
      }

      expectThrowsNamed(() => pieceRange(0, 0, MiB), 'InvalidParametersError')
    })
  })
})
