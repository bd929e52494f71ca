import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import { DEFAULT_ENDGAME_MAX_REQUESTS_PER_PIECE, DEFAULT_ENDGAME_THRESHOLD } from './constants.ts'
import type { Bitfield } from '../utils/bitfield.ts'

/** Request piece `index` from parent `peerId` */
export interface PieceAssignment {
  index: number
  peerId: string
}

export interface PickInput {
  /** Pieces in the task */
  pieceCount: number
  /** Pieces we have verified and stored */
  have: Bitfield
  /** Pieces requested and not yet answered, with the parents they were requested from */
  inflight: ReadonlyMap<number, ReadonlySet<string>>
  /** Each usable parent's bitfield (blocked and bad parents already removed) */
  parents: ReadonlyMap<string, Bitfield>
  /** Free request slots per parent; a parent missing here has none */
  capacity: ReadonlyMap<string, number>
  /** Uniform in [0, 1), e.g. `Math.random`; a seeded one makes picks reproducible */
  rng(): number
  /**
   * Missing pieces at or below which end-game starts
   *
   * @default 4
   */
  endgameThreshold?: number
  /**
   * Pick in index order starting here (then wrap around to 0) instead of
   * rarest-first, so a streaming reader gets the bytes it needs next
   */
  sequentialFrom?: number
  /**
   * With `sequentialFrom`: only this many pieces from there go in index
   * order; the rest follow rarest-first, so a streaming reader gets its next
   * pieces first without making every peer fetch the same pieces at once
   *
   * @default Infinity
   */
  sequentialWindow?: number
}

export interface PiecePickerInit {
  /**
   * Default missing-piece count at or below which end-game starts
   *
   * @default 4
   */
  endgameThreshold?: number

  /**
   * In end-game, most parents a piece is requested from at once (counting the
   * requests already in flight)
   *
   * @default 2
   */
  endgameMaxRequestsPerPiece?: number
}

function assertCount (name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidParametersError(`${name} must be an integer >= ${min}, got ${value}`)
  }
}

/**
 * Decides which missing pieces to request next, and from which parent.
 *
 * - Rarest first: pieces held by the fewest parents go first, ties in random
 * order (from `rng`), so peers downloading together spread over different
 * pieces and rare pieces do not vanish with the parent that holds them.
 * - Sequential (`sequentialFrom`): pieces in index order from that piece, for
 * streaming through the proxy.
 * - Each piece goes to one parent that has it: the holder with the most free
 * request slots (ties by peer id), and no parent gets more requests than its
 * free slots.
 * - A piece we have, or one already in flight, is not requested again, except
 * in end-game: when at most `endgameThreshold` pieces are missing, or every
 * missing piece is already in flight. (Not when only the pieces some parent
 * holds are: while others are still on their way from the origin, more
 * arrive at the parents and a second request for an in-flight piece spends
 * a parent's upload on a copy that is already coming.) Then a piece may
 * also be requested from other holders, up to `endgameMaxRequestsPerPiece`
 * requests at once and never twice from the same parent; pieces with the
 * fewest requests go first. The caller cancels the other requests when the
 * first copy verifies.
 *
 * Pure: no state between calls; everything comes in through {@link PickInput}.
 */
export class PiecePicker {
  readonly #endgameThreshold: number
  readonly #endgameMaxRequestsPerPiece: number

