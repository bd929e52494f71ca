import { createHash } from 'node:crypto'
import { InvalidMessageError, TimeoutError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { Uint8ArrayList } from 'uint8arraylist'
import { PieceHeader, PieceRequest } from '../pb/piece.ts'
import {
  DEFAULT_MAX_OUTSTANDING_PER_STREAM,
  DEFAULT_SEND_STALL_TIMEOUT_MS,
  DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  DEFAULT_UPLOAD_SLOT_WAIT_MS,
  MAX_HEADER_MESSAGE_CHARS,
  MAX_INDEXES_PER_REQUEST,
  MAX_PIECE_BYTES,
  MAX_PIECE_WAIT_MS,
  MAX_QUEUED_ANSWERS_PER_STREAM,
  MAX_REQUEST_FRAME_BYTES,
  MAX_TASK_ID_BYTES,
  REQUEST_HIGH_WATER_BYTES,
  REQUEST_LOW_WATER_BYTES,
  SEND_SLICE_BYTES,
  FORWARD_MIN_BYTES
} from './constants.ts'
import { waitForDrain } from './drain.ts'
import { encodeFrame } from './framing.ts'
import { StreamReader } from './stream-reader.ts'
import type { PieceAttestation } from './attestation.ts'
import type { PieceSource } from './index.ts'
import type { PartialPiece, PartialPieces } from './partial.ts'
import type { TokenBucket } from './token-bucket.ts'
import type { UploadSlots } from './upload-slots.ts'
import type { Logger, PeerId, Stream, StreamCloseEvent } from '@libp2p/interface'

/** What the server side of one stream needs; everything but source and slots has a default */
export interface PieceServerContext {
  source: PieceSource
  /** node-wide upload slots, shared by all streams */
  slots: UploadSlots
  /** node-wide upload rate limit */
  uploadLimiter?: TokenBucket
  /**
   * Pieces this node is receiving right now: one asked for before it is
   * stored is sent on as it arrives (cut-through, partial.ts)
   */
  partials?: PartialPieces
  /** @default 500 */
  slotWaitMs?: number
  /** @default 30_000 */
  idleTimeoutMs?: number
  /** @default 30_000 */
  sendStallTimeoutMs?: number
  /** @default 16 */
  maxOutstanding?: number
  /** aborted when the service stops */
  signal?: AbortSignal
  log?: Logger
  /** a piece was fully handed to the stream */
  onUploaded?(taskId: string, index: number, bytes: number): void
  /** ... and it was sent on while it arrived here (cut-through); onUploaded came too */
  onForwarded?(taskId: string, index: number, bytes: number): void
  /** an index was answered BUSY */
  onBusy?(taskId: string, index: number): void
  /** an upload slot was taken (+1) or given back (-1) */
  onActiveUploads?(delta: 1 | -1): void
}

interface Answer {
  taskId: string
  index: number
  /** answered BUSY without looking: over the outstanding limit */
  overLimit: boolean
  /** how long the piece may be waited for when we do not hold it yet (ms) */
  waitMs: number
  /** its last byte was handed to the stream */
  done: boolean
}

const textEncoder = new TextEncoder()

/**
 * Serve one inbound `/damselfly/piece/1.0.0` stream: read pipelined
 * PieceRequest frames, answer every index in request order, close when the
 * client has half-closed and everything is answered. Any protocol violation
 * (oversized or malformed frame, too many indexes) aborts the stream.
 * Resolves when the stream is done; never throws.
 */
export async function handlePieceStream (stream: Stream, peer: PeerId | string, ctx: PieceServerContext): Promise<void> {
  const log = ctx.log ?? defaultLogger().forComponent('damselfly:transfer:server')
  const slotWaitMs = ctx.slotWaitMs ?? DEFAULT_UPLOAD_SLOT_WAIT_MS
  const idleTimeoutMs = ctx.idleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS
  const stallTimeoutMs = ctx.sendStallTimeoutMs ?? DEFAULT_SEND_STALL_TIMEOUT_MS
  const maxOutstanding = ctx.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING_PER_STREAM

  const reader = new StreamReader(stream, { highWaterBytes: REQUEST_HIGH_WATER_BYTES, lowWaterBytes: REQUEST_LOW_WATER_BYTES })
  const controller = new AbortController()
  const queue: Answer[] = []
  let accepted = 0 // queued or being answered, not over the limit
  let requestsDone = false
  let answering = false
  let failure: Error | undefined
  const wakers: Array<() => void> = []

  /** wake every loop waiting in changed() */
  const notify = (): void => {
    for (const wake of wakers.splice(0, wakers.length)) {
      wake()
    }
  }
  const changed = async (): Promise<void> => {
    const { promise, resolve } = Promise.withResolvers<void>()
    wakers.push(resolve)
    return promise
  }
  /** stop counting an answer as outstanding (once) */
  const answered = (entry: Answer): void => {
    if (!entry.done) {
      entry.done = true

      if (!entry.overLimit) {
        accepted--
      }
    }
  }
  const failed = (): boolean => failure != null
  const fail = (err: Error): void => {
    if (failure != null) {
      return
    }

    failure = err
    controller.abort(err)
    stream.abort(err)
    notify()
  }

  let idleTimer: ReturnType<typeof setTimeout> | undefined
  const touch = (): void => {
    clearTimeout(idleTimer)
    idleTimer = setTimeout(() => {
      if (answering) {
        // a slow send is covered by the stall timeout; keep the stream
        touch()
        return
      }

      fail(new TimeoutError(`No piece request from ${peer} for ${idleTimeoutMs} ms; closing the idle stream (open a new one when you need pieces)`))
    }, idleTimeoutMs)
  }

  const onStop = (): void => { fail(ctx.signal?.reason ?? new Error('The piece service is stopping')) }
  ctx.signal?.addEventListener('abort', onStop)

  // a reset must stop a writer busy reading the store, not only a waiting reader
  const onClose = (evt: StreamCloseEvent): void => {
    if (evt.error != null) {
      fail(evt.error)
    }
  }
  stream.addEventListener('close', onClose)

  const readRequests = async (): Promise<void> => {
    while (!failed()) {
      if (queue.length >= MAX_QUEUED_ANSWERS_PER_STREAM) {
        // the client ignores answers: stop reading so the muxer pushes back
        await changed()
        continue
      }

      const frame = await reader.readFrame(MAX_REQUEST_FRAME_BYTES, 'piece request')

      if (frame == null) {
        break
      }

      touch()
      const request = decodeRequest(frame)

      for (const index of request.indexes) {
        const overLimit = accepted >= maxOutstanding

        if (!overLimit) {
          accepted++
        }

        queue.push({ taskId: request.taskId, index, overLimit, waitMs: request.waitMs ?? 0, done: false })
      }

      notify()
    }

    requestsDone = true
    notify()
  }

  /**
   * Hand `data` to the stream and wait for drain if it is full. `last` marks
   * the end of an answer: the index stops counting as outstanding as soon as
   * its last byte is queued, because the client may read it and ask for more
   * before our drain wait ends.
   */
  const sendAll = async (data: Uint8Array | Uint8ArrayList, answer?: Answer): Promise<void> => {
    const ok = stream.send(data)

    if (answer != null) {
      answered(answer)
    }

    if (!ok) {
      await waitForDrain(stream, {
        signal: controller.signal,
        timeoutMs: stallTimeoutMs,
        timeoutMessage: `${peer} did not read piece data for ${stallTimeoutMs} ms; aborting the stream to free the upload slot`
      })
    }
  }

  /** a header-only answer */
  const sendHeader = async (entry: Answer, header: Partial<PieceHeader> & { status: PieceHeader.Status }): Promise<void> => {
    if (header.message != null && header.message.length > MAX_HEADER_MESSAGE_CHARS) {
      header.message = header.message.slice(0, MAX_HEADER_MESSAGE_CHARS)
    }

    await sendAll(encodeFrame(PieceHeader.encode({ ...header, index: entry.index })), entry)
  }

  const answer = async (entry: Answer): Promise<void> => {
    const { taskId, index, overLimit } = entry

    if (overLimit) {
      ctx.onBusy?.(taskId, index)
      await sendHeader(entry, { status: PieceHeader.Status.BUSY, message: `More than ${maxOutstanding} pieces requested and unanswered on this stream; wait for answers before requesting more` })
      return
    }

    const length = ctx.source.pieceLength(taskId, index)

    if (length == null) {
      await sendHeader(entry, { status: PieceHeader.Status.UNKNOWN_TASK })
      return
    }

    if (!available(taskId, index) && entry.waitMs > 0 && ctx.source.waitFor != null) {
      // asked ahead (pipeline): send it as soon as it is stored, or starts arriving
      await waitForPiece(taskId, index, Math.min(entry.waitMs, MAX_PIECE_WAIT_MS))
      controller.signal.throwIfAborted()
    }

    if (!available(taskId, index)) {
      await sendHeader(entry, { status: PieceHeader.Status.DONT_HAVE })
      return
    }

    const release = await ctx.slots.acquire(slotWaitMs, { signal: controller.signal })

    if (release == null) {
      controller.signal.throwIfAborted()
      ctx.onBusy?.(taskId, index)
      await sendHeader(entry, { status: PieceHeader.Status.BUSY, message: `All ${ctx.slots.size} upload slots stayed busy for ${slotWaitMs} ms; try again later or another peer` })
      return
    }

    ctx.onActiveUploads?.(1)

    try {
      await sendAvailable(entry, length)
    } finally {
      release()
      ctx.onActiveUploads?.(-1)
    }
  }

  /** stored, or arriving here now */
  const available = (taskId: string, index: number): boolean => ctx.source.has(taskId, index) || ctx.partials?.get(taskId, index) != null

  /**
   * Send the piece from the store, or on as it arrives (the caller holds an
   * upload slot). While we waited for the slot it may have been stored,
   * finished arriving but not been stored yet, or failed to arrive.
   */
  const sendAvailable = async (entry: Answer, length: number): Promise<void> => {
    const { taskId, index } = entry
    const partial = ctx.source.has(taskId, index) ? undefined : ctx.partials?.get(taskId, index)
    const chunks = partial?.chunks({ signal: controller.signal, minBytes: FORWARD_MIN_BYTES })

    if (partial != null && chunks != null) {
      await forwardPiece(entry, partial, chunks)
      return
    }

    if (!ctx.source.has(taskId, index) && entry.waitMs > 0) {
      await ctx.source.waitFor?.(taskId, index, { signal: controller.signal, timeoutMs: Math.min(entry.waitMs, MAX_PIECE_WAIT_MS) })
      controller.signal.throwIfAborted()
    }

    await (ctx.source.has(taskId, index) ? sendPiece(entry, length) : sendHeader(entry, { status: PieceHeader.Status.DONT_HAVE }))
  }

  /** store.waitFor, or until the piece starts arriving here */
  const waitForPiece = async (taskId: string, index: number, timeoutMs: number): Promise<void> => {
    if (ctx.partials == null) {
      await ctx.source.waitFor?.(taskId, index, { signal: controller.signal, timeoutMs })
      return
    }

    const settled = new AbortController()
    const signal = AbortSignal.any([controller.signal, settled.signal])

    try {
      await Promise.race([
        ctx.source.waitFor?.(taskId, index, { signal, timeoutMs }),
        ctx.partials.waitFor(taskId, index, { signal, timeoutMs })
      ])
    } finally {
      settled.abort()
    }
  }

  /**
   * Send a piece on while it arrives here (the caller holds an upload slot):
   * the header at once, with the digest and attestation it came with, then
   * its bytes as they come; the last of them only once this node verified
   * the piece. If the piece fails here the stream is aborted, so the
   * receiver never completes a piece we did not verify.
   */
  const forwardPiece = async (entry: Answer, partial: PartialPiece, chunks: AsyncGenerator<Uint8Array>): Promise<void> => {
    const { index, taskId } = entry
    let header: Uint8Array | undefined = okHeader(index, partial.length, partial.proof.digest, partial.proof.attestation)
    let sent = 0

    for await (const chunk of chunks) {
      await ctx.uploadLimiter?.take(chunk.byteLength, { signal: controller.signal })
      sent += chunk.byteLength
      // the header rides with the first bytes, as in sendPiece
      await sendAll(header == null ? chunk : new Uint8ArrayList(header, chunk), sent === partial.length ? entry : undefined)
      header = undefined
    }

    ctx.onUploaded?.(taskId, index, partial.length)
    ctx.onForwarded?.(taskId, index, partial.length)
  }

  /** read one piece from the store and stream it (the caller holds an upload slot) */
  const sendPiece = async (entry: Answer, length: number): Promise<void> => {
    const { taskId, index } = entry
    let bytes: Uint8Array

    try {
      bytes = await ctx.source.read(taskId, index, { signal: controller.signal })
    } catch (err: any) {
      controller.signal.throwIfAborted()
      log.error('reading piece %d of task %s for %s failed - %e', index, taskId, peer, err)
      await sendHeader(entry, { status: PieceHeader.Status.ERROR, message: `Reading the piece failed: ${err?.message ?? err}` })
      return
    }

    if (bytes.byteLength !== length || length > MAX_PIECE_BYTES) {
      log.error('piece %d of task %s: store returned %d bytes, expected %d (max %d)', index, taskId, bytes.byteLength, length, MAX_PIECE_BYTES)
      await sendHeader(entry, { status: PieceHeader.Status.ERROR, message: `The store returned ${bytes.byteLength} bytes for a ${length}-byte piece (max ${MAX_PIECE_BYTES})` })
      return
    }

    const digest = ctx.source.digest(taskId, index) ?? createHash('sha256').update(bytes).digest()
    const header = okHeader(index, length, digest, ctx.source.attestation?.(taskId, index, digest))

    if (length === 0) {
      await sendAll(header, entry)
    }

    // large slices (notes §5.2); the header rides with the first one. (The
    // muxer then delivers header and bytes in one frame, so the client's
    // answer wait holds most of the transfer; a header frame of its own made
    // yamux grow stream windows faster and 16 nodes at 25 Mbit/s 25 % slower.)
    for (let offset = 0; offset < length; offset += SEND_SLICE_BYTES) {
      const end = Math.min(offset + SEND_SLICE_BYTES, length)
      const slice = bytes.subarray(offset, end)
      await ctx.uploadLimiter?.take(slice.byteLength, { signal: controller.signal })
      await sendAll(offset === 0 ? new Uint8ArrayList(header, slice) : slice, end === length ? entry : undefined)
    }

    ctx.onUploaded?.(taskId, index, length)
  }

  const writeAnswers = async (): Promise<void> => {
    while (!failed()) {
      const next = queue.shift()

      if (next == null) {
        if (requestsDone) {
          return
        }

        await changed()
        continue
      }

      // the reader may be waiting for room in the queue
      notify()
      answering = true

      try {
        await answer(next)
      } finally {
        answering = false
        answered(next)
      }

      touch()
    }
  }

  touch()

  try {
    await Promise.all([
      readRequests().catch((err: Error) => { fail(err) }),
      writeAnswers().catch((err: Error) => { fail(err) })
    ])

    if (failure == null) {
      const closeTimeout = AbortSignal.timeout(stallTimeoutMs)
      await stream.close({ signal: AbortSignal.any([controller.signal, closeTimeout]) })
    }
  } catch (err: any) {
    fail(err)
  } finally {
    clearTimeout(idleTimer)
    ctx.signal?.removeEventListener('abort', onStop)
    stream.removeEventListener('close', onClose)
    reader.dispose()
  }

  if (failure != null) {
    log('piece stream from %s aborted - %e', peer, failure)
  } else {
    log.trace('piece stream from %s done', peer)
  }
}

/**
 * The framed header of an OK answer: the digest is informational for the
 * receiver, which verifies against its manifest (or the attestation's
 * signer). protons only reads the bytes, so the ArrayBuffer-vs-shared typing
 * is moot.
 */
function okHeader (index: number, length: number, digest: Uint8Array, attested?: PieceAttestation): Uint8Array {
  return encodeFrame(PieceHeader.encode({
    index,
    status: PieceHeader.Status.OK,
    length,
    digest: digest as Uint8Array<ArrayBuffer>,
    attestor: attested?.attestor ?? '',
    attestation: (attested?.signature ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>
  }))
}

function decodeRequest (frame: Uint8ArrayList): PieceRequest {
  let request: PieceRequest

  try {
    request = PieceRequest.decode(frame, { limits: { indexes: MAX_INDEXES_PER_REQUEST } })
  } catch (err: any) {
    if (err?.name === 'MaxLengthError') {
      throw new InvalidMessageError(`Piece request holds more than ${MAX_INDEXES_PER_REQUEST} indexes; split it into several requests`)
    }

    throw new InvalidMessageError(`Malformed piece request (${err?.message ?? err}); the peer speaks another protocol version or is broken`)
  }

  if (request.taskId === '') {
    throw new InvalidMessageError('Piece request without a task id; every request must name its task')
  }

  if (textEncoder.encode(request.taskId).byteLength > MAX_TASK_ID_BYTES) {
    throw new InvalidMessageError(`Piece request task id is longer than ${MAX_TASK_ID_BYTES} bytes`)
  }

  return request
}
