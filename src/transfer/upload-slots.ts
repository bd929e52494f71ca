import { InvalidParametersError } from '@libp2p/interface'
import type { AbortOptions } from '@libp2p/interface'

/** Gives a slot back; calling it more than once is harmless */
export type ReleaseSlot = () => void

interface Waiter {
  grant(release: ReleaseSlot): void
  cancel(): void
}

/**
 * A counting semaphore for the node's concurrent uploads. Unlike a queue it
 * gives up: acquire() waits at most `waitMs` and then resolves undefined, so
 * the server answers BUSY and the client can ask another parent.
 */
export class UploadSlots {
  readonly size: number
  private used: number
  private readonly waiters: Waiter[]

  constructor (size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new InvalidParametersError(`uploadSlots must be an integer ≥ 1, got ${size}`)
    }

    this.size = size
    this.used = 0
    this.waiters = []
  }

  /** Slots currently held */
  get active (): number {
    return this.used
  }

  /**
   * Take a slot, waiting up to `waitMs` for one to free up. Resolves to the
   * release function, or undefined when no slot became free in time or the
   * signal aborted.
   */
  async acquire (waitMs: number, options: AbortOptions = {}): Promise<ReleaseSlot | undefined> {
    if (options.signal?.aborted === true) {
      return undefined
    }

    if (this.used < this.size) {
      this.used++
      return this.releaser()
    }

    if (waitMs <= 0) {
      return undefined
    }

    return new Promise<ReleaseSlot | undefined>((resolve) => {
      const done = (release: ReleaseSlot | undefined): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        const i = this.waiters.indexOf(waiter)

        if (i !== -1) {
          this.waiters.splice(i, 1)
        }

        resolve(release)
      }
      const onAbort = (): void => { done(undefined) }
      const waiter: Waiter = {
        grant: (release) => { done(release) },
        cancel: () => { done(undefined) }
      }
      const timer = setTimeout(waiter.cancel, waitMs)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  private releaser (): ReleaseSlot {
    let released = false

    return () => {
      if (released) {
        return
      }

      released = true
      const next = this.waiters.shift()

      if (next != null) {
        // hand the slot over directly so a newcomer cannot overtake a waiter
        next.grant(this.releaser())
      } else {
        this.used--
      }
    }
  }
}