  constructor (init: PiecePickerInit = {}) {
    this.#endgameThreshold = init.endgameThreshold ?? DEFAULT_ENDGAME_THRESHOLD
    this.#endgameMaxRequestsPerPiece = init.endgameMaxRequestsPerPiece ?? DEFAULT_ENDGAME_MAX_REQUESTS_PER_PIECE
    assertCount('endgameThreshold', this.#endgameThreshold, 0)
    assertCount('endgameMaxRequestsPerPiece', this.#endgameMaxRequestsPerPiece, 1)
  }

  pick (input: PickInput): PieceAssignment[] {
    const { pieceCount, have, inflight, parents, capacity, rng, sequentialFrom, sequentialWindow } = input
    const endgameThreshold = input.endgameThreshold ?? this.#endgameThreshold
    validate(input, endgameThreshold)

    const slots = freeSlots(parents, capacity)
    const missing = have.missingIndexes()
    if (slots.size === 0 || missing.length === 0) {
      return []
    }

    const availability = countHolders(missing, parents)
    const requested = (index: number): number => inflight.get(index)?.size ?? 0
    const obtainable = [...availability.keys()]
    const endgame = missing.length <= endgameThreshold || missing.every(index => requested(index) > 0)
    const maxRequests = endgame ? this.#endgameMaxRequestsPerPiece : 1
    const candidates = obtainable.filter(index => requested(index) < maxRequests)

    const order = sequentialFrom != null
      ? windowedOrder(candidates, sequentialFrom, sequentialWindow ?? Infinity, pieceCount, availability, rng)
      : rarestOrder(candidates, availability, rng)
    if (endgame) {
      // pieces with no request yet first; sort is stable, so the order above holds within each group
      order.sort((a, b) => requested(a) - requested(b))
    }

    return assign(order, { parents, inflight, slots, maxRequests, endgame })
  }
}

function validate (input: PickInput, endgameThreshold: number): void {
  const { pieceCount, have, parents, sequentialFrom } = input
  assertCount('pieceCount', pieceCount, 0)
  assertCount('endgameThreshold', endgameThreshold, 0)
  if (have.length !== pieceCount) {
    throw new InvalidParametersError(`Our bitfield has ${have.length} pieces but the task has ${pieceCount} - build it from the task metadata`)
  }
  for (const [peerId, bitfield] of parents) {
    if (bitfield.length !== pieceCount) {
      throw new InvalidParametersError(`Parent ${peerId} bitfield has ${bitfield.length} pieces but the task has ${pieceCount} - validate bitfields on receipt`)
    }
  }
  if (input.sequentialWindow != null && !(input.sequentialWindow === Infinity || (Number.isSafeInteger(input.sequentialWindow) && input.sequentialWindow >= 1))) {
    throw new InvalidParametersError(`sequentialWindow must be an integer >= 1 or Infinity, got ${input.sequentialWindow}`)
  }
  if (sequentialFrom != null && (!Number.isSafeInteger(sequentialFrom) || sequentialFrom < 0 || sequentialFrom >= pieceCount)) {
    throw new InvalidParametersError(`sequentialFrom must be a piece index in 0..${pieceCount - 1}, got ${sequentialFrom}`)
  }
}

/** Free request slots of the parents that have any */
function freeSlots (parents: ReadonlyMap<string, Bitfield>, capacity: ReadonlyMap<string, number>): Map<string, number> {
  const slots = new Map<string, number>()
  for (const peerId of parents.keys()) {
    const free = Math.floor(capacity.get(peerId) ?? 0)
    if (free > 0) {
      slots.set(peerId, free)
    }
  }
  return slots
}

/** How many parents hold each missing piece; pieces no parent holds are left out */
function countHolders (missing: number[], parents: ReadonlyMap<string, Bitfield>): Map<number, number> {
  const availability = new Map<number, number>()
  for (const index of missing) {
    let holders = 0
    for (const bitfield of parents.values()) {
      if (bitfield.get(index)) {
        holders++
      }
    }
    if (holders > 0) {
      availability.set(index, holders)
    }
  }
  return availability
}

interface AssignState {
  parents: ReadonlyMap<string, Bitfield>
  inflight: ReadonlyMap<number, ReadonlySet<string>>
  /** Free slots per parent; decremented as pieces are assigned */
  slots: Map<string, number>
  maxRequests: number
  endgame: boolean
}

/** The holder of `index` with the most free slots (ties by peer id) that was not asked for it yet */
function bestHolder (index: number, state: AssignState, asked: ReadonlySet<string> | undefined): string | undefined {
  let best: string | undefined
  let bestSlots = 0
  for (const [peerId, free] of state.slots) {
    if (free <= 0 || asked?.has(peerId) === true || state.parents.get(peerId)?.get(index) !== true) {
      continue
    }
    if (free > bestSlots || (free === bestSlots && best != null && peerId < best)) {
      best = peerId
      bestSlots = free
    }
  }
  return best
}

/**
 * Walk `order` giving each piece to one more parent per pass. Outside
 * end-game there is one pass; in end-game passes repeat while slots and
 * duplicates remain, so duplicates spread over the tail pieces instead of
 * piling on the first.
 */
function assign (order: number[], state: AssignState): PieceAssignment[] {
  const assignments: PieceAssignment[] = []
  const asked = new Map<number, Set<string>>()
  for (const index of order) {
    asked.set(index, new Set(state.inflight.get(index)))
  }
  let remaining = 0
  for (const free of state.slots.values()) {
    remaining += free
  }

  let progress = true
  while (progress && remaining > 0) {
    progress = false
    for (const index of order) {
      const peers = asked.get(index) ?? new Set<string>()
      if (remaining === 0) {
        break
      }
      if (peers.size >= state.maxRequests) {
        continue
      }
      const peerId = bestHolder(index, state, peers)
      if (peerId == null) {
        continue
      }
      state.slots.set(peerId, (state.slots.get(peerId) ?? 0) - 1)
      remaining--
      peers.add(peerId)
      assignments.push({ index, peerId })
      progress = true
    }
    if (!state.endgame) {
      break
    }
  }
  return assignments
}

/** The pieces within `window` positions of `from` in index order, then the others rarest-first */
function windowedOrder (indexes: number[], from: number, window: number, pieceCount: number, availability: ReadonlyMap<number, number>, rng: () => number): number[] {
  if (window >= pieceCount) {
    return sequentialOrder(indexes, from, pieceCount)
  }
  const position = (index: number): number => (index - from + pieceCount) % pieceCount
  const front = indexes.filter(i => position(i) < window)
  const rest = indexes.filter(i => position(i) >= window)
  return [...sequentialOrder(front, from, pieceCount), ...rarestOrder(rest, availability, rng)]
}

/** Index order starting at `from`, wrapping around */
function sequentialOrder (indexes: number[], from: number, pieceCount: number): number[] {
  const position = (index: number): number => (index - from + pieceCount) % pieceCount
  return [...indexes].sort((a, b) => position(a) - position(b))
}

/** Fewest holders first; equal availability in random order */
function rarestOrder (indexes: number[], availability: ReadonlyMap<number, number>, rng: () => number): number[] {
  const order = [...indexes]
  // Fisher-Yates shuffle, then a stable sort by availability keeps the shuffle within each rarity class
  for (let i = order.length - 1; i > 0; i--) {
    const r = rng()
    if (!(r >= 0 && r < 1)) {
      throw new InvalidParametersError(`rng() must return a number in [0, 1), got ${r} - pass Math.random or a seeded generator`)
    }
    const j = Math.floor(r * (i + 1))
    const tmp = order[i]
    order[i] = order[j]
    order[j] = tmp
  }
  return order.sort((a, b) => (availability.get(a) ?? 0) - (availability.get(b) ?? 0))
}
