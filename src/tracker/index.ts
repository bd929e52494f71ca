/**
 * @packageDocumentation
 *
 * The tracker: the supernode role for a task (DESIGN.md "Tracker election",
 * "Moving a task"), served by the nodes the election picks, and the client
 * the download engine uses to reach it.
 *
 * ## Protocol `/damselfly/tracker/1.0.0` (`src/pb/tracker.proto`)
 *
 * One request per stream: the client opens a stream, writes one
 * length-prefixed `TrackerRequest`, half-closes, and reads one
 * length-prefixed `TrackerResponse`; the tracker closes the stream after its
 * answer. A stream per request keeps no state between requests and lets a
 * slow request never hold up the next announce. Messages:
 *
 * - ANNOUNCE registers and refreshes in one message: the client's have
 * bitfield, addresses, upload slots, version, zone, whether it may fetch from
 * the origin (`want_grant`). The answer: OK with the task's metadata,
 * up to 16 parents ranked by the scheduler's PeerEvaluator (never the
 * requester, never a blocked peer, only peers holding something it lacks,
 * except the `upstream`: the peer that joined the task just before the
 * requester, listed first, from which it streams pieces in index order)
 * and the client's source grant; or NEED_META (stat the origin, announce
 * again with meta); or REDIRECT to the elected tracker; or REFUSED.
 * Announce again every `interval_ms` (1 s, see constants.ts for why).
 * - REPORT: finished pieces with their sha256, batched (≤ 1024 per request).
 * - LEAVE: drop out of the task; grants are released at once.
 * - BAD_PEER: a parent sent a bad piece. Each reporter counts once per peer,
 * so blocking a peer takes reports from two distinct registered peers.
 *
 * Bounds: a request frame ≤ 64 KiB, an answer ≤ 4 MiB, bitfields ≤ 8 KiB,
 * ≤ 64 parents and ≤ 16 addresses per peer, ≤ 1024 pieces per report; an
 * oversized length prefix or an undecodable frame aborts the stream before
 * the frame is buffered. Timeouts: 5 s per stream on the server, 5 s per
 * attempt on the client. Streams: 16 inbound and 16 outbound per connection
 * (one short stream per request, a few requests in flight per task), and at
 * most 256 requests in progress on a tracker; beyond that a request is
 * answered REFUSED / BUSY without being read.
 *
 * ## Election and redirects
 *
 * The server always handles the protocol, so a client with a stale view gets
 * a REDIRECT rather than "protocol not supported". For each request it
 * computes `redirectHint(task, self, eligiblePeers())`: a node that is not
 * among the R elected trackers in its own view redirects to the best one. A
 * node started with `serve: false` redirects every request (or answers
 * REFUSED / NOT_A_TRACKER when it sees no tracker at all).
 *
 * ## State
 *
 * Soft, per task, rebuilt from announces and reports (`state.ts`, pure): a
 * restarted or newly elected tracker is whole again after one announce
 * interval, except for piece digests, which come back as peers report them.
 * Peers not heard from for 3 s are dropped (their grants go to others); a
 * task with no peers for 60 s is forgotten. At most 10,000 tasks and 1,000
 * peers per task; beyond that REFUSED with a message, never a crash.
 *
 * ## Metadata trust
 *
 * The tracker cannot vouch for anything it hands out. Task metadata comes
 * from the first client that announced it after an origin stat. Piece digests
 * come from the peer that fetched that piece from the origin (the first
 * report of a piece wins; a later report with a different digest is rejected
 * for that piece, logged and counted, never overwriting). The tracker records
 * them but cannot check them: a lying grant holder poisons a piece, and every
 * peer that verifies against the poisoned digest accepts the bad bytes,
 * until a whole-file digest (when the task has one) catches it at the end.
 * Tasks whose id is a content digest are therefore safer than URL tasks.
 * Clients must verify pieces against the digests, report bad parents, and
 * check the whole-file digest when one is known.
 *
 * @example
 *
 * ```ts
 * const node = await createLibp2p({ ..., services: {
 *   identify: identify(),
 *   tracker: tracker({ eligiblePeers: () => swarm.eligiblePeers() })
 * } })
 * const { tracker: t, response } = await node.services.tracker.client.announceElected(taskId, swarm.eligiblePeers(), {
 *   have, addrs: node.getMultiaddrs(), uploadSlots: 16, freeUploadSlots: 16, wantGrant: true
 * })
 * ```
 */

