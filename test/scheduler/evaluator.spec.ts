import { expect } from 'aegir/chai'
import fc from 'fast-check'
import {
  DEFAULT_EVALUATOR_WEIGHTS,
  DEFAULT_MAX_PARENT_FAILURES,
  PeerEvaluator,
  isBadParent
} from '../../src/scheduler/index.ts'
import type { EvaluationContext, EvaluatorWeights, ParentCandidate, ScoredParent } from '../../src/scheduler/index.ts'

const ctx: EvaluationContext = { zone: 'eu-1', bestThroughputBps: 100_000_000 }

/** A middling parent: every feature at some value strictly between worst and best */
function candidate (peerId: string, overrides: Partial<ParentCandidate> = {}): ParentCandidate {
  return {
    peerId,
    freeUploadSlots: 4,
    maxUploadSlots: 16,
    piecesHeld: 50,
    pieceCount: 100,
    throughputBps: 50_000_000,
    recentFailures: 1,
    zone: 'us-1',
    ...overrides
  }
}

/** For each weight, a change that makes only that feature better */
const improvements: Record<keyof EvaluatorWeights, Partial<ParentCandidate>> = {
  freeUploadSlots: { freeUploadSlots: 12 },
  piecesHeld: { piecesHeld: 90 },
  throughput: { throughputBps: 90_000_000 },
  recentFailures: { recentFailures: 0 },
  sameZone: { zone: 'eu-1' }
}

/** Candidates that differ only in their id */
function identical (ids: string[], freeUploadSlots: number): ParentCandidate[] {
  return ids.map(id => candidate(id, { freeUploadSlots }))
}

function peerIds (ranked: ScoredParent[]): string[] {
  return ranked.map(r => r.peerId)
}

function mean (xs: number[]): number {
  let sum = 0
  for (const x of xs) {
    sum += x
  }
  return sum / xs.length
}

function populationStdev (xs: number[]): number {
  const m = mean(xs)
  let squares = 0
  for (const x of xs) {
    squares += (x - m) ** 2
  }
  return Math.sqrt(squares / xs.length)
}

