/**
 * The tracker's soft state, as pure code: no I/O, no timers, time passed in.
 * Everything here is rebuilt from announces and reports, so losing it (a
 * restart, a new elected tracker) costs one announce interval, not data.
 *
 * Per task: its metadata (first announce with meta wins), the piece digests
 * (first report wins), the peers (address, have bitfield, upload slots, last
 * seen, zone) in the order they registered (the pipeline order), the source
 * grants and a blocklist of peers that sent bad pieces.
 */

import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import { Blocklist, PeerEvaluator, SourceGrants } from '../scheduler/index.ts'
import { normaliseDigest } from '../task/digest.ts'
import { MAX_CONTENT_LENGTH, MAX_PIECE_COUNT, validatePieceSize } from '../task/piece-size.ts'
import { Bitfield } from '../utils/bitfield.ts'
import {
  DEFAULT_ANNOUNCE_INTERVAL_MS,
  DEFAULT_MAX_PEERS_PER_TASK,
  DEFAULT_MAX_TASKS,
  DEFAULT_PARENTS_PER_ANSWER,
  DEFAULT_PEER_TTL_MS,
  DEFAULT_PIPELINE,
  DEFAULT_TASK_TTL_MS,
  DIGEST_BYTES,
  MAX_ADDRS_PER_PEER,
  MAX_HEADER_VALUE_CHARS,
  MAX_PARENTS_PER_ANSWER,
  MAX_PIECES_PER_REPORT,
  MAX_SHORT_STRING_CHARS,
  MAX_SOURCES_PER_ANSWER,
  MAX_UPLOAD_SLOTS,
  MAX_URL_CHARS,
  RATE_WINDOW_MS,
  SLOW_PEER_MOVE_INTERVAL_MS,
  SLOW_PEER_MOVES_KEPT,
  SLOW_PEER_RATE_FRACTION,
  SLOW_WINDOWS,
  UPSTREAM_SETTLE_WINDOWS
} from './constants.ts'
import { MetaConflictError, NotRegisteredError, TooManyPeersError, TooManyTasksError, UnknownTaskError } from './errors.ts'
import type { BlocklistInit, ParentCandidate, ParentEvaluator, SourceGrantsInit } from '../scheduler/index.ts'

/** What is known about a task's file */
export interface TaskMetaInfo {
  /** File size in bytes */
  contentLength: number
  /** Bytes per piece; the last piece may be shorter */
  pieceSize: number
  etag?: string
  lastModified?: string
  url?: string
  /** Whole-file digest, `sha256:<64 lowercase hex>` */
  digest?: string
}

/** An ANNOUNCE, as the state sees it (already decoded from the wire) */
export interface AnnounceInput {
  /** 64 lowercase hex digits */
  taskId: string
  /** The URL being downloaded, for logs; also the meta URL when meta has none */
  url?: string
  /** Whole-file digest, if the client knows it */
  digest?: string
  /** Metadata from the client's origin stat */
  meta?: TaskMetaInfo
  /** Have bitfield bytes; empty means no piece */
  have: Uint8Array
  /** Binary multiaddrs (validated by the caller); more than MAX_ADDRS_PER_PEER are dropped */
  addrs: Uint8Array[]
  uploadSlots: number
  freeUploadSlots: number
  version: string
  /** The client may fetch from the origin; false releases any grant it holds */
  wantGrant: boolean
  /** Include the piece digests in the answer */
  wantDigests: boolean
  zone?: string
}

/** A candidate parent in an answer */
export interface ParentInfo {
  peerId: string
  addrs: Uint8Array[]
  /** The parent's have bitfield bytes (do not modify) */
  have: Uint8Array
  freeUploadSlots: number
  /** The evaluator's score in [0, 1] */
  score: number
}

export type AnnounceResult =
  | {
    status: 'need-meta'
  }
  | {
    status: 'ok'
    meta: TaskMetaInfo
    /** Present when asked for: one entry per piece, undefined where no digest is known */
    pieceDigests?: Array<Uint8Array | undefined>
    /**
     * The upstream first (when there is one), then the others best first;
     * never the requester, never a blocked peer, never a peer with nothing we
     * lack except the upstream. Empty for a complete requester
     */
    parents: ParentInfo[]
    /** The requester's whole current source grant, ascending (empty unless it wants one) */
    grant: number[]
    /** Pieces per stripe of the grant (the client may read to the end of a granted piece's stripe at once); 0 without a grant */
    grantStripe: number
    /**
     * The requester's predecessor in the task's pipeline, to stream pieces
     * from in index order: the nearest peer that registered for the task
     * before it and is still registered and not blocked. Listed first in
     * `parents` (unless the requester is complete). Undefined for the first
     * peer, with `pipeline` off, or with `parentsPerAnswer` 0
     */
    upstream?: string
    /**
     * The peers granted pieces of the task to read from the origin, the
     * latest last (at most MAX_SOURCES_PER_ANSWER; blocked peers are dropped):
     * their signed digests stand in for digests the requester lacks
     */
    sources: string[]
    intervalMs: number
    /** This announce registered the peer (it was not registered before) */
    registered: boolean
    /**
     * This announce moved the peer to the end of the pipeline: it gained
     * pieces at under half its upstream's rate (SLOW_PEER_RATE_FRACTION)
     */
    movedToEnd: boolean
  }

