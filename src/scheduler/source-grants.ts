import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import { DEFAULT_GRANT_TTL_MS, DEFAULT_MAX_SOURCE_PEERS, DEFAULT_SOURCE_STRIPE_PIECES } from './constants.ts'
import type { Bitfield } from '../utils/bitfield.ts'

export interface GrantRequest {
  /** The peer asking which pieces it should fetch from the origin */
  requester: string
  /** Pieces in the task; must be the same on every call */
  pieceCount: number
  /** Union of the bitfields of all peers in the swarm: pieces someone can serve */
  held: Bitfield
  /** Peers the tracker currently hears from; must include `requester` */
  livePeers: ReadonlySet<string>
  /** The tracker's clock, in ms */
  now: number
}

export interface SourceGrantsInit {
  /**
   * Peers that may hold a source slot at once
   *
   * @default 4
   */
  maxSourcePeers?: number

  /**
   * Pieces per stripe, the unit handed out and read from the origin as one range
   *
   * @default 16
   */
  stripePieces?: number

  /**
   * A grantee that finishes no piece for this long loses its grants, in ms
   *
   * @default 300_000
   */
  grantTtlMs?: number
}

function assertPositiveInteger (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidParametersError(`${name} must be a positive integer, got ${value}`)
  }
}

/**
 * Tracker-side bookkeeping of who fetches which pieces from the origin, so
 * that each piece leaves the origin about once while several peers fill the
 * swarm at the same time (DESIGN.md "Moving a task", step 4).
 *
 * Every piece that no peer holds is granted to exactly one live peer:
 *
 * - The first `maxSourcePeers` requesters get a source slot `k`. The pieces
 * are cut into stripes of `stripePieces` contiguous pieces (fewer for small
 * tasks, so that every slot gets a stripe; with one slot the whole task is
 * one stripe, see {@link stripeWidth}), and stripe `j` belongs to slot
 * `j mod maxSourcePeers`. So each source peer reads large contiguous ranges
 * from the origin, and the origin sees at most `maxSourcePeers` readers.
 * - Nothing waits for an empty slot: whatever no live peer is fetching goes to
 * the peer asking now, so the first requester starts with the whole task.
 * When a peer takes a slot it reclaims its stripes from the peers holding them,
 * except stripes already started (a piece of them is held) and each holder's
 * current stripe (its lowest granted piece), which it is probably reading.
 * - A slot holder whose grants are all done takes the highest untouched stripe
 * from the peer with the most pieces left (never that peer's current stripe).
 * - A requester beyond the cap gets only pieces no live peer is fetching
 * (pieces that vanished from the swarm when their last holder left); usually [].
 * - A grant ends when its piece shows up in `held` or is `complete`d, when its
 * holder leaves `livePeers` or is `release`d, or when the holder finishes no
 * piece for `grantTtlMs`: then all its grants return to the pool and its slot
 * is freed. The TTL counts from the last progress, not from the grant, since
 * a slot holder may have thousands of pieces queued.
 * - A slot whose holder has no grants left is free for the next requester.
 *
 * Grantees should fetch their pieces in ascending order and call `grant()`
 * again after each stripe: the answer is their complete current grant, and
 * pieces missing from it were moved to another peer.
 *
 * Pure: time is passed in, and there are no timers.
 */
export class SourceGrants {
  readonly maxSourcePeers: number
  readonly stripePieces: number
  readonly grantTtlMs: number
  readonly #slots: Array<string | undefined>
  readonly #holder = new Map<number, string>()
  readonly #byPeer = new Map<string, Set<number>>()
  /** By when each grantee must show progress, ms */
  readonly #deadline = new Map<string, number>()
  /** Grantees that completed a piece since the last `grant()` */
  readonly #progressed = new Set<string>()
  #pieceCount?: number
  #stripe = 1

  constructor (init: SourceGrantsInit = {}) {
    this.maxSourcePeers = init.maxSourcePeers ?? DEFAULT_MAX_SOURCE_PEERS
    this.stripePieces = init.stripePieces ?? DEFAULT_SOURCE_STRIPE_PIECES
    this.grantTtlMs = init.grantTtlMs ?? DEFAULT_GRANT_TTL_MS
    assertPositiveInteger('maxSourcePeers', this.maxSourcePeers)
    assertPositiveInteger('stripePieces', this.stripePieces)
    assertPositiveInteger('grantTtlMs', this.grantTtlMs)
    this.#slots = new Array(this.maxSourcePeers).fill(undefined)
  }

