import { expect } from 'aegir/chai'
import fc from 'fast-check'
import {
  DEFAULT_GRANT_TTL_MS,
  DEFAULT_MAX_SOURCE_PEERS,
  DEFAULT_SOURCE_STRIPE_PIECES,
  SourceGrants,
  stripeWidth
} from '../../src/scheduler/index.ts'
import { Bitfield } from '../../src/utils/bitfield.ts'
import { range } from './helpers.ts'
import type { GrantRequest } from '../../src/scheduler/index.ts'

const T0 = 1_000_000

/** Pieces of `stripes` (stripe size `size`), ascending */
function stripes (size: number, ...which: number[]): number[] {
  return which.sort((a, b) => a - b).flatMap(s => range(s * size, (s + 1) * size))
}

/**
 * A small swarm driving one SourceGrants, the way a tracker would. By default
 * with 4 source slots and 16-piece stripes: the mechanism is easiest to read
 * in wide stripes; the shipped defaults have tests of their own.
 */
class Swarm {
  readonly grants: SourceGrants
  readonly pieceCount: number
  readonly held: Bitfield
  readonly live = new Set<string>()
  now = T0

  constructor (pieceCount: number, grants = new SourceGrants({ maxSourcePeers: 4, stripePieces: 16 })) {
    this.pieceCount = pieceCount
    this.held = new Bitfield(pieceCount)
    this.grants = grants
  }

  request (peer: string, overrides: Partial<GrantRequest> = {}): number[] {
    this.live.add(peer)
    return this.grants.grant({ requester: peer, pieceCount: this.pieceCount, held: this.held, livePeers: this.live, now: this.now, ...overrides })
  }

  complete (peer: string, ...indexes: number[]): void {
    for (const i of indexes) {
      this.held.set(i)
      this.grants.complete(peer, i)
    }
  }
}