import { TrackerService } from './tracker.ts'
import type { TrackerClient, TrackerClientInit, TrackerClientStats } from './client.ts'
import type { LocalTask } from './rpc.ts'
import type { TaskSummary, TrackerStateInit } from './state.ts'
import type { AbortOptions, ComponentLogger, Connection, Metrics, PeerId, Startable, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export { TrackerClient } from './client.ts'
export type { AnnounceRequest, AnnounceResponse, ElectedAnnounce, ReportedPiece, ReportResponse, TrackerClientComponents, TrackerClientInit, TrackerClientStats, TrackerMeta, TrackerParent, TrackerRequestOptions } from './client.ts'
export { TrackerState, validateMeta, validateTaskId } from './state.ts'
export type { AnnounceInput, AnnounceResult, BadPeerResult, ExpireResult, ParentInfo, ReportResult, ReportedPieceInput, TaskMetaInfo, TaskSummary, TrackerStateInit } from './state.ts'
export {
  FrameTooLargeError,
  InvalidTrackerRequestError,
  MetaConflictError,
  NoTrackerReachableError,
  NotATrackerError,
  NotRegisteredError,
  TooManyPeersError,
  TooManyTasksError,
  TrackerBusyError,
  TrackerDialError,
  TrackerInternalError,
  TrackerProtocolNotSupportedError,
  TrackerRedirectError,
  TrackerStreamError,
  UnknownTaskError,
  failureCause,
  fromWireCode,
  toWireCode
} from './errors.ts'
export type { TrackerAttempt, TrackerFailureCause } from './errors.ts'
export * as constants from './constants.ts'
export type { LocalTask } from './rpc.ts'

export interface TrackerInit extends TrackerStateInit {
  /**
   * Protocol id prefix; the id is `${protocolPrefix}/tracker/1.0.0`
   *
   * @default '/damselfly'
   */
  protocolPrefix?: string

  /**
   * Protocol version in the id; only tests of version mismatch change it
   *
   * @default '1.0.0'
   */
  protocolVersion?: string

  /** The live eligible set (peer id strings), including this node when it is eligible */
  eligiblePeers(): string[]

  /**
   * Trackers per task (R)
   *
   * @default 2
   */
  replicas?: number

  /**
   * Serve as a tracker for the tasks this node is elected for. When false the
   * node still answers the protocol, with REDIRECT to the elected tracker.
   *
   * @default true
   */
  serve?: boolean

  /**
   * Requests in progress at once over all streams; beyond it REFUSED / BUSY
   *
   * @default 256
   */
  maxConcurrentRequests?: number

  /**
   * Server: time a stream gets to deliver its request and take the answer (ms)
   *
   * @default 5000
   */
  requestTimeoutMs?: number

  /**
   * How often expired peers and tasks are dropped (ms)
   *
   * @default 1000
   */
  expiryIntervalMs?: number

  /**
   * Inbound tracker streams per connection
   *
   * @default 16
   */
  maxInboundStreams?: number

  /**
   * Outbound tracker streams per connection
   *
   * @default 16
   */
  maxOutboundStreams?: number

  /** A complete task this node holds itself: answered to DIRECT announces from nodes that found it as a DHT provider */
  localTask?(taskId: string): LocalTask | undefined

  /** Options of the built-in client (timeouts, retries, backoff) */
  client?: Omit<TrackerClientInit, 'protocolPrefix' | 'replicas' | 'local'>
}

/** Only what the service uses (STYLE rule 4); a libp2p node's components fit */
export interface TrackerComponents {
  peerId: PeerId
  registrar: {
    handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
    unhandle(protocol: string, options?: AbortOptions): Promise<void>
  }
  connectionManager: {
    openConnection(peer: PeerId | Multiaddr[], options?: AbortOptions): Promise<Connection>
  }
  /** Addresses for redirect hints, and the tracker versions a remote speaks */
  peerStore?: {
    get(peerId: PeerId, options?: AbortOptions): Promise<{ protocols: string[], addresses: Array<{ multiaddr: Multiaddr }> }>
  }
  logger: ComponentLogger
  metrics?: Metrics
}

export interface TrackerStats {
  /** Tasks tracked now */
  tasks: number
  /** Peer registrations over all tasks now */
  peers: number
  /** Requests being served now */
  inFlight: number
  requests: number
  registrations: number
  redirects: number
  refusals: number
  errors: number
  /** Announce answers that carried a source grant */
  grants: number
  badPeerReports: number
  blockedPeers: number
  digestConflicts: number
  /** Peers moved to the end of a pipeline for gaining pieces at under half their upstream's rate */
  slowPeersMoved: number
  /** This node's own client: attempts and failures by cause */
  client: TrackerClientStats
}

export interface Tracker extends Startable {
  /** The protocol id, e.g. `/damselfly/tracker/1.0.0` */
  readonly protocol: string
  /** The client for this node's downloads; asks this node's own tracker in-process */
  readonly client: TrackerClient
  isStarted(): boolean
  stats(): TrackerStats
  /** Tracked tasks for status pages: taskId, peers, complete peers, grants outstanding */
  tasks(): TaskSummary[]
}

/** The tracker as a libp2p service: `services: { tracker: tracker({ eligiblePeers }) }` */
export function tracker (init: TrackerInit): (components: TrackerComponents) => Tracker {
  return (components) => new TrackerService(components, init)
}
