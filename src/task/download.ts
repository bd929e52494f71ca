import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { AbortError } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { PiecePicker, Blocklist, DEFAULT_PIPELINE_MAX_DEPTH, DeliveryRate, pipelineDepth, stripeWidth } from '../scheduler/index.ts'
import { DigestMismatchError } from '../storage/index.ts'
import { PieceBufferPool } from '../transfer/index.ts'
import { Bitfield } from '../utils/bitfield.ts'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_ATTEST_BACKOFF_MS, DEFAULT_BUSY_BACKOFF_MS, DEFAULT_DIGEST_REFRESH_MS, DEFAULT_GRANT_SILENCE_MS, DEFAULT_LEAVE_WAIT_MS, DEFAULT_MAX_PENDING_WRITES, DEFAULT_MAX_PROVIDERS, DEFAULT_META_WAIT_MS, DEFAULT_PROVIDER_LOOKUP_MS, DEFAULT_IDLE_ANNOUNCE_MS, DEFAULT_ANNOUNCE_WAIT_MS, DEFAULT_META_ANNOUNCE_WAIT_MS, DEFAULT_NO_SOURCE_TIMEOUT_MS, DEFAULT_ORIGIN_CONCURRENCY, DEFAULT_ORIGIN_RUN_PIECES, DEFAULT_PARENT_MAX_FAILURES, DEFAULT_PARENT_REST_MS, DEFAULT_PIECES_PER_REQUEST, DEFAULT_POOL_BYTES, DEFAULT_REPORT_DELAY_MS, DEFAULT_STALL_MS, DEFAULT_STREAM_WINDOW, DEFAULT_TRACKER_LOST_MS, DEFAULT_UPSTREAM_STALL_MS, DEFAULT_UPSTREAM_TARGET_MS, DEFAULT_UPSTREAM_WAIT_MS, LEGACY_MAX_SOURCE_PEERS, LEGACY_SOURCE_STRIPE_PIECES } from './constants.ts'
import { DownloadCancelledError, NoSourceError, TaskChangedError } from './engine-errors.ts'
import { choosePieceSize, pieceRange } from './piece-size.ts'
import { metaInfoOf, trackersTimedOut } from './tracker-port.ts'
import type { AnnounceResult, TaskMetaInfo, TrackerPort } from './tracker-port.ts'
import type { SourceRegistry } from '../source/index.ts'
import type { FsPieceStore, TaskMetadata } from '../storage/index.ts'
import type { FetchOptions, FetchResult, PieceAttestation, TokenBucket } from '../transfer/index.ts'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export type DownloadState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled'

export interface DownloadRequest {
  taskId: string
  /** the origin; absent for a task known only by its digest */
  url?: string
  /** whole-file digest `sha256:<hex>`, checked when the last piece is in */
  digest?: string
  /** headers sent to the origin */
  headers?: Record<string, string>
  /** may this node fetch from the origin (default true) */
  backToSource?: boolean
  /** per-task download limit */
  rateLimit?: TokenBucket
}

export interface DownloadProgress {
  taskId: string
  url?: string
  state: DownloadState
  contentLength?: number
  pieceCount?: number
  piecesDone: number
  bytesDone: number
  /** bytes of this download that came from peers */
  fromPeers: number
  /** bytes of this download that came from the origin */
  fromOrigin: number
  parents: number
  /** the peer this download streams from in its tracker's pipeline, while it has one */
  upstream?: string
  tracker?: string
  /** why no tracker answered the last announce, when none did */
  trackerError?: string
  startedAt: number
  elapsedMs: number
  error?: { name: string, message: string }
}

export interface DownloadEvents {
  progress: CustomEvent<DownloadProgress>
  state: CustomEvent<DownloadProgress>
}

export interface DownloadContext {
  store: FsPieceStore
  sources: SourceRegistry
  tracker: TrackerPort
  selfPeerId: string
  logger: ComponentLogger
  fetchPieces(peerId: string, addrs: string[], taskId: string, indexes: number[], options: FetchOptions): Promise<FetchResult[]>
  /** node-wide counters updated as bytes arrive */
  onBytes(source: 'peer' | 'origin', n: number): void
  /** how long without a tracker answer an origin run granted by it goes on (default DEFAULT_GRANT_SILENCE_MS) */
  grantSilenceMs?: number
  /** how long a tracker that answered before may be silent before the origin is used (default DEFAULT_TRACKER_LOST_MS) */
  trackerLostMs?: number
  /** nodes that announced a complete copy of the task in the DHT */
  findProviders?(taskId: string, options: { signal: AbortSignal, limit: number }): Promise<string[]>
  /**
   * Sign the digest of a piece this node read from the origin, before the
   * piece is stored, so it is served with the attestation (without it,
   * peers behind this one wait for the tracker's digest)
   */
  attest?(taskId: string, index: number, digest: Uint8Array): Promise<void>
  /** Keep the verified attestation a piece arrived with, to serve the piece on with it */
  keepAttestation?(taskId: string, index: number, digest: Uint8Array, attestation: PieceAttestation): void
}

/**
 * A reader streaming a task while it downloads (the registry mirror): tell
 * the download where it reads, close it when done
 */
export interface StreamCursor {
  /** the reader now needs piece `index` next */
  advance(index: number): void
  close(): void
}

interface ParentState {
  peerId: string
  addrs: string[]
  have: Bitfield
  inflight: number
  failures: number
  restUntil: number
  bytes: number
  /** its measured delivery rate sizes how many pieces are asked of it at once */
  rate: DeliveryRate
  /** until when it is asked only for pieces whose digest we know: it sent one without a usable attestation */
  noAttestUntil: number
}

const ORIGIN = 'origin'
/** ExpectedPiece.digest of a piece whose digest we do not know yet */
const NO_DIGEST = new Uint8Array(0)

/**
 * One download: a state machine (pending → running → succeeded | failed |
 * cancelled) that asks the tracker for metadata, parents and source grants,
 * pulls pieces from several parents at once (rarest first, pipelined), fetches
 * its granted pieces from the origin, reports what it holds, and falls back to
 * the origin only for what no peer can give.
 */
