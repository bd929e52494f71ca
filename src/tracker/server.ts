/**
 * The tracker's stream handler: read one bounded request frame, answer it,
 * close. Every stream has a deadline; a frame that is too large or does not
 * decode aborts the stream; beyond the concurrency cap a request is answered
 * REFUSED / BUSY without being read.
 */

import { InvalidMessageError, TimeoutError } from '@libp2p/interface'
import { anySignal } from 'any-signal'
import { ErrorCode, TrackerRequest, TrackerResponse } from '../pb/tracker.ts'
import { DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_SERVER_REQUEST_TIMEOUT_MS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES } from './constants.ts'
import { boundedLpStream } from './framing.ts'
import { bareResponse, REQUEST_LIMITS } from './rpc.ts'
import type { Logger, Stream } from '@libp2p/interface'

/** Counts requests in progress and turns new ones away beyond a cap */
export class RequestGate {
  readonly max: number
  active = 0

  constructor (max: number = DEFAULT_MAX_CONCURRENT_REQUESTS) {
    this.max = max
  }

  tryEnter (): boolean {
    if (this.active >= this.max) {
      return false
    }
    this.active++
    return true
  }

  leave (): void {
    this.active--
  }
}

export interface TrackerServerContext {
  /** Answers a decoded request from `from`; never throws (see answerRequest) */
  answer(from: string, request: TrackerRequest): Promise<TrackerResponse>
  /** Shared by all streams of the service */
  gate: RequestGate
  /**
   * Time a stream gets to deliver its request and take the answer
   *
   * @default 5000
   */
  timeoutMs?: number
  /** Aborted when the service stops */
  signal?: AbortSignal
  /** Called when a request is turned away because the gate is full */
  onBusy?(): void
  log: Logger
}

/**
 * Encode an answer, replacing it with an INTERNAL error if it would exceed
 * the response bound (the state is built so that it cannot, but a peer must
 * never receive a frame it will reject).
 */
export function encodeResponse (response: TrackerResponse, log?: Logger): Uint8Array {
  const bytes = TrackerResponse.encode(response)
  if (bytes.byteLength <= MAX_RESPONSE_BYTES) {
    return bytes
  }
  log?.error('an answer of %d bytes exceeds the %d-byte bound - sending an error instead', bytes.byteLength, MAX_RESPONSE_BYTES)
  return TrackerResponse.encode(bareResponse(TrackerResponse.Status.ERROR, ErrorCode.INTERNAL, 'The answer would exceed the protocol bound - ask without want_digests or report this as a bug'))
}

/**
 * Serve one tracker stream from `remotePeer`. Resolves when the stream is
 * done; failures abort the stream and are logged, never thrown.
 */
export async function handleTrackerStream (stream: Stream, remotePeer: string, ctx: TrackerServerContext): Promise<void> {
  const timeoutMs = ctx.timeoutMs ?? DEFAULT_SERVER_REQUEST_TIMEOUT_MS
  const signal = anySignal([AbortSignal.timeout(timeoutMs), ctx.signal])
  const lp = boundedLpStream(stream, MAX_REQUEST_BYTES, 'Tracker request')

  try {
    if (!ctx.gate.tryEnter()) {
      ctx.onBusy?.()
      await lp.write(encodeResponse(bareResponse(TrackerResponse.Status.REFUSED, ErrorCode.BUSY, 'The tracker has too many requests in flight - retry after a backoff')), { signal })
      await stream.close({ signal })
      return
    }

    try {
      const frame = await lp.read({ signal })
      let request: TrackerRequest
      try {
        request = TrackerRequest.decode(frame, { limits: REQUEST_LIMITS })
      } catch (err: any) {
        throw new InvalidMessageError(`Malformed tracker request from ${remotePeer} - ${err.message}`)
      }
      const response = await ctx.answer(remotePeer, request)
      await lp.write(encodeResponse(response, ctx.log), { signal })
      await stream.close({ signal })
    } finally {
      ctx.gate.leave()
    }
  } catch (err: any) {
    const reason = signal.aborted && ctx.signal?.aborted !== true
      ? new TimeoutError(`Tracker stream from ${remotePeer} did not complete within ${timeoutMs} ms`)
      : err
    if (ctx.signal?.aborted !== true) {
      ctx.log('aborting tracker stream from %s - %e', remotePeer, reason)
    }
    stream.abort(reason)
  } finally {
    signal.clear()
  }
}
