/**
 * Unsigned-varint length prefixes, parsed by hand from a Uint8ArrayList so the
 * announced length is checked against the protocol maximum BEFORE a single
 * byte of the frame is buffered or allocated. Pure functions, no I/O.
 */

import { FrameTooLargeError } from './errors.ts'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface VarintPrefix {
  /** the frame length the prefix announces */
  value: number
  /** how many bytes the prefix itself took */
  bytes: number
}

/** Number of varint bytes needed to encode `max` (a longer prefix is a protocol violation) */
export function maxVarintBytes (max: number): number {
  let bytes = 1

  while (max >= 0x80) {
    max = Math.floor(max / 0x80)
    bytes++
  }

  return bytes
}

/**
 * Read the varint at the start of `list`. Returns undefined while more bytes
 * are needed. Throws FrameTooLargeError as soon as the prefix (even
 * incomplete) can only denote a value above `max`, or is longer than any
 * encoding of `max` (non-minimal padding).
 */
export function readVarintPrefix (list: Uint8ArrayList, max: number, what: string): VarintPrefix | undefined {
  const limit = maxVarintBytes(max)
  let value = 0
  let multiplier = 1

  for (let i = 0; i < limit; i++) {
    if (i >= list.byteLength) {
      return undefined
    }

    const byte = list.get(i)
    value += (byte & 0x7f) * multiplier

    if (value > max) {
      throw new FrameTooLargeError(`${what} length prefix announces at least ${value} bytes, more than the ${max}-byte maximum; aborting the stream before reading it`)
    }

    if ((byte & 0x80) === 0) {
      return { value, bytes: i + 1 }
    }

    multiplier *= 0x80
  }

  throw new FrameTooLargeError(`${what} length prefix is longer than ${limit} bytes, so it exceeds the ${max}-byte maximum; aborting the stream before reading it`)
}

/** Encode `n` (0 ≤ n < 2^53) as an unsigned varint */
export function encodeVarint (n: number): Uint8Array {
  const out = new Uint8Array(maxVarintBytes(n))
  let i = 0

  while (n >= 0x80) {
    out[i++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }

  out[i] = n
  return out
}

/** Length-prefix a small message (one allocation, used for requests and headers) */
export function encodeFrame (message: Uint8Array): Uint8Array {
  const prefix = encodeVarint(message.byteLength)
  const out = new Uint8Array(prefix.byteLength + message.byteLength)
  out.set(prefix, 0)
  out.set(message, prefix.byteLength)
  return out
}