  /**
   * The pieces `requester` should fetch from the origin, ascending: its whole
   * current grant, including pieces granted earlier and not yet done.
   *
   * @throws {InvalidParametersError} when `held` does not match `pieceCount`, `pieceCount` changed, or `requester` is not live
   */
  grant (request: GrantRequest): number[] {
    const { requester, pieceCount, held, livePeers, now } = request
    this.#validate(request)
    this.#cleanup(held, livePeers, now)

    let slot = this.#slots.indexOf(requester)
    if (slot === -1) {
      slot = this.#freeSlot()
      if (slot !== -1) {
        this.#slots[slot] = requester
        this.#reclaimHomeStripes(requester, slot, held, now)
      }
    }

    const uncovered: number[] = []
    for (let i = 0; i < pieceCount; i++) {
      if (!held.get(i) && !this.#holder.has(i)) {
        uncovered.push(i)
      }
    }
    this.#assign(requester, uncovered, now)

    if (slot !== -1 && (this.#byPeer.get(requester)?.size ?? 0) === 0) {
      this.#steal(requester, held, now)
    }

    return this.grantsOf(requester)
  }

  /**
   * `peer` finished piece `index` (fetched and verified). The grant ends and
   * the grantee's TTL restarts at the next `grant()`. Merge the piece into
   * the `held` union passed to `grant()`, or it will be granted again.
   *
   * Returns whether a grant ended.
   */
  complete (peer: string, index: number): boolean {
    const holder = this.#holder.get(index)
    if (holder == null) {
      return false
    }
    this.#unassign(index)
    if (holder === peer) {
      this.#progressed.add(peer)
    }
    return true
  }

  /** `peer` gave up on the origin or left: its grants return to the pool and its slot is freed */
  release (peer: string): void {
    for (const index of this.#byPeer.get(peer) ?? []) {
      this.#holder.delete(index)
    }
    this.#byPeer.delete(peer)
    this.#deadline.delete(peer)
    this.#progressed.delete(peer)
    const slot = this.#slots.indexOf(peer)
    if (slot !== -1) {
      this.#slots[slot] = undefined
    }
  }

  /** Pieces granted to `peer`, ascending */
  grantsOf (peer: string): number[] {
    return Array.from(new Int32Array([...this.#byPeer.get(peer) ?? []]).sort())
  }

  /** The peer piece `index` is granted to, if any */
  grantedTo (index: number): string | undefined {
    return this.#holder.get(index)
  }

  /** Peers holding a source slot, in slot order */
  sourcePeers (): string[] {
    return this.#slots.filter(peer => peer != null)
  }

  #validate ({ requester, pieceCount, held, livePeers, now }: GrantRequest): void {
    if (!Number.isSafeInteger(pieceCount) || pieceCount < 0) {
      throw new InvalidParametersError(`pieceCount must be a non-negative integer, got ${pieceCount}`)
    }
    if (this.#pieceCount != null && this.#pieceCount !== pieceCount) {
      throw new InvalidParametersError(`Task has ${this.#pieceCount} pieces but the request says ${pieceCount} - use one SourceGrants per task`)
    }
    if (held.length !== pieceCount) {
      throw new InvalidParametersError(`Held bitfield has ${held.length} pieces but the task has ${pieceCount}`)
    }
    if (!livePeers.has(requester)) {
      throw new InvalidParametersError(`Requester ${requester} is not in livePeers - register the peer before granting it pieces`)
    }
    if (!Number.isFinite(now)) {
      throw new InvalidParametersError(`now must be a finite number of milliseconds, got ${now}`)
    }
    if (this.#pieceCount == null) {
      this.#pieceCount = pieceCount
      this.#stripe = stripeWidth(pieceCount, this.stripePieces, this.maxSourcePeers)
    }
  }

  /**
   * Pieces per stripe, as grants are cut and moved (aligned to multiples of
   * it); known once the first grant fixed the piece count, 0 before
   */
  get stripe (): number {
    return this.#pieceCount == null ? 0 : this.#stripe
  }

  /** End grants that are done, whose holder left, or whose holder stalled */
  #cleanup (held: Bitfield, livePeers: ReadonlySet<string>, now: number): void {
    for (const [index, peer] of this.#holder) {
      if (held.get(index)) {
        this.#unassign(index)
        this.#progressed.add(peer)
      }
    }
    for (const peer of this.#progressed) {
      if (this.#byPeer.has(peer)) {
        this.#deadline.set(peer, now + this.grantTtlMs)
      }
    }
    this.#progressed.clear()

    for (const peer of [...this.#byPeer.keys()]) {
      if (!livePeers.has(peer) || (this.#deadline.get(peer) ?? Number.POSITIVE_INFINITY) <= now) {
        this.release(peer)
      }
    }
    for (let slot = 0; slot < this.#slots.length; slot++) {
      const peer = this.#slots[slot]
      if (peer != null && !livePeers.has(peer)) {
        this.release(peer)
      }
    }
  }

  /** An empty slot, else one whose holder has nothing left to fetch; -1 if none */
  #freeSlot (): number {
    const empty = this.#slots.indexOf(undefined)
    if (empty !== -1) {
      return empty
    }
    return this.#slots.findIndex(peer => peer != null && (this.#byPeer.get(peer)?.size ?? 0) === 0)
  }

  #stripeOf (index: number): number {
    return Math.floor(index / this.#stripe)
  }

  #stripeRange (stripe: number): [start: number, end: number] {
    const start = stripe * this.#stripe
    return [start, Math.min(start + this.#stripe, this.#pieceCount ?? 0)]
  }

  /** The stripe a grantee is probably reading: the one of its lowest granted piece */
  #currentStripe (peer: string): number | undefined {
    let lowest: number | undefined
    for (const index of this.#byPeer.get(peer) ?? []) {
      if (lowest == null || index < lowest) {
        lowest = index
      }
    }
    return lowest == null ? undefined : this.#stripeOf(lowest)
  }

  /**
   * The granted pieces of a stripe that may move: none of its pieces is held
   * and it is not the current stripe of any peer holding part of it, so nobody
   * has started reading it.
   */
  #movablePieces (stripe: number, held: Bitfield, current: ReadonlyMap<string, number | undefined>): number[] | undefined {
    const [start, end] = this.#stripeRange(stripe)
    const pieces: number[] = []
    for (let i = start; i < end; i++) {
      if (held.get(i)) {
        return undefined
      }
      const holder = this.#holder.get(i)
      if (holder == null) {
        continue
      }
      if (current.get(holder) === stripe) {
        return undefined
      }
      pieces.push(i)
    }
    return pieces
  }

  /** A new slot holder takes back the untouched stripes of its slot */
  #reclaimHomeStripes (peer: string, slot: number, held: Bitfield, now: number): void {
    const current = new Map<string, number | undefined>()
    for (const holder of this.#byPeer.keys()) {
      if (holder !== peer) {
        current.set(holder, this.#currentStripe(holder))
      }
    }
    const stripes = Math.ceil((this.#pieceCount ?? 0) / this.#stripe)
    const moved: number[] = []
    for (let stripe = slot; stripe < stripes; stripe += this.maxSourcePeers) {
      for (const index of this.#movablePieces(stripe, held, current) ?? []) {
        if (this.#holder.get(index) !== peer) {
          moved.push(index)
        }
      }
    }
    for (const index of moved) {
      this.#unassign(index)
    }
    this.#assign(peer, moved, now)
  }

  /** An idle slot holder takes the highest untouched stripe of the busiest grantee */
  #steal (peer: string, held: Bitfield, now: number): void {
    const victims = [...this.#byPeer.entries()]
      .filter(([other]) => other !== peer)
      .sort(([a, x], [b, y]) => y.size - x.size || (a < b ? -1 : 1))

    for (const [victim, pieces] of victims) {
      const current = new Map([[victim, this.#currentStripe(victim)]])
      const stripes = [...new Set([...pieces].map(i => this.#stripeOf(i)))].sort((a, b) => b - a)
      for (const stripe of stripes) {
        const movable = this.#movablePieces(stripe, held, current)
        if (movable == null || movable.length === 0 || movable.some(i => this.#holder.get(i) !== victim)) {
          continue
        }
        for (const index of movable) {
          this.#unassign(index)
        }
        this.#assign(peer, movable, now)
        return
      }
    }
  }

  #assign (peer: string, pieces: number[], now: number): void {
    if (pieces.length === 0) {
      return
    }
    let mine = this.#byPeer.get(peer)
    if (mine == null) {
      mine = new Set()
      this.#byPeer.set(peer, mine)
    }
    if (mine.size === 0) {
      // new work after none: the TTL starts now
      this.#deadline.set(peer, now + this.grantTtlMs)
    }
    for (const index of pieces) {
      mine.add(index)
      this.#holder.set(index, peer)
    }
  }

  #unassign (index: number): void {
    const peer = this.#holder.get(index)
    if (peer == null) {
      return
    }
    this.#holder.delete(index)
    const mine = this.#byPeer.get(peer)
    mine?.delete(index)
    if (mine?.size === 0) {
      this.#byPeer.delete(peer)
      this.#deadline.delete(peer)
    }
  }
}

/**
 * Pieces per source stripe of a task: `stripePieces`, fewer for small tasks
 * so that each of `maxSourcePeers` slots gets a stripe. Grantees use it too,
 * to read a started stripe to its end on one grant.
 *
 * With one slot no stripe ever moves between source peers, so the whole task
 * is one stripe, read as one origin range: between stripes the grantee waits
 * for the tracker's go-ahead, and on saturated links that left the origin
 * idle for 0.2-1 s at each of the 7 stripe ends of a 64 MiB file
 * (bench/fanout, 16 nodes at 25 Mbit/s).
 */
export function stripeWidth (pieceCount: number, stripePieces = DEFAULT_SOURCE_STRIPE_PIECES, maxSourcePeers = DEFAULT_MAX_SOURCE_PEERS): number {
  if (maxSourcePeers === 1) {
    return Math.max(1, pieceCount)
  }
  return Math.max(1, Math.min(stripePieces, Math.ceil(pieceCount / maxSourcePeers)))
}
