import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { DEFAULT_MAX_SOURCE_PEERS } from '../../src/scheduler/index.ts'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, DEFAULT_PEER_TTL_MS, DEFAULT_TASK_TTL_MS, RATE_WINDOW_MS, SLOW_PEER_MOVE_INTERVAL_MS, SLOW_WINDOWS, UPSTREAM_SETTLE_WINDOWS } from '../../src/tracker/constants.ts'
import { TrackerState } from '../../src/tracker/state.ts'
import { announceOf, digestOf, haveOf, metaOf, range, taskIdOf } from './helpers.ts'
import type { AnnounceResult } from '../../src/tracker/state.ts'

const T = taskIdOf('state')

function ok (result: AnnounceResult): Extract<AnnounceResult, { status: 'ok' }> {
  if (result.status !== 'ok') {
    throw new Error(`expected ok, got ${result.status}`)
  }
  return result
}

/** Every piece granted to exactly one peer: the grants partition 0..pieces-1 */
function expectPartition (state: TrackerState, taskId: string, peers: string[], pieces: number): Map<string, number[]> {
  const byPeer = new Map(peers.map(p => [p, state.grantsOf(taskId, p)]))
  const all = [...byPeer.values()].flat().sort((a, b) => a - b)
  expect(all).to.deep.equal(range(0, pieces), 'every piece granted exactly once')
  return byPeer
}

