/**
 * Garbage collection of the piece store: tasks unused for longer than a TTL
 * go, and when the store's own bytes exceed its quota the least recently used
 * tasks go until it is back under a low watermark. Only our own bytes count
 * against the quota (a disk filled by other files does not make us drop the
 * cache), a task in use is never removed, and the policy is a pure function
 * so it is tested on its own.
 */
import fs from 'node:fs/promises'
import type { ComponentLogger, Logger } from '@libp2p/interface'

/** Evict down to this share of the quota once it is exceeded (Dragonfly: from 80 % of the disk to 60 %) */
export const GC_LOW_WATERMARK = 0.75

/** A task used this recently is kept whatever its age or the quota: a reader may be between two pieces */
export const GC_MIN_IDLE_MS = 5 * 60_000

/** How often GC runs by default (the Dragonfly client's interval) */
export const DEFAULT_GC_INTERVAL_MS = 15 * 60_000

/** Default TTL of an unused task (the Dragonfly client's task TTL) */
export const DEFAULT_TASK_TTL_MS = 30 * 24 * 3600_000

/** Default quota: this share of the data directory's file system */
export const DEFAULT_STORAGE_QUOTA = '80%'

export interface GcCandidate {
  taskId: string
  /** bytes of its verified pieces */
  bytes: number
  /** when it was last written, read or exported (epoch ms) */
  lastUsedAt: number
  /** a download runs for it, or an operation on it is in progress */
  inUse: boolean
}

export interface GcPolicy {
  /** most bytes the store's tasks may hold; 0: no quota */
  quotaBytes: number
  /** remove tasks unused for this long; 0: never */
  ttlMs: number
  /** @default GC_LOW_WATERMARK */
  lowWatermark?: number
  /** @default GC_MIN_IDLE_MS */
  minIdleMs?: number
}

export interface Eviction {
  taskId: string
  bytes: number
  /** past the TTL; unused longer than asked (an on-demand run); the store over its quota; room on a full disk */
  reason: 'ttl' | 'older' | 'quota' | 'space'
}

/** An on-demand collection (`damselfly gc`, POST /gc) */
export interface CollectOptions {
  /** remove idle tasks unused for this long too (ms > 0), whatever the configured TTL */
  olderThanMs?: number
  /** only choose: remove nothing */
  dryRun?: boolean
}

/**
 * The tasks to remove, in order: every idle task past its TTL, then, while
 * the rest exceed the quota, the least recently used idle tasks until they
 * fit under the low watermark of it
 */
export function chooseEvictions (tasks: GcCandidate[], policy: GcPolicy, now: number): Eviction[] {
  const minIdleMs = policy.minIdleMs ?? GC_MIN_IDLE_MS
  const out: Eviction[] = []
  let total = tasks.reduce((a, t) => a + t.bytes, 0)
  const kept: GcCandidate[] = []
  for (const t of tasks) {
    if (policy.ttlMs > 0 && isIdle(t, now, minIdleMs) && now - t.lastUsedAt >= policy.ttlMs) {
      out.push({ taskId: t.taskId, bytes: t.bytes, reason: 'ttl' })
      total -= t.bytes
    } else {
      kept.push(t)
    }
  }
  if (policy.quotaBytes <= 0 || total <= policy.quotaBytes) {
    return out
  }
  const target = (policy.lowWatermark ?? GC_LOW_WATERMARK) * policy.quotaBytes
  for (const t of idleByLastUse(kept, now, minIdleMs)) {
    if (total <= target) {
      break
    }
    out.push({ taskId: t.taskId, bytes: t.bytes, reason: 'quota' })
    total -= t.bytes
  }
  return out
}

/**
 * Tasks to remove so that a new one fits on a disk that other files filled:
 * the least recently used idle tasks until they free `bytes`; none when all
 * idle tasks together would not free enough (removing them would help nobody)
 */