export interface ReportedPieceInput {
  index: number
  /** sha256, 32 bytes */
  digest: Uint8Array
}

export interface ReportResult {
  /** Digests recorded for the first time */
  recorded: number
  /** Indexes whose digest conflicts with the recorded one; not recorded, the peer not marked as holding them */
  rejected: number[]
}

export interface BadPeerResult {
  /** The report counted against the peer (first report of that peer by this reporter) */
  counted: boolean
  /** This report blocked the peer */
  blocked: boolean
}

export interface ExpireResult {
  peersDropped: number
  tasksForgotten: number
}

/** A task, for status pages */
export interface TaskSummary {
  taskId: string
  pieceCount: number
  peers: number
  /** Peers holding every piece */
  completePeers: number
  /** Pieces granted to a peer for an origin fetch and not done yet */
  grantsOutstanding: number
  /** Pieces whose digest is recorded */
  digestsKnown: number
  /** The last peers moved to the end of the pipeline for being slow, oldest first */
  slowPeersMoved: SlowPeerMove[]
}

export interface SlowPeerMove {
  peerId: string
  /** epoch ms */
  at: number
  /** its pieces per second and its upstream's, in the windows that decided */
  rate: number
  upstreamRate: number
}

export interface TrackerStateInit {
  /** @default 10_000 */
  maxTasks?: number
  /** @default 1_000 */
  maxPeersPerTask?: number
  /** @default 3_000 */
  peerTtlMs?: number
  /** @default 60_000 */
  taskTtlMs?: number
  /** @default 1_000 */
  announceIntervalMs?: number
  /**
   * Parents per answer, at most 64
   *
   * @default 16
   */
  parentsPerAnswer?: number
  /**
   * Name each requester's upstream (the nearest live, unblocked peer that
   * registered for the task before it) and list it first among its parents,
   * so the task's peers form a pipeline in the order they joined. Needs
   * `parentsPerAnswer` of at least 1
   *
   * @default true
   */
  pipeline?: boolean
  /**
   * Ranks parents
   *
   * @default new PeerEvaluator()
   */
  evaluator?: ParentEvaluator
  /** Options of each task's SourceGrants */
  sourceGrants?: SourceGrantsInit
  /** Options of each task's Blocklist */
  blocklist?: BlocklistInit
}

interface PeerRecord {
  peerId: string
  addrs: Uint8Array[]
  have: Bitfield
  /** Mirror of `have`'s bytes, kept in step, so answers and comparisons need no copy */
  haveBytes: Uint8Array
  uploadSlots: number
  freeUploadSlots: number
  lastSeen: number
  zone?: string
  version: string
  /** Pieces held when the current rate window opened, when it opened, and its upstream then */
  windowCount: number
  windowStart: number
  windowUpstream?: string
  /** Pieces gained per second over the last full window; undefined until one closed */
  rate?: number
  /** Consecutive windows in which it gained pieces at under SLOW_PEER_RATE_FRACTION of its upstream's rate */
  slowWindows: number
  /** Windows still to pass unjudged since its upstream changed */
  settleWindows: number
  /** When the tracker last moved it to the end of the pipeline */
  movedAt?: number
}

interface TaskRecord {
  taskId: string
  meta: TaskMetaInfo
  pieceCount: number
  /** pieceCount × 32 bytes, allocated on the first recorded digest */
  digests?: Uint8Array
  digestKnown: Bitfield
  /** In the order they registered (the pipeline order); a peer that left or expired and comes back joins at the end */
  peers: Map<string, PeerRecord>
  /** The keys of `peers`, as the set SourceGrants wants */
  live: Set<string>
  /** Holders per piece */
  holders: Uint32Array
  /** Pieces held by at least one peer */
  held: Bitfield
  completePeers: number
  grants: SourceGrants
  blocklist: Blocklist
  /** Bad-piece reports: reported peer → reporters, so one reporter cannot block a peer alone */
  badReports: Map<string, Set<string>>
  /** The last SLOW_PEER_MOVES_KEPT moves to the end of the pipeline */
  moves: SlowPeerMove[]
  /** Peers granted origin reads, the latest last (at most MAX_SOURCES_PER_ANSWER) */
  sources: string[]
  /** When the last peer left; undefined while the task has peers */
  emptySince?: number
}

const TASK_ID_RE = /^[0-9a-f]{64}$/

