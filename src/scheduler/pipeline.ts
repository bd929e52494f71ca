/**
 * How many pieces to keep requested from one parent.
 *
 * Enough to cover {@link DEFAULT_PIPELINE_TARGET_MS} of the parent's measured
 * rate, plus one so the parent always has the next piece queued, within
 * [minDepth, maxDepth]. On a fast link (loopback, LAN) that is the maximum;
 * on a slow or shared one (25 Mbit/s, one parent serving many children) two
 * or three, so a parent's connection never holds many seconds of piece data
 * queued ahead of small messages on it (tracker answers, requests), and a
 * piece that arrives is spread again sooner. BitTorrent clients size their
 * request queues by rate for the same reason.
 *
 * Pure.
 */
import { InvalidParametersError } from '@libp2p/interface'
import { DEFAULT_PIPELINE_MAX_DEPTH, DEFAULT_PIPELINE_MIN_DEPTH, DEFAULT_PIPELINE_RATE_WEIGHT, DEFAULT_PIPELINE_TARGET_MS } from './constants.ts'

export interface PipelineOptions {
  /** @default DEFAULT_PIPELINE_MIN_DEPTH (2) */
  minDepth?: number
  /** @default DEFAULT_PIPELINE_MAX_DEPTH (8) */
  maxDepth?: number
  /** @default DEFAULT_PIPELINE_TARGET_MS (500) */
  targetMs?: number
}

/**
 * Pieces to keep in flight to a parent measured at `rateBytesPerS` (undefined
 * before the first measurement: start at the minimum and grow)
 */
export function pipelineDepth (rateBytesPerS: number | undefined, pieceBytes: number, options: PipelineOptions = {}): number {
  const min = options.minDepth ?? DEFAULT_PIPELINE_MIN_DEPTH
  const max = options.maxDepth ?? DEFAULT_PIPELINE_MAX_DEPTH
  const targetMs = options.targetMs ?? DEFAULT_PIPELINE_TARGET_MS
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min < 1 || max < min) {
    throw new InvalidParametersError(`pipeline depths must be integers with 1 <= minDepth <= maxDepth, got ${min} and ${max}`)
  }
  if (!(pieceBytes > 0) || !(targetMs > 0)) {
    throw new InvalidParametersError(`pieceBytes and targetMs must be > 0, got ${pieceBytes} and ${targetMs}`)
  }
  if (rateBytesPerS == null || !Number.isFinite(rateBytesPerS) || rateBytesPerS <= 0) {
    return min
  }
  const depth = Math.ceil(rateBytesPerS * targetMs / 1000 / pieceBytes) + 1
  return Math.min(max, Math.max(min, depth))
}

/**
 * Measures one parent's delivery rate from the gaps between its pieces while
 * requests to it are outstanding (an exponentially weighted average, so a
 * parent whose link fills up is noticed within a few pieces).
 */
export class DeliveryRate {
  private rate?: number
  private since?: number
  private readonly weight: number

  constructor (weight = DEFAULT_PIPELINE_RATE_WEIGHT) {
    if (!(weight > 0 && weight <= 1)) {
      throw new InvalidParametersError(`weight must be in (0, 1], got ${weight}`)
    }
    this.weight = weight
  }

  /** bytes per second, undefined until a piece arrived */
  get bytesPerS (): number | undefined {
    return this.rate
  }

  /** Requests went out to an idle parent at `now` (ms): the next gap counts from here */
  busy (now: number): void {
    this.since = now
  }

  /** The parent has nothing outstanding: time until the next request is not its fault */
  idle (): void {
    this.since = undefined
  }

  /** A piece of `bytes` arrived at `now` (ms) */
  delivered (bytes: number, now: number): void {
    if (this.since != null && now >= this.since) {
      const sample = bytes * 1000 / Math.max(1, now - this.since)
      this.rate = this.rate == null ? sample : this.rate * (1 - this.weight) + sample * this.weight
    }
    this.since = now
  }
}
