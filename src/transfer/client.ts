import { createHash, timingSafeEqual } from 'node:crypto'
import { AbortError, InvalidMessageError, InvalidParametersError, ProtocolError, TimeoutError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { allocUnsafe } from 'uint8arrays/alloc'
import { PieceHeader, PieceRequest } from '../pb/piece.ts'
import { verifyPieceDigest } from './attestation.ts'
import {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_MAX_OUTSTANDING_PER_STREAM,
  DEFAULT_PIECE_TIMEOUT_MIN_MS,
  DEFAULT_PIECE_TIMEOUT_PER_MIB_MS,
  DIGEST_BYTES,
  MAX_HEADER_FRAME_BYTES,
  MAX_INDEXES_PER_REQUEST,
  MAX_PIECE_BYTES,
  MAX_PIECE_WAIT_MS,
  MAX_TASK_ID_BYTES,
  PAUSED_READ_BUFFER_BYTES,
  RECEIVE_HIGH_WATER_BYTES,
  RECEIVE_LOW_WATER_BYTES
} from './constants.ts'
import { BadPieceError, RemotePieceError, UnexpectedEndOfStreamError } from './errors.ts'
import { encodeFrame } from './framing.ts'
import { StreamReader } from './stream-reader.ts'
import type { PieceAttestation } from './attestation.ts'
import type { PieceBufferPool } from './buffer-pool.ts'
import type { ExpectedPiece, FetchResult, FetchStatus, PieceProof } from './index.ts'
import type { PartialPiece, PartialPieces } from './partial.ts'
import type { TokenBucket } from './token-bucket.ts'
import type { AbortOptions, Logger, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export type BadPieceReason = 'bad-digest' | 'bad-length'

export interface RequestPiecesOptions extends AbortOptions {
  /**
   * Length and sha256 of each piece, from the task's manifest (never from the
   * peer), or the source peers whose attestation may stand in for a digest
   * the manifest lacks yet. Called when the piece's header arrives.
   */
  expected(index: number): ExpectedPiece
  /**
   * Receives each verified piece, in request order, with the digest it
   * matched. The next piece is not processed until this resolves; meanwhile
   * the stream is paused once RECEIVE_HIGH_WATER_BYTES are queued, so a slow
   * sink slows the sender down instead of growing memory. A throw marks that
   * index 'error' and goes on.
   */
  onPiece(index: number, bytes: Uint8Array, proof: PieceProof): Promise<void> | void
  /**
   * Fill pieces into buffers leased from this pool instead of a fresh
   * allocation per piece. The buffer handed to onPiece is then onPiece's:
   * it must `pool.release(bytes)` once nothing reads it anymore (after the
   * store's put settled), also when it throws. Pieces that fail
   * verification, or do not arrive whole, are released by the client.
   */
  pool?: PieceBufferPool
  /** Every piece byte passes all of these (e.g. node-wide and per-task download limits) */
  rateLimits?: TokenBucket[]
  /**
   * Publish each piece here while it arrives, so uploads of it can start
   * before it is complete (cut-through, partial.ts); it is marked verified
   * before onPiece gets it
   */
  partials?: PartialPieces
  /** @default 16 */
  maxOutstanding?: number
  /**
   * Time the peer gets to deliver one piece of `length` bytes. Only time spent
   * waiting for the peer counts (not onPiece or rate limits).
   *
   * @default max(5 s, 4 s per MiB)
   */
  pieceTimeoutMs?(length: number): number
  /**
   * Ask the peer to hold each index it does not have yet up to this long
   * (ms, at most MAX_PIECE_WAIT_MS) and send it once it arrives, instead of
   * answering DONT_HAVE at once; the piece timeout grows by as much
   *
   * @default 0
   */
  waitMs?: number
  /**
   * After the last answer, abort the stream if the peer has not closed it within this many ms
   *
   * @default 5000
   */
  closeGraceMs?: number
  log?: Logger
  /** the peer sent a piece that failed verification (the caller blocks/reports it) */
  onBadPiece?(index: number, reason: BadPieceReason): void
  /** a verified piece was accepted by onPiece */
  onDownloaded?(index: number, bytes: number): void
  /**
   * Each answer's timing: `headerMs` from when the client started waiting
   * for it to its header, and for a piece `bodyMs` from the header to its
   * last byte (undefined for answers without bytes). The muxer delivers a
   * frame only once all of it arrived, and the header shares its frame with
   * the first piece bytes (up to the stream window, often the whole piece),
   * so `headerMs` covers the peer's queue, its upload slot and most of the
   * transfer. (Sending the header in a frame of its own split the two, but
   * made yamux grow stream windows faster and 16 nodes at 25 Mbit/s 25 %
   * slower: 52–56 s against 42–43 s.)
   */
  onTiming?(index: number, headerMs: number, bodyMs?: number): void
  /**
   * Each answer as soon as it is read, before the next one: a piece the peer
   * is BUSY for, or does not have, can be asked of another peer at once
   * instead of when the whole request is answered. Answers that fail with
   * the stream (timeout, error) come only in the returned results.
   */
  onAnswer?(result: FetchResult): void
}

/**
 * The sha256 a piece's bytes must match: the manifest's, or, when the
 * manifest has none yet, the digest in the header if a source the caller
 * named signed it. `relay` is the header's attestation when it was checked
 * and names an expected attestor (to send the piece on with it). Without a
 * digest to match, `refused` says why: a forged attestation ('bad-digest')
 * or none usable ('unverifiable').
 */
async function digestToMatch (taskId: string, index: number, expected: ExpectedPiece, header: PieceHeader): Promise<{ want?: Uint8Array, relay?: PieceAttestation, refused?: 'bad-digest' | 'unverifiable' }> {
  const known = expected.digest.byteLength === DIGEST_BYTES
  const attestation: PieceAttestation = { attestor: header.attestor, signature: header.attestation }
  const usable = header.digest.byteLength === DIGEST_BYTES && attestation.signature.byteLength > 0 &&
    expected.attestors?.has(attestation.attestor) === true && (!known || timingSafeEqual(header.digest, expected.digest))

  if (!usable) {
    return known ? { want: expected.digest } : { refused: 'unverifiable' }
  }

  if (await verifyPieceDigest(taskId, index, header.digest, attestation)) {
    return { want: known ? expected.digest : header.digest, relay: attestation }
  }

  // known: the manifest decides, but this attestation must not be passed on
  return known ? { want: expected.digest } : { refused: 'bad-digest' }
}

/** max(5 s, 4 s per MiB) from reliability.md §e */
export function defaultPieceTimeoutMs (length: number): number {
  return Math.max(DEFAULT_PIECE_TIMEOUT_MIN_MS, Math.ceil(DEFAULT_PIECE_TIMEOUT_PER_MIB_MS * length / (1024 * 1024)))
}

const textEncoder = new TextEncoder()
const MAX_INDEX = 0xffffffff

/**
 * A time budget that only runs while started: the per-piece timeout counts
 * time spent waiting for the peer, not time spent in our own sink.
 */
class PieceTimer {
  private remainingMs = 0
  private startedAt = 0
  private timer?: ReturnType<typeof setTimeout>
  private readonly onExpire: () => void

  constructor (onExpire: () => void) {
    this.onExpire = onExpire
  }

  reset (budgetMs: number): void {
    this.stop()
    this.remainingMs = budgetMs
  }

  start (): void {
    if (this.timer != null) {
      return
    }

    this.startedAt = Date.now()
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.remainingMs = 0
      this.onExpire()
    }, Math.max(0, this.remainingMs))
  }

  stop (): void {
    if (this.timer == null) {
      return
    }

    clearTimeout(this.timer)
    this.timer = undefined
    this.remainingMs -= Date.now() - this.startedAt
  }
}

