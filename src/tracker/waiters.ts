/**
 * Announces held by the tracker until a piece their peer lacks appears (long
 * polls). A peer with nothing to fetch used to ask again every 100 ms; now it
 * asks once with a wait, and hears within a report's round trip when another
 * peer gets a piece it lacks.
 *
 * Also announces of peers that lack a task's metadata while another peer
 * gets it from the origin: only that one stats the origin, and the others
 * are answered (and registered) as soon as it announces the metadata.
 */
import { bitIsSet } from '../utils/bitfield.ts'

interface Waiter {
  /** the waiting peer's bitfield, as it announced it; undefined while it waits for the task's metadata */
  have?: Uint8Array
  wake(): void
}

/** True when `other` holds a piece `have` lacks */
export function holdsMissing (have: Uint8Array, other: Uint8Array): boolean {
  for (let i = 0; i < other.byteLength; i++) {
    if ((other[i] & ~(have[i] ?? 0)) !== 0) {
      return true
    }
  }
  return false
}

export class AnnounceWaiters {
  readonly #byTask = new Map<string, Set<Waiter>>()
  /** tasks whose metadata one peer was told to get from the origin, until when the others wait for it */
  readonly #statting = new Map<string, number>()
  readonly #max: number
  #count = 0

  /**
   * @param max - announces held at once over all tasks; beyond it they are answered at once, so waiting requests never fill the tracker's request gate
   */
  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#count
  }

  canWait (): boolean {
    return this.#count < this.#max
  }

  /**
   * Resolve after `ms`, or earlier when `notify` names a piece of `taskId`
   * that `have` lacks, or on `close`
   */
  async wait (taskId: string, have: Uint8Array, ms: number): Promise<void> {
    await this.#wait(taskId, have, ms)
  }

  /** Resolve after `ms`, or earlier when `metaKnown(taskId)` comes, or on `close` */
  async waitForMeta (taskId: string, ms: number): Promise<void> {
    await this.#wait(taskId, undefined, ms)
  }

  /**
   * A peer was told to stat the origin for `taskId`'s metadata and announce
   * it: until `until` (or `metaKnown`), `statPending` says so
   */
  statStarted (taskId: string, until: number, now: number): void {
    if (this.#statting.size >= this.#max) {
      for (const [id, end] of this.#statting) {
        if (end <= now) {
          this.#statting.delete(id)
        }
      }
    }
    if (this.#statting.size < this.#max) {
      this.#statting.set(taskId, until)
    }
  }

  /** How much longer (ms) the peer that stats `taskId`'s origin may take; 0 when none does */
  statPending (taskId: string, now: number): number {
    const until = this.#statting.get(taskId)
    if (until == null || until <= now) {
      this.#statting.delete(taskId)
      return 0
    }
    return until - now
  }

  /** The tracker has `taskId`'s metadata now: wake who waits for it */
  metaKnown (taskId: string): void {
    this.#statting.delete(taskId)
    for (const w of [...this.#byTask.get(taskId) ?? []]) {
      if (w.have == null) {
        w.wake()
      }
    }
  }

  async #wait (taskId: string, have: Uint8Array | undefined, ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      let set = this.#byTask.get(taskId)
      if (set == null) {
        set = new Set()
        this.#byTask.set(taskId, set)
      }
      const waiter: Waiter = {
        have,
        wake: () => {
          clearTimeout(timer)
          if (set.delete(waiter)) {
            this.#count--
            if (set.size === 0 && this.#byTask.get(taskId) === set) {
              this.#byTask.delete(taskId)
            }
          }
          resolve()
        }
      }
      const timer = setTimeout(waiter.wake, ms)
      set.add(waiter)
      this.#count++
    })
  }

  /** A peer now holds `pieces` of `taskId` (indexes, or its whole bitfield): wake who lacks one of them */
  notify (taskId: string, pieces: Iterable<number> | Uint8Array): void {
    const set = this.#byTask.get(taskId)
    if (set == null) {
      return
    }
    const indexes = pieces instanceof Uint8Array ? undefined : [...pieces]
    for (const w of [...set]) {
      const have = w.have
      if (have == null) {
        continue
      }
      const lacks = indexes == null
        ? holdsMissing(have, pieces as Uint8Array)
        : indexes.some(i => !bitIsSet(have, i))
      if (lacks) {
        w.wake()
      }
    }
  }

  /** Answer every held announce now (the tracker stops) */
  close (): void {
    this.#statting.clear()
    for (const set of [...this.#byTask.values()]) {
      for (const w of [...set]) {
        w.wake()
      }
    }
  }
}