/** @throws {InvalidParametersError} unless `taskId` is 64 lowercase hex digits */
export function validateTaskId (taskId: unknown): string {
  if (typeof taskId !== 'string' || !TASK_ID_RE.test(taskId)) {
    const shown = typeof taskId === 'string' ? JSON.stringify(taskId.slice(0, 80)) : String(taskId)
    throw new InvalidParametersError(`Invalid task id ${shown} - a task id is 64 lowercase hex digits (see src/task/id.ts)`)
  }
  return taskId
}

function assertString (name: string, value: string | undefined, max: number): void {
  if (value != null && value.length > max) {
    throw new InvalidParametersError(`${name} is ${value.length} characters long, more than the ${max} allowed - send a shorter value`)
  }
}

function assertCount (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidParametersError(`${name} must be a non-negative integer, got ${value}`)
  }
}

function assertPositiveInteger (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidParametersError(`${name} must be a positive integer, got ${value}`)
  }
}

function normaliseWholeDigest (digest: string | undefined): string | undefined {
  if (digest == null || digest === '') {
    return undefined
  }
  try {
    return normaliseDigest(digest)
  } catch (err: any) {
    throw new InvalidParametersError(err.message)
  }
}

/**
 * Check metadata received from a client and return it normalised, with the
 * piece count.
 *
 * @throws {InvalidParametersError}
 */
export function validateMeta (meta: TaskMetaInfo): { meta: TaskMetaInfo, pieceCount: number } {
  const { contentLength, pieceSize } = meta
  if (!Number.isSafeInteger(contentLength) || contentLength < 0 || contentLength > MAX_CONTENT_LENGTH) {
    throw new InvalidParametersError(`Invalid content length ${contentLength} - it must be an integer from 0 to ${MAX_CONTENT_LENGTH} bytes`)
  }
  validatePieceSize(pieceSize)
  const pieceCount = Math.ceil(contentLength / pieceSize)
  if (pieceCount > MAX_PIECE_COUNT) {
    throw new InvalidParametersError(`A file of ${contentLength} bytes in pieces of ${pieceSize} bytes has ${pieceCount} pieces, more than the ${MAX_PIECE_COUNT} allowed - use larger pieces`)
  }
  assertString('meta.url', meta.url, MAX_URL_CHARS)
  assertString('meta.etag', meta.etag, MAX_HEADER_VALUE_CHARS)
  assertString('meta.lastModified', meta.lastModified, MAX_HEADER_VALUE_CHARS)
  const out: TaskMetaInfo = { contentLength, pieceSize }
  if (meta.etag != null && meta.etag !== '') {
    out.etag = meta.etag
  }
  if (meta.lastModified != null && meta.lastModified !== '') {
    out.lastModified = meta.lastModified
  }
  if (meta.url != null && meta.url !== '') {
    out.url = meta.url
  }
  const digest = normaliseWholeDigest(meta.digest)
  if (digest != null) {
    out.digest = digest
  }
  return { meta: out, pieceCount }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) {
    return false
  }
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) {
      return false
    }
  }
  return true
}

/** Whether `other` holds a piece that `mine` lacks (early exit on the first such byte) */
function hasSomethingFor (other: Uint8Array, mine: Uint8Array): boolean {
  for (let i = 0; i < other.byteLength; i++) {
    if ((other[i] & ~mine[i]) !== 0) {
      return true
    }
  }
  return false
}

/**
 * The soft state of every task a tracker serves. Pure: each method takes the
 * current time in ms and returns a decision; errors are named (see errors.ts)
 * and become wire codes in the server.
 */
export class TrackerState {
  readonly maxTasks: number
  readonly maxPeersPerTask: number
  readonly peerTtlMs: number
  readonly taskTtlMs: number
  readonly announceIntervalMs: number
  readonly parentsPerAnswer: number
  readonly pipeline: boolean
  readonly #evaluator: ParentEvaluator
  readonly #sourceGrants?: SourceGrantsInit
  readonly #blocklist?: BlocklistInit
  readonly #tasks = new Map<string, TaskRecord>()

