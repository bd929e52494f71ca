import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { DEFAULT_ENDGAME_THRESHOLD, PiecePicker } from '../../src/scheduler/index.ts'
import { Bitfield } from '../../src/utils/bitfield.ts'
import { bits, full, range, seededRng } from './helpers.ts'
import type { PickInput, PieceAssignment } from '../../src/scheduler/index.ts'

/** Defaults for a pick: nothing held, nothing in flight, plenty of capacity */
function input (pieceCount: number, parents: Record<string, Bitfield>, overrides: Partial<PickInput> = {}): PickInput {
  const capacity = new Map<string, number>()
  for (const peerId of Object.keys(parents)) {
    capacity.set(peerId, 1000)
  }
  return {
    pieceCount,
    have: new Bitfield(pieceCount),
    inflight: new Map(),
    parents: new Map(Object.entries(parents)),
    capacity,
    rng: seededRng(1),
    ...overrides
  }
}

function indexes (assignments: PieceAssignment[]): number[] {
  return assignments.map(a => a.index)
}

function perPeer (assignments: PieceAssignment[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const a of assignments) {
    counts.set(a.peerId, (counts.get(a.peerId) ?? 0) + 1)
  }
  return counts
}

interface PickCase {
  pieceCount: number
  have: Bitfield
  inflight: Map<number, Set<string>>
  parents: Map<string, Bitfield>
  capacity: Map<string, number>
  endgameThreshold: number
  sequentialFrom?: number
}

function holdersOf (c: PickCase, index: number): string[] {
  return [...c.parents].filter(([, b]) => b.get(index)).map(([peerId]) => peerId)
}

/** Each assignment is a missing piece, from a holder, never to a parent asked before, and within the per-piece cap */
function checkAssignments (c: PickCase, picked: PieceAssignment[], endgame: boolean): void {
  const perPiece = new Map<number, Set<string>>()
  for (const { index, peerId } of picked) {
    expect(c.have.get(index), 'never a piece we have').to.equal(false)
    expect(c.parents.get(peerId)?.get(index), 'only from a holder').to.equal(true)
    expect(c.inflight.get(index)?.has(peerId) ?? false, 'never the same parent twice').to.equal(false)
    const peers = perPiece.get(index) ?? new Set<string>()
    expect(peers.has(peerId), 'never the same parent twice in one pick').to.equal(false)
    peers.add(peerId)
    perPiece.set(index, peers)
  }
  for (const [index, peers] of perPiece) {
    const already = c.inflight.get(index)?.size ?? 0
    if (!endgame) {
      expect(already, 'no duplicates outside end-game').to.equal(0)
    }
    expect(peers.size + already).to.be.at.most(endgame ? 2 : 1)
  }
  for (const [peerId, count] of perPeer(picked)) {
    expect(count, 'within capacity').to.be.at.most(Math.max(0, c.capacity.get(peerId) ?? 0))
  }
}

/** Work-conserving: a missing piece nobody was asked for stays unpicked only if all its holders are out of slots */
function checkNothingLeftBehind (c: PickCase, picked: PieceAssignment[]): void {
  const used = perPeer(picked)
  const pickedIndexes = new Set(indexes(picked))
  for (const index of c.have.missingIndexes()) {
    if (c.inflight.has(index) || pickedIndexes.has(index)) {
      continue
    }
    for (const peerId of holdersOf(c, index)) {
      const left = Math.floor(c.capacity.get(peerId) ?? 0) - (used.get(peerId) ?? 0)
      expect(left, `piece ${index} left behind while ${peerId} has slots`).to.be.at.most(0)
    }
  }
}

/** Outside end-game, assignments come rarest first, or in sequential order from sequentialFrom */
function checkOrder (c: PickCase, picked: PieceAssignment[]): void {
  const key = c.sequentialFrom != null
    ? (index: number) => (index - (c.sequentialFrom ?? 0) + c.pieceCount) % c.pieceCount
    : (index: number) => holdersOf(c, index).length
  for (let i = 1; i < picked.length; i++) {
    expect(key(picked[i].index)).to.be.at.least(key(picked[i - 1].index))
  }
}

function checkPick (c: PickCase, picked: PieceAssignment[]): void {
  const missing = c.have.missingIndexes()
  const endgame = missing.length <= c.endgameThreshold || missing.every(i => c.inflight.has(i))
  checkAssignments(c, picked, endgame)
  checkNothingLeftBehind(c, picked)
  if (!endgame) {
    checkOrder(c, picked)
  }
}