export class Download extends TypedEventEmitter<DownloadEvents> {
  public readonly request: DownloadRequest
  public state: DownloadState = 'pending'
  public readonly done: Promise<TaskMetadata>
  private readonly ctx: DownloadContext
  private readonly log: Logger
  private readonly controller = new AbortController()
  private readonly picker = new PiecePicker()
  private readonly blocklist = new Blocklist()
  private readonly parents = new Map<string, ParentState>()
  /** the pipeline predecessor the tracker named: pieces are streamed from it in index order */
  private upstream?: string
  /** when the upstream last delivered a piece, or was first asked while it had nothing outstanding */
  private upstreamHeardAt = 0
  /**
   * Aborts the requests held at the current upstream. When the tracker names
   * another one (it moved a slow peer to the chain's end), the pieces the old
   * one still holds are asked of the new one at once, not when the old one's
   * answers run out (DEFAULT_UPSTREAM_WAIT_MS) while every node behind us waits
   * for them.
   */
  private upstreamFetches?: AbortController
  /**
   * The task's source peers as the tracker last named them: a piece whose
   * digest we lack yet may be taken on one's signed digest (PieceAttestation)
   */
  private sources: ReadonlySet<string> = new Set()
  /** parents found as DHT providers (kept when a tracker answer does not list them) */
  private readonly providers = new Set<string>()
  /** pieces in flight: index → parents (or 'origin') */
  private readonly inflight = new Map<number, Set<string>>()
  /** pieces the tracker wants this node to fetch from the origin (its whole current grant) */
  private trackerGrants = new Set<number>()
  /** the stripe width the tracker cut our grant in (undefined: a tracker that does not say) */
  private grantStripe?: number
  /** pieces this node takes from the origin on its own: no tracker, or stalled */
  private readonly selfGrants = new Set<number>()
  private readonly sourceOf = new Map<number, string>()
  private readonly pendingReports = new Map<number, Uint8Array>()
  /** pieces whose digest the tracker knows, held since the last announce was sent (reported only at the end) */
  private readonly unannounced = new Map<number, Uint8Array>()
  /** pieces being written right now (end-game can deliver one twice) */
  private readonly storing = new Set<number>()
  private readonly writes = new Set<Promise<void>>()
  /** buffers pieces from parents arrive in, reused once written */
  private pool?: PieceBufferPool
  /** where streaming readers are: the pieces just ahead of them go first */
  private readonly readers = new Set<{ at: number }>()
  private trackerKnows: boolean[] = []
  /** when an answer last told which digests the tracker knows */
  private digestsAt = 0
  private meta?: TaskMetadata
  private tracker?: string
  private noTracker = false
  /** when the tracker that answered before stopped answering */
  private trackerLostAt = 0
  /** when the last announce the tracker answered was sent: it counts us live from then */
  private trackerHeardAt = 0
  /** the last announce failed only by timeouts: the tracker is slow, not gone */
  private trackerSlow = false
  private trackerError?: string
  private announcing = false
  private nextAnnounceAt = 0
  private intervalMs = DEFAULT_ANNOUNCE_INTERVAL_MS
  /** origin runs in flight; the end of the download waits for them as for writes */
  private readonly originRuns = new Set<Promise<void>>()
  /**
   * Bumped by every answer to an announce sent while no origin run was in
   * flight: a tracker grant is used for one origin run, then confirmed again
   * by such an answer. An answer to an announce sent during a run is not a
   * confirmation: the tracker did not yet know that run's last pieces were
   * done, so it still counted that stripe as ours and the next stripe as
   * free to move; starting the next stripe on it let another source peer be
   * given the same stripe (read twice from the origin).
   */
  private grantEpoch = 0
  private grantEpochUsed = -1
  /** an origin run ended while an announce was in flight: announce again as soon as it returns */
  private announceAgain = false
  private lastProgressAt = Date.now()
  private reportTimer?: ReturnType<typeof setTimeout>
  private reportInFlight?: Promise<void>
  private wake?: () => void
  private fatal?: Error
  private readonly startedAt = Date.now()
  private fromPeers = 0
  private fromOrigin = 0
  private finishedAt?: number

  constructor (ctx: DownloadContext, request: DownloadRequest) {
    super()
    this.ctx = ctx
    this.request = { backToSource: true, ...request }
    this.log = ctx.logger.forComponent(`damselfly:task:${request.taskId.slice(0, 8)}`)
    // every fetch, write and origin read of the download listens to it
    setMaxListeners(Infinity, this.controller.signal)
    this.done = this.run()
    // the caller may never await `done` (e.g. a cancelled download in the daemon)
    this.done.catch(() => {})
  }

  /** pending or running: not finished yet */
  isActive (): boolean {
    return this.state === 'pending' || this.state === 'running'
  }

  cancel (): void {
    if (this.isActive()) {
      this.controller.abort(new DownloadCancelledError(`the download of task ${this.request.taskId} was cancelled`))
      this.wakeUp()
    }
  }

  /**
   * A reader will read the task from piece `from` on: the
   * DEFAULT_STREAM_WINDOW missing pieces ahead of the furthest-behind
   * reader are requested first, in order; the rest stay rarest-first.
   */
  stream (from: number): StreamCursor {
    const reader = { at: Math.max(0, Math.floor(from)) }
    this.readers.add(reader)
    this.wakeUp()
    return {
      advance: (index: number) => {
        if (index !== reader.at) {
          reader.at = Math.max(0, Math.floor(index))
          this.wakeUp()
        }
      },
      close: () => { this.readers.delete(reader) }
    }
  }

  /** The first missing piece at or after the slowest reader, if any reader waits for one */
  private streamFrom (have: Bitfield): number | undefined {
    let from: number | undefined
    for (const { at } of this.readers) {
      for (let i = at; i < have.length; i++) {
        if (!have.get(i)) {
          from = Math.min(from ?? i, i)
          break
        }
      }
    }
    return from
  }

  progress (): DownloadProgress {
    const meta = this.meta
    let piecesDone = 0
    let bytesDone = 0
    if (meta != null && this.ctx.store.getTask(meta.taskId) != null) {
      const have = this.haveBitfield()
      piecesDone = have.count()
      bytesDone = this.state === 'succeeded' ? meta.contentLength : Math.min(meta.contentLength, piecesDone * meta.pieceSize)
    }
    return {
      taskId: this.request.taskId,
      url: this.request.url,
      state: this.state,
      contentLength: meta?.contentLength,
      pieceCount: meta?.pieceCount,
      piecesDone,
      bytesDone,
      fromPeers: this.fromPeers,
      fromOrigin: this.fromOrigin,
      parents: this.parents.size,
      upstream: this.upstream,
      tracker: this.tracker,
      trackerError: this.noTracker ? this.trackerError : undefined,
      startedAt: this.startedAt,
      elapsedMs: (this.finishedAt ?? Date.now()) - this.startedAt,
      error: this.fatal != null && this.state === 'failed' ? { name: this.fatal.name, message: this.fatal.message } : undefined
    }
  }

  private setState (state: DownloadState): void {
    this.log('%s → %s', this.state, state)
    this.state = state
    if (state !== 'running' && state !== 'pending') {
      this.finishedAt = Date.now()
    }
    this.safeDispatchEvent('state', { detail: this.progress() })
  }