  constructor (init: TrackerStateInit = {}) {
    this.maxTasks = init.maxTasks ?? DEFAULT_MAX_TASKS
    this.maxPeersPerTask = init.maxPeersPerTask ?? DEFAULT_MAX_PEERS_PER_TASK
    this.peerTtlMs = init.peerTtlMs ?? DEFAULT_PEER_TTL_MS
    this.taskTtlMs = init.taskTtlMs ?? DEFAULT_TASK_TTL_MS
    this.announceIntervalMs = init.announceIntervalMs ?? DEFAULT_ANNOUNCE_INTERVAL_MS
    this.parentsPerAnswer = init.parentsPerAnswer ?? DEFAULT_PARENTS_PER_ANSWER
    this.pipeline = init.pipeline ?? DEFAULT_PIPELINE
    assertPositiveInteger('maxTasks', this.maxTasks)
    assertPositiveInteger('maxPeersPerTask', this.maxPeersPerTask)
    assertPositiveInteger('peerTtlMs', this.peerTtlMs)
    assertPositiveInteger('taskTtlMs', this.taskTtlMs)
    assertPositiveInteger('announceIntervalMs', this.announceIntervalMs)
    assertCount('parentsPerAnswer', this.parentsPerAnswer)
    if (this.parentsPerAnswer > MAX_PARENTS_PER_ANSWER) {
      throw new InvalidParametersError(`parentsPerAnswer must be at most ${MAX_PARENTS_PER_ANSWER} (the wire limit), got ${this.parentsPerAnswer}`)
    }
    this.#evaluator = init.evaluator ?? new PeerEvaluator()
    this.#sourceGrants = init.sourceGrants
    this.#blocklist = init.blocklist
    // construct once so bad options fail here, not on the first announce
    void new SourceGrants(this.#sourceGrants)
    void new Blocklist(this.#blocklist)
  }

  /**
   * Register or refresh `peer` for a task and answer with metadata, parents
   * and (if wanted) the peer's source grant. Returns `need-meta` without
   * keeping any state when the task is unknown and the announce has no meta.
   *
   * @throws {InvalidParametersError} bad task id, meta, bitfield or numbers
   * @throws {MetaConflictError} the meta disagrees with the recorded meta
   * @throws {TooManyTasksError} a new task beyond `maxTasks`
   * @throws {TooManyPeersError} a new peer beyond `maxPeersPerTask`
   */
  announce (peer: string, input: AnnounceInput, now: number): AnnounceResult {
    assertTime(now)
    validateTaskId(input.taskId)
    assertString('url', input.url, MAX_URL_CHARS)
    assertString('version', input.version, MAX_SHORT_STRING_CHARS)
    assertString('zone', input.zone, MAX_SHORT_STRING_CHARS)
    assertCount('uploadSlots', input.uploadSlots)
    assertCount('freeUploadSlots', input.freeUploadSlots)
    const wholeDigest = normaliseWholeDigest(input.digest)

    let task = this.#tasks.get(input.taskId)
    let announced: { meta: TaskMetaInfo, pieceCount: number } | undefined
    if (input.meta != null) {
      announced = validateMeta({
        ...input.meta,
        url: input.meta.url ?? input.url,
        digest: input.meta.digest ?? wholeDigest
      })
    }

    if (task == null) {
      if (announced == null) {
        return { status: 'need-meta' }
      }
      if (this.#tasks.size >= this.maxTasks) {
        throw new TooManyTasksError(`This tracker tracks ${this.#tasks.size} tasks, its maximum - ask the other elected tracker, or fetch from the origin`)
      }
    } else if (announced != null) {
      checkMetaConflict(task.meta, announced.meta)
    }

    const pieceCount = task?.pieceCount ?? announced?.pieceCount ?? 0
    const have = parseHave(input.have, pieceCount)
    const uploadSlots = Math.min(input.uploadSlots, MAX_UPLOAD_SLOTS)
    const freeUploadSlots = Math.min(input.freeUploadSlots, uploadSlots)
    const addrs = input.addrs.slice(0, MAX_ADDRS_PER_PEER)

    if (task == null) {
      // announced != null here (need-meta returned above)
      task = this.#newTask(input.taskId, announced!.meta, announced!.pieceCount)
      this.#tasks.set(task.taskId, task)
    }

    let record = task.peers.get(peer)
    const registered = record == null
    if (record == null) {
      if (task.peers.size >= this.maxPeersPerTask) {
        this.#expirePeers(task, now)
      }
      if (task.peers.size >= this.maxPeersPerTask) {
        throw new TooManyPeersError(`Task ${task.taskId} has ${task.peers.size} peers on this tracker, its maximum - ask the other elected tracker, or fetch from the origin`)
      }
      record = {
        peerId: peer,
        addrs,
        have: new Bitfield(pieceCount),
        haveBytes: new Uint8Array((pieceCount + 7) >> 3),
        uploadSlots,
        freeUploadSlots,
        lastSeen: now,
        zone: input.zone,
        version: input.version,
        windowCount: have.count(),
        windowStart: now,
        slowWindows: 0,
        settleWindows: 0
      }
      task.peers.set(peer, record)
      task.live.add(peer)
      task.emptySince = undefined
    }

    record.addrs = addrs
    record.uploadSlots = uploadSlots
    record.freeUploadSlots = freeUploadSlots
    record.lastSeen = now
    record.zone = input.zone
    record.version = input.version
    setHave(task, record, have)
    const movedToEnd = this.#measureRate(task, record, now)

    const blocked = task.blocklist.isBlocked(peer, now)
    let grant: number[] = []
    if (input.wantGrant && !blocked) {
      grant = task.grants.grant({ requester: peer, pieceCount, held: task.held, livePeers: task.live, now })
      noteSource(task, peer, grant)
    } else {
      task.grants.release(peer)
    }

    const upstream = this.#upstreamId(task, record, now)
    return {
      status: 'ok',
      meta: { ...task.meta },
      pieceDigests: input.wantDigests ? digestList(task) : undefined,
      parents: this.#parents(task, record, upstream, now),
      grant,
      grantStripe: grant.length > 0 ? task.grants.stripe : 0,
      upstream,
      sources: task.sources.slice(),
      intervalMs: this.announceIntervalMs,
      registered,
      movedToEnd
    }
  }

  /**
   * `peer` now holds these pieces, verified. Records each digest the first
   * time it is reported; a digest that conflicts with the recorded one is
   * rejected for that piece (not recorded, the peer not marked as holding it).
   * Ends the grants of the reported pieces.
   *
   * The whole report is validated before anything is applied.
   *
   * @throws {InvalidParametersError} bad task id, index or digest size, too many pieces
   * @throws {UnknownTaskError} the task is not tracked
   * @throws {NotRegisteredError} `peer` is not registered for the task
   */
  report (peer: string, taskId: string, pieces: readonly ReportedPieceInput[], now: number): ReportResult {
    assertTime(now)
    const task = this.#registeredTask(peer, taskId)
    const record = task.peers.get(peer)!
    if (pieces.length > MAX_PIECES_PER_REPORT) {
      throw new InvalidParametersError(`A report holds at most ${MAX_PIECES_PER_REPORT} pieces, got ${pieces.length} - split it`)
    }
    for (const { index, digest } of pieces) {
      assertIndex(index, task.pieceCount)
      if (!(digest instanceof Uint8Array) || digest.byteLength !== DIGEST_BYTES) {
        throw new InvalidParametersError(`The digest of piece ${index} must be a ${DIGEST_BYTES}-byte sha256, got ${digest?.byteLength ?? typeof digest} bytes`)
      }
    }

    const rejected: number[] = []
    let recorded = 0
    for (const { index, digest } of pieces) {
      if (task.digestKnown.get(index)) {
        const known = task.digests!.subarray(index * DIGEST_BYTES, (index + 1) * DIGEST_BYTES)
        if (!sameBytes(known, digest)) {
          rejected.push(index)
          continue
        }
      } else {
        task.digests ??= new Uint8Array(task.pieceCount * DIGEST_BYTES)
        task.digests.set(digest, index * DIGEST_BYTES)
        task.digestKnown.set(index)
        recorded++
      }
      setPiece(task, record, index)
      task.grants.complete(peer, index)
    }
    record.lastSeen = now
    return { recorded, rejected }
  }

  /**
   * `peer` leaves the task: it is dropped and its grants are released at
   * once. Returns whether it was registered.
   *
   * @throws {InvalidParametersError} bad task id
   */
  leave (peer: string, taskId: string, now: number): boolean {
    assertTime(now)
    validateTaskId(taskId)
    const task = this.#tasks.get(taskId)
    const record = task?.peers.get(peer)
    if (task == null || record == null) {
      return false
    }
    removePeer(task, record, now)
    // digests come from the peers that hold the pieces: with none left, they
    // vouch for nothing, and a download that left because its whole-file
    // digest failed must not poison the next one from an honest origin
    if (task.held.count() === 0) {
      task.digestKnown = new Bitfield(task.pieceCount)
      task.digests = undefined
    }
    return true
  }

  /**
   * `reporter` received a bad copy of piece `index` from `badPeer`. Each
   * reporter counts once per reported peer and task, so blocking a peer takes
   * reports from as many distinct registered peers as the blocklist's
   * threshold (2 by default): one lying peer cannot get an honest one blocked.
   * A blocked peer loses its grants and is no longer handed out as a parent.
   *
   * @throws {InvalidParametersError} bad task id, index or peer id; a peer reporting itself
   * @throws {UnknownTaskError} the task is not tracked
   * @throws {NotRegisteredError} `reporter` is not registered for the task
   */
  badPeer (reporter: string, taskId: string, badPeer: string, index: number, now: number): BadPeerResult {
    assertTime(now)
    const task = this.#registeredTask(reporter, taskId)
    assertIndex(index, task.pieceCount)
    if (typeof badPeer !== 'string' || badPeer === '' || badPeer.length > MAX_SHORT_STRING_CHARS) {
      throw new InvalidParametersError(`Invalid bad peer id ${JSON.stringify(String(badPeer).slice(0, 80))} - send the peer id string of the peer that sent the bad piece`)
    }
    if (badPeer === reporter) {
      throw new InvalidParametersError('A peer cannot report itself as bad - report the peer that sent the bad piece')
    }

    let reporters = task.badReports.get(badPeer)
    if (reporters?.has(reporter) === true) {
      return { counted: false, blocked: false }
    }
    if (reporters == null) {
      if (task.badReports.size >= this.maxPeersPerTask) {
        // bounded: a flood of made-up peer ids cannot grow this map
        return { counted: false, blocked: false }
      }
      reporters = new Set()
      task.badReports.set(badPeer, reporters)
    }
    reporters.add(reporter)
    const blocked = task.blocklist.reportBadPiece(badPeer, now)
    if (blocked) {
      task.grants.release(badPeer)
      task.sources = task.sources.filter(p => p !== badPeer)
    }
    return { counted: true, blocked }
  }

  /**
   * Drop peers not heard from for `peerTtlMs` (their grants are released) and
   * forget tasks that have had no peers for `taskTtlMs`.
   */
  expire (now: number): ExpireResult {
    assertTime(now)
    let peersDropped = 0
    let tasksForgotten = 0
    for (const [taskId, task] of this.#tasks) {
      peersDropped += this.#expirePeers(task, now)
      if (task.peers.size === 0) {
        task.emptySince ??= now
        if (now - task.emptySince >= this.taskTtlMs) {
          this.#tasks.delete(taskId)
          tasksForgotten++
          continue
        }
      }
      task.blocklist.prune(now)
    }
    return { peersDropped, tasksForgotten }
  }

  /** Whether `peer` is blocked for the task at `now` */
  isBlocked (taskId: string, peer: string, now: number): boolean {
    return this.#tasks.get(taskId)?.blocklist.isBlocked(peer, now) ?? false
  }

  /** Pieces currently granted to `peer` for the task, ascending */
  grantsOf (taskId: string, peer: string): number[] {
    return this.#tasks.get(taskId)?.grants.grantsOf(peer) ?? []
  }

  /** The recorded digest of a piece, if any (a copy) */
  digestOf (taskId: string, index: number): Uint8Array | undefined {
    const task = this.#tasks.get(taskId)
    if (task == null || !Number.isInteger(index) || index < 0 || index >= task.pieceCount || !task.digestKnown.get(index)) {
      return undefined
    }
    return task.digests!.slice(index * DIGEST_BYTES, (index + 1) * DIGEST_BYTES)
  }

  /** Whether `peer` is registered for the task */
  hasPeer (taskId: string, peer: string): boolean {
    return this.#tasks.get(taskId)?.peers.has(peer) ?? false
  }

  /** One task's summary, if tracked */
  task (taskId: string): TaskSummary | undefined {
    const task = this.#tasks.get(taskId)
    return task == null ? undefined : summarise(task)
  }

  /** Every tracked task's summary */
  tasks (): TaskSummary[] {
    return [...this.#tasks.values()].map(summarise)
  }

  /** Tasks tracked and peers registered over all tasks */
  counts (): { tasks: number, peers: number } {
    let peers = 0
    for (const task of this.#tasks.values()) {
      peers += task.peers.size
    }
    return { tasks: this.#tasks.size, peers }
  }

  #newTask (taskId: string, meta: TaskMetaInfo, pieceCount: number): TaskRecord {
    return {
      taskId,
      meta,
      pieceCount,
      digestKnown: new Bitfield(pieceCount),
      peers: new Map(),
      live: new Set(),
      holders: new Uint32Array(pieceCount),
      held: new Bitfield(pieceCount),
      completePeers: 0,
      grants: new SourceGrants(this.#sourceGrants),
      blocklist: new Blocklist(this.#blocklist),
      badReports: new Map(),
      moves: [],
      sources: []
    }
  }

  #registeredTask (peer: string, taskId: string): TaskRecord {
    validateTaskId(taskId)
    const task = this.#tasks.get(taskId)
    if (task == null) {
      throw new UnknownTaskError(`This tracker does not track task ${taskId} - announce it (with metadata) first`)
    }
    if (!task.peers.has(peer)) {
      throw new NotRegisteredError(`Peer ${peer} is not registered for task ${taskId} on this tracker (never announced, left, or expired) - announce again, then repeat the request`)
    }
    return task
  }

  #expirePeers (task: TaskRecord, now: number): number {
    let dropped = 0
    for (const record of [...task.peers.values()]) {
      if (now - record.lastSeen >= this.peerTtlMs) {
        removePeer(task, record, now)
        dropped++
      }
    }
    return dropped
  }

  /**
   * The requester's predecessor in the pipeline: the nearest peer registered
   * before it that is not blocked (every peer in `task.peers` is live). A
   * peer holding nothing yet qualifies: it forwards pieces as they come
   */
  #upstream (task: TaskRecord, requester: PeerRecord, now: number): PeerRecord | undefined {
    if (!this.pipeline || this.parentsPerAnswer === 0) {
      return undefined
    }
    let upstream: PeerRecord | undefined
    for (const other of task.peers.values()) {
      if (other === requester) {
        return upstream
      }
      if (!task.blocklist.isBlocked(other.peerId, now)) {
        upstream = other
      }
    }
    // not reached: the requester is registered before this is called
    return undefined
  }

  #upstreamId (task: TaskRecord, requester: PeerRecord, now: number): string | undefined {
    return this.#upstream(task, requester, now)?.peerId
  }

  /**
   * Whether some peer after `record` in the pipeline is incomplete and was
   * never moved itself: moving `record` behind slow peers that were moved
   * before (or to the end it is at) would only swap slow peers at the tail
   */
  #holdsBackOthers (task: TaskRecord, record: PeerRecord): boolean {
    let after = false
    for (const other of task.peers.values()) {
      if (after && other.movedAt == null && !other.have.isFull()) {
        return true
      }
      after ||= other === record
    }
    return false
  }

