/**
 * @packageDocumentation
 *
 * Tracker election, as pure functions (DESIGN.md "Tracker election"): no I/O,
 * no timers. The trackers of a task are the `r` live eligible peers with the
 * highest rendezvous score `sha256(taskId ‖ 0x00 ‖ peerId)`, so every node
 * that sees the same eligible set picks the same trackers, load spreads over
 * all eligible nodes, and a membership change only moves the tasks the changed
 * member wins or loses.
 *
 * @example
 *
 * ```ts
 * import { electTrackers, isEligible, redirectHint } from './election/index.ts'
 *
 * const eligible = ['12D3KooWA…', '12D3KooWB…', '12D3KooWC…']
 * const trackers = electTrackers(taskId, eligible) // [best, second]
 * const hint = redirectHint(taskId, selfId, eligible) // undefined → serve
 * ```
 */

export { DEFAULT_TRACKER_REPLICAS } from './constants.ts'
export { electTrackers, isEligible, redirectHint, rendezvousScore, trackerRole } from './election.ts'
export type { EligibilityInput, SupernodeMode } from './election.ts'