  private async run (): Promise<TaskMetadata> {
    await Promise.resolve()
    this.setState('running')
    try {
      await this.prepare()
      while (!this.complete()) {
        this.throwIfStopped()
        this.step()
        await this.sleep()
      }
      this.throwIfStopped()
      // the store may hold a piece before its put() returns (the last one
      // also records the task's completion): wait for every run and write,
      // so each piece is counted and reported before the download ends
      await Promise.all([...this.writes, ...this.originRuns])
      // what no announce carried yet goes in the last report
      for (const [index, digest] of this.unannounced) {
        this.pendingReports.set(index, digest)
      }
      this.unannounced.clear()
      await this.flushReports(true)
      await this.verifyDigest()
      this.setState('succeeded')
      return this.ctx.store.getTask(this.request.taskId)!
    } catch (err: any) {
      const error = this.controller.signal.aborted && this.fatal == null ? this.controller.signal.reason : err
      this.fatal = error
      this.controller.abort(error)
      this.setState(error?.name === 'DownloadCancelledError' ? 'cancelled' : 'failed')
      if (this.tracker != null) {
        // wait a little: after a failed digest check the tracker must forget
        // our digests before anyone asks it again
        await Promise.race([
          this.ctx.tracker.leave(this.tracker, this.request.taskId).catch(() => {}),
          new Promise(resolve => setTimeout(resolve, DEFAULT_LEAVE_WAIT_MS))
        ])
      }
      throw error
    } finally {
      clearTimeout(this.reportTimer)
    }
  }

  private throwIfStopped (): void {
    if (this.fatal != null) {
      throw this.fatal
    }
    if (this.controller.signal.aborted) {
      throw this.controller.signal.reason
    }
  }

  private complete (): boolean {
    return this.meta != null && this.ctx.store.isComplete(this.request.taskId)
  }

  private haveBitfield (): Bitfield {
    return Bitfield.from(this.ctx.store.have(this.request.taskId), this.meta!.pieceCount)
  }

  private metaInfo (): TaskMetaInfo | undefined {
    return this.meta == null ? undefined : metaInfoOf(this.meta)
  }

  /**
   * Metadata: from the local store, the tracker, or an origin stat
   */
  private async prepare (): Promise<void> {
    const { store } = this.ctx
    this.meta = store.getTask(this.request.taskId)
    if (this.meta?.state === 'failed') {
      // a task that failed before (e.g. disk full) resumes with what it has
      await store.setState(this.request.taskId, 'partial')
      this.meta = store.getTask(this.request.taskId)
    }
    if (this.complete()) {
      return
    }
    let res = await this.tryAnnounce()
    if (this.meta == null && res?.meta != null) {
      await this.createTask(res.meta)
    }
    if (this.meta == null && this.request.url == null) {
      // no origin to stat: the metadata must come from a tracker (a seed may
      // be registering with it right now) or from a DHT provider's own copy
      res = await this.waitForMeta(res)
    }
    if (this.meta == null) {
      await this.statOrigin()
      if (!this.noTracker) {
        res = await this.tryAnnounce()
      }
    }
    if (res != null) {
      await this.apply(res)
    }
    if (this.noTracker) {
      await this.askProviders()
    }
    this.nextAnnounceAt = Date.now() + this.intervalMs
  }

  private async waitForMeta (first: AnnounceResult | undefined): Promise<AnnounceResult | undefined> {
    const deadline = Date.now() + DEFAULT_META_WAIT_MS
    let res = first
    let providersAsked = false
    while (this.meta == null && Date.now() < deadline) {
      this.throwIfStopped()
      if (!providersAsked || this.noTracker) {
        providersAsked = true
        if (await this.askProviders()) {
          return undefined
        }
      }
      await new Promise(resolve => setTimeout(resolve, DEFAULT_IDLE_ANNOUNCE_MS * 2))
      res = await this.tryAnnounce()
      if (res?.meta != null) {
        await this.createTask(res.meta)
      }
    }
    return res
  }