  /**
   * Close the peer's rate window when it has run RATE_WINDOW_MS, and move the
   * peer to the end of the pipeline when it has been slow against its
   * upstream for SLOW_WINDOWS windows (see SLOW_PEER_RATE_FRACTION). Only
   * incomplete peers behind an incomplete upstream are compared: a complete
   * one gains nothing. Returns true when it moved the peer.
   */
  #measureRate (task: TaskRecord, record: PeerRecord, now: number): boolean {
    const elapsed = now - record.windowStart
    if (elapsed < RATE_WINDOW_MS) {
      return false
    }
    const count = record.have.count()
    const upstream = this.#upstream(task, record, now)
    const sameUpstream = upstream != null && upstream.peerId === record.windowUpstream
    record.rate = (count - record.windowCount) * 1000 / elapsed
    record.windowCount = count
    record.windowStart = now
    record.windowUpstream = upstream?.peerId

    // a window that began behind another upstream says nothing of this one,
    // nor do the next UPSTREAM_SETTLE_WINDOWS: the peer is still moving its
    // requests over (after the slow peer ahead of it moved, the peer behind
    // it was once moved too, 11 s later)
    const settling = !sameUpstream || record.settleWindows > 0
    record.settleWindows = sameUpstream ? Math.max(0, record.settleWindows - 1) : UPSTREAM_SETTLE_WINDOWS
    if (settling || upstream.rate == null || upstream.rate <= 0 || upstream.have.isFull() || record.have.isFull()) {
      record.slowWindows = 0
      return false
    }
    record.slowWindows = record.rate < SLOW_PEER_RATE_FRACTION * upstream.rate ? record.slowWindows + 1 : 0
    if (record.slowWindows < SLOW_WINDOWS || (record.movedAt != null && now - record.movedAt < SLOW_PEER_MOVE_INTERVAL_MS)) {
      return false
    }
    if (!this.#holdsBackOthers(task, record)) {
      return false
    }
    // a Map keeps insertion order: re-inserting puts the peer last
    task.peers.delete(record.peerId)
    task.peers.set(record.peerId, record)
    record.movedAt = now
    record.slowWindows = 0
    task.moves.push({ peerId: record.peerId, at: now, rate: record.rate, upstreamRate: upstream.rate })
    if (task.moves.length > SLOW_PEER_MOVES_KEPT) {
      task.moves.shift()
    }
    return true
  }

  /**
   * The upstream first, even when it holds nothing the requester lacks yet,
   * then the best of the peers holding something it lacks, at most
   * `parentsPerAnswer` in all (the lowest ranked one gives way to the upstream)
   */
  #parents (task: TaskRecord, requester: PeerRecord, upstreamId: string | undefined, now: number): ParentInfo[] {
    if (this.parentsPerAnswer === 0 || requester.have.isFull()) {
      return []
    }
    const upstream = upstreamId == null ? undefined : task.peers.get(upstreamId)
    const ctx = { zone: requester.zone, bestThroughputBps: 0 }
    const candidates: ParentCandidate[] = []
    for (const other of task.peers.values()) {
      if (other === requester || other === upstream || other.have.count() === 0 || task.blocklist.isBlocked(other.peerId, now)) {
        continue
      }
      if (!hasSomethingFor(other.haveBytes, requester.haveBytes)) {
        continue
      }
      candidates.push(candidateOf(task, other, now))
    }
    const ranked = this.#evaluator.rankParents(candidates, ctx, this.parentsPerAnswer - (upstream == null ? 0 : 1))
    const listed = upstream == null
      ? ranked
      : [{ peerId: upstream.peerId, score: this.#evaluator.score(candidateOf(task, upstream, now), ctx) }, ...ranked]
    return listed.map(({ peerId, score }) => {
      const other = task.peers.get(peerId)!
      return { peerId, addrs: other.addrs, have: other.haveBytes, freeUploadSlots: other.freeUploadSlots, score }
    })
  }
}