function validate (taskId: string, indexes: number[]): void {
  if (typeof taskId !== 'string' || taskId === '' || textEncoder.encode(taskId).byteLength > MAX_TASK_ID_BYTES) {
    throw new InvalidParametersError(`taskId must be a non-empty string of at most ${MAX_TASK_ID_BYTES} UTF-8 bytes`)
  }

  const seen = new Set<number>()

  for (const index of indexes) {
    if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) {
      throw new InvalidParametersError(`Piece index ${index} is not an integer in [0, ${MAX_INDEX}]`)
    }

    if (seen.has(index)) {
      throw new InvalidParametersError(`Piece index ${index} is requested twice; pass each index once`)
    }

    seen.add(index)
  }
}

function decodeHeader (frame: Uint8ArrayList): PieceHeader {
  try {
    return PieceHeader.decode(frame)
  } catch (err: any) {
    throw new InvalidMessageError(`Malformed piece header from the peer (${err?.message ?? err}); it speaks another protocol version or is broken`)
  }
}

/** the server closes after its last answer; if it does not, drop the stream after a grace period */
function abortIfNotClosed (stream: Stream, graceMs: number): void {
  if (stream.status !== 'open') {
    return
  }

  const timer = setTimeout(() => {
    stream.abort(new ProtocolError(`The peer did not close the piece stream within ${graceMs} ms of its last answer`))
  }, graceMs)
  timer.unref?.()
  stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
}

