/**
 * @packageDocumentation
 *
 * The scheduler's decisions, as pure code (STYLE.md rule 17): no I/O, no
 * libp2p, no timers; time and randomness are passed in.
 *
 * - Peer choice: {@link PeerEvaluator} scores and ranks parents;
 * {@link isBadParent} applies Dragonfly's slow-parent rule.
 * - Exclusion: {@link Blocklist} keeps peers out for a while and bans a peer
 * after repeated bad pieces.
 * - Piece choice: {@link PiecePicker} picks rarest-first (or in order, for
 * streaming), respects per-parent capacity and handles end-game.
 * - Origin traffic: {@link SourceGrants} (tracker side) splits the pieces no
 * peer holds among a few source peers, so each piece leaves the origin about
 * once.
 */

export * from './constants.ts'
export { Blocklist } from './blocklist.ts'
export type { BlockEntry, BlocklistInit } from './blocklist.ts'
export { PeerEvaluator, isBadParent } from './evaluator.ts'
export type { BadParentOptions, EvaluationContext, EvaluatorWeights, ParentCandidate, ParentEvaluator, PeerEvaluatorInit, ScoredParent } from './evaluator.ts'
export { PiecePicker } from './piece-picker.ts'
export type { PickInput, PieceAssignment, PiecePickerInit } from './piece-picker.ts'
export { SourceGrants, stripeWidth } from './source-grants.ts'
export type { GrantRequest, SourceGrantsInit } from './source-grants.ts'
export { DeliveryRate, pipelineDepth } from './pipeline.ts'
export type { PipelineOptions } from './pipeline.ts'