/** A registered peer as the evaluator sees it */
function candidateOf (task: TaskRecord, peer: PeerRecord, now: number): ParentCandidate {
  return {
    peerId: peer.peerId,
    freeUploadSlots: peer.freeUploadSlots,
    maxUploadSlots: peer.uploadSlots,
    piecesHeld: peer.have.count(),
    pieceCount: task.pieceCount,
    recentFailures: task.blocklist.badPieceCount(peer.peerId, now),
    zone: peer.zone
  }
}

function assertTime (now: number): void {
  if (!Number.isFinite(now)) {
    throw new InvalidParametersError(`now must be a finite number of milliseconds, got ${now} - pass Date.now() or a test clock`)
  }
}

function assertIndex (index: number, pieceCount: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= pieceCount) {
    throw new InvalidParametersError(`Piece index ${index} is out of range - the task has ${pieceCount} pieces`)
  }
}

function checkMetaConflict (known: TaskMetaInfo, announced: TaskMetaInfo): void {
  if (known.contentLength !== announced.contentLength || known.pieceSize !== announced.pieceSize) {
    throw new MetaConflictError(`The tracker knows this task as ${known.contentLength} bytes in pieces of ${known.pieceSize}, the announce says ${announced.contentLength} bytes in pieces of ${announced.pieceSize} - the origin may have changed; check the URL or pin a digest`)
  }
  if (known.digest != null && announced.digest != null && known.digest !== announced.digest) {
    throw new MetaConflictError(`The tracker knows this task with digest ${known.digest}, the announce says ${announced.digest} - the origin may have changed; check the URL or pin a digest`)
  }
}

