import '../polyfill.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface PieceWaitOptions extends AbortOptions {
  /** give up after this many ms */
  timeoutMs: number
}

/**
 * Callers waiting for pieces to become present, woken when the store marks
 * one present (or forgets its task). Bounded: past `max` pending waits a new
 * one resolves false at once, so a flood of held requests costs no memory.
 */
export class PieceWaiters {
  readonly #byTask = new Map<string, Map<number, Set<(present: boolean) => void>>>()
  readonly #max: number
  #count = 0

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#count
  }

  /** Resolves true when `notify(taskId, index)` comes first, false on timeout, abort, `forget` or when full */
  async wait (taskId: string, index: number, options: PieceWaitOptions): Promise<boolean> {
    if (this.#count >= this.#max || options.signal?.aborted === true || !(options.timeoutMs > 0)) {
      return false
    }
    return new Promise<boolean>(resolve => {
      let pieces = this.#byTask.get(taskId)
      if (pieces == null) {
        pieces = new Map()
        this.#byTask.set(taskId, pieces)
      }
      let set = pieces.get(index)
      if (set == null) {
        set = new Set()
        pieces.set(index, set)
      }
      const done = (present: boolean): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        if (set.delete(done)) {
          this.#count--
          if (set.size === 0 && pieces.get(index) === set) {
            pieces.delete(index)
            if (pieces.size === 0 && this.#byTask.get(taskId) === pieces) {
              this.#byTask.delete(taskId)
            }
          }
        }
        resolve(present)
      }
      const onAbort = (): void => { done(false) }
      const timer = setTimeout(onAbort, options.timeoutMs)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      set.add(done)
      this.#count++
    })
  }

  /** Piece `index` of `taskId` is present: wake its waiters */
  notify (taskId: string, index: number): void {
    for (const done of [...this.#byTask.get(taskId)?.get(index) ?? []]) {
      done(true)
    }
  }

  /** The task is gone: its waiters get false */
  forget (taskId: string): void {
    for (const set of [...this.#byTask.get(taskId)?.values() ?? []]) {
      for (const done of [...set]) {
        done(false)
      }
    }
  }

  /** Wake every waiter with false (the store closes) */
  clear (): void {
    for (const taskId of [...this.#byTask.keys()]) {
      this.forget(taskId)
    }
  }
}
