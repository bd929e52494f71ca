import '../polyfill.ts'
import { createHash } from 'node:crypto'
import { InvalidParametersError } from '@libp2p/interface'
import { DEFAULT_TRACKER_REPLICAS } from './constants.ts'

/**
 * Whether a node offers to be a tracker:
 *
 * - `always`: the operator vouches for the node (a stable, reachable seed)
 * - `never`: the node is leech-only for tracking (laptops, nodes behind NAT)
 * - `auto`: the node decides from what it can observe about itself
 */
export type SupernodeMode = 'auto' | 'always' | 'never'

/** What a node knows about itself when deciding whether it may be a tracker */
export interface EligibilityInput {
  /**
   * Other nodes can open connections to it: it has a public or LAN address
   * that peers have confirmed (for example through identify's observed addresses
   * or a successful inbound dial), not only a relayed or NATed address
   */
  dialable: boolean

  /** Current load in any unit the caller chooses, e.g. tracked tasks or open streams */
  load: number

  /** The load at which the node stops offering itself, in the same unit as `load` */
  maxLoad: number
}

/**
 * Decide whether this node should announce itself as tracker-eligible.
 *
 * - `always` → `true` whatever the load: the operator has sized the node
 * - `never` → `false`
 * - `auto` → `dialable && load < maxLoad`
 *
 * In `auto` mode a node that is not dialable stays out, because peers could
 * not register with a tracker they cannot reach, and an overloaded node drops
 * out of the eligible set, so new tasks hash elsewhere and the tasks it
 * already tracks move when peers recompute from the smaller view.
 */
export function isEligible (mode: SupernodeMode, self: EligibilityInput): boolean {
  switch (mode) {
    case 'always':
      return true
    case 'never':
      return false
    case 'auto':
      return self.dialable && self.load < self.maxLoad
    default:
      throw new InvalidParametersError(`Unknown supernode mode "${String(mode)}" - use "auto", "always" or "never"`)
  }
}

const SEPARATOR = Uint8Array.of(0)

/**
 * The rendezvous (highest-random-weight) score of a peer for a task: the first
 * 8 bytes of `sha256(utf8(taskId) ‖ 0x00 ‖ utf8(peerId))` read as an unsigned
 * big-endian integer. The zero byte keeps `("ab", "c")` and `("a", "bc")` apart;
 * task ids are hex digests and peer ids base58/base32 strings, so neither
 * contains a NUL.
 *
 * Every node computes the same score for the same pair, which is what lets
 * nodes agree on trackers without talking to each other.
 */
export function rendezvousScore (taskId: string, peerId: string): bigint {
  const digest = createHash('sha256')
    .update(taskId, 'utf8')
    .update(SEPARATOR)
    .update(peerId, 'utf8')
    .digest()
  // 64 bits make ties between distinct peers vanishingly rare (≈ n² / 2^65).
  // This is part of the protocol: every node must use the same width.
  return digest.readBigUInt64BE(0)
}

interface Scored {
  peerId: string
  score: bigint
}

/** `true` when `a` ranks before `b`: higher score first, then lower peer id */
function ranksBefore (a: Scored, b: Scored): boolean {
  if (a.score !== b.score) {
    return a.score > b.score
  }
  return a.peerId < b.peerId
}

function assertReplicas (r: number): void {
  if (!Number.isSafeInteger(r) || r < 1) {
    throw new InvalidParametersError(`Tracker replica count must be a positive integer, got ${r} - use 1 or more (default ${DEFAULT_TRACKER_REPLICAS})`)
  }
}

/**
 * The trackers of a task: the `r` eligible peers with the highest
 * {@link rendezvousScore}, best first, ties broken by the lexicographically
 * smaller peer id. Duplicate ids in the input are ignored and the input order
 * does not matter, so every node with the same view gets the same list.
 *
 * Returns fewer than `r` peers when fewer are eligible, and `[]` when none are.
 *
 * Removing a peer only changes the tasks it was elected for (it is replaced by
 * the next best); adding a peer only changes the tasks it now wins. On average
 * a membership change moves `r / n` of all tasks.
 */
export function electTrackers (taskId: string, eligiblePeers: Iterable<string>, r: number = DEFAULT_TRACKER_REPLICAS): string[] {
  assertReplicas(r)

  // keep the best r in a small sorted array: O(n · r) and no full sort
  const best: Scored[] = []
  for (const peerId of new Set(eligiblePeers)) {
    const candidate = { peerId, score: rendezvousScore(taskId, peerId) }
    if (best.length === r && !ranksBefore(candidate, best[r - 1])) {
      continue
    }
    let i = best.length
    while (i > 0 && ranksBefore(candidate, best[i - 1])) {
      i--
    }
    best.splice(i, 0, candidate)
    if (best.length > r) {
      best.pop()
    }
  }

  return best.map(s => s.peerId)
}

/**
 * What a node asked to track a task should answer, given its own view of the
 * eligible set:
 *
 * - `undefined`: serve the request
 * - a peer id: answer `redirect(hint)` with the best elected tracker
 *
 * It is `undefined` when `self` is one of the elected trackers, or when the
 * view holds no eligible peer at all, so there is nobody better to send the
 * requester to. A hint is never `self`.
 *
 * A requester whose view misses or has one extra member reaches an elected
 * tracker of the full view after at most one redirect.
 */
export function redirectHint (taskId: string, self: string, eligiblePeers: Iterable<string>, r: number = DEFAULT_TRACKER_REPLICAS): string | undefined {
  return trackerRole(taskId, self, eligiblePeers, r).redirect
}

/**
 * `redirectHint` and whether `self` is the first elected tracker (or sees
 * nobody eligible), from one election: only the first one grants origin
 * reads, so two replicas never hand out the same pieces.
 */
export function trackerRole (taskId: string, self: string, eligiblePeers: Iterable<string>, r: number = DEFAULT_TRACKER_REPLICAS): { redirect?: string, first: boolean } {
  const elected = electTrackers(taskId, eligiblePeers, r)
  if (elected.length === 0 || elected.includes(self)) {
    return { first: elected.length === 0 || elected[0] === self }
  }
  return { redirect: elected[0], first: false }
}