function parseHave (bytes: Uint8Array, pieceCount: number): Bitfield {
  if (bytes.byteLength === 0) {
    return new Bitfield(pieceCount)
  }
  // Bitfield.from throws InvalidParametersError for a wrong length or spare bits
  return Bitfield.from(bytes, pieceCount)
}

/** Replace a peer's bitfield, keeping holder counts, the union and the complete count in step */
function setHave (task: TaskRecord, record: PeerRecord, have: Bitfield): void {
  const before = record.haveBytes
  const after = have.toBytes()
  const wasFull = task.pieceCount > 0 && record.have.isFull()
  for (let b = 0; b < after.byteLength; b++) {
    const changed = before[b] ^ after[b]
    if (changed === 0) {
      continue
    }
    for (let bit = 0; bit < 8; bit++) {
      const mask = 0x80 >> bit
      if ((changed & mask) === 0) {
        continue
      }
      const index = b * 8 + bit
      if ((after[b] & mask) !== 0) {
        if (task.holders[index]++ === 0) {
          task.held.set(index)
        }
      } else if (--task.holders[index] === 0) {
        task.held.clear(index)
      }
    }
  }
  record.have = have
  record.haveBytes = after
  const isFull = task.pieceCount > 0 && have.isFull()
  task.completePeers += Number(isFull) - Number(wasFull)
}

