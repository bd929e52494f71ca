import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import {
  DEFAULT_EVALUATOR_WEIGHTS,
  DEFAULT_MAX_PARENT_FAILURES,
  DEFAULT_MIN_PIECE_COST_SAMPLES,
  DEFAULT_NORMAL_DISTRIBUTION_SAMPLES,
  DEFAULT_PARENT_LIMIT,
  DEFAULT_SLOW_PIECE_FACTOR,
  DEFAULT_SLOW_PIECE_SIGMAS,
  DEFAULT_UNKNOWN_THROUGHPUT_SCORE
} from './constants.ts'

/** Weight of each normalised feature in the parent score */
export interface EvaluatorWeights {
  /** `freeUploadSlots / maxUploadSlots` */
  freeUploadSlots: number
  /** `piecesHeld / pieceCount` */
  piecesHeld: number
  /** `throughputBps / bestThroughputBps` (or the unknown-throughput score) */
  throughput: number
  /** `1 - min(recentFailures, maxParentFailures) / maxParentFailures` */
  recentFailures: number
  /** 1 when the candidate is in our zone, else 0 */
  sameZone: number
}

/**
 * What the scheduler knows about a possible parent for one task. The numbers
 * come from remote reports and our own measurements; values that are not
 * finite count as 0 rather than failing the whole ranking.
 */
export interface ParentCandidate {
  peerId: string
  /** Upload slots the parent has free right now */
  freeUploadSlots: number
  /** Upload slots the parent has in total */
  maxUploadSlots: number
  /** Pieces of the task the parent holds */
  piecesHeld: number
  /** Pieces in the task */
  pieceCount: number
  /** Our measured download rate from this parent, bytes per second; absent when not measured yet */
  throughputBps?: number
  /** Failed piece requests to this parent recently (timeouts, refusals, bad pieces) */
  recentFailures: number
  /** The parent's zone (rack, IDC, region), if it told us */
  zone?: string
}

/** What the candidates are judged against */
export interface EvaluationContext {
  /** Our own zone; candidates in it get the same-zone score */
  zone?: string
  /** The best measured throughput among the candidates (bytes per second), the reference for the throughput score */
  bestThroughputBps: number
}

export interface ScoredParent {
  peerId: string
  /** In [0, 1], higher is better */
  score: number
  candidate: ParentCandidate
}

/** Thresholds of {@link isBadParent}; every field defaults to Dragonfly's value */
export interface BadParentOptions {
  /**
   * Failures at which a parent is bad
   *
   * @default 3
   */
  maxFailures?: number

  /**
   * Samples needed to judge piece costs at all
   *
   * @default 2
   */
  minSamples?: number

  /**
   * Samples from which the three-sigma rule replaces the 20× rule
   *
   * @default 30
   */
  normalDistributionSamples?: number

  /**
   * With fewer samples, last cost > this × mean of the others is bad
   *
   * @default 20
   */
  slowFactor?: number

  /**
   * With enough samples, last cost > mean + this × σ of the others is bad
   *
   * @default 3
   */
  sigmas?: number
}

/**
 * Dragonfly's bad-parent rule (scheduler/scheduling/evaluator `IsBadNode`),
 * plus a failure count:
 *
 * - `failures >= maxFailures` (default 3) → bad
 * - fewer than 2 cost samples → not bad (nothing to compare)
 * - fewer than 30 samples → bad when the last cost is more than 20× the mean
 * of the others (too few samples to assume a distribution)
 * - 30 samples or more → bad when the last cost is above mean + 3σ of the
 * others (population standard deviation)
 *
 * `pieceCostsMs` are the recent piece download times from this parent, oldest
 * first; the caller keeps them in a bounded window.
 *
 * @throws {InvalidParametersError} when a cost is negative or not finite, or `failures` is negative
 */
export function isBadParent (pieceCostsMs: readonly number[], failures: number = 0, options: BadParentOptions = {}): boolean {
  const maxFailures = options.maxFailures ?? DEFAULT_MAX_PARENT_FAILURES
  const minSamples = options.minSamples ?? DEFAULT_MIN_PIECE_COST_SAMPLES
  const normalSamples = options.normalDistributionSamples ?? DEFAULT_NORMAL_DISTRIBUTION_SAMPLES
  const slowFactor = options.slowFactor ?? DEFAULT_SLOW_PIECE_FACTOR
  const sigmas = options.sigmas ?? DEFAULT_SLOW_PIECE_SIGMAS

  if (!(failures >= 0)) {
    throw new InvalidParametersError(`Parent failure count must be >= 0, got ${failures} - count failed piece requests`)
  }
  for (const cost of pieceCostsMs) {
    if (!Number.isFinite(cost) || cost < 0) {
      throw new InvalidParametersError(`Piece costs must be finite non-negative milliseconds, got ${cost} - record the elapsed time of each finished piece`)
    }
  }

  if (failures >= maxFailures) {
    return true
  }

  const n = pieceCostsMs.length
  if (n < Math.max(2, minSamples)) {
    return false
  }

  const last = pieceCostsMs[n - 1]
  const others = n - 1
  let sum = 0
  for (let i = 0; i < others; i++) {
    sum += pieceCostsMs[i]
  }
  const mean = sum / others

  if (n < normalSamples) {
    return last > mean * slowFactor
  }

  let squares = 0
  for (let i = 0; i < others; i++) {
    squares += (pieceCostsMs[i] - mean) ** 2
  }
  const stdev = Math.sqrt(squares / others)
  return last > mean + sigmas * stdev
}