export function chooseForSpace (tasks: GcCandidate[], bytes: number, now: number, minIdleMs = GC_MIN_IDLE_MS): Eviction[] {
  const out: Eviction[] = []
  let freed = 0
  for (const t of idleByLastUse(tasks, now, minIdleMs)) {
    if (freed >= bytes) {
      break
    }
    out.push({ taskId: t.taskId, bytes: t.bytes, reason: 'space' })
    freed += t.bytes
  }
  return freed >= bytes ? out : []
}

/** Not in use, and not used for `minIdleMs` */
function isIdle (t: GcCandidate, now: number, minIdleMs: number): boolean {
  return !t.inUse && now - t.lastUsedAt >= minIdleMs
}

/** The idle tasks, least recently used first (ties by id, so every node orders them alike) */
function idleByLastUse (tasks: GcCandidate[], now: number, minIdleMs: number): GcCandidate[] {
  return tasks.filter(t => isIdle(t, now, minIdleMs)).sort((a, b) => a.lastUsedAt - b.lastUsedAt || (a.taskId < b.taskId ? -1 : 1))
}

/** What a quota may be written as, for error messages */
export const QUOTA_FORMS = 'a size such as 50GiB, a share of the disk such as 80%, or 0 for none'

/** The percentage of a quota written `NN%` (0-100), else undefined */
export function quotaPercent (text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text)
  return m == null || Number(m[1]) > 100 ? undefined : Number(m[1])
}

/**
 * The quota in bytes: a byte count, or a share of `fsBytes` written `NN%`
 */
export function resolveQuota (quota: number | string, fsBytes: number): number {
  if (typeof quota === 'number') {
    return quota
  }
  const pct = quotaPercent(quota)
  if (pct == null) {
    throw new Error(`Invalid storage quota "${quota}" - use ${QUOTA_FORMS}`)
  }
  return Math.floor(fsBytes * pct / 100)
}

/** The quota in bytes for a store in `dir`: a share is of the size of the file system that holds it */
export async function quotaBytesFor (quota: number | string, dir: string): Promise<number> {
  if (typeof quota === 'number') {
    return quota
  }
  const st = await fs.statfs(dir)
  return resolveQuota(quota, st.blocks * st.bsize)
}

export interface StoreGcInit {
  /** every task of the store with its bytes, last use and whether an operation on it runs */
  usage(): GcCandidate[]
  /** whether a download runs for the task (the store cannot tell) */
  downloading(taskId: string): boolean
  /** remove the task (and stop offering it) */
  remove(taskId: string): Promise<void>
  policy: GcPolicy
  intervalMs: number
  logger: ComponentLogger
  now?(): number
}

export interface StoreGcStats {
  quotaBytes: number
  ttlMs: number
  runs: number
  evicted: number
  evictedBytes: number
  /** the tasks hold more than the quota and nothing more could be removed (all in use) */
  overQuota: boolean
  lastRunAt?: number
  lastError?: string
}

/** Runs chooseEvictions every interval, and soon after the store grew */
export class StoreGc {
  private readonly init: StoreGcInit
  private readonly log: Logger
  private readonly now: () => number
  private timer?: ReturnType<typeof setInterval>
  private soonTimer?: ReturnType<typeof setTimeout>
  /** collections and make-room calls run one at a time */
  private queue: Promise<unknown> = Promise.resolve()
  private readonly counts: StoreGcStats

  constructor (init: StoreGcInit) {
    this.init = init
    this.log = init.logger.forComponent('damselfly:storage:gc')
    this.now = init.now ?? Date.now
    this.counts = { quotaBytes: init.policy.quotaBytes, ttlMs: init.policy.ttlMs, runs: 0, evicted: 0, evictedBytes: 0, overQuota: false }
  }

  start (): void {
    if (this.timer != null || this.init.intervalMs <= 0) {
      return
    }
    this.timer = setInterval(() => { void this.run() }, this.init.intervalMs)
    this.timer.unref()
    this.soon()
  }

  stop (): void {
    clearInterval(this.timer)
    clearTimeout(this.soonTimer)
    this.timer = undefined
  }