describe('scheduler/piece-picker', () => {
  const picker = new PiecePicker()

  describe('rarest first', () => {
    it('requests pieces held by fewer parents first', () => {
      // piece 0: 3 holders, 1: 1 holder, 2: 2 holders, 3: nobody, 4: 1 holder
      const parents = {
        a: bits(5, [0, 1, 2]),
        b: bits(5, [0, 2, 4]),
        c: bits(5, [0])
      }
      const picked = picker.pick(input(5, parents, { endgameThreshold: 0 }))
      const order = indexes(picked)
      expect(order).to.have.lengthOf(4)
      expect(order.slice(0, 2)).to.have.members([1, 4])
      expect(order.slice(2)).to.deep.equal([2, 0])
      expect(order).to.not.include(3)
    })

    it('only assigns a piece to a parent that has it', () => {
      const parents = { a: bits(6, [0, 1, 2]), b: bits(6, [3, 4, 5]) }
      for (const { index, peerId } of picker.pick(input(6, parents, { endgameThreshold: 0 }))) {
        expect(parents[peerId as 'a' | 'b'].get(index)).to.equal(true)
      }
    })

    it('breaks ties at random, reproducibly for a seed', () => {
      const parents = { a: full(8), b: full(8) }
      const first = indexes(picker.pick(input(8, parents, { rng: seededRng(42), endgameThreshold: 0 })))
      const again = indexes(picker.pick(input(8, parents, { rng: seededRng(42), endgameThreshold: 0 })))
      expect(again).to.deep.equal(first)
      expect(first).to.have.members(range(0, 8))

      const orders = new Set<string>()
      for (let seed = 0; seed < 20; seed++) {
        orders.add(indexes(picker.pick(input(8, parents, { rng: seededRng(seed), endgameThreshold: 0 }))).join(','))
      }
      expect(orders.size).to.be.greaterThan(10)
    })

    it('spreads the first pick evenly over equally rare pieces', () => {
      // 4 tied pieces, 2,000 seeds: each should come first about 500 times
      const parents = { a: full(4) }
      const firsts = [0, 0, 0, 0]
      for (let seed = 0; seed < 2000; seed++) {
        const [first] = picker.pick(input(4, parents, { rng: seededRng(seed), endgameThreshold: 0 }))
        firsts[first.index]++
      }
      for (const count of firsts) {
        expect(count).to.be.within(400, 600)
      }
    })

    it('keeps random order inside each rarity class', () => {
      const parents = { a: full(6), b: bits(6, [0, 1, 2]) }
      for (let seed = 0; seed < 20; seed++) {
        const order = indexes(picker.pick(input(6, parents, { rng: seededRng(seed), endgameThreshold: 0 })))
        expect(order.slice(0, 3)).to.have.members([3, 4, 5])
        expect(order.slice(3)).to.have.members([0, 1, 2])
      }
    })
  })

  describe('what is never requested', () => {
    it('skips pieces we have and pieces in flight', () => {
      const have = bits(10, [0, 1, 2])
      const inflight = new Map([[3, new Set(['a'])], [4, new Set(['b'])]])
      const picked = picker.pick(input(10, { a: full(10), b: full(10) }, { have, inflight, endgameThreshold: 0 }))
      expect(indexes(picked)).to.have.members([5, 6, 7, 8, 9])
    })

    it('returns nothing when we have everything or no parent has a free slot', () => {
      expect(picker.pick(input(4, { a: full(4) }, { have: full(4) }))).to.deep.equal([])
      expect(picker.pick(input(4, { a: full(4) }, { capacity: new Map([['a', 0]]) }))).to.deep.equal([])
      expect(picker.pick(input(4, { a: full(4) }, { capacity: new Map() }))).to.deep.equal([])
      expect(picker.pick(input(4, {}))).to.deep.equal([])
    })
  })

  describe('capacity', () => {
    it('gives no parent more requests than its free slots', () => {
      const parents = { a: full(20), b: full(20), c: full(20) }
      const capacity = new Map([['a', 3], ['b', 1], ['c', 0]])
      const picked = picker.pick(input(20, parents, { capacity }))
      expect(picked).to.have.lengthOf(4)
      expect(perPeer(picked)).to.deep.equal(new Map([['a', 3], ['b', 1]]))
      expect(new Set(indexes(picked)).size).to.equal(4)
    })

    it('prefers the holder with the most free slots', () => {
      const parents = { a: full(4), b: full(4) }
      const picked = picker.pick(input(4, parents, { capacity: new Map([['a', 1], ['b', 5]]), endgameThreshold: 0 }))
      // b has 5 slots and keeps more free slots than a throughout
      expect(picked.map(p => p.peerId)).to.deep.equal(['b', 'b', 'b', 'b'])
      // equal free slots go to the lower peer id
      const two = picker.pick(input(8, { a: full(8), b: full(8) }, { capacity: new Map([['a', 2], ['b', 3]]), endgameThreshold: 0 }))
      expect(two.map(p => p.peerId)).to.deep.equal(['b', 'a', 'b', 'a', 'b'])
    })

    it('sends a piece only one parent has to that parent, even if others have more slots', () => {
      const parents = { a: bits(3, [0]), b: bits(3, [1, 2]) }
      const picked = picker.pick(input(3, parents, { capacity: new Map([['a', 1], ['b', 10]]), endgameThreshold: 0 }))
      expect(picked).to.deep.include({ index: 0, peerId: 'a' })
      expect(picked).to.have.lengthOf(3)
    })
  })

  describe('end-game', () => {
    it('defaults to a threshold of 4 missing pieces', () => {
      expect(DEFAULT_ENDGAME_THRESHOLD).to.equal(4)
    })

    it('requests in-flight pieces again from another holder when few pieces are missing', () => {
      const have = bits(10, range(0, 7))
      const inflight = new Map([[7, new Set(['a'])], [8, new Set(['b'])], [9, new Set(['a'])]])
      const picked = picker.pick(input(10, { a: full(10), b: full(10), c: full(10) }, { have, inflight }))
      // each tail piece gets one duplicate (2 requests max), never to the parent already asked
      expect(picked).to.have.lengthOf(3)
      for (const { index, peerId } of picked) {
        expect(inflight.get(index)?.has(peerId)).to.equal(false)
      }
      expect(indexes(picked)).to.have.members([7, 8, 9])
    })

    it('never asks the same parent twice for a piece', () => {
      const have = bits(4, [0, 1, 2])
      const inflight = new Map([[3, new Set(['a'])]])
      const picker3 = new PiecePicker({ endgameMaxRequestsPerPiece: 5 })
      const picked = picker3.pick(input(4, { a: full(4), b: full(4), c: full(4) }, { have, inflight }))
      expect(picked.map(p => p.peerId).sort()).to.deep.equal(['b', 'c'])
      expect(indexes(picked)).to.deep.equal([3, 3])
    })

    it('requests pieces nobody was asked for before duplicating others', () => {
      const have = bits(6, [0, 1])
      const inflight = new Map([[2, new Set(['a'])], [3, new Set(['a'])]])
      const picked = picker.pick(input(6, { a: full(6), b: full(6) }, { have, inflight, capacity: new Map([['a', 0], ['b', 2]]) }))
      expect(indexes(picked)).to.have.members([4, 5])
    })

    it('starts when every missing piece is in flight, even above the threshold', () => {
      const have = new Bitfield(10)
      const inflight = new Map(range(0, 10).map(i => [i, new Set(['a'])]))
      const parents = { a: full(10), b: full(10) }
      const picked = picker.pick(input(10, parents, { have, inflight }))
      expect(picked).to.have.lengthOf(10)
      expect(perPeer(picked)).to.deep.equal(new Map([['b', 10]]))
    })

    it('does not start above the threshold while missing pieces are held by no parent yet', () => {
      // pieces 8 and 9 are still on their way from the origin to some peer:
      // copying 0-7 from a second parent now would spend its upload on pieces
      // that are already coming (16 nodes on 25 Mbit/s: 15 % of peer bytes)
      const have = new Bitfield(10)
      const inflight = new Map(range(0, 8).map(i => [i, new Set(['a'])]))
      const parents = { a: bits(10, range(0, 8)), b: bits(10, range(0, 8)) }
      expect(picker.pick(input(10, parents, { have, inflight }))).to.deep.equal([])
      // at the threshold it does
      expect(picker.pick(input(10, parents, { have, inflight, endgameThreshold: 10 }))).to.have.lengthOf(8)
    })

    it('does not duplicate above the threshold while un-requested pieces remain', () => {
      const inflight = new Map([[0, new Set(['a'])]])
      const picked = picker.pick(input(10, { a: full(10), b: full(10) }, { inflight }))
      expect(indexes(picked)).to.not.include(0)
      expect(picked).to.have.lengthOf(9)
    })

    it('takes the threshold from the call, then from the constructor', () => {
      const have = bits(10, range(0, 4))
      const inflight = new Map([[4, new Set(['a'])]])
      const parents = { a: full(10), b: full(10) }
      expect(indexes(picker.pick(input(10, parents, { have, inflight })))).to.not.include(4)
      expect(indexes(picker.pick(input(10, parents, { have, inflight, endgameThreshold: 6 })))).to.include(4)
      expect(indexes(new PiecePicker({ endgameThreshold: 6 }).pick(input(10, parents, { have, inflight })))).to.include(4)
    })
  })

  describe('sequential', () => {
    it('picks in index order from sequentialFrom, then wraps around', () => {
      const parents = { a: full(10) }
      const have = bits(10, [5])
      const picked = picker.pick(input(10, parents, { have, sequentialFrom: 3, capacity: new Map([['a', 6]]), endgameThreshold: 0 }))
      expect(indexes(picked)).to.deep.equal([3, 4, 6, 7, 8, 9])
      const all = picker.pick(input(10, parents, { have, sequentialFrom: 3, endgameThreshold: 0 }))
      expect(indexes(all)).to.deep.equal([3, 4, 6, 7, 8, 9, 0, 1, 2])
    })

    it('ignores rarity in sequential mode', () => {
      const parents = { a: full(4), b: bits(4, [3]) }
      const picked = picker.pick(input(4, parents, { sequentialFrom: 0, endgameThreshold: 0 }))
      expect(indexes(picked)).to.deep.equal([0, 1, 2, 3])
    })

    it('with a window, takes the window in order and the rest rarest-first', () => {
      // piece 9 is held by one parent only (rarest), 6-8 by two
      const parents = { a: full(10), b: bits(10, [0, 1, 2, 3, 4, 5, 6, 7, 8]) }
      const have = bits(10, [3])
      const picked = picker.pick(input(10, parents, { have, sequentialFrom: 2, sequentialWindow: 3, endgameThreshold: 0, capacity: new Map([['a', 10], ['b', 10]]) }))
      const order = indexes(picked)
      // window positions 0..2 from piece 2: pieces 2, 3 (had), 4 → 2, 4 in order first
      expect(order.slice(0, 2)).to.deep.equal([2, 4])
      // then the rarest (9, one holder) before the others
      expect(order[2]).to.equal(9)
      expect([...order].sort((x, y) => x - y)).to.deep.equal([0, 1, 2, 4, 5, 6, 7, 8, 9])
    })

    it('wraps the window around the end of the task', () => {
      const picked = picker.pick(input(6, { a: full(6) }, { sequentialFrom: 4, sequentialWindow: 3, endgameThreshold: 0 }))
      expect(indexes(picked).slice(0, 3)).to.deep.equal([4, 5, 0])
    })

    it('rejects a window below 1', () => {
      expect(() => picker.pick(input(4, { a: full(4) }, { sequentialFrom: 0, sequentialWindow: 0 }))).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => picker.pick(input(4, { a: full(4) }, { sequentialFrom: 0, sequentialWindow: 1.5 }))).to.throw().with.property('name', 'InvalidParametersError')
    })

    it('rejects a start outside the task', () => {
      expect(() => picker.pick(input(4, { a: full(4) }, { sequentialFrom: 4 }))).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => picker.pick(input(4, { a: full(4) }, { sequentialFrom: -1 }))).to.throw().with.property('name', 'InvalidParametersError')
    })
  })

  describe('validation', () => {
    it('rejects bitfields of the wrong size and a bad rng', () => {
      expect(() => picker.pick(input(4, { a: full(5) }))).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => picker.pick(input(4, { a: full(4) }, { have: new Bitfield(3) }))).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => picker.pick(input(4, { a: full(4) }, { rng: () => 1, endgameThreshold: 0 }))).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new PiecePicker({ endgameMaxRequestsPerPiece: 0 })).to.throw().with.property('name', 'InvalidParametersError')
    })
  })

  it('keeps its invariants for random swarms (property)', () => {
    const n = 24
    const bitfieldArb = fc.uniqueArray(fc.nat({ max: n - 1 }), { maxLength: n }).map(ix => bits(n, ix))
    const peers = ['p0', 'p1', 'p2', 'p3', 'p4']
    fc.assert(fc.property(
      bitfieldArb,
      fc.array(fc.tuple(bitfieldArb, fc.integer({ min: -1, max: 6 })), { minLength: peers.length, maxLength: peers.length }),
      fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.subarray(peers, { maxLength: 2 })), { maxLength: 10 }),
      fc.integer({ min: 0, max: 10 }),
      fc.option(fc.nat({ max: n - 1 }), { nil: undefined }),
      fc.integer(),
      (have, parentSpecs, inflightSpecs, endgameThreshold, sequentialFrom, seed) => {
        const parents = new Map(parentSpecs.map(([b], i) => [peers[i], b]))
        const capacity = new Map(parentSpecs.map(([, c], i) => [peers[i], c]))
        const inflight = new Map<number, Set<string>>()
        for (const [index, ps] of inflightSpecs) {
          if (!have.get(index) && ps.length > 0) {
            inflight.set(index, new Set(ps))
          }
        }
        const picked = picker.pick({ pieceCount: n, have, inflight, parents, capacity, rng: seededRng(seed), endgameThreshold, sequentialFrom })
        checkPick({ pieceCount: n, have, inflight, parents, capacity, endgameThreshold, sequentialFrom }, picked)
      }
    ))
  })
})
