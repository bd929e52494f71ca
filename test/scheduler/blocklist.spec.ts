import { expect } from 'aegir/chai'
import {
  Blocklist,
  DEFAULT_BAD_PIECES_BEFORE_BLOCK,
  DEFAULT_BAD_PIECE_WINDOW_MS,
  DEFAULT_BLOCK_TTL_MS
} from '../../src/scheduler/index.ts'

const HOUR = 60 * 60_000
const T0 = 1_700_000_000_000

describe('scheduler/blocklist', () => {
  it('has the documented defaults: 2 bad pieces, 1 h block', () => {
    expect(DEFAULT_BAD_PIECES_BEFORE_BLOCK).to.equal(2)
    expect(DEFAULT_BLOCK_TTL_MS).to.equal(HOUR)
    expect(DEFAULT_BAD_PIECE_WINDOW_MS).to.equal(HOUR)
  })

  describe('block/isBlocked', () => {
    it('blocks until now + ttl and expires exactly then', () => {
      const list = new Blocklist()
      list.block('a', T0, 1000, 'timeouts')
      expect(list.isBlocked('a', T0)).to.equal(true)
      expect(list.isBlocked('a', T0 + 999)).to.equal(true)
      expect(list.isBlocked('a', T0 + 1000)).to.equal(false)
      expect(list.isBlocked('b', T0)).to.equal(false)
    })

    it('uses the 1 h default TTL', () => {
      const list = new Blocklist()
      list.block('a', T0)
      expect(list.isBlocked('a', T0 + HOUR - 1)).to.equal(true)
      expect(list.isBlocked('a', T0 + HOUR)).to.equal(false)
    })

    it('never shortens a longer block, but extends a shorter one', () => {
      const list = new Blocklist()
      list.block('a', T0, 10_000, 'long')
      list.block('a', T0 + 1, 10, 'short')
      expect(list.isBlocked('a', T0 + 5000)).to.equal(true)
      expect(list.list(T0 + 5000)[0].reason).to.equal('long')
      list.block('a', T0 + 5000, 20_000, 'longer')
      expect(list.isBlocked('a', T0 + 20_000)).to.equal(true)
      expect(list.list(T0)[0]).to.include({ reason: 'longer', since: T0 + 5000, until: T0 + 25_000 })
    })

    it('starts a fresh block after the old one expired', () => {
      const list = new Blocklist()
      list.block('a', T0, 10)
      list.block('a', T0 + 100, 10, 'again')
      expect(list.isBlocked('a', T0 + 105)).to.equal(true)
      expect(list.isBlocked('a', T0 + 110)).to.equal(false)
    })

    it('can be lifted', () => {
      const list = new Blocklist()
      list.block('a', T0)
      list.unblock('a')
      expect(list.isBlocked('a', T0)).to.equal(false)
    })

    it('rejects a non-finite time or a non-positive ttl', () => {
      const list = new Blocklist()
      expect(() => { list.block('a', Number.NaN) }).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => { list.block('a', T0, 0) }).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => { list.block('a', T0, -5) }).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => list.isBlocked('a', Number.POSITIVE_INFINITY)).to.throw().with.property('name', 'InvalidParametersError')
    })
  })

  describe('list', () => {
    it('lists blocks in force, soonest expiry first, and drops expired ones', () => {
      const list = new Blocklist()
      list.block('late', T0, 3000, 'r3')
      list.block('early', T0, 1000, 'r1')
      list.block('mid', T0, 2000, 'r2')
      expect(list.list(T0).map(e => e.peerId)).to.deep.equal(['early', 'mid', 'late'])
      expect(list.list(T0 + 1500).map(e => e.peerId)).to.deep.equal(['mid', 'late'])
      expect(list.list(T0 + 3000)).to.deep.equal([])
      expect(list.size).to.equal(0)
    })

    it('returns copies', () => {
      const list = new Blocklist()
      list.block('a', T0, 1000)
      list.list(T0)[0].until = T0 + 10 * HOUR
      expect(list.isBlocked('a', T0 + 1000)).to.equal(false)
    })
  })

  describe('reportBadPiece', () => {
    it('blocks after 2 bad pieces within the window, for 1 h', () => {
      const list = new Blocklist()
      expect(list.reportBadPiece('a', T0)).to.equal(false)
      expect(list.isBlocked('a', T0)).to.equal(false)
      expect(list.badPieceCount('a', T0)).to.equal(1)
      expect(list.reportBadPiece('a', T0 + 10 * 60_000)).to.equal(true)
      expect(list.isBlocked('a', T0 + 10 * 60_000)).to.equal(true)
      expect(list.list(T0 + 10 * 60_000)[0].reason).to.match(/2 bad pieces/)
      expect(list.isBlocked('a', T0 + 10 * 60_000 + HOUR - 1)).to.equal(true)
      expect(list.isBlocked('a', T0 + 10 * 60_000 + HOUR)).to.equal(false)
    })

    it('does not add up reports that are further apart than the window', () => {
      const list = new Blocklist()
      expect(list.reportBadPiece('a', T0)).to.equal(false)
      expect(list.reportBadPiece('a', T0 + HOUR)).to.equal(false)
      expect(list.isBlocked('a', T0 + HOUR)).to.equal(false)
      expect(list.badPieceCount('a', T0 + HOUR)).to.equal(1)
      expect(list.reportBadPiece('a', T0 + HOUR + 1)).to.equal(true)
    })

    it('counts per peer', () => {
      const list = new Blocklist()
      expect(list.reportBadPiece('a', T0)).to.equal(false)
      expect(list.reportBadPiece('b', T0)).to.equal(false)
      expect(list.isBlocked('a', T0)).to.equal(false)
      expect(list.isBlocked('b', T0)).to.equal(false)
    })

    it('starts counting afresh after a block, and ignores reports while blocked', () => {
      const list = new Blocklist()
      list.reportBadPiece('a', T0)
      list.reportBadPiece('a', T0)
      expect(list.reportBadPiece('a', T0 + 1)).to.equal(false)
      const after = T0 + HOUR
      expect(list.isBlocked('a', after)).to.equal(false)
      expect(list.badPieceCount('a', after)).to.equal(0)
      expect(list.reportBadPiece('a', after)).to.equal(false)
      expect(list.reportBadPiece('a', after + 1)).to.equal(true)
    })

    it('honours a custom threshold', () => {
      const list = new Blocklist({ badPiecesBeforeBlock: 3, blockTtlMs: 500 })
      expect(list.reportBadPiece('a', T0)).to.equal(false)
      expect(list.reportBadPiece('a', T0)).to.equal(false)
      expect(list.reportBadPiece('a', T0)).to.equal(true)
      expect(list.isBlocked('a', T0 + 499)).to.equal(true)
      expect(list.isBlocked('a', T0 + 500)).to.equal(false)
    })
  })

  describe('memory bound', () => {
    it('forgets the soonest-expiring entries beyond maxPeers', () => {
      const list = new Blocklist({ maxPeers: 3 })
      list.reportBadPiece('r1', T0)
      list.block('b1', T0, 5000)
      list.block('b2', T0, 1000)
      list.block('b3', T0, 3000)
      expect(list.size).to.equal(3)
      expect(list.badPieceCount('r1', T0)).to.equal(0)
      list.block('b4', T0, 4000)
      expect(list.size).to.equal(3)
      expect(list.list(T0).map(e => e.peerId)).to.deep.equal(['b3', 'b4', 'b1'])
    })

    it('prunes expired entries and old reports', () => {
      const list = new Blocklist()
      list.block('a', T0, 10)
      list.reportBadPiece('b', T0)
      expect(list.size).to.equal(2)
      list.prune(T0 + HOUR)
      expect(list.size).to.equal(0)
    })

    it('rejects invalid settings', () => {
      expect(() => new Blocklist({ badPiecesBeforeBlock: 0 })).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => new Blocklist({ maxPeers: 1.5 })).to.throw().with.property('name', 'InvalidParametersError')
    })
  })
})