describe('tracker/state', () => {
  it('has the documented timing defaults', () => {
    const state = new TrackerState()
    expect(state.announceIntervalMs).to.equal(1000)
    expect(state.peerTtlMs).to.equal(30 * DEFAULT_ANNOUNCE_INTERVAL_MS)
    expect(state.taskTtlMs).to.equal(DEFAULT_TASK_TTL_MS)
  })

  describe('announce', () => {
    it('answers NEED_META for an unknown task, keeps no state, then OK once meta is announced', () => {
      const state = new TrackerState()
      expect(state.announce('A', announceOf(T), 0)).to.deep.equal({ status: 'need-meta' })
      expect(state.tasks()).to.deep.equal([])

      const first = ok(state.announce('A', announceOf(T, { meta: { ...metaOf(10), etag: '"v1"' }, url: 'https://example.com/f' }), 1))
      expect(first.registered).to.be.true()
      expect(first.meta).to.deep.equal({ ...metaOf(10), etag: '"v1"', url: 'https://example.com/f' })
      expect(first.intervalMs).to.equal(DEFAULT_ANNOUNCE_INTERVAL_MS)
      expect(first.grant).to.deep.equal([])
      expect(first.parents).to.deep.equal([])

      // a later client without meta learns it from the tracker
      const second = ok(state.announce('B', announceOf(T), 2))
      expect(second.registered).to.be.true()
      expect(second.meta.contentLength).to.equal(10 * 1024 * 1024 - 5)
      // a refresh is not a registration
      expect(ok(state.announce('A', announceOf(T), 3)).registered).to.be.false()
      expect(state.task(T)).to.include({ peers: 2, pieceCount: 10 })
    })

    it('rejects invalid announces with InvalidParametersError and keeps no task', () => {
      const state = new TrackerState()
      const meta = metaOf(10)
      expect(() => state.announce('A', announceOf('not-hex', { meta }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.announce('A', announceOf(T.toUpperCase(), { meta }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      // 10 pieces need 2 bytes
      expect(() => state.announce('A', announceOf(T, { meta, have: new Uint8Array(3) }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      // spare bits set
      expect(() => state.announce('A', announceOf(T, { meta, have: Uint8Array.of(0, 0x01) }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.announce('A', announceOf(T, { meta: { contentLength: 10, pieceSize: 0 } }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.announce('A', announceOf(T, { meta: { contentLength: 65537 * 2, pieceSize: 2 } }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.announce('A', announceOf(T, { meta: { ...meta, digest: 'md5:abc' } }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.announce('A', announceOf(T, { meta, uploadSlots: -1 }), 0)).to.throw().with.property('name', 'InvalidParametersError')
      expect(state.tasks()).to.deep.equal([])
    })

    it('refuses metadata that conflicts with the recorded metadata', () => {
      const state = new TrackerState()
      const digest = `sha256:${'a'.repeat(64)}`
      ok(state.announce('A', announceOf(T, { meta: { ...metaOf(10), digest } }), 0))
      expect(() => state.announce('B', announceOf(T, { meta: metaOf(11) }), 1)).to.throw().with.property('name', 'MetaConflictError')
      expect(() => state.announce('B', announceOf(T, { meta: { ...metaOf(10), digest: `sha256:${'b'.repeat(64)}` } }), 1)).to.throw().with.property('name', 'MetaConflictError')
      // same meta (digest case-normalised), or meta without digest: fine
      ok(state.announce('B', announceOf(T, { meta: { ...metaOf(10), digest: digest.toUpperCase().replace('SHA256', 'sha256') } }), 1))
      ok(state.announce('C', announceOf(T, { meta: metaOf(10) }), 1))
    })
  })

  describe('parents', () => {
    const pieces = 16

    // the ranking alone: pipeline off, so no upstream is listed first (see 'pipeline' below)
    function swarm (): TrackerState {
      const state = new TrackerState({ pipeline: false })
      ok(state.announce('seed', announceOf(T, { meta: metaOf(pieces), have: haveOf(pieces, range(0, 16)) }), 0))
      ok(state.announce('half', announceOf(T, { have: haveOf(pieces, range(0, 8)) }), 0))
      ok(state.announce('few', announceOf(T, { have: haveOf(pieces, [1, 2]) }), 0))
      ok(state.announce('empty', announceOf(T), 0))
      return state
    }

    it('ranks the peers that hold something, never the requester or an empty peer', () => {
      const state = swarm()
      const answer = ok(state.announce('me', announceOf(T), 1))
      expect(answer.parents.map(p => p.peerId)).to.deep.equal(['seed', 'half', 'few'])
      expect(answer.parents[0].have).to.deep.equal(haveOf(pieces, range(0, 16)))
      expect(answer.parents[0].score).to.be.greaterThan(answer.parents[1].score)

      // a peer holding pieces asks: never itself in the list
      const half = ok(state.announce('half', announceOf(T, { have: haveOf(pieces, range(0, 8)) }), 1))
      expect(half.parents.map(p => p.peerId)).to.deep.equal(['seed'], 'few holds nothing half lacks')
    })

    it('prefers free upload slots and the same zone at equal pieces', () => {
      const state = new TrackerState({ pipeline: false })
      ok(state.announce('busy', announceOf(T, { meta: metaOf(pieces), have: haveOf(pieces, [0]), freeUploadSlots: 0 }), 0))
      ok(state.announce('free', announceOf(T, { have: haveOf(pieces, [0]), freeUploadSlots: 8 }), 0))
      ok(state.announce('near', announceOf(T, { have: haveOf(pieces, [0]), freeUploadSlots: 0, zone: 'rack-1' }), 0))
      const answer = ok(state.announce('me', announceOf(T, { zone: 'rack-1' }), 1))
      expect(answer.parents.map(p => p.peerId)).to.deep.equal(['free', 'near', 'busy'])
    })

    it('gives a complete peer no parents and caps the list', () => {
      const state = new TrackerState({ parentsPerAnswer: 2 })
      ok(state.announce('a', announceOf(T, { meta: metaOf(4), have: haveOf(4, range(0, 4)) }), 0))
      ok(state.announce('b', announceOf(T, { have: haveOf(4, [0]) }), 0))
      ok(state.announce('c', announceOf(T, { have: haveOf(4, [1]) }), 0))
      expect(ok(state.announce('a', announceOf(T, { have: haveOf(4, range(0, 4)) }), 1)).parents).to.deep.equal([])
      expect(ok(state.announce('me', announceOf(T), 1)).parents).to.have.length(2)
      expect(state.task(T)?.completePeers).to.equal(1)
    })

    it('excludes a peer blocked after bad-piece reports from two distinct peers', () => {
      const state = swarm()
      ok(state.announce('me', announceOf(T), 0))
      ok(state.announce('other', announceOf(T), 0))

      // one reporter, twice: counts once, no block
      expect(state.badPeer('me', T, 'seed', 3, 1)).to.deep.equal({ counted: true, blocked: false })
      expect(state.badPeer('me', T, 'seed', 4, 2)).to.deep.equal({ counted: false, blocked: false })
      expect(ok(state.announce('me', announceOf(T), 3)).parents.map(p => p.peerId)).to.deep.equal(['seed', 'half', 'few'])

      // a second, distinct reporter blocks it
      expect(state.badPeer('other', T, 'seed', 3, 4)).to.deep.equal({ counted: true, blocked: true })
      expect(state.isBlocked(T, 'seed', 5)).to.be.true()
      expect(ok(state.announce('me', announceOf(T), 5)).parents.map(p => p.peerId)).to.deep.equal(['half', 'few'])
    })

    it('validates bad-peer reports', () => {
      const state = swarm()
      expect(() => state.badPeer('stranger', T, 'seed', 0, 1)).to.throw().with.property('name', 'NotRegisteredError')
      expect(() => state.badPeer('half', taskIdOf('unknown'), 'seed', 0, 1)).to.throw().with.property('name', 'UnknownTaskError')
      expect(() => state.badPeer('half', T, 'seed', pieces, 1)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.badPeer('half', T, 'half', 0, 1)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.badPeer('half', T, '', 0, 1)).to.throw().with.property('name', 'InvalidParametersError')
    })
  })

  describe('pipeline (upstream)', () => {
    const pieces = 8

    it('names no upstream for the first peer, and the peer registered just before for the others', () => {
      const state = new TrackerState()
      expect(state.pipeline).to.be.true()
      expect(ok(state.announce('a', announceOf(T, { meta: metaOf(pieces) }), 0)).upstream).to.be.undefined()
      const b = ok(state.announce('b', announceOf(T), 1))
      expect(b.upstream).to.equal('a')
      expect(b.parents.map(p => p.peerId)).to.deep.equal(['a'])
      expect(ok(state.announce('c', announceOf(T), 2)).upstream).to.equal('b')
      // registration order counts, not the last announce
      expect(ok(state.announce('a', announceOf(T), 3)).upstream).to.be.undefined()
      expect(ok(state.announce('c', announceOf(T), 4)).upstream).to.equal('b')
      expect(ok(state.announce('b', announceOf(T), 5)).upstream).to.equal('a')
    })

    it('skips a peer that left or expired; one that comes back joins at the end', () => {
      const state = new TrackerState({ peerTtlMs: 100 })
      ok(state.announce('a', announceOf(T, { meta: metaOf(pieces) }), 0))
      ok(state.announce('b', announceOf(T), 0))
      ok(state.announce('c', announceOf(T), 0))
      ok(state.announce('d', announceOf(T), 0))
      expect(state.leave('c', T, 10)).to.be.true()
      expect(ok(state.announce('d', announceOf(T), 10)).upstream).to.equal('b')

      // b goes silent and expires
      ok(state.announce('a', announceOf(T), 60))
      ok(state.announce('d', announceOf(T), 60))
      expect(state.expire(100).peersDropped).to.equal(1)
      expect(state.hasPeer(T, 'b')).to.be.false()
      expect(ok(state.announce('d', announceOf(T), 110)).upstream).to.equal('a')

      // b and c come back, behind d
      expect(ok(state.announce('b', announceOf(T), 120)).upstream).to.equal('d')
      expect(ok(state.announce('c', announceOf(T), 121)).upstream).to.equal('b')
    })

    it('skips a blocked peer', () => {
      const state = new TrackerState()
      ok(state.announce('a', announceOf(T, { meta: metaOf(pieces), have: haveOf(pieces, [0]) }), 0))
      ok(state.announce('b', announceOf(T, { have: haveOf(pieces, [1]) }), 0))
      ok(state.announce('c', announceOf(T), 0))
      ok(state.announce('d', announceOf(T), 0))
      expect(ok(state.announce('c', announceOf(T), 1)).upstream).to.equal('b')
      state.badPeer('c', T, 'b', 1, 2)
      expect(state.badPeer('d', T, 'b', 1, 2).blocked).to.be.true()
      const c = ok(state.announce('c', announceOf(T), 3))
      expect(c.upstream).to.equal('a')
      expect(c.parents.map(p => p.peerId)).to.deep.equal(['a'], 'the blocked peer is neither upstream nor parent')
      // the blocked peer itself still gets an upstream
      expect(ok(state.announce('b', announceOf(T, { have: haveOf(pieces, [1]) }), 3)).upstream).to.equal('a')
    })

    it('lists the upstream first, even holding nothing, within parentsPerAnswer', () => {
      const state = new TrackerState({ parentsPerAnswer: 3 })
      ok(state.announce('seed', announceOf(T, { meta: metaOf(pieces), have: haveOf(pieces, range(0, pieces)) }), 0))
      ok(state.announce('half', announceOf(T, { have: haveOf(pieces, range(0, 4)) }), 0))
      ok(state.announce('few', announceOf(T, { have: haveOf(pieces, [5]) }), 0))
      ok(state.announce('up', announceOf(T), 0))
      const me = ok(state.announce('me', announceOf(T), 1))
      expect(me.upstream).to.equal('up')
      // the lowest ranked of the others (few) gives way to the upstream
      expect(me.parents.map(p => p.peerId)).to.deep.equal(['up', 'seed', 'half'])
      expect(me.parents[0].have).to.deep.equal(haveOf(pieces))

      // an upstream that the ranking would list anyway is listed once, first
      const late = ok(state.announce('late', announceOf(T, { have: haveOf(pieces, [7]) }), 2))
      expect(late.upstream).to.equal('me')
      ok(state.announce('me', announceOf(T, { have: haveOf(pieces, range(0, 7)) }), 3))
      const again = ok(state.announce('late', announceOf(T, { have: haveOf(pieces, [7]) }), 4))
      expect(again.parents.map(p => p.peerId)).to.deep.equal(['me', 'seed', 'half'])

      // one slot: the upstream only
      const one = new TrackerState({ parentsPerAnswer: 1 })
      ok(one.announce('seed', announceOf(T, { meta: metaOf(pieces), have: haveOf(pieces, range(0, pieces)) }), 0))
      ok(one.announce('up', announceOf(T), 0))
      expect(ok(one.announce('me', announceOf(T), 1)).parents.map(p => p.peerId)).to.deep.equal(['up'])
    })

    it('names no upstream with pipeline: false', () => {
      const state = new TrackerState({ pipeline: false })
      expect(state.pipeline).to.be.false()
      ok(state.announce('a', announceOf(T, { meta: metaOf(pieces) }), 0))
      const b = ok(state.announce('b', announceOf(T), 1))
      expect(b.upstream).to.be.undefined()
      expect(b.parents).to.deep.equal([], 'a holds nothing: not a parent without the pipeline')
    })

    it('gives a complete requester no parents, its upstream notwithstanding', () => {
      const state = new TrackerState()
      ok(state.announce('a', announceOf(T, { meta: metaOf(pieces), have: haveOf(pieces, [0]) }), 0))
      const seed = ok(state.announce('seed', announceOf(T, { have: haveOf(pieces, range(0, pieces)) }), 1))
      expect(seed.upstream).to.equal('a')
      expect(seed.parents).to.deep.equal([])
    })
  })

  describe('slow peers in the pipeline', () => {
    const pieces = 400
    const order = ['a', 'b', 'c', 'd', 'e']

    /**
     * Announce every peer once a second for `seconds`; `rate(peer, t, moved)`
     * says how many pieces a second it gains at time t, `moved` being the peers
     * moved so far. Returns every move (peer, time) and each peer's last answer
     */
    function run (state: TrackerState, seconds: number, rate: (peer: string, t: number, moved: Set<string>) => number, joinAt: Record<string, number> = {}): { moves: Array<[string, number]>, last: Map<string, Extract<AnnounceResult, { status: 'ok' }>> } {
      const peers = [...order, ...Object.keys(joinAt)]
      const held = new Map(peers.map(p => [p, 0]))
      const moves: Array<[string, number]> = []
      const last = new Map<string, Extract<AnnounceResult, { status: 'ok' }>>()
      for (let t = 0; t <= seconds * 1000; t += 1000) {
        for (const p of peers) {
          if (t < (joinAt[p] ?? 0)) {
            continue
          }
          if (t > (joinAt[p] ?? 0)) {
            held.set(p, Math.min(pieces, held.get(p)! + rate(p, t, new Set(moves.map(([m]) => m)))))
          }
          const r = ok(state.announce(p, announceOf(T, { meta: t === 0 && p === 'a' ? metaOf(pieces) : undefined, have: haveOf(pieces, range(0, held.get(p)!)) }), t))
          if (r.movedToEnd) {
            moves.push([p, t])
          }
          last.set(p, r)
        }
      }
      return { moves, last }
    }

    it('moves a peer slower than half its upstream to the end; the peers behind it keep their places', () => {
      const state = new TrackerState()
      // c's link is slow; d and e stream from it until it moves, then catch up
      const { moves, last } = run(state, 30, (p, t, moved) => {
        if (p === 'a' || p === 'b') {
          return 8
        }
        return p === 'c' || !moved.has('c') ? 2 : 8
      })
      expect(moves).to.have.length(1)
      const [[who, when]] = moves
      expect(who).to.equal('c')
      // the first window is not judged (joining), nor the settling ones after it, then SLOW_WINDOWS slow ones
      expect(when).to.equal((1 + UPSTREAM_SETTLE_WINDOWS + SLOW_WINDOWS) * RATE_WINDOW_MS)
      expect(last.get('d')!.upstream).to.equal('b')
      expect(last.get('e')!.upstream).to.equal('d')
      expect(last.get('c')!.upstream).to.equal('e', 'the slow peer streams from the last one')
      // the task's summary keeps the move, with the rates that decided it (pieces per second)
      expect(state.tasks()[0].slowPeersMoved).to.deep.equal([{ peerId: 'c', at: when, rate: 2, upstreamRate: 8 }])
    })

    it('leaves the pipeline alone when every peer keeps pace, or a peer is slow for one window only', () => {
      const steady = new TrackerState()
      expect(run(steady, 30, () => 5).moves).to.deep.equal([])
      const blip = new TrackerState()
      expect(run(blip, 30, (p, t) => p === 'c' && t > 3000 && t <= 6000 ? 1 : 5).moves).to.deep.equal([])
    })

    it('does not judge a peer while it settles behind a new upstream', () => {
      const state = new TrackerState()
      // c is slow and moves; d, behind it, stays slow for two more windows
      // while it moves its requests over, then keeps pace: d keeps its place
      let cMovedAt: number | undefined
      const { moves } = run(state, 60, (p, t, moved) => {
        if (p === 'c') {
          return 1
        }
        if (p === 'd' || p === 'e') {
          if (moved.has('c')) {
            cMovedAt ??= t - 1000
          }
          return cMovedAt == null || t <= cMovedAt + 2 * RATE_WINDOW_MS ? 1 : 8
        }
        return 8
      })
      expect(moves.map(([p]) => p)).to.deep.equal(['c'])
    })

    it('moves nobody with the pipeline off, and judges no one behind a complete upstream', () => {
      const off = new TrackerState({ pipeline: false })
      expect(run(off, 30, p => p === 'c' ? 1 : 8).moves).to.deep.equal([])
      // b holds everything from the start: c, slow, stays
      const seeded = new TrackerState()
      const rates: Record<string, number> = { b: pieces, c: 1 }
      const { moves } = run(seeded, 30, (p) => rates[p] ?? 8)
      expect(moves).to.deep.equal([])
    })

    it('moves each of two slow peers once, then leaves them at the tail rather than swapping them', () => {
      const state = new TrackerState()
      // c and d are both slow by themselves: c moves, then d (e was behind it);
      // then only slow peers that moved before are behind either of them
      const { moves, last } = run(state, 120, (p) => p === 'c' || p === 'd' ? 1 : 8)
      // d's upstream changes when c moves: that window and the settling ones pass unjudged
      const first = (1 + UPSTREAM_SETTLE_WINDOWS + SLOW_WINDOWS) * RATE_WINDOW_MS
      expect(moves).to.deep.equal([['c', first], ['d', first + (UPSTREAM_SETTLE_WINDOWS + SLOW_WINDOWS) * RATE_WINDOW_MS]])
      expect(last.get('e')!.upstream).to.equal('b')
      expect(last.get('c')!.upstream).to.equal('e')
      expect(last.get('d')!.upstream).to.equal('c')
    })

    it('moves a peer again only after SLOW_PEER_MOVE_INTERVAL_MS', () => {
      const state = new TrackerState()
      // c is slow throughout and moves at 12 s; f joins right behind it at 13 s
      // and keeps c's pace (it streams from c), so c holds f back: c is slow
      // against e again from its next windows on, but moves only once the
      // interval since its first move has passed
      const first = (1 + UPSTREAM_SETTLE_WINDOWS + SLOW_WINDOWS) * RATE_WINDOW_MS
      const { moves, last } = run(state, 70, (p) => p === 'c' || p === 'f' ? 1 : 8, { f: first + 1000 })
      expect(moves[0]).to.deep.equal(['c', first])
      expect(moves).to.have.length(2)
      expect(moves[1][0]).to.equal('c')
      expect(moves[1][1]).to.be.at.least(first + SLOW_PEER_MOVE_INTERVAL_MS)
      expect(moves[1][1]).to.be.at.most(first + SLOW_PEER_MOVE_INTERVAL_MS + RATE_WINDOW_MS)
      expect(last.get('f')!.upstream).to.equal('e')
    })
  })

  describe('source grants', () => {
    // 64 pieces; one peer more than there are source slots (several, to
    // test how they share: the default is one, the head of the pipeline)
    const pieces = 64
    const sources = 4
    const grantsInit = { maxSourcePeers: sources, stripePieces: 4 }
    const peers = Array.from({ length: sources + 1 }, (_, i) => `p${i + 1}`)
    const beyond = peers[peers.length - 1]

    function granting (): TrackerState {
      const state = new TrackerState({ sourceGrants: grantsInit })
      let now = 0
      for (const p of peers) {
        ok(state.announce(p, announceOf(T, { meta: metaOf(pieces), wantGrant: true }), now++))
      }
      return state
    }

    it('with the defaults, grants the whole task to the first peer only', () => {
      const state = new TrackerState()
      expect(ok(state.announce('p1', announceOf(T, { meta: metaOf(pieces), wantGrant: true }), 0)).grant).to.deep.equal(range(0, pieces))
      for (let k = 2; k <= DEFAULT_MAX_SOURCE_PEERS + 2; k++) {
        expect(ok(state.announce(`p${k}`, announceOf(T, { wantGrant: true }), k)).grant).to.deep.equal([])
      }
      expect(DEFAULT_MAX_SOURCE_PEERS).to.equal(1)
    })

    it('names the peers it granted origin reads as the task\'s sources, and drops a blocked one', () => {
      const state = new TrackerState({ sourceGrants: grantsInit })
      // before any grant there is no source; a peer that wants none is none
      expect(ok(state.announce('watcher', announceOf(T, { meta: metaOf(pieces) }), 0)).sources).to.deep.equal([])
      let now = 1
      for (const p of peers) {
        ok(state.announce(p, announceOf(T, { wantGrant: true }), now++))
      }
      const granted = peers.filter(p => state.grantsOf(T, p).length > 0)
      expect(granted).to.have.length(sources)
      const answer = ok(state.announce('watcher', announceOf(T), now++))
      expect(answer.sources).to.deep.equal(granted)
      // a refresh of a source does not list it twice
      ok(state.announce(granted[0], announceOf(T, { wantGrant: true }), now++))
      expect(ok(state.announce('watcher', announceOf(T), now++)).sources).to.have.members(granted).and.have.length(granted.length)
      // two distinct reporters block the first source: it no longer counts
      state.badPeer('watcher', T, granted[0], 0, now++)
      state.badPeer(peers.at(-1)!, T, granted[0], 0, now++)
      expect(ok(state.announce('watcher', announceOf(T), now++)).sources).to.not.include(granted[0])
    })

    it('names at most 16 sources, the latest last', () => {
      const state = new TrackerState()
      ok(state.announce('watcher', announceOf(T, { meta: metaOf(pieces) }), 0))
      ok(state.announce('p0', announceOf(T, { wantGrant: true }), 0))
      // the grant moves on each time its holder leaves
      for (let k = 1; k <= 20; k++) {
        state.leave(`p${k - 1}`, T, k)
        expect(ok(state.announce(`p${k}`, announceOf(T, { wantGrant: true }), k)).grant).to.not.deep.equal([])
      }
      const named = ok(state.announce('watcher', announceOf(T), 30)).sources
      expect(named).to.deep.equal(range(5, 21).map(k => `p${k}`))
    })

    it('grants every piece exactly once across the first peers', () => {
      const state = new TrackerState({ sourceGrants: grantsInit })
      const first = ok(state.announce('p1', announceOf(T, { meta: metaOf(pieces), wantGrant: true }), 0))
      // the first requester starts with the whole task
      expect(first.grant).to.deep.equal(range(0, pieces))

      let now = 1
      for (const p of peers.slice(1)) {
        ok(state.announce(p, announceOf(T, { wantGrant: true }), now++))
        expectPartition(state, T, peers, pieces)
      }
      // the source peers share the origin, the last is beyond the cap
      const byPeer = expectPartition(state, T, peers, pieces)
      expect(peers.slice(0, sources).every(p => (byPeer.get(p)?.length ?? 0) > 0)).to.be.true()
      expect(byPeer.get(beyond)).to.deep.equal([])
      // an answer is the peer's whole current grant
      expect(ok(state.announce('p2', announceOf(T, { wantGrant: true }), now)).grant).to.deep.equal(state.grantsOf(T, 'p2'))
    })

    it('grants nothing to a peer that does not want a grant, and releases what it held', () => {
      const state = granting()
      const held = state.grantsOf(T, 'p2')
      expect(held).to.not.be.empty()
      const answer = ok(state.announce('p2', announceOf(T, { wantGrant: false }), 10))
      expect(answer.grant).to.deep.equal([])
      expect(state.grantsOf(T, 'p2')).to.deep.equal([])
      // the pieces go to the next peer that asks
      const next = ok(state.announce(beyond, announceOf(T, { wantGrant: true }), 11))
      expect(next.grant).to.include.members(held)
      expectPartition(state, T, peers, pieces)
    })

    it('re-grants the pieces of a peer that LEAVEs, at once', () => {
      const state = granting()
      const held = state.grantsOf(T, 'p3')
      expect(held).to.not.be.empty()
      expect(state.leave('p3', T, 10)).to.be.true()
      expect(state.leave('p3', T, 10)).to.be.false()
      expect(state.grantsOf(T, 'p3')).to.deep.equal([])
      const next = ok(state.announce(beyond, announceOf(T, { wantGrant: true }), 10))
      expect(next.grant).to.include.members(held)
      expectPartition(state, T, peers.filter(p => p !== 'p3'), pieces)
    })

    it('re-grants the pieces of a grant holder whose entry expired', () => {
      const state = granting()
      const held = state.grantsOf(T, 'p1')
      expect(held).to.not.be.empty()
      // everyone but p1 keeps announcing
      const later = DEFAULT_PEER_TTL_MS + 10
      for (const p of peers.slice(1)) {
        ok(state.announce(p, announceOf(T, { wantGrant: true }), later - 5))
      }
      expect(state.expire(later)).to.deep.equal({ peersDropped: 1, tasksForgotten: 0 })
      expect(state.hasPeer(T, 'p1')).to.be.false()
      expect(state.grantsOf(T, 'p1')).to.deep.equal([])
      ok(state.announce(beyond, announceOf(T, { wantGrant: true }), later))
      // p1's pieces are granted again: the live peers cover every piece
      expectPartition(state, T, peers.slice(1), pieces)
    })

    it('reports complete grants, and held pieces are never granted again', () => {
      const state = granting()
      const mine = state.grantsOf(T, 'p2')
      const done = mine.slice(0, 3)
      const result = state.report('p2', T, done.map(i => ({ index: i, digest: digestOf('g', i) })), 10)
      expect(result).to.deep.equal({ recorded: 3, rejected: [] })
      expect(state.grantsOf(T, 'p2')).to.deep.equal(mine.slice(3))
      for (const p of peers) {
        const answer = ok(state.announce(p, announceOf(T, { wantGrant: true, have: p === 'p2' ? haveOf(pieces, done) : new Uint8Array(0) }), 11))
        expect(answer.grant.some(i => done.includes(i))).to.be.false()
      }
      const all = peers.flatMap(p => state.grantsOf(T, p)).sort((a, b) => a - b)
      expect(all).to.deep.equal(range(0, pieces).filter(i => !done.includes(i)))
      expect(state.task(T)?.grantsOutstanding).to.equal(pieces - done.length)
    })

    it('gives a blocked peer no grant', () => {
      const state = granting()
      expect(state.badPeer('p1', T, 'p4', 0, 10).blocked).to.be.false()
      expect(state.badPeer('p2', T, 'p4', 0, 10).blocked).to.be.true()
      expect(state.grantsOf(T, 'p4')).to.deep.equal([])
      expect(ok(state.announce('p4', announceOf(T, { wantGrant: true }), 11)).grant).to.deep.equal([])
    })
  })

  describe('digests', () => {
    it('records the first digest, rejects a conflicting one without overwriting, accepts a matching one', () => {
      const state = new TrackerState()
      ok(state.announce('a', announceOf(T, { meta: metaOf(8) }), 0))
      ok(state.announce('b', announceOf(T), 0))
      ok(state.announce('c', announceOf(T), 0))

      expect(state.report('a', T, [{ index: 2, digest: digestOf('x', 2) }, { index: 5, digest: digestOf('x', 5) }], 1)).to.deep.equal({ recorded: 2, rejected: [] })
      expect(state.report('b', T, [{ index: 2, digest: digestOf('evil', 2) }, { index: 3, digest: digestOf('x', 3) }], 2)).to.deep.equal({ recorded: 1, rejected: [2] })
      expect(state.digestOf(T, 2)).to.deep.equal(digestOf('x', 2))
      expect(state.report('c', T, [{ index: 2, digest: digestOf('x', 2) }], 3)).to.deep.equal({ recorded: 0, rejected: [] })

      // b is not marked as holding the rejected piece, c is
      const me = ok(state.announce('me', announceOf(T, { wantDigests: true }), 4))
      const parentHave = new Map(me.parents.map(p => [p.peerId, p.have]))
      expect(parentHave.get('b')).to.deep.equal(haveOf(8, [3]))
      expect(parentHave.get('c')).to.deep.equal(haveOf(8, [2]))
      expect(me.pieceDigests).to.have.length(8)
      expect(me.pieceDigests?.[2]).to.deep.equal(digestOf('x', 2))
      expect(me.pieceDigests?.[0]).to.be.undefined()
      expect(state.task(T)?.digestsKnown).to.equal(3)
      // not asked for: not sent
      expect(ok(state.announce('me', announceOf(T), 5)).pieceDigests).to.be.undefined()
    })

    it('validates a whole report before applying any of it', () => {
      const state = new TrackerState()
      ok(state.announce('a', announceOf(T, { meta: metaOf(8) }), 0))
      expect(() => state.report('a', T, [{ index: 1, digest: digestOf('x', 1) }, { index: 8, digest: digestOf('x', 8) }], 1)).to.throw().with.property('name', 'InvalidParametersError')
      expect(() => state.report('a', T, [{ index: 1, digest: new Uint8Array(31) }], 1)).to.throw().with.property('name', 'InvalidParametersError')
      const tooMany = range(0, 1025).map(i => ({ index: i % 8, digest: digestOf('x', i) }))
      expect(() => state.report('a', T, tooMany, 1)).to.throw().with.property('name', 'InvalidParametersError')
      expect(state.digestOf(T, 1)).to.be.undefined()
      expect(() => state.report('z', T, [], 1)).to.throw().with.property('name', 'NotRegisteredError')
      expect(() => state.report('a', taskIdOf('other'), [], 1)).to.throw().with.property('name', 'UnknownTaskError')
    })
  })

  describe('expiry', () => {
    it('drops a peer not heard from for the peer TTL, and only then', () => {
      const state = new TrackerState()
      ok(state.announce('a', announceOf(T, { meta: metaOf(4), have: haveOf(4, [0]) }), 1000))
      ok(state.announce('b', announceOf(T), 1000))
      expect(state.expire(1000 + DEFAULT_PEER_TTL_MS - 1)).to.deep.equal({ peersDropped: 0, tasksForgotten: 0 })
      // a report is a sign of life too
      state.report('a', T, [{ index: 1, digest: digestOf('x', 1) }], 2000)
      expect(state.expire(1000 + DEFAULT_PEER_TTL_MS)).to.deep.equal({ peersDropped: 1, tasksForgotten: 0 })
      expect(state.hasPeer(T, 'b')).to.be.false()
      expect(state.hasPeer(T, 'a')).to.be.true()
      // a dropped peer's pieces no longer count
      expect(ok(state.announce('c', announceOf(T), 2100)).parents.map(p => p.peerId)).to.deep.equal(['a'])
    })

    it('forgets a task that has had no peers for the task TTL, digests and all', () => {
      const state = new TrackerState()
      ok(state.announce('a', announceOf(T, { meta: metaOf(4) }), 0))
      state.report('a', T, [{ index: 0, digest: digestOf('x', 0) }], 0)
      state.leave('a', T, 100)
      expect(state.expire(100 + DEFAULT_TASK_TTL_MS - 1).tasksForgotten).to.equal(0)
      // the only holder left: its digests vouch for nothing any more
      expect(state.digestOf(T, 0)).to.equal(undefined)
      expect(state.task(T)).to.not.be.undefined()
      expect(state.expire(100 + DEFAULT_TASK_TTL_MS).tasksForgotten).to.equal(1)
      expect(state.task(T)).to.be.undefined()
      expect(state.announce('a', announceOf(T), 100 + DEFAULT_TASK_TTL_MS)).to.deep.equal({ status: 'need-meta' })
    })

    it('keeps a task whose peers come back before the task TTL', () => {
      const state = new TrackerState({ peerTtlMs: 10, taskTtlMs: 100 })
      ok(state.announce('a', announceOf(T, { meta: metaOf(4) }), 0))
      expect(state.expire(10)).to.deep.equal({ peersDropped: 1, tasksForgotten: 0 })
      ok(state.announce('b', announceOf(T), 50))
      expect(state.expire(200)).to.deep.equal({ peersDropped: 1, tasksForgotten: 0 })
      expect(state.expire(299)).to.deep.equal({ peersDropped: 0, tasksForgotten: 0 })
      expect(state.expire(300)).to.deep.equal({ peersDropped: 0, tasksForgotten: 1 })
    })
  })

  describe('caps', () => {
    it('refuses a task beyond maxTasks with TooManyTasksError, never crashes', () => {
      const state = new TrackerState({ maxTasks: 2 })
      ok(state.announce('a', announceOf(taskIdOf('1'), { meta: metaOf(4) }), 0))
      ok(state.announce('a', announceOf(taskIdOf('2'), { meta: metaOf(4) }), 0))
      expect(() => state.announce('a', announceOf(taskIdOf('3'), { meta: metaOf(4) }), 0)).to.throw(/maximum/).with.property('name', 'TooManyTasksError')
      // existing tasks still work; an unknown task without meta is NEED_META, not a refusal
      ok(state.announce('b', announceOf(taskIdOf('1')), 0))
      expect(state.announce('b', announceOf(taskIdOf('4')), 0).status).to.equal('need-meta')
      expect(state.counts()).to.deep.equal({ tasks: 2, peers: 3 })
    })

    it('refuses a peer beyond maxPeersPerTask with TooManyPeersError, and takes it once a slot expires', () => {
      const state = new TrackerState({ maxPeersPerTask: 3, peerTtlMs: 100 })
      ok(state.announce('a', announceOf(T, { meta: metaOf(4) }), 0))
      ok(state.announce('b', announceOf(T), 50))
      ok(state.announce('c', announceOf(T), 50))
      expect(() => state.announce('d', announceOf(T), 60)).to.throw(/maximum/).with.property('name', 'TooManyPeersError')
      // registered peers keep refreshing
      ok(state.announce('a', announceOf(T), 60))
      // once b and c are stale, d gets in
      ok(state.announce('a', announceOf(T), 149))
      expect(ok(state.announce('d', announceOf(T), 150)).registered).to.be.true()
      expect(state.task(T)?.peers).to.equal(2)
    })
  })
})
