import { Bitfield } from '../utils/bitfield.ts'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_DIGEST_REFRESH_MS, DEFAULT_FINISHED_DOWNLOAD_HOLD_MS, DEFAULT_SEED_ANNOUNCE_MS } from './constants.ts'
import { Download } from './download.ts'
import { metaInfoOf } from './tracker-port.ts'
import type { DownloadContext, DownloadProgress, DownloadRequest } from './download.ts'
import type { AnnounceResult, TrackerPort } from './tracker-port.ts'
import type { FsPieceStore, TaskMetadata } from '../storage/index.ts'
import type { Logger } from '@libp2p/interface'

export interface EngineInit extends Omit<DownloadContext, 'onBytes'> {
  /** announce the task in the DHT once it is complete */
  provide?(taskId: string): Promise<void>
  /** how long a finished task is announced to its tracker as a seed (default 30 min) */
  seedAnnounceMs?: number
}

export interface EngineStats {
  /** bytes received from peers by all downloads of this node */
  bytesFromPeers: number
  /** bytes received from origins by all downloads of this node */
  bytesFromOrigin: number
  downloads: { running: number, succeeded: number, failed: number, cancelled: number }
  seeding: number
}

interface Seed {
  until: number
  announcing?: boolean
  timer?: ReturnType<typeof setTimeout>
  tracker?: string
  /** the tracker known to hold every piece digest of ours, and since when */
  confirmed?: string
  confirmedAt?: number
}

/**
 * Runs the downloads of a node: one Download per task (concurrent requests
 * for the same task share it), and keeps finished or imported tasks
 * announced to their tracker as seeds for a while so others are sent here.
 */
export class Engine {
  private readonly init: EngineInit
  private readonly ctx: DownloadContext
  private readonly log: Logger
  private readonly downloads = new Map<string, Download>()
  private readonly seeds = new Map<string, Seed>()
  private readonly counts = { succeeded: 0, failed: 0, cancelled: 0 }
  private bytesFromPeers = 0
  private bytesFromOrigin = 0
  private stopped = false

  constructor (init: EngineInit) {
    this.init = init
    this.log = init.logger.forComponent('damselfly:task:engine')
    this.ctx = {
      ...init,
      onBytes: (source, n) => {
        if (source === 'peer') {
          this.bytesFromPeers += n
        } else {
          this.bytesFromOrigin += n
        }
      }
    }
  }

  get store (): FsPieceStore {
    return this.init.store
  }

  get tracker (): TrackerPort {
    return this.init.tracker
  }

  /**
   * Start (or join) the download of a task
   */
  download (request: DownloadRequest): Download {
    const running = this.active(request.taskId)
    if (running != null) {
      return running
    }
    const d = new Download(this.ctx, request)
    this.downloads.set(request.taskId, d)
    d.done.then(() => {
      this.counts.succeeded++
      this.seed(request.taskId)
      const p = d.progress()
      if (p.fromPeers + p.fromOrigin > 0) {
        // new here: tell the DHT (a task that was already complete was provided before)
        this.init.provide?.(request.taskId).catch((err) => { this.log('could not provide %s in the DHT - %s', request.taskId, err.message) })
      }
    }, () => {
      if (d.state === 'cancelled') {
        this.counts.cancelled++
      } else {
        this.counts.failed++
      }
    }).finally(() => {
      // keep it a while for /tasks/:id and late progress readers, then let it go
      const timer = setTimeout(() => {
        if (this.downloads.get(request.taskId) === d) {
          this.downloads.delete(request.taskId)
        }
      }, DEFAULT_FINISHED_DOWNLOAD_HOLD_MS)
      timer.unref()
    })
    return d
  }

  get (taskId: string): Download | undefined {
    return this.downloads.get(taskId)
  }

  list (): DownloadProgress[] {
    return [...this.downloads.values()].map(d => d.progress())
  }

  /** The task's download while it is pending or running */
  active (taskId: string): Download | undefined {
    const d = this.downloads.get(taskId)
    return d?.isActive() === true ? d : undefined
  }

  cancel (taskId: string): boolean {
    const d = this.active(taskId)
    d?.cancel()
    return d != null
  }

  stats (): EngineStats {
    const running = [...this.downloads.values()].filter(d => d.isActive()).length
    return {
      bytesFromPeers: this.bytesFromPeers,
      bytesFromOrigin: this.bytesFromOrigin,
      downloads: { running, ...this.counts },
      seeding: this.seeds.size
    }
  }

