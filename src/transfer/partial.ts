/**
 * Cut-through forwarding: pieces this node is receiving from a peer right
 * now, which uploads may start sending on before the last byte is in.
 *
 * In a pipeline every hop used to store a whole piece before passing it on,
 * so each hop added a piece's transfer time (512 KiB at 25 Mbit/s: ~170 ms)
 * and the 15th peer of 16 started ~4 s after the first. Now a piece's bytes
 * go on as they arrive, and only its last chunk waits until this node has
 * verified the whole piece. A receiver therefore never completes a piece its
 * sender had not verified, so a bad piece is still blamed on the peer that
 * sent it whole; when verification here fails (or the piece stops arriving)
 * the uploads of it abort their streams instead, and their receivers ask
 * again elsewhere.
 *
 * A reader copies bytes out of the receive buffer while they arrive, so the
 * buffer goes back to its pool when the piece is stored, however slowly the
 * reader sends.
 */
import { allocUnsafe } from 'uint8arrays/alloc'
import { PieceWaiters } from '../storage/piece-waiters.ts'
import type { PieceAttestation } from './attestation.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Pending waits for a piece to start arriving, node-wide (as many as requests may be held) */
const MAX_WAITERS = 4096

/** What a partial piece's header says: the digest the receiver will check and the attestation it relays */
export interface PartialProof {
  digest: Uint8Array
  attestation?: PieceAttestation
}

type State = 'filling' | 'verified' | 'failed'

/** One upload's view of a partial piece: its own copy of the bytes */
class Reader {
  /** the piece, copied in as it arrives: handed out in subarrays, so each send is one contiguous buffer */
  readonly bytes: Uint8Array
  /** bytes copied in so far (from the start of the piece) */
  copied = 0
  /** bytes handed out so far */
  taken = 0
  wake?: () => void

  constructor (length: number) {
    this.bytes = allocUnsafe(length)
  }

  notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}

/**
 * A piece being received. The receiver calls `progress` as bytes land in its
 * buffer, then exactly one of `verified` or `fail`; uploads read it with
 * `chunks`.
 */
export class PartialPiece {
  readonly taskId: string
  readonly index: number
  readonly length: number
  readonly proof: PartialProof
  #buffer?: Uint8Array
  #filled = 0
  /** bytes that may go out before the piece is verified: all but the chunk that completed it */
  #safe = 0
  #state: State = 'filling'
  #error?: Error
  readonly #readers = new Set<Reader>()
  readonly #onEnd: () => void

  constructor (taskId: string, index: number, buffer: Uint8Array, length: number, proof: PartialProof, onEnd: () => void) {
    this.taskId = taskId
    this.index = index
    this.#buffer = buffer
    this.length = length
    this.proof = proof
    this.#onEnd = onEnd
  }

  get state (): State {
    return this.#state
  }

  /** The first `filled` bytes of the buffer are in */
  progress (filled: number): void {
    if (this.#state !== 'filling' || filled <= this.#filled || filled > this.length) {
      return
    }
    if (filled < this.length) {
      this.#safe = filled
    }
    this.#filled = filled
    for (const reader of this.#readers) {
      this.#copyTo(reader)
      reader.notify()
    }
  }

  /** Every byte is in (progress reached the length) and matched its digest: readers may send the rest */
  verified (): void {
    if (this.#state !== 'filling') {
      return
    }
    if (this.#filled !== this.length) {
      this.fail(new Error(`Piece ${this.index} of task ${this.taskId} was declared verified with ${this.#filled} of ${this.length} bytes`))
      return
    }
    this.#end('verified')
  }

  /** The piece will not complete here (bad digest, broken stream): readers fail with `err` */
  fail (err: Error): void {
    if (this.#state !== 'filling') {
      return
    }
    this.#error = err
    this.#end('failed')
  }

  /**
   * The piece's bytes in order, as they may be sent: each chunk at least
   * `minBytes` long unless it is the last; the last one only once the piece
   * is verified. Throws the receiver's error if the piece fails, and an
   * abort of `signal`. Undefined when the piece already ended: ask the store.
   */
  chunks (options: AbortOptions & { minBytes: number }): AsyncGenerator<Uint8Array> | undefined {
    if (this.#state !== 'filling') {
      return undefined
    }
    const reader = new Reader(this.length)
    this.#copyTo(reader)
    this.#readers.add(reader)
    return this.#read(reader, options)
  }

  async * #read (reader: Reader, options: AbortOptions & { minBytes: number }): AsyncGenerator<Uint8Array> {
    const signal = options.signal
    const onAbort = (): void => { reader.notify() }
    signal?.addEventListener('abort', onAbort)
    try {
      while (reader.taken < this.length) {
        signal?.throwIfAborted()
        if (this.#state === 'failed') {
          throw this.#error ?? new Error(`Piece ${this.index} of task ${this.taskId} failed`)
        }
        const sendable = (this.#state === 'verified' ? this.length : this.#safe) - reader.taken
        if (sendable > 0 && (sendable >= options.minBytes || reader.taken + sendable === this.length)) {
          const out = reader.bytes.subarray(reader.taken, reader.taken + sendable)
          reader.taken += sendable
          yield out
          continue
        }
        await new Promise<void>(resolve => { reader.wake = resolve })
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.#readers.delete(reader)
    }
  }

  /** copy what arrived since the reader's last copy (the receive buffer is only ours while filling) */
  #copyTo (reader: Reader): void {
    if (this.#buffer != null && reader.copied < this.#filled) {
      reader.bytes.set(this.#buffer.subarray(reader.copied, this.#filled), reader.copied)
      reader.copied = this.#filled
    }
  }

  #end (state: State): void {
    this.#state = state
    this.#buffer = undefined
    for (const reader of this.#readers) {
      reader.notify()
    }
    this.#onEnd()
  }
}

/** The node's partial pieces, by task and index (at most one per piece) */
export class PartialPieces {
  readonly #pieces = new Map<string, PartialPiece>()
  readonly #waiters = new PieceWaiters(MAX_WAITERS)

  get size (): number {
    return this.#pieces.size
  }

  /**
   * Piece `index` of `taskId` starts arriving into `buffer` (the receiver's,
   * read only until the piece ends). Undefined when it is already arriving
   * on another stream (that one is what uploads read), or empty.
   */
  begin (taskId: string, index: number, buffer: Uint8Array, length: number, proof: PartialProof): PartialPiece | undefined {
    const key = keyOf(taskId, index)
    if (length === 0 || this.#pieces.has(key)) {
      return undefined
    }
    const piece = new PartialPiece(taskId, index, buffer, length, proof, () => {
      if (this.#pieces.get(key) === piece) {
        this.#pieces.delete(key)
      }
    })
    this.#pieces.set(key, piece)
    this.#waiters.notify(taskId, index)
    return piece
  }

  /** The piece, while it is arriving */
  get (taskId: string, index: number): PartialPiece | undefined {
    return this.#pieces.get(keyOf(taskId, index))
  }

  /** Resolves true once the piece starts arriving, false on timeout or abort */
  async waitFor (taskId: string, index: number, options: AbortOptions & { timeoutMs: number }): Promise<boolean> {
    if (this.get(taskId, index) != null) {
      return true
    }
    return this.#waiters.wait(taskId, index, options)
  }
}

function keyOf (taskId: string, index: number): string {
  return `${index}\n${taskId}`
}
