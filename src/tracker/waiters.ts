/**
 * Announces held by the tracker until a piece their peer lacks appears (long
 * polls). A peer with nothing to fetch used to ask again every 100 ms; now it
 * asks once with a wait, and hears within a report's round trip when another
 * peer gets a piece it lacks.
 */
import { bitIsSet } from '../utils/bitfield.ts'

interface Waiter {
  /** the waiting peer's bitfield, as it announced it */
  have: Uint8Array
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
      const lacks = indexes == null
        ? holdsMissing(w.have, pieces as Uint8Array)
        : indexes.some(i => !bitIsSet(w.have, i))
      if (lacks) {
        w.wake()
      }
    }
  }

  /** Answer every held announce now (the tracker stops) */
  close (): void {
    for (const set of [...this.#byTask.values()]) {
      for (const w of [...set]) {
        w.wake()
      }
    }
  }
}
