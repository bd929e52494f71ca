import { AbortError, InvalidParametersError } from '@libp2p/interface'
import { DEFAULT_BURST_SECONDS, MIN_BURST_BYTES } from './constants.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface TokenBucketInit {
  /**
   * Sustained rate in bytes per second. 0 or undefined means unlimited:
   * take() then resolves at once.
   */
  rateBps?: number

  /**
   * Most bytes that can be taken without waiting after an idle period. The
   * bucket starts full.
   *
   * @default max(64 KiB, 100 ms worth of rateBps)
   */
  burstBytes?: number
}

interface Waiter {
  bytes: number
  resolve(): void
  reject(err: Error): void
  signal?: AbortSignal
  onAbort?(): void
}

/**
 * A byte-rate limiter. Waiters are served first come, first served, so one
 * large transfer cannot starve small ones queued behind it for longer than
 * its own slices take. A take() larger than the burst is consumed in
 * burst-sized slices, so a 64 MiB piece does not need a 64 MiB burst.
 *
 * Used for the node-wide upload limit, the node-wide download limit and an
 * optional per-task download limit.
 */
export class TokenBucket {
  readonly rateBps: number
  readonly burstBytes: number
  private tokens: number
  private lastRefill: number
  private readonly waiters: Waiter[]
  private timer?: ReturnType<typeof setTimeout>

  constructor (init: TokenBucketInit = {}) {
    const rate = init.rateBps ?? 0

    if (!Number.isFinite(rate) || rate < 0) {
      throw new InvalidParametersError(`Token bucket rateBps must be a finite number ≥ 0 (0 = unlimited), got ${rate}`)
    }

    const burst = init.burstBytes ?? Math.max(MIN_BURST_BYTES, Math.ceil(rate * DEFAULT_BURST_SECONDS))

    if (!Number.isFinite(burst) || burst < 1) {
      throw new InvalidParametersError(`Token bucket burstBytes must be a finite number ≥ 1, got ${burst}`)
    }

    this.rateBps = rate
    this.burstBytes = Math.floor(burst)
    this.tokens = this.burstBytes
    this.lastRefill = Date.now()
    this.waiters = []
  }

  /** true when this bucket never waits */
  get unlimited (): boolean {
    return this.rateBps === 0
  }

  /**
   * Wait until `bytes` may pass. Rejects with the signal's reason (or an
   * AbortError) if aborted while waiting; bytes taken before the abort stay spent.
   */
  async take (bytes: number, options: AbortOptions = {}): Promise<void> {
    if (this.unlimited || bytes <= 0) {
      return
    }

    let remaining = bytes

    while (remaining > 0) {
      const slice = Math.min(remaining, this.burstBytes)
      await this.takeSlice(slice, options)
      remaining -= slice
    }
  }

  private async takeSlice (bytes: number, options: AbortOptions): Promise<void> {
    options.signal?.throwIfAborted()
    this.refill()

    if (this.waiters.length === 0 && this.tokens >= bytes) {
      this.tokens -= bytes
      return
    }

    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, signal: options.signal }

      if (options.signal != null) {
        const signal = options.signal
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter)

          if (i !== -1) {
            this.waiters.splice(i, 1)
          }

          reject(signal.reason ?? new AbortError('Waiting for rate-limit tokens was aborted'))
          this.pump()
        }
        signal.addEventListener('abort', waiter.onAbort, { once: true })
      }

      this.waiters.push(waiter)
      this.pump()
    })
  }

  private refill (): void {
    const now = Date.now()
    const elapsed = now - this.lastRefill

    if (elapsed > 0) {
      this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed * this.rateBps) / 1000)
      this.lastRefill = now
    }
  }

  private pump (): void {
    this.refill()

    while (this.waiters.length > 0 && this.tokens >= this.waiters[0].bytes) {
      const waiter = this.waiters.shift()

      if (waiter == null) {
        break
      }

      this.tokens -= waiter.bytes

      if (waiter.onAbort != null) {
        waiter.signal?.removeEventListener('abort', waiter.onAbort)
      }

      waiter.resolve()
    }

    if (this.timer != null) {
      clearTimeout(this.timer)
      this.timer = undefined
    }

    if (this.waiters.length > 0) {
      const missing = this.waiters[0].bytes - this.tokens
      const waitMs = Math.max(1, Math.ceil((missing * 1000) / this.rateBps))
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.pump()
      }, waitMs)
    }
  }
}