  /**
   * Nodes that provide the task in the DHT answer for their own copy: use
   * them as parents when no tracker can. Their piece digests are their own
   * (the same trust as a tracker's, which relays them); the whole-file
   * digest, when known, is the end-to-end check.
   */
  private async askProviders (): Promise<boolean> {
    if (this.ctx.findProviders == null) {
      return false
    }
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(DEFAULT_PROVIDER_LOOKUP_MS)])
    const providers = await this.ctx.findProviders(this.request.taskId, { signal, limit: DEFAULT_MAX_PROVIDERS }).catch(() => [])
    let found = false
    for (const peerId of providers) {
      try {
        const res = await this.ctx.tracker.announceDirect(peerId, {
          taskId: this.request.taskId,
          url: this.request.url,
          digest: this.request.digest,
          meta: this.metaInfo(),
          have: this.meta != null ? this.haveBitfield() : undefined,
          wantGrant: false
        }, { signal: this.controller.signal })
        if (this.meta == null && res.meta != null) {
          await this.createTask(res.meta)
        }
        if (this.meta != null) {
          await this.apply(res)
          found = true
        }
      } catch (err: any) {
        this.log('provider %s could not help with task %s - %s', peerId, this.request.taskId, err.message)
      }
    }
    if (found) {
      this.log('using %d DHT providers of task %s', this.parents.size, this.request.taskId)
    }
    return found
  }

  private async statOrigin (): Promise<void> {
    const url = this.request.url
    if (url == null) {
      throw new NoSourceError(`no tracker knows task ${this.request.taskId} and it has no origin URL; give the URL, or check that a node holding it is in the swarm (damselfly doctor)`)
    }
    const stat = await this.ctx.sources.stat(url, { headers: this.request.headers, signal: this.controller.signal })
    await this.createTask({ contentLength: stat.contentLength, pieceSize: choosePieceSize(stat.contentLength), etag: stat.etag, lastModified: stat.lastModified, url, digest: this.request.digest })
  }

  private async createTask (info: TaskMetaInfo): Promise<void> {
    this.meta = await this.ctx.store.createTask({
      taskId: this.request.taskId,
      contentLength: info.contentLength,
      pieceSize: info.pieceSize,
      url: this.request.url ?? info.url,
      digest: this.request.digest ?? info.digest,
      etag: info.etag,
      lastModified: info.lastModified
    }, { signal: this.controller.signal })
    // a streaming reader (the registry mirror) waits for the metadata
    this.safeDispatchEvent('progress', { detail: this.progress() })
  }

  private async tryAnnounce (): Promise<AnnounceResult | undefined> {
    try {
      const have = this.meta != null ? this.haveBitfield() : undefined
      const sentAt = Date.now()
      // this announce's bitfield covers them
      this.unannounced.clear()
      const res = await this.ctx.tracker.announce({
        taskId: this.request.taskId,
        url: this.request.url,
        digest: this.request.digest,
        meta: this.metaInfo(),
        have,
        wantGrant: this.request.backToSource === true && this.request.url != null,
        wantDigests: this.needDigests(have),
        // no upstream yet, or one we would ask ahead now
        attested: this.upstream == null || (this.parents.get(this.upstream)?.noAttestUntil ?? 0) <= Date.now(),
        waitMs: this.announceWaitMs()
      }, { signal: this.controller.signal })
      if (res.direct !== true) {
        this.trackerHeardAt = sentAt
      }
      if (this.noTracker) {
        this.log('tracker %s reachable again', res.tracker)
      }
      this.noTracker = false
      if (res.status === 'refused') {
        this.log('tracker %s refused: %s', res.tracker, res.message)
      }
      return res
    } catch (err: any) {
      if (this.controller.signal.aborted) {
        throw this.controller.signal.reason
      }
      this.trackerSlow = trackersTimedOut(err)
      if (!this.noTracker) {
        this.trackerLostAt = Date.now()
        this.log.error('no tracker reachable for task %s: %s; %s', this.request.taskId, err.message,
          this.tracker == null ? 'going on with the origin' : `going on with the parents it named, and with the origin if it stays silent for ${DEFAULT_TRACKER_LOST_MS / 1000} s`)
      }
      this.noTracker = true
      this.trackerError = err.message
      return undefined
    }
  }

  /**
   * How long the tracker may hold our announce: while we lack the metadata,
   * until the peer it told to stat the origin announces it; while idle, until
   * a piece we lack appears (long polls)
   */
  private announceWaitMs (): number {
    if (this.meta == null) {
      return DEFAULT_META_ANNOUNCE_WAIT_MS
    }
    return this.idle() ? DEFAULT_ANNOUNCE_WAIT_MS : 0
  }

  /**
   * Nothing to fetch and nothing in flight: the tracker may hold our announce
   * until a piece we lack appears
   */
  private idle (): boolean {
    return this.meta != null && !this.complete() && this.inflight.size === 0 && this.originRuns.size === 0 && this.writes.size === 0 &&
      this.trackerGrants.size === 0 && this.selfGrants.size === 0
  }

  /**
   * Digests are worth asking for while some piece's digest is unknown here,
   * or the tracker may not know a piece we hold (a new tracker)
   */
  private needDigests (have: Bitfield | undefined): boolean {
    const meta = this.meta
    // now and then anyway: a tracker that lost its state must hear of our pieces again
    if (meta == null || have == null || meta.pieceDigests.some(d => d == null) || Date.now() - this.digestsAt > DEFAULT_DIGEST_REFRESH_MS) {
      return true
    }
    for (const i of have.indexes()) {
      if (this.trackerKnows[i] !== true && !this.pendingReports.has(i)) {
        return true
      }
    }
    return false
  }

  /**
   * Take in an announce answer: digests, parents, grants
   */
  private async apply (res: AnnounceResult, confirmsGrant = true): Promise<void> {
    const meta = this.meta
    if (meta == null) {
      return
    }
    if (res.direct !== true) {
      this.noteTracker(res)
    }
    if (res.meta != null && (res.meta.contentLength !== meta.contentLength || res.meta.pieceSize !== meta.pieceSize)) {
      await this.ctx.store.delete(meta.taskId)
      throw new TaskChangedError(`the tracker describes task ${meta.taskId} as ${res.meta.contentLength} bytes in ${res.meta.pieceSize}-byte pieces, but this node had ${meta.contentLength} in ${meta.pieceSize}: the file changed at the origin; the partial copy was dropped, run the download again`)
    }
    await this.learnDigests(res, meta)
    const seen = this.mergeParents(res)
    if (res.direct === true) {
      return
    }
    const have = this.haveBitfield()
    this.followUpstream(res.upstream)
    this.sources = new Set(res.sources ?? [])
    for (const [id, p] of this.parents) {
      if (!seen.has(id) && p.inflight === 0 && !this.providers.has(id) && id !== this.upstream) {
        this.parents.delete(id)
      }
    }

    // each answer carries our whole current grant: pieces missing from it were moved to another peer
    this.trackerGrants = new Set(res.grant.filter(i => i >= 0 && i < meta.pieceCount && !have.get(i)))
    this.grantStripe = res.grantStripe
    if (confirmsGrant) {
      this.grantEpoch++
    }
    this.reportUnknownDigests(have)
  }

  /** The tracker that answered, and the announce interval it asks for */
  private noteTracker (res: AnnounceResult): void {
    if (this.tracker != null && this.tracker !== res.tracker) {
      this.log('tracker changed %s → %s', this.tracker, res.tracker)
      this.trackerKnows = []
    } else if (this.tracker == null) {
      this.log('tracker %s', res.tracker)
    }
    this.tracker = res.tracker
    this.intervalMs = res.intervalMs > 0 ? res.intervalMs : DEFAULT_ANNOUNCE_INTERVAL_MS
  }

  /** Store the piece digests the answer carries that we lacked, and note which the tracker knows */
  private async learnDigests (res: AnnounceResult, meta: TaskMetadata): Promise<void> {
    const digests = res.digests ?? []
    const learned: Array<string | undefined> = meta.pieceDigests.slice()
    let changed = false
    // an answer without digests (not asked for) says nothing of what the tracker knows
    if (res.direct !== true && res.digests != null) {
      this.digestsAt = Date.now()
      this.trackerKnows = Array.from({ length: meta.pieceCount }, (_, i) => digests[i] != null && digests[i]!.byteLength === 32)
    }
    for (let i = 0; i < meta.pieceCount; i++) {
      const d = digests[i]
      if (d != null && d.byteLength === 32 && learned[i] == null) {
        learned[i] = Buffer.from(d).toString('hex')
        changed = true
      }
    }
    if (changed) {
      await this.ctx.store.setPieceDigests(meta.taskId, learned)
      this.meta = this.ctx.store.getTask(meta.taskId)
    }
  }

  /** Add or update the parents the answer names (not ourselves, not blocked); returns their ids */
  private mergeParents (res: AnnounceResult): Set<string> {
    const now = Date.now()
    const seen = new Set<string>()
    for (const p of res.parents) {
      if (p.peerId === this.ctx.selfPeerId || this.blocklist.isBlocked(p.peerId, now)) {
        continue
      }
      seen.add(p.peerId)
      if (res.direct === true) {
        this.providers.add(p.peerId)
      }
      const known = this.parents.get(p.peerId)
      if (known != null) {
        known.have = p.have
        known.addrs = p.addrs
      } else {
        this.parents.set(p.peerId, { peerId: p.peerId, addrs: p.addrs, have: p.have, inflight: 0, failures: 0, restUntil: 0, bytes: 0, rate: new DeliveryRate(), noAttestUntil: 0 })
      }
    }
    return seen
  }

  /**
   * Pieces we hold whose digest the tracker does not know yet (ours from the
   * origin, or a tracker that took over): report them
   */
  private reportUnknownDigests (have: Bitfield): void {
    const digests = this.meta!.pieceDigests
    for (let i = 0; i < digests.length; i++) {
      if (have.get(i) && !this.trackerKnows[i] && digests[i] != null) {
        this.pendingReports.set(i, Buffer.from(digests[i]!, 'hex'))
      }
    }
    if (this.pendingReports.size > 0) {
      this.scheduleReport()
    }
  }

  /**
   * Start whatever work can start now
   */
  private step (): void {
    const now = Date.now()
    if (!this.announcing && now >= this.nextAnnounceAt) {
      this.announcing = true
      const quiet = this.originRuns.size === 0
      this.tryAnnounce()
        .then(async (res) => { if (res != null) { await this.apply(res, quiet) } })
        .catch((err) => { this.fatal ??= err })
        .finally(() => {
          this.announcing = false
          this.nextAnnounceAt = this.announceAgain ? Date.now() : Date.now() + this.intervalMs
          this.announceAgain = false
          this.wakeUp()
        })
    }
    this.fallBackToSource(now)
    this.startOriginWork()
    const started = this.startPeerWork(now)
    if (!started && this.originRuns.size === 0 && !this.announcing && this.inflight.size === 0 && this.writes.size === 0) {
      // idle: ask again soon rather than a whole interval later
      this.nextAnnounceAt = Math.min(this.nextAnnounceAt, now + DEFAULT_IDLE_ANNOUNCE_MS)
    }
  }

  private fallBackToSource (now: number): void {
    const meta = this.meta!
    const canUseOrigin = this.request.backToSource === true && this.request.url != null
    const stalled = now - this.lastProgressAt > DEFAULT_STALL_MS
    // Without a tracker, this node takes from the origin every piece no parent
    // holds, so it must not decide that too early (that cost up to 11x S of
    // origin egress). A tracker that only times out - before or after its
    // first answer - is alive behind saturated links or busy: the origin waits
    // until it has been silent AND no piece arrived for lostMs. One that
    // answered before and is now unreachable waits lostMs; with no tracker at
    // all (none elected, none reachable) the origin is used at once.
    const lostMs = this.ctx.trackerLostMs ?? DEFAULT_TRACKER_LOST_MS
    const trackerGone = this.noTracker && (this.trackerSlow
      ? now - this.trackerLostAt >= lostMs && now - this.lastProgressAt >= lostMs
      : this.tracker == null || now - this.trackerLostAt >= lostMs)
    if (!trackerGone && !stalled) {
      return
    }
    if (!canUseOrigin) {
      if (now - this.lastProgressAt > DEFAULT_NO_SOURCE_TIMEOUT_MS && this.inflight.size === 0) {
        this.fatal ??= new NoSourceError(`no peer gave a piece of task ${meta.taskId} for ${Math.round(DEFAULT_NO_SOURCE_TIMEOUT_MS / 1000)} s and back-to-source is disabled; allow the origin, or check the swarm with damselfly doctor`)
      }
      return
    }
    // grants of a tracker that no longer answers cannot be confirmed: they
    // are ours to take like any other piece
    this.trackerGrants.clear()
    const have = this.haveBitfield()
    let added = 0
    for (let i = 0; i < meta.pieceCount; i++) {
      if (have.get(i) || this.selfGrants.has(i) || this.inflight.has(i)) {
        continue
      }
      // only take what no parent can give
      if ([...this.parents.values()].some(p => p.have.get(i))) {
        continue
      }
      this.selfGrants.add(i)
      added++
    }
    if (added > 0) {
      this.log('back to source for %d pieces no peer can give (%s)', added, this.noTracker ? 'no tracker reachable' : 'stalled')
      this.lastProgressAt = now
    }
  }

  private startOriginWork (): void {
    const meta = this.meta!
    if ((this.trackerGrants.size === 0 && this.selfGrants.size === 0) || this.request.url == null) {
      return
    }
    const have = this.haveBitfield()
    // a tracker grant may shrink as other peers take stripes of it: use it for
    // one run, then ask again before the next (self grants need no confirmation)
    const fresh = this.grantEpoch > this.grantEpochUsed
    const granted = fresh ? [...this.trackerGrants, ...this.selfGrants] : [...this.selfGrants]
    const todo = [...new Set(granted)].filter(i => !have.get(i) && !this.inflight.has(i)).sort((a, b) => a - b)
    while (this.originRuns.size < DEFAULT_ORIGIN_CONCURRENCY && todo.length > 0) {
      const run = [todo.shift()!]
      const tracked = this.trackerGrants.has(run[0])
      // A tracker grant is read to the end of the tracker's stripe that holds
      // its first piece: the tracker never moves a stripe its holder has
      // started (our lowest granted piece is in it), so one confirmed grant
      // covers it, and the origin is not left idle for a round trip every
      // few pieces (those round trips wait behind piece data on busy links).
      // Pieces are stored and reported one by one as they arrive. Beyond the
      // stripe, the grant may have moved: ask again. Self grants (no tracker)
      // go in short runs, so a tracker that comes back finds little in flight.
      const maxRun = tracked ? stripeEnd(run[0], meta.pieceCount, this.grantStripe) - run[0] : DEFAULT_ORIGIN_RUN_PIECES
      while (todo.length > 0 && todo[0] === run[run.length - 1] + 1 && run.length < maxRun && this.trackerGrants.has(todo[0]) === tracked) {
        run.push(todo.shift()!)
      }
      for (const i of run) {
        this.inflight.set(i, new Set([ORIGIN]))
      }
      if (run.some(i => this.trackerGrants.has(i))) {
        this.grantEpochUsed = this.grantEpoch
      }
      const work: Promise<void> = this.fetchFromOrigin(meta, run, tracked)
        .catch((err) => {
          if (!this.controller.signal.aborted) {
            this.fatal ??= err
          }
        })
        .finally(() => {
          this.originRuns.delete(work)
          for (const i of run) {
            this.inflight.delete(i)
          }
          // confirm what is left of the grant right away
          this.nextAnnounceAt = Math.min(this.nextAnnounceAt, Date.now())
          this.announceAgain = this.announcing
          this.wakeUp()
        })
      this.originRuns.add(work)
    }
  }

  /**
   * Read a run of pieces from the origin, storing each as it completes. A
   * run granted by the tracker stops early once the tracker has not heard
   * from us for DEFAULT_GRANT_SILENCE_MS (it will soon count us gone and
   * give the rest to another peer, and reading on would fetch those pieces
   * twice), or once its last answer no longer grants us the next piece.
   */
  private async fetchFromOrigin (meta: TaskMetadata, run: number[], tracked: boolean): Promise<void> {
    const silenceMs = this.ctx.grantSilenceMs ?? DEFAULT_GRANT_SILENCE_MS
    const first = pieceRange(run[0], meta.contentLength, meta.pieceSize)
    const last = pieceRange(run[run.length - 1], meta.contentLength, meta.pieceSize)
    let index = run[0]
    let piece = new Uint8Array(pieceRange(index, meta.contentLength, meta.pieceSize).length)
    let filled = 0
    for await (const chunk of this.ctx.sources.readRange(this.request.url!, {
      start: first.start,
      end: last.end,
      headers: this.request.headers,
      validator: meta.etag != null || meta.lastModified != null ? { etag: meta.etag, lastModified: meta.lastModified } : undefined,
      signal: this.controller.signal
    })) {
      let offset = 0
      while (offset < chunk.byteLength) {
        const n = Math.min(piece.byteLength - filled, chunk.byteLength - offset)
        piece.set(chunk.subarray(offset, offset + n), filled)
        filled += n
        offset += n
        if (filled === piece.byteLength) {
          await this.request.rateLimit?.take(piece.byteLength, { signal: this.controller.signal })
          await this.storeFromOrigin(meta.taskId, index, piece)
          this.pieceDone(index, ORIGIN, piece.byteLength)
          index++
          if (tracked && index <= run[run.length - 1] && Date.now() - this.trackerHeardAt > silenceMs) {
            this.log('stopping the origin run at piece %d: the tracker has not heard from us for %d ms and may give the rest to others', index, Date.now() - this.trackerHeardAt)
            return
          }
          if (tracked && index <= run[run.length - 1] && !this.trackerGrants.has(index)) {
            // a long run (one source reads the whole task as one stripe)
            // outlives grants that move: a tracker that took over, or ours
            // after counting us gone, gave the rest to another peer
            this.log('stopping the origin run at piece %d: the tracker\'s last answer no longer grants it to us', index)
            return
          }
          if (index <= run[run.length - 1]) {
            piece = new Uint8Array(pieceRange(index, meta.contentLength, meta.pieceSize).length)
            filled = 0
          }
        }
      }
    }
  }

  /**
   * Store a piece read from the origin. With a signer, its digest is signed
   * first, so the piece is never served without the attestation the peers
   * behind us take it on
   */
  private async storeFromOrigin (taskId: string, index: number, piece: Uint8Array): Promise<void> {
    if (this.ctx.attest == null) {
      await this.ctx.store.put(taskId, index, piece, { signal: this.controller.signal })
      return
    }
    const digest = createHash('sha256').update(piece).digest()
    try {
      await this.ctx.attest(taskId, index, digest)
    } catch (err: any) {
      this.log.error('could not sign the digest of piece %d - %e', index, err)
    }
    await this.ctx.store.put(taskId, index, piece, { expectedDigest: digest.toString('hex'), verified: true, signal: this.controller.signal })
  }

  private startPeerWork (now: number): boolean {
    const meta = this.meta!
    if (this.parents.size === 0) {
      return false
    }
    const have = this.haveBitfield()
    if (this.streamFromUpstream(now, have)) {
      return true
    }
    const usable = new Map<string, Bitfield>()
    const capacity = new Map<string, number>()
    for (const p of this.parents.values()) {
      if (p.restUntil > now || this.blocklist.isBlocked(p.peerId, now)) {
        continue
      }
      // only pieces whose digest we know can be verified, so only those are asked for
      const view = p.have.clone()
      for (const i of view.indexes()) {
        if (meta.pieceDigests[i] == null) {
          view.clear(i)
        }
      }
      usable.set(p.peerId, view)
      capacity.set(p.peerId, Math.max(0, pipelineDepth(p.rate.bytesPerS, meta.pieceSize) - p.inflight))
    }
    // pieces still being written are as good as had: never asked for again, not even in end-game
    for (const i of this.storing) {
      have.set(i)
    }
    const assignments = this.picker.pick({
      pieceCount: meta.pieceCount,
      have,
      inflight: this.inflight,
      parents: usable,
      capacity,
      rng: Math.random,
      sequentialFrom: this.streamFrom(have),
      sequentialWindow: DEFAULT_STREAM_WINDOW
    })
    if (assignments.length === 0) {
      return false
    }
    const byParent = new Map<string, number[]>()
    for (const a of assignments) {
      byParent.set(a.peerId, [...(byParent.get(a.peerId) ?? []), a.index])
    }
    for (const [peerId, indexes] of byParent) {
      for (let i = 0; i < indexes.length; i += DEFAULT_PIECES_PER_REQUEST) {
        this.fetchFromParent(this.parents.get(peerId)!, indexes.slice(i, i + DEFAULT_PIECES_PER_REQUEST))
      }
    }
    return true
  }

  /** Take the upstream the tracker named; requests held at the one before are left */
  private followUpstream (upstream: string | undefined): void {
    if (upstream === this.upstream) {
      return
    }
    this.log('upstream %s', upstream ?? 'none')
    this.upstreamFetches?.abort(new AbortError(`The upstream changed from ${this.upstream} to ${upstream ?? 'none'}`))
    this.upstreamFetches = undefined
    this.upstream = upstream
    this.upstreamHeardAt = Date.now()
  }

  /**
   * Pipeline: keep a short window of requests on the upstream for the
   * lowest missing pieces, asked ahead (it holds each until it has stored
   * it, then sends it on). One flow per link and pieces forwarded as soon
   * as they are stored: 8 nodes at 25 Mbit/s took 27.9 s against 34.5-39.2 s
   * with every peer pulling rarest-first from all (bench/fanout). Only pieces whose digest we
   * know are asked for, so every piece is still verified against the
   * tracker's digest. Returns true while the upstream carries the download;
   * false when there is none or it stalled, and the mesh takes over.
   */
  private streamFromUpstream (now: number, have: Bitfield): boolean {
    const meta = this.meta!
    const up = this.upstream == null ? undefined : this.parents.get(this.upstream)
    if (up == null || up.restUntil > now || this.blocklist.isBlocked(up.peerId, now) || this.readers.size > 0) {
      return false
    }
    if (up.inflight > 0 && now - this.upstreamHeardAt > DEFAULT_UPSTREAM_STALL_MS) {
      // asked and silent: the pieces may be stuck further up the pipeline
      return false
    }
    const depth = pipelineDepth(up.rate.bytesPerS, meta.pieceSize, { targetMs: DEFAULT_UPSTREAM_TARGET_MS })
    // refill once half the window is free, so each request stream carries
    // several pieces (8 nodes at 100 Mbit/s: 23.1 daemon CPU s with a stream
    // per piece and a 250 ms window, 19.9 with half refills of a 1 s one)
    if (up.inflight > 0 && depth - up.inflight < Math.ceil(depth / 2)) {
      return true
    }
    const want = this.nextForUpstream(up, have, depth - up.inflight, now)
    if (want.length > 0) {
      if (up.inflight === 0) {
        this.upstreamHeardAt = now
      }
      this.upstreamFetches ??= new AbortController()
      this.fetchFromParent(up, want, DEFAULT_UPSTREAM_WAIT_MS, this.upstreamFetches.signal)
    }
    return true
  }

  /**
   * The lowest `count` pieces to ask the upstream for: missing here, not in
   * flight, and with a digest we know. While the tracker names the task's
   * sources, also those whose digest we lack: such a piece comes with its
   * source's signature of the digest, so it moves down the pipeline without
   * waiting for the tracker to pass the digest on (netns, 3 nodes at
   * 100 Mbit/s: the peers behind the source finished ~1 s after it without
   * this, and together with it with this)
   */
  private nextForUpstream (up: ParentState, have: Bitfield, count: number, now: number): number[] {
    const digests = this.meta!.pieceDigests
    const attested = this.sources.size > 0 && up.noAttestUntil <= now
    const want: number[] = []
    for (let i = 0; i < digests.length && want.length < count; i++) {
      if (!have.get(i) && !this.inflight.has(i) && !this.storing.has(i) && (attested || digests[i] != null)) {
        want.push(i)
      }
    }
    return want
  }

  /** `switched` aborts this fetch (and only it) without counting a failure against the parent */
  private fetchFromParent (parent: ParentState, indexes: number[], waitMs = 0, switched?: AbortSignal): void {
    const meta = this.meta!
    if (parent.inflight === 0) {
      parent.rate.busy(Date.now())
    }
    parent.inflight += indexes.length
    for (const i of indexes) {
      const set = this.inflight.get(i) ?? new Set()
      set.add(parent.peerId)
      this.inflight.set(i, set)
    }
    // each index is given back once: when its answer comes (so a piece the
    // parent is busy for goes to another parent at once), or when the fetch ends
    const pending = new Set(indexes)
    const release = (i: number): void => {
      if (!pending.delete(i)) {
        return
      }
      parent.inflight--
      const set = this.inflight.get(i)
      set?.delete(parent.peerId)
      if (set?.size === 0) {
        this.inflight.delete(i)
      }
    }
    // pieces arrive into reused buffers: fresh 1 MiB buffers held while
    // they are written made V8 run a full collection every ~10 pieces
    // (bench/transfer)
    const pool = this.pool ??= new PieceBufferPool({ bufferBytes: meta.pieceSize, maxBuffers: Math.max(2, Math.min(DEFAULT_MAX_PENDING_WRITES + DEFAULT_PIPELINE_MAX_DEPTH, Math.floor(DEFAULT_POOL_BYTES / meta.pieceSize))) })
    this.ctx.fetchPieces(parent.peerId, parent.addrs, meta.taskId, indexes, {
      signal: switched == null ? this.controller.signal : AbortSignal.any([this.controller.signal, switched]),
      rateLimit: this.request.rateLimit,
      // asked when the piece's header arrives: the digest may have come meanwhile
      expected: (i) => {
        const digest = this.meta?.pieceDigests[i]
        return { length: pieceRange(i, meta.contentLength, meta.pieceSize).length, digest: digest == null ? NO_DIGEST : Buffer.from(digest, 'hex'), attestors: this.sources }
      },
      pool,
      waitMs,
      onPiece: async (i, bytes, proof) => {
        parent.rate.delivered(bytes.byteLength, Date.now())
        if (parent.peerId === this.upstream) {
          this.upstreamHeardAt = Date.now()
        }
        if (this.storing.has(i) || this.ctx.store.has(meta.taskId, i)) {
          pool.release(bytes)
          return
        }
        // the write (verify, write, fdatasync, journal) runs beside the
        // stream so the network does not wait for the disk; at most
        // DEFAULT_MAX_PENDING_WRITES pieces wait in memory
        while (this.writes.size >= DEFAULT_MAX_PENDING_WRITES) {
          await Promise.race(this.writes)
        }
        this.storing.add(i)
        // the tracker's digest, or the one the source signed: the transfer
        // client verified the bytes against it
        const knownDigest = this.meta?.pieceDigests[i]
        if (proof.attestation != null) {
          this.ctx.keepAttestation?.(meta.taskId, i, proof.digest, proof.attestation)
        }
        const write = this.ctx.store.put(meta.taskId, i, bytes, { expectedDigest: knownDigest ?? Buffer.from(proof.digest).toString('hex'), verified: true, signal: this.controller.signal })
          .then(() => {
            parent.bytes += bytes.byteLength
            this.pieceDone(i, parent.peerId, bytes.byteLength, knownDigest == null)
          }, (err: any) => {
            if (err?.name === 'StorageFullError' || err?.name === 'InsufficientSpaceError') {
              this.fatal ??= err
            } else if (!this.controller.signal.aborted) {
              this.log('could not store piece %d from %s - %s', i, parent.peerId, err?.message)
            }
          })
          .finally(() => {
            // the store has copied the bytes to the file (or given up): the buffer may be reused
            pool.release(bytes)
            this.storing.delete(i)
            this.writes.delete(write)
            this.wakeUp()
          })
        this.writes.add(write)
      },
      onAnswer: (result) => {
        this.onFetchResult(parent, result, Date.now())
        release(result.index)
        this.wakeUp()
      }
    })
      .then((results) => {
        const now = Date.now()
        for (const r of results) {
          if (pending.has(r.index)) {
            this.onFetchResult(parent, r, now)
          }
        }
      })
      .catch((err) => {
        if (switched?.aborted === true) {
          this.log('left the requests held at %s, no longer our upstream', parent.peerId)
        } else if (!this.controller.signal.aborted) {
          this.log('fetch from %s failed - %s', parent.peerId, err.message)
          this.parentFailed(parent)
        }
      })
      .finally(() => {
        indexes.forEach(release)
        if (parent.inflight === 0) {
          parent.rate.idle()
        }
        this.wakeUp()
      })
  }

  /** What one answer says of its parent */
  private onFetchResult (parent: ParentState, r: FetchResult, now: number): void {
    switch (r.status) {
      case 'ok':
        parent.failures = 0
        break
      case 'dont-have':
        parent.have.clear(r.index)
        break
      case 'busy':
        parent.restUntil = now + DEFAULT_BUSY_BACKOFF_MS
        break
      case 'unverifiable':
        // it holds the piece without its source's signature (a node that
        // restarted, or an older one): ask it only for pieces whose digest we
        // know for a while
        parent.noAttestUntil = now + DEFAULT_ATTEST_BACKOFF_MS
        this.log('%s sent piece %d without a usable attestation; asking it for pieces with known digests only for %d ms', parent.peerId, r.index, DEFAULT_ATTEST_BACKOFF_MS)
        break
      case 'unknown-task':
        this.parents.delete(parent.peerId)
        break
      case 'bad-digest':
        this.log.error('parent %s sent a bad piece %d of task %s; reporting it', parent.peerId, r.index, this.request.taskId)
        if (this.blocklist.reportBadPiece(parent.peerId, now)) {
          this.parents.delete(parent.peerId)
        }
        parent.have.clear(r.index)
        if (this.tracker != null) {
          this.ctx.tracker.reportBadPeer(this.tracker, this.request.taskId, parent.peerId, r.index).catch(() => {})
        }
        break
      default:
        if (!this.controller.signal.aborted && r.error?.name !== 'StorageFullError') {
          this.parentFailed(parent)
        } else if (r.error != null) {
          this.fatal ??= r.error
        }
    }
  }

  private parentFailed (parent: ParentState): void {
    parent.failures++
    if (parent.failures >= DEFAULT_PARENT_MAX_FAILURES) {
      parent.restUntil = Date.now() + DEFAULT_PARENT_REST_MS
      parent.failures = 0
    }
  }

  /** `attested`: stored on its source's signed digest, which the source reports to the tracker itself */
  private pieceDone (index: number, source: string, bytes: number, attested = false): void {
    if (this.sourceOf.has(index)) {
      // end-game delivered it twice; the first write counted
      return
    }
    this.lastProgressAt = Date.now()
    this.trackerGrants.delete(index)
    this.selfGrants.delete(index)
    this.sourceOf.set(index, source)
    if (source === ORIGIN) {
      this.fromOrigin += bytes
      this.ctx.onBytes('origin', bytes)
    } else {
      this.fromPeers += bytes
      this.ctx.onBytes('peer', bytes)
    }
    const digest = this.ctx.store.pieceDigest(this.request.taskId, index)
    if (digest != null) {
      // in place: a fresh copy of the metadata per piece copied every digest
      if (this.meta != null) {
        this.meta.pieceDigests[index] = digest
      }
      if (this.trackerKnows[index] === true || attested) {
        // the tracker gave us this digest (or the source that signed it
        // reports it): the next announce's bitfield says we hold the piece.
        // Reporting each such piece as well was most of the tracker's
        // requests (16 nodes: ~4 of 5 per node and second). A piece the
        // tracker still lacks a digest for by the next answer is reported then.
        this.unannounced.set(index, Buffer.from(digest, 'hex'))
      } else {
        this.pendingReports.set(index, Buffer.from(digest, 'hex'))
        this.scheduleReport()
      }
    }
    this.safeDispatchEvent('progress', { detail: this.progress() })
    this.wakeUp()
  }

  private scheduleReport (): void {
    // an ended download reports nothing more (its last batch went out before it ended)
    if (this.reportTimer != null || this.tracker == null || (this.state !== 'pending' && this.state !== 'running')) {
      return
    }
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined
      void this.flushReports()
    }, DEFAULT_REPORT_DELAY_MS)
  }

  /**
   * Send the pending reports. One report is in flight at a time: pieces that
   * finish meanwhile go in the next batch, which leaves when it returns. A
   * tracker slowed down by load (or a saturated link) used to get a new
   * report stream every 100 ms on top of those it had not answered yet.
   * With `wait`, a report in flight is waited for and the rest sent after it
   * (the end of a download); otherwise it is left to send them.
   */
  private async flushReports (wait = false): Promise<void> {
    while (this.reportInFlight != null) {
      if (!wait) {
        return
      }
      await this.reportInFlight
    }
    if (this.tracker == null || this.pendingReports.size === 0) {
      return
    }
    const tracker = this.tracker
    const batch = [...this.pendingReports].map(([index, digest]) => ({ index, digest }))
    this.pendingReports.clear()
    const sent = this.ctx.tracker.report(tracker, this.request.taskId, batch)
      .then(() => {
        for (const { index } of batch) {
          this.trackerKnows[index] = true
        }
      }, (err: any) => {
        this.log('could not report %d pieces to %s - %s', batch.length, tracker, err.message)
        for (const { index, digest } of batch) {
          if (!this.pendingReports.has(index)) {
            this.pendingReports.set(index, digest)
          }
        }
      })
      .finally(() => {
        this.reportInFlight = undefined
        if (this.pendingReports.size > 0) {
          this.scheduleReport()
        }
      })
    this.reportInFlight = sent
    await sent
  }

  /**
   * With a whole-file digest, hash the finished task; on a mismatch say which
   * sources gave which pieces, and drop the task so nobody is served it
   */
  private async verifyDigest (): Promise<void> {
    const digest = this.meta?.digest ?? this.request.digest
    if (digest == null) {
      return
    }
    const actual = await this.ctx.store.assembledDigest(this.request.taskId, { signal: this.controller.signal })
    if (actual !== digest.toLowerCase()) {
      const sources = new Map<string, number[]>()
      for (const [i, s] of this.sourceOf) {
        sources.set(s, [...(sources.get(s) ?? []), i])
      }
      const detail = [...sources].map(([s, list]) => `${s}: ${list.length} pieces`).join('; ')
      this.log.error('task %s: expected %s, got %s; pieces came from %s', this.request.taskId, digest, actual, detail)
      await this.ctx.store.delete(this.request.taskId)
      throw new DigestMismatchError(`the downloaded file does not match the expected digest: expected ${digest}, got ${actual} (pieces from ${detail === '' ? 'the local store' : detail}); the task was dropped — check the --digest value or the origin`)
    }
  }

  private async sleep (): Promise<void> {
    const now = Date.now()
    // while an announce is in flight its answer wakes us (the next one is
    // due only after it): waiting for the past announce time instead re-ran
    // step() every 10 ms for as long as the tracker took to answer
    let until = this.announcing ? now + this.intervalMs : this.nextAnnounceAt
    for (const p of this.parents.values()) {
      if (p.restUntil > now) {
        // a resting parent may be asked again then
        until = Math.min(until, p.restUntil)
      }
    }
    const wait = Math.max(10, Math.min(until - now, DEFAULT_STALL_MS))
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { this.wake = undefined; resolve() }, wait)
      this.wake = () => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
    })
  }

  private wakeUp (): void {
    this.wake?.()
  }
}

/**
 * The end (exclusive) of the tracker's source stripe that holds piece
 * `index`: stripes of `stripe` pieces as the tracker said, or as trackers
 * that do not say cut them
 */
function stripeEnd (index: number, pieceCount: number, stripe = stripeWidth(pieceCount, LEGACY_SOURCE_STRIPE_PIECES, LEGACY_MAX_SOURCE_PEERS)): number {
  return Math.min(pieceCount, (Math.floor(index / stripe) + 1) * stripe)
}