/** Mark one piece held by a peer */
function setPiece (task: TaskRecord, record: PeerRecord, index: number): void {
  if (record.have.get(index)) {
    return
  }
  record.have.set(index)
  record.haveBytes[index >> 3] |= 0x80 >> (index & 7)
  if (task.holders[index]++ === 0) {
    task.held.set(index)
  }
  if (record.have.isFull()) {
    task.completePeers++
  }
}

function removePeer (task: TaskRecord, record: PeerRecord, now: number): void {
  setHave(task, record, new Bitfield(task.pieceCount))
  task.peers.delete(record.peerId)
  task.live.delete(record.peerId)
  task.grants.release(record.peerId)
  if (task.peers.size === 0) {
    task.emptySince = now
  }
}

function digestList (task: TaskRecord): Array<Uint8Array | undefined> {
  const out = new Array<Uint8Array | undefined>(task.pieceCount)
  for (let i = 0; i < task.pieceCount; i++) {
    out[i] = task.digestKnown.get(i) ? task.digests!.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES) : undefined
  }
  return out
}

function summarise (task: TaskRecord): TaskSummary {
  let grantsOutstanding = 0
  for (let i = 0; i < task.pieceCount; i++) {
    if (task.grants.grantedTo(i) != null) {
      grantsOutstanding++
    }
  }
  return {
    taskId: task.taskId,
    pieceCount: task.pieceCount,
    peers: task.peers.size,
    completePeers: task.completePeers,
    grantsOutstanding,
    digestsKnown: task.digestKnown.count(),
    slowPeersMoved: task.moves.map(m => ({ ...m }))
  }
}

/** `peer` was granted `grant` to read from the origin: unless empty, it becomes the latest source (the oldest beyond the bound is dropped) */
function noteSource (task: TaskRecord, peer: string, grant: number[]): void {
  if (grant.length === 0 || task.sources.at(-1) === peer) {
    return
  }
  task.sources = task.sources.filter(p => p !== peer)
  task.sources.push(peer)
  if (task.sources.length > MAX_SOURCES_PER_ANSWER) {
    task.sources.splice(0, task.sources.length - MAX_SOURCES_PER_ANSWER)
  }
}