describe('scheduler/source-grants', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_MAX_SOURCE_PEERS).to.equal(1)
    expect(DEFAULT_SOURCE_STRIPE_PIECES).to.equal(32)
    expect(DEFAULT_GRANT_TTL_MS).to.equal(5 * 60_000)
  })

  it('with the defaults, gives the whole task to the first requester and nothing to the others', () => {
    const swarm = new Swarm(256, new SourceGrants())
    expect(swarm.request('p0')).to.deep.equal(range(0, 256))
    for (let k = 1; k < 8; k++) {
      expect(swarm.request(`p${k}`)).to.deep.equal([], `peer ${k} reads nothing from the origin`)
    }
    expect(swarm.request('p0')).to.deep.equal(range(0, 256))
    // one source: the whole task is one stripe, read as one origin range
    expect(swarm.grants.stripe).to.equal(256)
  })

  it('says the stripe width it cuts grants in once the piece count is known', () => {
    const grants = new SourceGrants({ maxSourcePeers: 3, stripePieces: 5 })
    expect(grants.stripe).to.equal(0)
    const swarm = new Swarm(100, grants)
    swarm.request('a')
    expect(grants.stripe).to.equal(5)
    // a small task: fewer pieces per stripe, so that every source slot gets one
    const small = new SourceGrants({ maxSourcePeers: 3, stripePieces: 5 })
    new Swarm(7, small).request('a')
    expect(small.stripe).to.equal(3)
    // one source slot: nothing moves between sources, so one stripe
    const single = new SourceGrants({ maxSourcePeers: 1, stripePieces: 5 })
    new Swarm(100, single).request('a')
    expect(single.stripe).to.equal(100)
    expect(stripeWidth(100, 5, 1)).to.equal(100)
    expect(stripeWidth(100, 5, 2)).to.equal(5)
  })

  describe('splitting the origin among the first requesters', () => {
    it('gives the first requester every piece nobody holds', () => {
      const swarm = new Swarm(100)
      swarm.held.set(10)
      expect(swarm.request('a')).to.deep.equal(range(0, 100).filter(i => i !== 10))
      // asking again returns the same grant
      expect(swarm.request('a')).to.deep.equal(range(0, 100).filter(i => i !== 10))
    })

    it('gives the k-th source peer every k-th stripe as peers join', () => {
      // 160 pieces = 10 stripes of 16; slot k owns stripes j with j mod 4 = k
      const swarm = new Swarm(160)
      swarm.request('a')
      expect(swarm.request('b')).to.deep.equal(stripes(16, 1, 5, 9))
      expect(swarm.request('c')).to.deep.equal(stripes(16, 2, 6))
      expect(swarm.request('d')).to.deep.equal(stripes(16, 3, 7))
      expect(swarm.grants.grantsOf('a')).to.deep.equal(stripes(16, 0, 4, 8))
      expect(swarm.grants.sourcePeers()).to.deep.equal(['a', 'b', 'c', 'd'])
    })

    it('uses smaller stripes for small tasks, so every source peer gets one', () => {
      // 10 pieces over 4 slots: stripes of ceil(10 / 4) = 3
      const swarm = new Swarm(10)
      swarm.request('a')
      expect(swarm.request('b')).to.deep.equal([3, 4, 5])
      expect(swarm.request('c')).to.deep.equal([6, 7, 8])
      expect(swarm.request('d')).to.deep.equal([9])
      expect(swarm.grants.grantsOf('a')).to.deep.equal([0, 1, 2])
    })

    it('leaves a started stripe and the holder\'s current stripe with the holder', () => {
      const swarm = new Swarm(160)
      swarm.request('a')
      // a is reading stripe 0 and has finished a piece of stripe 5
      swarm.complete('a', 0, 81)
      // b's home stripes are 1, 5, 9: 5 is started, the others move
      expect(swarm.request('b')).to.deep.equal(stripes(16, 1, 9))
      expect(swarm.grants.grantedTo(80)).to.equal('a')
      // a's current stripe is 0, so a newcomer never takes it even when it is home
      const other = new Swarm(64, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16 }))
      other.request('x')
      other.complete('x', ...range(0, 16))
      // x now reads stripe 1 (its lowest granted piece), which is y's home stripe
      expect(other.request('y')).to.deep.equal(stripes(16, 3))
      expect(other.grants.grantsOf('x')).to.deep.equal(stripes(16, 1, 2))
    })

    it('gives a requester beyond the cap nothing while every piece is covered', () => {
      const swarm = new Swarm(64)
      for (const p of ['a', 'b', 'c', 'd']) {
        swarm.request(p)
      }
      expect(swarm.request('e')).to.deep.equal([])
      expect(swarm.grants.sourcePeers()).to.not.include('e')
    })

    it('gives a requester beyond the cap the pieces no live peer is fetching', () => {
      const swarm = new Swarm(64)
      for (const p of ['a', 'b', 'c', 'd']) {
        swarm.request(p)
      }
      // piece 20 was finished by b, then the only peer holding it left the swarm
      swarm.complete('b', 20)
      swarm.held.clear(20)
      expect(swarm.request('e')).to.deep.equal([20])
      expect(swarm.grants.grantedTo(20)).to.equal('e')
      // when e leaves too, the piece goes to the next asker
      swarm.live.delete('e')
      expect(swarm.request('a')).to.deep.equal([...range(0, 16), 20])
    })
  })

  describe('re-granting', () => {
    it('re-grants the pieces of a peer that left, and frees its slot', () => {
      const swarm = new Swarm(64)
      for (const p of ['a', 'b', 'c', 'd']) {
        swarm.request(p)
      }
      swarm.live.delete('b')
      // e takes b's slot and with it b's stripe
      expect(swarm.request('e')).to.deep.equal(range(16, 32))
      expect(swarm.grants.sourcePeers()).to.deep.equal(['a', 'e', 'c', 'd'])
      expect(swarm.grants.grantsOf('b')).to.deep.equal([])
    })

    it('gives a leaver\'s pieces to whoever asks next', () => {
      const swarm = new Swarm(64)
      swarm.request('a')
      swarm.request('b')
      swarm.live.delete('b')
      expect(swarm.request('a')).to.deep.equal(range(0, 64))
    })

    it('re-grants pieces of a released peer', () => {
      const swarm = new Swarm(32, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16 }))
      swarm.request('a')
      swarm.request('b')
      swarm.grants.release('a')
      expect(swarm.grants.sourcePeers()).to.deep.equal(['b'])
      expect(swarm.request('b')).to.deep.equal(range(0, 32))
    })

    it('takes grants from a peer that finishes nothing for the TTL', () => {
      const swarm = new Swarm(32, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16, grantTtlMs: 1000 }))
      swarm.request('a')
      swarm.request('b')
      swarm.now = T0 + 999
      expect(swarm.request('b')).to.deep.equal(range(16, 32))
      swarm.now = T0 + 1000
      // both stalled: the asker gets everything back, the other loses its slot
      expect(swarm.request('b')).to.deep.equal(range(0, 32))
      expect(swarm.grants.sourcePeers()).to.deep.equal(['b'])
      expect(swarm.grants.grantsOf('a')).to.deep.equal([])
    })

    it('restarts the TTL when the grantee finishes a piece', () => {
      const swarm = new Swarm(32, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16, grantTtlMs: 1000 }))
      swarm.request('a')
      swarm.request('b')
      swarm.now = T0 + 900
      swarm.complete('a', 0)
      swarm.request('b') // the tracker notices a's progress at this call
      swarm.now = T0 + 1500
      // b made no progress: its grants expired and it gets its pieces back as a newcomer
      expect(swarm.request('b')).to.deep.equal(range(16, 32))
      expect(swarm.grants.grantsOf('a')).to.deep.equal(range(1, 16))
      // a piece appearing in `held` counts as progress too
      swarm.held.set(1)
      swarm.now = T0 + 2000
      swarm.request('b')
      swarm.now = T0 + 2800
      swarm.complete('b', 16)
      expect(swarm.request('b')).to.deep.equal(range(17, 32))
      expect(swarm.grants.grantsOf('a')).to.deep.equal(range(2, 16))
    })

    it('ends a grant on complete, whoever finished the piece', () => {
      const swarm = new Swarm(4)
      swarm.request('a')
      expect(swarm.grants.complete('a', 2)).to.equal(true)
      expect(swarm.grants.complete('a', 2)).to.equal(false)
      expect(swarm.grants.complete('x', 3)).to.equal(true)
      expect(swarm.grants.grantsOf('a')).to.deep.equal([0, 1])
    })

    it('never grants a held piece', () => {
      const swarm = new Swarm(8)
      swarm.request('a')
      swarm.held.set(3)
      expect(swarm.request('a')).to.deep.equal([0, 1, 2, 4, 5, 6, 7])
      expect(swarm.grants.grantedTo(3)).to.equal(undefined)
    })
  })

  describe('idle source peers', () => {
    it('an idle source peer takes the highest untouched stripe of the busiest one', () => {
      const swarm = new Swarm(128, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16 }))
      swarm.request('a')
      expect(swarm.request('b')).to.deep.equal(stripes(16, 1, 3, 5, 7))
      swarm.complete('b', ...stripes(16, 1, 3, 5, 7))
      // b is done; a still has stripes 0, 2, 4, 6 and reads 0
      expect(swarm.request('b')).to.deep.equal(stripes(16, 6))
      expect(swarm.grants.grantsOf('a')).to.deep.equal(stripes(16, 0, 2, 4))
    })

    it('does not take the stripe the busy peer is reading', () => {
      const swarm = new Swarm(32, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16 }))
      swarm.request('a')
      swarm.request('b')
      swarm.complete('b', ...range(16, 32))
      expect(swarm.request('b')).to.deep.equal([])
      expect(swarm.grants.grantsOf('a')).to.deep.equal(range(0, 16))
    })

    it('hands the slot of a source peer with nothing left to a newcomer', () => {
      const swarm = new Swarm(128, new SourceGrants({ maxSourcePeers: 2, stripePieces: 16 }))
      swarm.request('a')
      swarm.request('b')
      swarm.complete('b', ...stripes(16, 1, 3, 5, 7))
      expect(swarm.request('c')).to.deep.equal(stripes(16, 6))
      expect(swarm.grants.sourcePeers()).to.deep.equal(['a', 'c'])
      expect(swarm.request('b')).to.deep.equal([])
    })
  })

  describe('validation', () => {
    it('rejects a requester that is not live, a held bitfield of the wrong size and a changed piece count', () => {
      const grants = new SourceGrants()
      const held = new Bitfield(8)
      expect(() => grants.grant({ requester: 'a', pieceCount: 8, held, livePeers: new Set(), now: T0 })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => grants.grant({ requester: 'a', pieceCount: 9, held, livePeers: new Set(['a']), now: T0 })).to.throw().with.property('name', 'InvalidParametersError')
      grants.grant({ requester: 'a', pieceCount: 8, held, livePeers: new Set(['a']), now: T0 })
      expect(() => grants.grant({ requester: 'a', pieceCount: 16, held: new Bitfield(16), livePeers: new Set(['a']), now: T0 })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new SourceGrants({ maxSourcePeers: 0 })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new SourceGrants({ grantTtlMs: -1 })).to.throw().with.property('name', 'InvalidParametersError')
    })
  })

  describe('properties', () => {
    type Op =
      | { type: 'request', peer: number }
      | { type: 'leave', peer: number, release: boolean }
      | { type: 'complete', peer: number, pick: number }
      | { type: 'replicate', peer: number, pick: number }
      | { type: 'tick', ms: number }

    const PEERS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']
    const peerArb = fc.nat({ max: PEERS.length - 1 })
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ type: fc.constant('request' as const), peer: peerArb }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('leave' as const), peer: peerArb, release: fc.boolean() }) },
      { weight: 4, arbitrary: fc.record({ type: fc.constant('complete' as const), peer: peerArb, pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('replicate' as const), peer: peerArb, pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 1500 }) }) }
    )

    /**
     * Run `ops` against a model swarm: peers that finished a piece hold it, and a
     * piece whose last holder leaves drops out of `held`. After every grant,
     * check `check(requester, answer, before)`.
     */
    function run (pieceCount: number, grants: SourceGrants, ops: Op[], check: (swarm: Swarm, requester: string, answer: number[], coveredBefore: boolean) => void): void {
      const swarm = new Swarm(pieceCount, grants)
      const holders = new Map<number, Set<string>>()
      const hold = (peer: string, index: number): void => {
        swarm.held.set(index)
        const set = holders.get(index) ?? new Set<string>()
        set.add(peer)
        holders.set(index, set)
      }

      for (const op of ops) {
        if (op.type === 'request') {
          const requester = PEERS[op.peer]
          // every missing piece granted to a live peer before this call?
          let coveredBefore = true
          for (let i = 0; i < pieceCount; i++) {
            const holder = grants.grantedTo(i)
            if (!swarm.held.get(i) && (holder == null || !swarm.live.has(holder))) {
              coveredBefore = false
            }
          }
          const answer = swarm.request(requester)
          check(swarm, requester, answer, coveredBefore)
        } else if (op.type === 'leave') {
          const peer = PEERS[op.peer]
          swarm.live.delete(peer)
          if (op.release) {
            grants.release(peer)
          }
          for (const [index, set] of holders) {
            set.delete(peer)
            if (set.size === 0) {
              holders.delete(index)
              swarm.held.clear(index)
            }
          }
        } else if (op.type === 'complete') {
          const peer = PEERS[op.peer]
          const mine = grants.grantsOf(peer)
          if (mine.length > 0 && swarm.live.has(peer)) {
            const index = mine[op.pick % mine.length]
            hold(peer, index)
            expect(grants.complete(peer, index)).to.equal(true)
          }
        } else if (op.type === 'replicate') {
          const peer = PEERS[op.peer]
          const have = swarm.held.indexes()
          if (have.length > 0 && swarm.live.has(peer)) {
            hold(peer, have[op.pick % have.length])
          }
        } else {
          swarm.now += op.ms
        }
      }
    }

    /** After a grant: every piece is held or granted to exactly one live peer */
    function checkCoverage (swarm: Swarm, requester: string, answer: number[]): void {
      const { grants, held, live, pieceCount } = swarm
      const seen = new Map<number, string>()
      for (const peer of PEERS) {
        for (const index of grants.grantsOf(peer)) {
          expect(seen.has(index), `piece ${index} granted to ${seen.get(index)} and ${peer}`).to.equal(false)
          seen.set(index, peer)
          expect(grants.grantedTo(index)).to.equal(peer)
        }
      }
      for (let i = 0; i < pieceCount; i++) {
        if (held.get(i)) {
          expect(grants.grantedTo(i), `held piece ${i} is still granted`).to.equal(undefined)
        } else {
          const holder = grants.grantedTo(i)
          expect(holder, `piece ${i} is neither held nor granted`).to.be.a('string')
          expect(live.has(holder ?? ''), `piece ${i} is granted to ${holder}, who left`).to.equal(true)
        }
      }
      expect(answer).to.deep.equal(grants.grantsOf(requester))
      expect(grants.sourcePeers().length).to.be.at.most(grants.maxSourcePeers)
    }

    /**
     * A requester that ends up without a source slot, asking while every piece
     * was covered, gets nothing beyond what it already had
     */
    function beyondCapCheck (grants: SourceGrants): (swarm: Swarm, requester: string, answer: number[], coveredBefore: boolean) => void {
      let previous = new Map<string, number[]>()
      return (swarm, requester, answer, coveredBefore) => {
        checkCoverage(swarm, requester, answer)
        if (!grants.sourcePeers().includes(requester) && coveredBefore) {
          const before = previous.get(requester) ?? []
          for (const index of answer) {
            expect(before).to.include(index)
          }
        }
        previous = new Map(PEERS.map(p => [p, grants.grantsOf(p)]))
      }
    }

    it('covers every piece exactly once: held, or granted to one live peer (property)', () => {
      fc.assert(fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 16 }),
        fc.array(opArb, { minLength: 1, maxLength: 80 }),
        (pieceCount, maxSourcePeers, stripePieces, ops) => {
          const grants = new SourceGrants({ maxSourcePeers, stripePieces, grantTtlMs: 1000 })
          run(pieceCount, grants, ops, checkCoverage)
        }
      ), { numRuns: 300 })
    })

    it('gives a requester beyond the cap nothing new while every piece is covered (property)', () => {
      fc.assert(fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.array(opArb, { minLength: 1, maxLength: 80 }),
        (pieceCount, ops) => {
          // no expiry here: an expired grant is uncovered by definition
          const grants = new SourceGrants({ maxSourcePeers: 2, stripePieces: 4, grantTtlMs: 1e12 })
          run(pieceCount, grants, ops, beyondCapCheck(grants))
        }
      ), { numRuns: 300 })
    })
  })
})
