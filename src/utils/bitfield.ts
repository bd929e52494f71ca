/**
 * @packageDocumentation
 *
 * A fixed-length bit set over a `Uint8Array`, laid out MSB-first as in the
 * BitTorrent `bitfield` message: bit `i` lives in byte `i >> 3` under mask
 * `0x80 >> (i & 7)`. Spare bits in the last byte are always zero, so two
 * bitfields with the same pieces have identical bytes.
 */

import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'

/**
 * Whether bit `index` is set in bitfield wire bytes (most significant bit
 * first, as Bitfield stores them); false past the end, so a peer's short or
 * unchecked bitfield can be read without building a Bitfield
 */
export function bitIsSet (bytes: Uint8Array, index: number): boolean {
  const byte = index >> 3
  return byte < bytes.byteLength && (bytes[byte] & (0x80 >> (index & 7))) !== 0
}

/** Number of set bits for every byte value, so `count()` is one lookup per byte */
const POPCOUNT = new Uint8Array(256)
for (let i = 1; i < 256; i++) {
  POPCOUNT[i] = (i & 1) + POPCOUNT[i >> 1]
}

function byteLength (length: number): number {
  return (length + 7) >> 3
}

function assertLength (length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new InvalidParametersError(`Bitfield length must be a non-negative integer, got ${length} - pass the piece count`)
  }
}

export class Bitfield {
  /** Number of bits (pieces) this bitfield holds */
  readonly length: number
  readonly #bytes: Uint8Array
  #count = 0

  constructor (length: number) {
    assertLength(length)
    this.length = length
    this.#bytes = new Uint8Array(byteLength(length))
  }

  /**
   * Build a bitfield from its wire bytes. The bytes are copied.
   *
   * @throws {InvalidParametersError} when `bytes` is not exactly `ceil(length / 8)`
   * long or a spare bit after `length` is set (a malformed or hostile message)
   */
  static from (bytes: Uint8Array, length: number): Bitfield {
    assertLength(length)
    const expected = byteLength(length)
    if (bytes.byteLength !== expected) {
      throw new InvalidParametersError(`Bitfield for ${length} pieces must be ${expected} bytes, got ${bytes.byteLength} - the sender disagrees about the piece count`)
    }
    const spare = expected * 8 - length
    if (spare > 0 && (bytes[expected - 1] & ((1 << spare) - 1)) !== 0) {
      throw new InvalidParametersError(`Bitfield for ${length} pieces has spare bits set in its last byte - reject the message, the sender is faulty`)
    }
    const bitfield = new Bitfield(length)
    bitfield.#bytes.set(bytes)
    let count = 0
    for (const byte of bitfield.#bytes) {
      count += POPCOUNT[byte]
    }
    bitfield.#count = count
    return bitfield
  }

  #check (index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new InvalidParametersError(`Piece index ${index} is out of range for a bitfield of ${this.length} pieces - use 0..${this.length - 1}`)
    }
  }

  /** Whether bit `index` is set */
  get (index: number): boolean {
    this.#check(index)
    return bitIsSet(this.#bytes, index)
  }

  /** Set bit `index`; setting a set bit is a no-op */
  set (index: number): void {
    this.#check(index)
    const mask = 0x80 >> (index & 7)
    const i = index >> 3
    if ((this.#bytes[i] & mask) === 0) {
      this.#bytes[i] |= mask
      this.#count++
    }
  }

  /** Clear bit `index`; clearing a clear bit is a no-op */
  clear (index: number): void {
    this.#check(index)
    const mask = 0x80 >> (index & 7)
    const i = index >> 3
    if ((this.#bytes[i] & mask) !== 0) {
      this.#bytes[i] &= ~mask
      this.#count--
    }
  }

  /** Number of set bits */
  count (): number {
    return this.#count
  }

  /** Whether every bit is set (true for a zero-length bitfield) */
  isFull (): boolean {
    return this.#count === this.length
  }

  /** A copy of the wire bytes (`ceil(length / 8)` bytes, spare bits zero) */
  toBytes (): Uint8Array {
    return this.#bytes.slice()
  }

  /** An independent copy */
  clone (): Bitfield {
    const copy = new Bitfield(this.length)
    copy.#bytes.set(this.#bytes)
    copy.#count = this.#count
    return copy
  }

  /** Indexes of the set bits, ascending */
  indexes (): number[] {
    return this.#collect(true)
  }

  /** Indexes of the clear bits, ascending */
  missingIndexes (): number[] {
    return this.#collect(false)
  }

  #collect (wanted: boolean): number[] {
    const out: number[] = []
    const skip = wanted ? 0x00 : 0xff
    for (let b = 0; b < this.#bytes.length; b++) {
      const byte = this.#bytes[b]
      if (byte === skip) {
        continue
      }
      const end = Math.min(this.length, (b + 1) * 8)
      for (let i = b * 8; i < end; i++) {
        if (((byte & (0x80 >> (i & 7))) !== 0) === wanted) {
          out.push(i)
        }
      }
    }
    return out
  }
}