const STATUS: Record<PieceHeader.Status, FetchStatus> = {
  [PieceHeader.Status.OK]: 'ok',
  [PieceHeader.Status.DONT_HAVE]: 'dont-have',
  [PieceHeader.Status.BUSY]: 'busy',
  [PieceHeader.Status.UNKNOWN_TASK]: 'unknown-task',
  [PieceHeader.Status.ERROR]: 'error'
}

/**
 * Client side of `/damselfly/piece/1.0.0` on an open stream: request
 * `indexes` of `taskId` (pipelined, at most `maxOutstanding` unanswered),
 * verify each piece against `expected(index).digest`, hand it to `onPiece`,
 * and half-close when every request is written. Returns one result per index,
 * in the order given. A per-piece timeout or a broken stream marks the
 * unanswered rest 'timeout' / 'error' and aborts the stream; an abort of
 * `options.signal` aborts the stream and rejects.
 */
export async function requestPieces (stream: Stream, taskId: string, indexes: number[], options: RequestPiecesOptions): Promise<FetchResult[]> {
  validate(taskId, indexes)

  const log = options.log ?? defaultLogger().forComponent('damselfly:transfer:client')
  const maxOutstanding = Math.max(1, options.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING_PER_STREAM)
  const waitMs = Math.max(0, Math.min(MAX_PIECE_WAIT_MS, Math.floor(options.waitMs ?? 0)))
  // a held index may first wait up to waitMs for the peer to get it
  const pieceTimeoutMs = (length: number): number => (options.pieceTimeoutMs ?? defaultPieceTimeoutMs)(length) + waitMs
  const signal = options.signal
  const results: FetchResult[] = []
  let timeoutError: TimeoutError | undefined
  /** the answer being read: when we began waiting for it, when its header came, piece bytes since */
  const head = { startedAt: 0, headerAt: 0, bytes: 0 }

  // pausing leaves the granted window in the muxer's read buffer (notes P15);
  // the window bounds it, so don't let the 4 MiB default reset the stream
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, PAUSED_READ_BUFFER_BYTES)

  const timer = new PieceTimer(() => {
    const index = indexes[results.length]
    // say whether the peer never started the answer (queued behind others,
    // or busy) or started and then stalled
    const progress = head.headerAt === 0
      ? 'no answer header yet'
      : `header after ${head.headerAt - head.startedAt} ms, ${head.bytes} piece bytes since`
    timeoutError = new TimeoutError(`Piece ${index} of task ${taskId} did not arrive within ${pieceTimeoutMs(options.expected(index).length)} ms of waiting (${progress}; ${Date.now() - head.startedAt} ms in all); request it from another peer`)
    stream.abort(timeoutError)
  })
  const reader = new StreamReader(stream, {
    highWaterBytes: RECEIVE_HIGH_WATER_BYTES,
    lowWaterBytes: RECEIVE_LOW_WATER_BYTES,
    onWaiting: (waiting) => { waiting ? timer.start() : timer.stop() }
  })
  const onAbort = (): void => { stream.abort(signal?.reason ?? new AbortError('Fetching pieces was aborted')) }
  signal?.addEventListener('abort', onAbort)

  let requested = 0
  let closing: Promise<void> | undefined

  /** write request frames while fewer than maxOutstanding are unanswered, in batches */
  const requestMore = (): void => {
    while (requested < indexes.length) {
      const room = maxOutstanding - (requested - results.length)
      const left = indexes.length - requested

      // wait until half the window is free rather than sending one index at a time
      if (room < Math.min(Math.ceil(maxOutstanding / 2), left)) {
        break
      }

      const count = Math.min(room, left, MAX_INDEXES_PER_REQUEST)
      const batch = indexes.slice(requested, requested + count)
      // request frames are tiny and bounded by indexes.length, so send()'s
      // backpressure is not awaited here
      stream.send(encodeFrame(PieceRequest.encode({ taskId, indexes: batch, waitMs })))
      requested += count
    }

    if (requested === indexes.length && closing == null) {
      closing = stream.close().catch((err: Error) => {
        log.trace('closing the write side failed - %e', err)
      })
    }
  }

  const answered = (result: FetchResult): void => {
    results.push(result)
    options.onAnswer?.(result)
  }

  const timed = (index: number, bodyMs?: number): void => {
    options.onTiming?.(index, head.headerAt - head.startedAt, bodyMs)
  }

  /** DONT_HAVE, BUSY, UNKNOWN_TASK or ERROR */
  const answerWithoutBytes = (index: number, header: PieceHeader): FetchResult => {
    if (header.length !== 0) {
      throw new InvalidMessageError(`The peer announced ${header.length} bytes with status ${header.status} for piece ${index}; only OK carries bytes`)
    }

    timed(index)
    const status = STATUS[header.status]
    return status === 'error'
      ? { index, status, error: new RemotePieceError(`The peer failed to read piece ${index}: ${header.message ?? 'no reason given'}; request it from another peer`) }
      : { index, status }
  }

  /** a piece with no digest to check it against: read past its bytes, say why */
  const refuse = async (index: number, header: PieceHeader, refused?: 'bad-digest' | 'unverifiable'): Promise<FetchResult> => {
    await reader.readBytes(header.length, async (chunk) => {
      for (const limit of options.rateLimits ?? []) {
        await limit.take(chunk.byteLength, { signal })
      }

      head.bytes += chunk.byteLength
    })
    timed(index, Date.now() - head.headerAt)

    if (refused === 'bad-digest') {
      options.onBadPiece?.(index, 'bad-digest')
      return { index, status: 'bad-digest', error: new BadPieceError(`Piece ${index} of task ${taskId} came with an attestation by ${header.attestor.slice(0, 128)} that does not verify; the piece was dropped, block or report the peer`) }
    }

    return { index, status: 'unverifiable' }
  }

  /** read `length` piece bytes into `piece`, hashed and passed on to `partial` as they come; returns their sha256 */
  const readPiece = async (piece: Uint8Array, length: number, partial?: PartialPiece): Promise<Uint8Array> => {
    const hash = createHash('sha256')
    let offset = 0

    await reader.readBytes(length, async (chunk) => {
      for (const limit of options.rateLimits ?? []) {
        await limit.take(chunk.byteLength, { signal })
      }

      head.bytes += chunk.byteLength
      piece.set(chunk, offset)
      offset += chunk.byteLength
      hash.update(chunk)
      partial?.progress(offset)
    })

    return hash.digest()
  }

  const receive = async (index: number): Promise<FetchResult> => {
    head.startedAt = Date.now()
    head.headerAt = 0
    head.bytes = 0
    const frame = await reader.readFrame(MAX_HEADER_FRAME_BYTES, 'piece header')
    head.headerAt = Date.now()

    if (frame == null) {
      throw new UnexpectedEndOfStreamError(`The peer closed the stream after answering ${results.length} of ${indexes.length} pieces of task ${taskId}; request the rest from another peer`)
    }

    const header = decodeHeader(frame)

    if (header.index !== index) {
      throw new InvalidMessageError(`The peer answered piece ${header.index} where piece ${index} was due; answers must come in request order`)
    }

    if (header.status !== PieceHeader.Status.OK) {
      return answerWithoutBytes(index, header)
    }

    const expected = options.expected(index)

    if (header.length !== expected.length || header.length > MAX_PIECE_BYTES) {
      // refuse before allocating: a lying header must not make us buffer 4 GiB
      options.onBadPiece?.(index, 'bad-length')
      throw new BadPieceError(`The peer announced ${header.length} bytes for piece ${index} of task ${taskId}, expected ${expected.length} (max ${MAX_PIECE_BYTES}); dropped the stream, block or report the peer`)
    }

    const { want, relay, refused } = await digestToMatch(taskId, index, expected, header)

    if (want == null) {
      return refuse(index, header, refused)
    }

    return receiveBytes(index, header, want, want === expected.digest, relay)
  }

  /** an OK answer's bytes, to be checked against `want` (the manifest's, or else the one `relay` signs), then handed to onPiece */
  const receiveBytes = async (index: number, header: PieceHeader, want: Uint8Array, fromManifest: boolean, relay?: PieceAttestation): Promise<FetchResult> => {
    // one buffer per piece (reused from the pool when given); chunks are
    // copied straight in and hashed on the way
    const piece = options.pool?.acquire(header.length) ?? allocUnsafe(header.length)
    // uploads of this piece may start now; they end with it (ends in finally)
    const partial = options.partials?.begin(taskId, index, piece, header.length, { digest: want, attestation: relay })
    let handedOver = false

    try {
      const digest = await readPiece(piece, header.length, partial)
      timed(index, Date.now() - head.headerAt)

      if (!timingSafeEqual(digest, want)) {
        options.onBadPiece?.(index, 'bad-digest')
        return { index, status: 'bad-digest', error: new BadPieceError(`Piece ${index} of task ${taskId} does not match its sha256 from the ${fromManifest ? 'manifest' : `attestation by ${relay?.attestor ?? 'its source'}`}; the piece was dropped, block or report the peer`) }
      }

      partial?.verified()
      handedOver = true
      await options.onPiece(index, piece, { digest: want, attestation: relay })
    } catch (err: any) {
      if (!handedOver) {
        throw err
      }

      log.error('onPiece failed for piece %d of task %s - %e', index, taskId, err)
      return { index, status: 'error', bytes: header.length, error: err }
    } finally {
      if (partial?.state === 'filling') {
        partial.fail(new RemotePieceError(`Piece ${index} of task ${taskId} did not arrive here whole and verified; request it from another peer`))
      }

      if (!handedOver) {
        options.pool?.release(piece)
      }
    }

    options.onDownloaded?.(index, header.length)
    return { index, status: 'ok', bytes: header.length }
  }

  try {
    signal?.throwIfAborted()
    requestMore()

    while (results.length < indexes.length) {
      const index = indexes[results.length]
      timer.reset(pieceTimeoutMs(options.expected(index).length))

      let result: FetchResult

      try {
        result = await receive(index)
      } catch (err: any) {
        if (err?.name === 'BadPieceError') {
          // a lying length: this index is a bad piece, the rest fail with the stream
          results.push({ index, status: 'bad-digest', error: err })
        }

        throw err
      } finally {
        timer.stop()
      }

      answered(result)
      requestMore()
    }

    // not awaiting `closing`: every request was answered, so it was read;
    // a close that still hangs is cut by the grace timer below
    abortIfNotClosed(stream, options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS)
    return results
  } catch (err: any) {
    if (signal?.aborted === true) {
      stream.abort(signal.reason ?? new AbortError())
      throw signal.reason ?? new AbortError('Fetching pieces was aborted')
    }

    const error: Error = timeoutError ?? err
    const status: FetchStatus = timeoutError != null ? 'timeout' : 'error'
    log('fetching task %s from %s failed after %d of %d pieces - %e', taskId, stream.id, results.length, indexes.length, error)
    stream.abort(error)

    for (let i = results.length; i < indexes.length; i++) {
      results.push({ index: indexes[i], status, error })
    }

    return results
  } finally {
    timer.stop()
    signal?.removeEventListener('abort', onAbort)
    reader.dispose()
  }
}