describe('scheduler/evaluator', () => {
  describe('weights', () => {
    it('has the documented defaults, summing to 1', () => {
      expect(DEFAULT_EVALUATOR_WEIGHTS).to.deep.equal({ freeUploadSlots: 0.25, piecesHeld: 0.2, throughput: 0.3, recentFailures: 0.15, sameZone: 0.1 })
      const sum = Object.values(DEFAULT_EVALUATOR_WEIGHTS).reduce((a, b) => a + b, 0)
      expect(sum).to.be.closeTo(1, 1e-12)
    })

    it('takes partial weights and keeps the rest at their defaults', () => {
      const e = new PeerEvaluator({ weights: { sameZone: 0 } })
      expect(e.weights).to.deep.equal({ ...DEFAULT_EVALUATOR_WEIGHTS, sameZone: 0 })
    })

    it('rejects negative, non-finite and all-zero weights', () => {
      expect(() => new PeerEvaluator({ weights: { throughput: -0.1 } })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new PeerEvaluator({ weights: { throughput: Number.NaN } })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new PeerEvaluator({ weights: { freeUploadSlots: 0, piecesHeld: 0, throughput: 0, recentFailures: 0, sameZone: 0 } }))
        .to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new PeerEvaluator({ unknownThroughputScore: 2 })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new PeerEvaluator({ maxParentFailures: 0 })).to.throw().with.property('name', 'InvalidParametersError')
    })
  })

  describe('score', () => {
    const evaluator = new PeerEvaluator()

    it('is 1 for a perfect parent and 0 for the worst one', () => {
      const perfect = candidate('p', { freeUploadSlots: 16, piecesHeld: 100, throughputBps: 100_000_000, recentFailures: 0, zone: 'eu-1' })
      const worst = candidate('w', { freeUploadSlots: 0, piecesHeld: 0, throughputBps: 0, recentFailures: DEFAULT_MAX_PARENT_FAILURES, zone: 'us-1' })
      expect(evaluator.score(perfect, ctx)).to.be.closeTo(1, 1e-12)
      expect(evaluator.score(worst, ctx)).to.equal(0)
    })

    it('is the weighted mean of the features', () => {
      // free 4/16, held 50/100, throughput 0.5, failures 1 - 1/3, other zone
      const expected = 0.25 * 0.25 + 0.2 * 0.5 + 0.3 * 0.5 + 0.15 * (2 / 3) + 0.1 * 0
      expect(evaluator.score(candidate('a'), ctx)).to.be.closeTo(expected, 1e-12)
    })

    it('gives an unmeasured parent the unknown-throughput score (0.5)', () => {
      const unmeasured = candidate('u', { throughputBps: undefined })
      const half = candidate('h', { throughputBps: 50_000_000 })
      expect(evaluator.score(unmeasured, ctx)).to.be.closeTo(evaluator.score(half, ctx), 1e-12)
      // no measurement at all in the context: everyone is unknown
      expect(evaluator.score(candidate('x'), { bestThroughputBps: 0 })).to.be.closeTo(evaluator.score(unmeasured, { bestThroughputBps: 0 }), 1e-12)
    })

    it('gives no same-zone score when we do not know our zone', () => {
      const a = candidate('a', { zone: undefined })
      expect(evaluator.score(a, { bestThroughputBps: ctx.bestThroughputBps })).to.equal(evaluator.score(candidate('b'), ctx))
    })

    it('stays in [0, 1] for any input, including nonsense from remote reports (property)', () => {
      const num = fc.oneof(fc.double(), fc.integer({ min: -10, max: 1000 }))
      fc.assert(fc.property(
        fc.record({
          freeUploadSlots: num,
          maxUploadSlots: num,
          piecesHeld: num,
          pieceCount: num,
          throughputBps: fc.option(num, { nil: undefined }),
          recentFailures: num,
          zone: fc.option(fc.constantFrom('eu-1', 'us-1'), { nil: undefined })
        }),
        num,
        (c, best) => {
          const s = evaluator.score({ peerId: 'p', ...c }, { zone: 'eu-1', bestThroughputBps: best })
          expect(s).to.be.at.least(0).and.at.most(1)
        }
      ))
    })
  })

  describe('rankParents', () => {
    const evaluator = new PeerEvaluator()

    for (const [weight, change] of Object.entries(improvements)) {
      it(`ranks a parent that is better only in ${weight} first`, () => {
        const base = candidate('a-base')
        const better = candidate('z-better', change)
        const ranked = evaluator.rankParents([base, better], ctx)
        expect(ranked.map(r => r.peerId)).to.deep.equal(['z-better', 'a-base'])
        expect(ranked[0].score).to.be.greaterThan(ranked[1].score)
      })

      it(`orders by ${weight} alone when it is the only weight`, () => {
        const only = new PeerEvaluator({ weights: { freeUploadSlots: 0, piecesHeld: 0, throughput: 0, recentFailures: 0, sameZone: 0, [weight]: 1 } })
        // better in this feature but worse in every other one
        const worseElsewhere = candidate('z-better', {
          freeUploadSlots: 1,
          piecesHeld: 10,
          throughputBps: 10_000_000,
          recentFailures: 2,
          zone: 'us-1',
          ...change
        })
        const ranked = only.rankParents([candidate('a-base'), worseElsewhere], ctx)
        expect(ranked[0].peerId).to.equal('z-better')
      })
    }

    it('sorts best first and honours the limit', () => {
      const parents = [
        candidate('c', { freeUploadSlots: 0 }),
        candidate('a', { freeUploadSlots: 16 }),
        candidate('b', { freeUploadSlots: 8 })
      ]
      expect(evaluator.rankParents(parents, ctx).map(r => r.peerId)).to.deep.equal(['a', 'b', 'c'])
      expect(evaluator.rankParents(parents, ctx, 2).map(r => r.peerId)).to.deep.equal(['a', 'b'])
      expect(evaluator.rankParents(parents, ctx, 0)).to.deep.equal([])
      expect(() => evaluator.rankParents(parents, ctx, -1)).to.throw().with.property('name', 'InvalidParametersError')
    })

    it('breaks equal scores by peer id, whatever the input order (property)', () => {
      fc.assert(fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 16 }),
        (ids, free) => {
          const parents = identical(ids, free)
          const ranked = peerIds(evaluator.rankParents(parents, ctx, ids.length))
          expect(ranked).to.deep.equal([...ids].sort())
          expect(peerIds(evaluator.rankParents([...parents].reverse(), ctx, ids.length))).to.deep.equal(ranked)
        }
      ))
    })

    it('returns the candidate with its score', () => {
      const a = candidate('a')
      const [ranked] = evaluator.rankParents([a], ctx)
      expect(ranked.candidate).to.equal(a)
      expect(ranked.score).to.equal(evaluator.score(a, ctx))
    })
  })

  describe('isBadParent', () => {
    it('is bad at DEFAULT_MAX_PARENT_FAILURES (3) failures, whatever the costs', () => {
      expect(DEFAULT_MAX_PARENT_FAILURES).to.equal(3)
      expect(isBadParent([], 3)).to.equal(true)
      expect(isBadParent([100, 100, 100], 4)).to.equal(true)
      expect(isBadParent([100, 100, 100], 2)).to.equal(false)
      expect(new PeerEvaluator({ maxParentFailures: 5 }).isBadParent([], 4)).to.equal(false)
      expect(new PeerEvaluator({ maxParentFailures: 5 }).isBadParent([], 5)).to.equal(true)
    })

    it('cannot judge costs with fewer than 2 samples', () => {
      expect(isBadParent([])).to.equal(false)
      expect(isBadParent([1_000_000])).to.equal(false)
    })

    it('with < 30 samples: bad when the last cost is more than 20× the mean of the others', () => {
      expect(isBadParent([100, 2000])).to.equal(false)
      expect(isBadParent([100, 2001])).to.equal(true)
      // mean of the others is 100, not the mean including the last sample
      expect(isBadParent([50, 150, 100, 2000])).to.equal(false)
      expect(isBadParent([50, 150, 100, 2000.5])).to.equal(true)
      // 29 samples is still the 20× regime: 3σ would flag this one
      const steady = Array.from({ length: 28 }, (_, i) => (i % 2 === 0 ? 90 : 110))
      expect(isBadParent([...steady, 500])).to.equal(false)
      // a parent that was fast and stalls
      expect(isBadParent([10, 12, 11, 400])).to.equal(true)
    })

    it('with >= 30 samples: bad when the last cost is above mean + 3σ of the others', () => {
      // 30 others: 15 × 90 and 15 × 110 → mean 100, population σ 10, limit 130
      const others = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? 90 : 110))
      expect(mean(others)).to.equal(100)
      expect(populationStdev(others)).to.equal(10)
      expect(isBadParent([...others, 130])).to.equal(false)
      expect(isBadParent([...others, 130.01])).to.equal(true)
      // far below the 20× limit, so only the 3σ rule can flag it
      expect(isBadParent([...others, 500])).to.equal(true)
    })

    it('switches rule at exactly 30 samples', () => {
      const others = Array.from({ length: 29 }, (_, i) => 80 + (i * 7) % 41)
      const limit = mean(others) + 3 * populationStdev(others)
      const last = limit + 1
      expect(last).to.be.lessThan(20 * mean(others))
      expect(isBadParent([...others, last])).to.equal(true) // 30 samples: 3σ
      expect(isBadParent([...others.slice(1), last])).to.equal(false) // 29 samples: 20×
    })

    it('takes custom thresholds', () => {
      expect(isBadParent([100, 300], 0, { slowFactor: 2 })).to.equal(true)
      expect(isBadParent([100, 100, 100, 300], 0, { normalDistributionSamples: 4, sigmas: 1 })).to.equal(true)
      expect(isBadParent([100, 5000], 0, { minSamples: 3 })).to.equal(false)
    })

    it('rejects negative or non-finite costs and negative failures', () => {
      for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(() => isBadParent([100, bad])).to.throw().with.property('name', 'InvalidParametersError')
      }
      expect(() => isBadParent([], -1)).to.throw().with.property('name', 'InvalidParametersError')
    })
  })
})
