import { Uint8ArrayList } from 'uint8arraylist'
import { UnexpectedEndOfStreamError } from './errors.ts'
import { readVarintPrefix } from './framing.ts'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

export interface StreamReaderInit {
  /** pause the stream when this many unread bytes are queued */
  highWaterBytes: number
  /** resume the paused stream once the queue is below this */
  lowWaterBytes: number
  /**
   * Called around every wait for network data: `true` when the reader starts
   * waiting on the peer, `false` when data (or the end) arrived. The client
   * runs its per-piece timer only while waiting, so local slowness (disk,
   * rate limits) is never blamed on the peer.
   */
  onWaiting?(waiting: boolean): void
}

/**
 * Reads a v3 message stream through 'message' events into its own bounded
 * queue (notes §5.3): above the high-water mark it calls stream.pause() so the
 * muxer stops granting window to the sender, and below the low-water mark it
 * resumes. No lpStream/byteStream: those abort at 4 MiB unread (P8), and we
 * need to check a length prefix before buffering the frame behind it.
 */
export class StreamReader {
  /** unread bytes, in arrival order (chunks are kept, not copied) */
  readonly buffer: Uint8ArrayList
  private readonly stream: Stream
  private readonly init: StreamReaderInit
  private ended: boolean
  private error?: Error
  private wake?: () => void

  constructor (stream: Stream, init: StreamReaderInit) {
    this.stream = stream
    this.init = init
    this.buffer = new Uint8ArrayList()
    this.ended = false
    this.onMessage = this.onMessage.bind(this)
    this.onEnd = this.onEnd.bind(this)
    this.onClose = this.onClose.bind(this)
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('end', this.onEnd)
    stream.addEventListener('close', this.onClose)

    if (stream.status !== 'open' || stream.readableEnded) {
      this.ended = true
    }
  }

  /** Stop listening; unread data is dropped */
  dispose (): void {
    this.stream.removeEventListener('message', this.onMessage)
    this.stream.removeEventListener('end', this.onEnd)
    this.stream.removeEventListener('close', this.onClose)
    this.buffer.consume(this.buffer.byteLength)
    this.wakeUp()
  }

  /** true once the remote ended its write side and every byte was read */
  get done (): boolean {
    return this.ended && this.buffer.byteLength === 0
  }

  /** The error that closed the stream, if any */
  get failure (): Error | undefined {
    return this.error
  }

  /**
   * Wait until more data arrives, the stream ends or fails. Throws the
   * stream's error if it failed.
   */
  async waitForData (): Promise<void> {
    if (this.error != null) {
      throw this.error
    }

    if (this.ended) {
      return
    }

    const { promise, resolve } = Promise.withResolvers<void>()
    this.wake = resolve
    this.init.onWaiting?.(true)

    try {
      await promise
    } finally {
      this.init.onWaiting?.(false)
    }

    const failure = this.failure

    if (failure != null) {
      throw failure
    }
  }

  /** Drop `bytes` read bytes and resume the stream if the queue got low */
  consume (bytes: number): void {
    this.buffer.consume(bytes)

    if (this.buffer.byteLength < this.init.lowWaterBytes && this.stream.readStatus === 'paused') {
      this.stream.resume()
    }
  }

  /**
   * Read one varint-length-prefixed frame of at most `max` bytes. Returns
   * undefined when the stream ended cleanly at a frame boundary. Throws
   * FrameTooLargeError as soon as the prefix announces more than `max`
   * (before waiting for, or buffering, the frame itself), or
   * UnexpectedEndOfStreamError if the stream ends inside a frame.
   */
  async readFrame (max: number, what: string): Promise<Uint8ArrayList | undefined> {
    while (true) {
      const prefix = readVarintPrefix(this.buffer, max, what)

      if (prefix != null && this.buffer.byteLength >= prefix.bytes + prefix.value) {
        const frame = this.buffer.sublist(prefix.bytes, prefix.bytes + prefix.value)
        this.consume(prefix.bytes + prefix.value)
        return frame
      }

      if (this.ended) {
        if (this.error != null) {
          throw this.error
        }

        if (this.buffer.byteLength === 0) {
          return undefined
        }

        throw new UnexpectedEndOfStreamError(`The stream ended in the middle of a ${what} (${this.buffer.byteLength} bytes of it received); the peer closed or crashed mid-answer`)
      }

      await this.waitForData()
    }
  }

  /**
   * Deliver exactly `length` bytes to `onChunk`, chunk by chunk as they
   * arrive (no copy into an intermediate buffer). `onChunk` may be async
   * (rate limits); while it runs, new data queues up and pauses the stream
   * when high. The chunk is only valid during the call.
   */
  async readBytes (length: number, onChunk: (chunk: Uint8Array) => void | Promise<void>): Promise<void> {
    let remaining = length

    while (remaining > 0) {
      if (this.buffer.byteLength === 0) {
        if (this.ended) {
          throw this.error ?? new UnexpectedEndOfStreamError(`The stream ended with ${remaining} of ${length} piece bytes still missing; the peer closed or crashed mid-piece`)
        }

        await this.waitForData()
        continue
      }

      let chunk: Uint8Array = this.buffer[Symbol.iterator]().next().value ?? new Uint8Array(0)

      if (chunk.byteLength > remaining) {
        chunk = chunk.subarray(0, remaining)
      }

      await onChunk(chunk)
      remaining -= chunk.byteLength
      this.consume(chunk.byteLength)
    }
  }

  private onMessage (evt: StreamMessageEvent): void {
    this.buffer.append(evt.data)

    if (this.buffer.byteLength > this.init.highWaterBytes && this.stream.readStatus === 'readable') {
      this.stream.pause()
    }

    this.wakeUp()
  }

  private onEnd (): void {
    this.ended = true
    this.wakeUp()
  }

  private onClose (evt: StreamCloseEvent): void {
    this.ended = true

    if (evt.error != null && this.error == null) {
      this.error = evt.error
    }

    this.wakeUp()
  }

  private wakeUp (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}