/**
 * How the scheduler chooses parents. {@link PeerEvaluator} is the default;
 * another strategy (say, one that prefers seeds) can be passed in its place.
 */
export interface ParentEvaluator {
  score(candidate: ParentCandidate, ctx: EvaluationContext): number
  rankParents(candidates: Iterable<ParentCandidate>, ctx: EvaluationContext, limit?: number): ScoredParent[]
  isBadParent(pieceCostsMs: readonly number[], failures?: number): boolean
}

export interface PeerEvaluatorInit {
  /**
   * Feature weights; missing keys take the default
   *
   * @default DEFAULT_EVALUATOR_WEIGHTS
   */
  weights?: Partial<EvaluatorWeights>

  /**
   * Throughput score of a parent not measured yet, in [0, 1]
   *
   * @default 0.5
   */
  unknownThroughputScore?: number

  /**
   * Failures at which the failure score reaches 0 and the parent is bad
   *
   * @default 3
   */
  maxParentFailures?: number

  /** Thresholds for the piece-cost part of {@link isBadParent} */
  badParent?: Omit<BadParentOptions, 'maxFailures'>
}

/** Clamp to [0, 1]; NaN becomes 0 */
function unit (x: number): number {
  if (x > 0) {
    return x < 1 ? x : 1
  }
  return 0
}

function ratio (part: number, whole: number): number {
  return whole > 0 ? unit(part / whole) : 0
}

/** Highest score first, then lower peer id, so equal candidates always come out in the same order */
function compareScored (a: ScoredParent, b: ScoredParent): number {
  if (a.score !== b.score) {
    return b.score - a.score
  }
  if (a.peerId === b.peerId) {
    return 0
  }
  return a.peerId < b.peerId ? -1 : 1
}

/**
 * Scores parents as a weighted mean of normalised features (see
 * {@link EvaluatorWeights} and {@link DEFAULT_EVALUATOR_WEIGHTS}).
 */
export class PeerEvaluator implements ParentEvaluator {
  readonly weights: Readonly<EvaluatorWeights>
  readonly #weightSum: number
  readonly #unknownThroughputScore: number
  readonly #maxParentFailures: number
  readonly #badParent: BadParentOptions

  constructor (init: PeerEvaluatorInit = {}) {
    const weights = { ...DEFAULT_EVALUATOR_WEIGHTS, ...init.weights }
    let sum = 0
    for (const [name, w] of Object.entries(weights)) {
      if (!Number.isFinite(w) || w < 0) {
        throw new InvalidParametersError(`Evaluator weight "${name}" must be a finite number >= 0, got ${w} - fix scheduler weights in the config`)
      }
      sum += w
    }
    if (sum <= 0) {
      throw new InvalidParametersError('Evaluator weights are all zero - give at least one weight a positive value')
    }
    const unknown = init.unknownThroughputScore ?? DEFAULT_UNKNOWN_THROUGHPUT_SCORE
    if (!(unknown >= 0 && unknown <= 1)) {
      throw new InvalidParametersError(`unknownThroughputScore must be in [0, 1], got ${unknown}`)
    }
    const maxFailures = init.maxParentFailures ?? DEFAULT_MAX_PARENT_FAILURES
    if (!Number.isSafeInteger(maxFailures) || maxFailures < 1) {
      throw new InvalidParametersError(`maxParentFailures must be a positive integer, got ${maxFailures}`)
    }

    this.weights = Object.freeze(weights)
    this.#weightSum = sum
    this.#unknownThroughputScore = unknown
    this.#maxParentFailures = maxFailures
    this.#badParent = { ...init.badParent, maxFailures }
  }

  /** The candidate's score in [0, 1]; higher is a better parent */
  score (candidate: ParentCandidate, ctx: EvaluationContext): number {
    const w = this.weights
    const throughput = candidate.throughputBps != null && ctx.bestThroughputBps > 0
      ? ratio(candidate.throughputBps, ctx.bestThroughputBps)
      : this.#unknownThroughputScore
    const failures = Number.isFinite(candidate.recentFailures) ? Math.max(0, candidate.recentFailures) : this.#maxParentFailures
    const sameZone = ctx.zone != null && candidate.zone === ctx.zone ? 1 : 0

    const total =
      w.freeUploadSlots * ratio(candidate.freeUploadSlots, candidate.maxUploadSlots) +
      w.piecesHeld * ratio(candidate.piecesHeld, candidate.pieceCount) +
      w.throughput * throughput +
      w.recentFailures * (1 - Math.min(failures, this.#maxParentFailures) / this.#maxParentFailures) +
      w.sameZone * sameZone

    return unit(total / this.#weightSum)
  }

  /**
   * Score every candidate and return the best `limit`, best first; equal
   * scores are ordered by peer id so every run gives the same list. Filtering
   * (blocklist, bad parents, ourselves) is the caller's job.
   */
  rankParents (candidates: Iterable<ParentCandidate>, ctx: EvaluationContext, limit: number = DEFAULT_PARENT_LIMIT): ScoredParent[] {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new InvalidParametersError(`Parent limit must be a non-negative integer, got ${limit}`)
    }
    const scored: ScoredParent[] = []
    for (const candidate of candidates) {
      scored.push({ peerId: candidate.peerId, score: this.score(candidate, ctx), candidate })
    }
    return scored.sort(compareScored).slice(0, limit)
  }

  /** {@link isBadParent} with this evaluator's thresholds */
  isBadParent (pieceCostsMs: readonly number[], failures: number = 0): boolean {
    return isBadParent(pieceCostsMs, failures, this.#badParent)
  }
}