  /**
   * Announce a complete task to its tracker as a seed, now and every
   * interval, for `seedAnnounceMs`
   */
  seed (taskId: string): void {
    if (this.stopped) {
      return
    }
    const known = this.seeds.get(taskId)
    const until = Date.now() + (this.init.seedAnnounceMs ?? DEFAULT_SEED_ANNOUNCE_MS)
    if (known != null) {
      known.until = until
      return
    }
    const seed: Seed = { until }
    this.seeds.set(taskId, seed)
    void this.announceSeed(taskId, seed)
  }

  /**
   * Stop offering a task (it is about to leave the store): no more seed
   * announces, and its tracker hears we left
   */
  forget (taskId: string): void {
    const seed = this.seeds.get(taskId)
    if (seed == null) {
      return
    }
    clearTimeout(seed.timer)
    this.seeds.delete(taskId)
    if (seed.tracker != null) {
      this.init.tracker.leave(seed.tracker, taskId).catch(() => {})
    }
  }

  /**
   * Announce every seed now: after a membership change a task may have a
   * new tracker, which knows nothing of us until we tell it
   */
  reannounceSeeds (): void {
    for (const [taskId, seed] of this.seeds) {
      if (seed.announcing !== true) {
        clearTimeout(seed.timer)
        void this.announceSeed(taskId, seed)
      }
    }
  }

  private async announceSeed (taskId: string, seed: Seed): Promise<void> {
    seed.announcing = true
    try {
      await this.announceSeedOnce(taskId, seed)
    } finally {
      seed.announcing = false
    }
  }

  private async announceSeedOnce (taskId: string, seed: Seed): Promise<void> {
    let interval = DEFAULT_ANNOUNCE_INTERVAL_MS
    const meta = this.init.store.getTask(taskId)
    if (meta == null || this.stopped || Date.now() > seed.until || this.downloads.get(taskId)?.state === 'running') {
      this.seeds.delete(taskId)
      return
    }
    try {
      const announce = async (wantDigests: boolean): Promise<AnnounceResult> => this.init.tracker.announce({
        taskId,
        url: meta.url,
        digest: meta.digest,
        meta: metaInfoOf(meta),
        have: Bitfield.from(this.init.store.have(taskId), meta.pieceCount),
        wantGrant: false,
        wantDigests
      })
      // a seed re-announces every interval for half an hour: without digests
      // (32 bytes per piece in every answer) once its tracker has them all
      // (and now and then anyway: a tracker that lost its state must hear them again)
      let res = await announce(seed.confirmed == null || Date.now() - (seed.confirmedAt ?? 0) > DEFAULT_DIGEST_REFRESH_MS)
      if (res.digests == null && res.tracker !== seed.confirmed) {
        res = await announce(true)
      }
      seed.tracker = res.tracker
      interval = res.intervalMs > 0 ? res.intervalMs : interval
      if (res.digests != null) {
        await this.reportDigests(meta, res.tracker, res.digests)
        seed.confirmed = res.tracker
        seed.confirmedAt = Date.now()
      }
    } catch (err: any) {
      this.log('seed announce of %s failed - %s', taskId, err.message)
      interval = Math.max(interval, 5_000)
    }
    if (!this.stopped && this.seeds.get(taskId) === seed) {
      seed.timer = setTimeout(() => { void this.announceSeed(taskId, seed) }, interval)
    }
  }

  /** Tell the tracker the piece digests of ours it answered without, 1024 to a report */
  private async reportDigests (meta: TaskMetadata, tracker: string, known: Array<Uint8Array | undefined>): Promise<void> {
    const unknown: Array<{ index: number, digest: Uint8Array }> = []
    for (let i = 0; i < meta.pieceCount; i++) {
      const d = known[i]
      if ((d == null || d.byteLength !== 32) && meta.pieceDigests[i] != null) {
        unknown.push({ index: i, digest: Buffer.from(meta.pieceDigests[i]!, 'hex') })
      }
    }
    for (let i = 0; i < unknown.length; i += 1024) {
      await this.init.tracker.report(tracker, meta.taskId, unknown.slice(i, i + 1024))
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const d of this.downloads.values()) {
      d.cancel()
    }
    await Promise.allSettled([...this.downloads.values()].map(async d => d.done))
    const leaves: Array<Promise<void>> = []
    for (const [taskId, seed] of this.seeds) {
      clearTimeout(seed.timer)
      if (seed.tracker != null) {
        leaves.push(this.init.tracker.leave(seed.tracker, taskId).catch(() => {}))
      }
    }
    this.seeds.clear()
    await Promise.allSettled(leaves)
  }
}
