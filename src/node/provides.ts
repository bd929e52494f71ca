/**
 * DHT provider records of finished downloads, sent once the node is quiet.
 *
 * A provider record is the fallback for finding a task's holders when no
 * tracker answers; while a swarm fetches a task its tracker already knows
 * every holder. Providing walks the DHT (a closest-peers query, then a record
 * to each of the closest), and the nodes that finish first used to do it while
 * the rest of the swarm was still fetching: each walk costs every node it asks
 * CPU beside its piece traffic. Side by side in bench/fanout netns 16 × 64 MiB
 * at 25 Mbit/s (two pairs of runs), leaving the provides out took the daemons'
 * CPU from 104.0 / 91.1 to 76.3 / 77.1 s and the last copy from 55.3 / 47.4 to
 * 42.1 / 41.8 s. So a provide waits until the node has moved no piece bytes
 * (up or down) and run no download for `quietMs`, or at most `maxDelayMs`.
 * A node sees only its own traffic: in a pipeline the first nodes to finish
 * go quiet a few seconds before the last ones (5 s of quiet gave 47.1 / 47.7 s
 * against 47.2 / 49.6), so the default waits 30 s, still nothing beside how
 * long a tracker keeps serving the task.
 */
import type { Logger } from '@libp2p/interface'

/** Provide once the node has been this long without piece traffic or a running download */
export const DEFAULT_PROVIDE_QUIET_MS = 30_000

/** ...or at the latest this long after the download finished */
export const DEFAULT_PROVIDE_MAX_DELAY_MS = 5 * 60_000

/** How often the node's activity is sampled */
export const PROVIDE_CHECK_INTERVAL_MS = 1_000

export interface DeferredProvidesInit {
  provide(taskId: string): Promise<void>
  /** piece bytes moved so far (any monotonic count; a change means busy) */
  bytesMoved(): number
  /** downloads running now */
  running(): number
  log: Logger
  quietMs?: number
  maxDelayMs?: number
  /** sample the activity on a timer (off in unit tests, which call check()) */
  timer?: boolean
  now?(): number
}

export interface DeferredProvidesStats {
  /** tasks waiting for the node to be quiet */
  waiting: number
  provided: number
  failed: number
}

export class DeferredProvides {
  private readonly init: DeferredProvidesInit
  private readonly now: () => number
  private readonly quietMs: number
  private readonly maxDelayMs: number
  /** task id -> when it was queued */
  private readonly waiting = new Map<string, number>()
  private lastBytes = -1
  private quietSince: number
  private providing = false
  private timer?: ReturnType<typeof setInterval>
  private stopped = false
  private provided = 0
  private failed = 0

  constructor (init: DeferredProvidesInit) {
    this.init = init
    this.now = init.now ?? Date.now
    this.quietMs = init.quietMs ?? DEFAULT_PROVIDE_QUIET_MS
    this.maxDelayMs = init.maxDelayMs ?? DEFAULT_PROVIDE_MAX_DELAY_MS
    this.quietSince = this.now()
  }

  /** Queue a task's provider record (a task already waiting keeps its place) */
  add (taskId: string): void {
    if (this.stopped || this.waiting.has(taskId)) {
      return
    }
    this.waiting.set(taskId, this.now())
    if (this.timer == null && this.init.timer !== false) {
      this.timer = setInterval(() => { void this.check() }, PROVIDE_CHECK_INTERVAL_MS)
      this.timer.unref?.()
    }
  }

  /**
   * Sample the node's activity; provide the tasks that are due: all of them
   * once the node has been quiet for `quietMs`, else those waiting `maxDelayMs`
   */
  async check (): Promise<void> {
    const now = this.now()
    const bytes = this.init.bytesMoved()
    if (bytes !== this.lastBytes || this.init.running() > 0) {
      this.lastBytes = bytes
      this.quietSince = now
    }
    if (this.providing || this.stopped) {
      return
    }
    const quiet = now - this.quietSince >= this.quietMs
    const due = [...this.waiting].filter(([, since]) => quiet || now - since >= this.maxDelayMs).map(([taskId]) => taskId)
    if (due.length === 0) {
      if (this.waiting.size === 0) {
        this.clearTimer()
      }
      return
    }
    this.providing = true
    try {
      // one walk at a time: they are background work
      for (const taskId of due) {
        if (this.stopped) {
          return
        }
        this.waiting.delete(taskId)
        try {
          await this.init.provide(taskId)
          this.provided++
        } catch (err: any) {
          this.failed++
          this.init.log('could not provide %s in the DHT - %s', taskId, err.message)
        }
      }
    } finally {
      this.providing = false
    }
  }

  stats (): DeferredProvidesStats {
    return { waiting: this.waiting.size, provided: this.provided, failed: this.failed }
  }

  /** Drop what waits (a stopping node provides nothing more) */
  stop (): void {
    this.stopped = true
    this.waiting.clear()
    this.clearTimer()
  }

  private clearTimer (): void {
    if (this.timer != null) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }
}
