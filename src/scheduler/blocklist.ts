import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import {
  DEFAULT_BAD_PIECES_BEFORE_BLOCK,
  DEFAULT_BAD_PIECE_WINDOW_MS,
  DEFAULT_BLOCK_TTL_MS,
  DEFAULT_MAX_BLOCKLIST_PEERS
} from './constants.ts'

export interface BlocklistInit {
  /**
   * Bad pieces within `badPieceWindowMs` that block a peer
   *
   * @default 2
   */
  badPiecesBeforeBlock?: number

  /**
   * How long a bad-piece report counts, in ms
   *
   * @default 3_600_000
   */
  badPieceWindowMs?: number

  /**
   * How long `reportBadPiece` blocks a peer, and the default for `block`, in ms
   *
   * @default 3_600_000
   */
  blockTtlMs?: number

  /**
   * Most peers remembered (blocked or reported); the entries expiring soonest
   * are dropped first when it is exceeded
   *
   * @default 10_000
   */
  maxPeers?: number
}

export interface BlockEntry {
  peerId: string
  /** When the block started (ms, the caller's clock) */
  since: number
  /** When the block ends (ms, the caller's clock) */
  until: number
  /** Why, for logs and the control API */
  reason: string
}

function assertTime (name: string, value: number): void {
  if (!Number.isFinite(value)) {
    throw new InvalidParametersError(`${name} must be a finite number of milliseconds, got ${value} - pass Date.now() or a test clock`)
  }
}

function assertPositiveInteger (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidParametersError(`${name} must be a positive integer, got ${value}`)
  }
}

/**
 * Peers we will not use as parents or serve, with an expiry. Time is passed
 * in (`now`, ms), so the list has no timers: an entry is simply ignored and
 * dropped once `now >= until`.
 *
 * `reportBadPiece` implements the ban rule: a peer that sent
 * `badPiecesBeforeBlock` pieces failing their digest within
 * `badPieceWindowMs` is blocked for `blockTtlMs`.
 */
export class Blocklist {
  readonly #badPiecesBeforeBlock: number
  readonly #badPieceWindowMs: number
  readonly #blockTtlMs: number
  readonly #maxPeers: number
  readonly #blocked = new Map<string, BlockEntry>()
  /** Report times per peer, oldest first */
  readonly #reports = new Map<string, number[]>()

  constructor (init: BlocklistInit = {}) {
    this.#badPiecesBeforeBlock = init.badPiecesBeforeBlock ?? DEFAULT_BAD_PIECES_BEFORE_BLOCK
    this.#badPieceWindowMs = init.badPieceWindowMs ?? DEFAULT_BAD_PIECE_WINDOW_MS
    this.#blockTtlMs = init.blockTtlMs ?? DEFAULT_BLOCK_TTL_MS
    this.#maxPeers = init.maxPeers ?? DEFAULT_MAX_BLOCKLIST_PEERS
    assertPositiveInteger('badPiecesBeforeBlock', this.#badPiecesBeforeBlock)
    assertPositiveInteger('badPieceWindowMs', this.#badPieceWindowMs)
    assertPositiveInteger('blockTtlMs', this.#blockTtlMs)
    assertPositiveInteger('maxPeers', this.#maxPeers)
  }

  /**
   * Block `peerId` from `now` for `ttlMs`. Blocking an already blocked peer
   * keeps whichever block ends later (a short block never shortens a long one).
   */
  block (peerId: string, now: number, ttlMs: number = this.#blockTtlMs, reason: string = 'blocked'): void {
    assertTime('now', now)
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) {
      throw new InvalidParametersError(`Block TTL must be a positive number of milliseconds, got ${ttlMs}`)
    }
    const until = now + ttlMs
    const existing = this.#blocked.get(peerId)
    if (existing != null && existing.until > now && existing.until >= until) {
      return
    }
    this.#blocked.delete(peerId)
    this.#blocked.set(peerId, { peerId, since: now, until, reason })
    this.#reports.delete(peerId)
    this.#enforceLimit(now)
  }

  /** Lift a block and forget the peer's bad-piece reports */
  unblock (peerId: string): void {
    this.#blocked.delete(peerId)
    this.#reports.delete(peerId)
  }

  /** Whether `peerId` is blocked at `now` */
  isBlocked (peerId: string, now: number): boolean {
    assertTime('now', now)
    const entry = this.#blocked.get(peerId)
    if (entry == null) {
      return false
    }
    if (entry.until <= now) {
      this.#blocked.delete(peerId)
      return false
    }
    return true
  }

  /** The blocks in force at `now`, soonest expiry first */
  list (now: number): BlockEntry[] {
    this.prune(now)
    return [...this.#blocked.values()]
      .map(entry => ({ ...entry }))
      .sort((a, b) => a.until - b.until)
  }

  /**
   * Record that `peerId` sent a piece that failed its digest. Returns `true`
   * when this report blocks the peer (the `badPiecesBeforeBlock`-th report
   * within the window); the peer is then blocked for `blockTtlMs`.
   */
  reportBadPiece (peerId: string, now: number): boolean {
    assertTime('now', now)
    if (this.isBlocked(peerId, now)) {
      return false
    }
    const since = now - this.#badPieceWindowMs
    const reports = (this.#reports.get(peerId) ?? []).filter(t => t > since)
    reports.push(now)
    if (reports.length >= this.#badPiecesBeforeBlock) {
      this.block(peerId, now, this.#blockTtlMs, `${reports.length} bad pieces within ${this.#badPieceWindowMs} ms`)
      return true
    }
    this.#reports.delete(peerId)
    this.#reports.set(peerId, reports)
    this.#enforceLimit(now)
    return false
  }

  /** Bad-piece reports counting against `peerId` at `now` */
  badPieceCount (peerId: string, now: number): number {
    assertTime('now', now)
    const since = now - this.#badPieceWindowMs
    let count = 0
    for (const t of this.#reports.get(peerId) ?? []) {
      if (t > since) {
        count++
      }
    }
    return count
  }

  /** Drop expired blocks and reports older than the window */
  prune (now: number): void {
    assertTime('now', now)
    for (const [peerId, entry] of this.#blocked) {
      if (entry.until <= now) {
        this.#blocked.delete(peerId)
      }
    }
    const since = now - this.#badPieceWindowMs
    for (const [peerId, reports] of this.#reports) {
      const kept = reports.filter(t => t > since)
      if (kept.length === 0) {
        this.#reports.delete(peerId)
      } else if (kept.length !== reports.length) {
        this.#reports.set(peerId, kept)
      }
    }
  }

  /** Peers remembered (blocked or reported), expired or not; for metrics and tests */
  get size (): number {
    return this.#blocked.size + this.#reports.size
  }

  #enforceLimit (now: number): void {
    if (this.size <= this.#maxPeers) {
      return
    }
    this.prune(now)
    // reports are the cheapest to forget: the oldest report expires first
    // (maps iterate in insertion order and reports are re-inserted on update)
    for (const peerId of this.#reports.keys()) {
      if (this.size <= this.#maxPeers) {
        return
      }
      this.#reports.delete(peerId)
    }
    const soonest = [...this.#blocked.values()].sort((a, b) => a.until - b.until)
    for (const entry of soonest) {
      if (this.size <= this.#maxPeers) {
        return
      }
      this.#blocked.delete(entry.peerId)
    }
  }
}