  /** Run once shortly (a download just finished: the store grew) */
  soon (delayMs = 1000): void {
    if (this.timer == null) {
      return
    }
    clearTimeout(this.soonTimer)
    this.soonTimer = setTimeout(() => { void this.run() }, delayMs)
    this.soonTimer.unref()
  }

  /**
   * One collection, after any in progress; resolves to what was removed (or,
   * dry, would be). Never throws: a failure is logged and kept in stats
   */
  async run (options: CollectOptions = {}): Promise<Eviction[]> {
    return this.serial(async () => this.collect(options))
  }

  /**
   * A new task (`forTaskId`) needs `bytes` more than the disk has free:
   * remove least recently used idle tasks to free them, when they can.
   * Resolves to the bytes freed (0: nothing could help)
   */
  async makeRoom (bytes: number, forTaskId: string): Promise<number> {
    return this.serial(async () => {
      const tasks = this.candidates().filter(t => t.taskId !== forTaskId)
      const removed = await this.removeAll(chooseForSpace(tasks, bytes, this.now(), this.init.policy.minIdleMs))
      return removed.reduce((a, e) => a + e.bytes, 0)
    })
  }

  stats (): StoreGcStats {
    return { ...this.counts }
  }

  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn)
    this.queue = next.catch(() => {})
    return next
  }

  private candidates (): GcCandidate[] {
    return this.init.usage().map(t => ({ ...t, inUse: t.inUse || this.init.downloading(t.taskId) }))
  }

  private async collect (options: CollectOptions): Promise<Eviction[]> {
    const now = this.now()
    const tasks = this.candidates()
    // an on-demand age limit shorter than the TTL stands in for it in this run
    const { ttlMs } = this.init.policy
    const older = options.olderThanMs
    const policy = older != null && (ttlMs <= 0 || older < ttlMs) ? { ...this.init.policy, ttlMs: older } : this.init.policy
    const pastTtl = new Set(tasks.filter(t => ttlMs > 0 && now - t.lastUsedAt >= ttlMs).map(t => t.taskId))
    const chosen = chooseEvictions(tasks, policy, now)
      .map(e => e.reason === 'ttl' && !pastTtl.has(e.taskId) ? { ...e, reason: 'older' as const } : e)
    if (options.dryRun === true) {
      return chosen
    }
    this.counts.runs++
    this.counts.lastRunAt = now
    delete this.counts.lastError
    const done = await this.removeAll(chosen)
    const total = tasks.reduce((a, t) => a + t.bytes, 0) - done.reduce((a, e) => a + e.bytes, 0)
    const quota = this.init.policy.quotaBytes
    this.counts.overQuota = quota > 0 && total > quota
    if (this.counts.overQuota) {
      this.log('the store holds %d bytes, over its quota of %d: the rest is in use or used in the last %d s', total, quota, Math.round((this.init.policy.minIdleMs ?? GC_MIN_IDLE_MS) / 1000))
    }
    return done
  }

  /** Remove each task still not downloading; failures are logged and kept as the last error */
  private async removeAll (evictions: Eviction[]): Promise<Eviction[]> {
    const done: Eviction[] = []
    for (const e of evictions) {
      if (this.init.downloading(e.taskId)) {
        // asked for again since the collection began
        continue
      }
      try {
        await this.init.remove(e.taskId)
        done.push(e)
        this.counts.evicted++
        this.counts.evictedBytes += e.bytes
        this.log('removed task %s (%d bytes): %s', e.taskId, e.bytes, EVICTION_REASONS[e.reason])
      } catch (err: any) {
        this.counts.lastError = `could not remove task ${e.taskId}: ${err.message}`
        this.log.error('could not remove task %s - %e', e.taskId, err)
      }
    }
    return done
  }
}

/** Why a task was removed, in words */
export const EVICTION_REASONS: Record<Eviction['reason'], string> = {
  ttl: 'unused longer than the task TTL',
  older: 'unused longer than asked',
  quota: 'the store was over its quota',
  space: 'the disk had no room for a new task'
}
