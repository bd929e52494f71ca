/**
 * Bounded length-prefixed framing for the tracker protocol, on top of
 * `lpStream` from `@libp2p/utils`. Its default varint decoder keeps reading a
 * prefix of continuation bytes for ever and only checks the length once the
 * prefix is complete; ours rejects a prefix as soon as it can only denote a
 * frame above the maximum, before a byte of the frame is buffered.
 */

import { lpStream } from '@libp2p/utils'
import { FrameTooLargeError } from './errors.ts'
import type { Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Bytes of the varint encoding of `max` (a longer prefix is a protocol violation) */
export function varintBytes (max: number): number {
  let bytes = 1
  while (max >= 0x80) {
    max = Math.floor(max / 0x80)
    bytes++
  }
  return bytes
}

/**
 * A varint length decoder for `lpStream` that throws FrameTooLargeError as soon
 * as the prefix (even incomplete) exceeds `max`, and RangeError ("need more
 * bytes", which lpStream answers by reading another byte) while it is short.
 */
export function boundedLengthDecoder (max: number, what: string): (data: Uint8ArrayList) => number {
  const limit = varintBytes(max)
  return (data) => {
    let value = 0
    let multiplier = 1
    for (let i = 0; i < data.byteLength; i++) {
      if (i >= limit) {
        throw new FrameTooLargeError(`${what} length prefix is longer than ${limit} bytes, so it exceeds the ${max}-byte maximum - aborting the stream before reading the frame`)
      }
      const byte = data.get(i)
      value += (byte & 0x7f) * multiplier
      if (value > max) {
        throw new FrameTooLargeError(`${what} length prefix announces at least ${value} bytes, more than the ${max}-byte maximum - aborting the stream before reading the frame`)
      }
      if ((byte & 0x80) === 0) {
        return value
      }
      multiplier *= 0x80
    }
    throw new RangeError('incomplete varint')
  }
}

/**
 * A length-prefixed view of `stream` that reads frames of at most `max`
 * bytes and buffers at most one frame plus its prefix beyond what it reads:
 * one request or answer per stream, so a peer that sends more overflows the
 * buffer and the stream is aborted.
 */
export function boundedLpStream (stream: Stream, max: number, what: string): LengthPrefixedStream<Stream> {
  return lpStream(stream, {
    maxDataLength: max,
    maxLengthLength: varintBytes(max),
    maxBufferSize: max + varintBytes(max),
    lengthDecoder: boundedLengthDecoder(max, what)
  })
}
