import '../../src/polyfill.ts'
import { defaultLogger } from '@libp2p/logger'
import { pbStream, streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { electTrackers } from '../../src/election/index.ts'
import { ErrorCode, TrackerRequest, TrackerResponse } from '../../src/pb/tracker.ts'
import { stripeWidth } from '../../src/scheduler/index.ts'
import { MAX_ANNOUNCE_WAIT_MS, MAX_REQUEST_BYTES, META_STAT_WAIT_MS } from '../../src/tracker/constants.ts'
import { boundedLpStream } from '../../src/tracker/framing.ts'
import { answerRequest } from '../../src/tracker/rpc.ts'
import { handleTrackerStream, RequestGate } from '../../src/tracker/server.ts'
import { Bitfield } from '../../src/utils/bitfield.ts'
import { digestOf, metaOf, range, taskIdOf } from './helpers.ts'
import { MemoryNet, newPeerId } from './memory.ts'
import type { MemoryTracker } from './memory.ts'
import type { AnnounceRequest } from '../../src/tracker/client.ts'
import type { Stream } from '@libp2p/interface'

const T = taskIdOf('protocol')
const ORIGIN_URL = 'http://origin.test/file.bin'

function announce (extra: Partial<AnnounceRequest> = {}): AnnounceRequest {
  return { taskId: T, uploadSlots: 4, freeUploadSlots: 4, ...extra }
}

/** Every byte the stream delivers until it ends; rejects if it is reset */
async function readAll (stream: Stream): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream) {
    chunks.push(chunk.subarray())
  }
  return chunks
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} did not happen within ${ms} ms`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

describe('tracker/protocol on in-memory streams', function () {
  let net: MemoryNet

  beforeEach(() => {
    net = new MemoryNet()
  })

  afterEach(() => {
    net.cleanup()
  })

  /** One tracker that serves everything (it is the only eligible peer) */
  async function soleTracker (options: Parameters<MemoryNet['addTracker']>[0] = {}): Promise<MemoryTracker> {
    const t = await net.addTracker({ replicas: 1, ...options })
    t.rpc.eligiblePeers = () => [t.id]
    return t
  }

  /** A sole tracker with a task of `pieces` pieces registered by peer A (with the metadata) and peer B, neither holding a piece */
  async function twoPeers (pieces = 8): Promise<{ t: MemoryTracker, a: ReturnType<MemoryNet['client']>, b: ReturnType<MemoryNet['client']> }> {
    const t = await soleTracker()
    const [a, b] = await Promise.all([newPeerId(), newPeerId()])
    const clientA = net.client(a)
    const clientB = net.client(b)
    await clientA.announce(t.peerId, announce({ meta: metaOf(pieces) }))
    await clientB.announce(t.peerId, announce())
    return { t, a: clientA, b: clientB }
  }

  describe('ANNOUNCE', () => {
    it('answers NEED_META, then OK with meta, ranked parents and a grant', async () => {
      const t = await soleTracker()
      const [a, b] = await Promise.all([newPeerId(), newPeerId()])
      const clientA = net.client(a)
      const clientB = net.client(b)

      expect(await clientA.announce(t.peerId, announce())).to.deep.include({ status: 'need-meta', parents: [], grant: [] })
      const addr = multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${a.toString()}`)
      const first = await clientA.announce(t.peerId, announce({ meta: { ...metaOf(8), etag: '"e"' }, wantGrant: true, addrs: [addr], zone: 'z1' }))
      expect(first.status).to.equal('ok')
      expect(first.meta).to.deep.include({ ...metaOf(8), etag: '"e"' })
      expect(first.grant).to.deep.equal(range(0, 8))
      // the stripes the grant is cut in, so the client knows how far one origin range may run
      expect(first.grantStripe).to.equal(stripeWidth(8))
      expect(first.intervalMs).to.equal(1000)

      // A reports two pieces, B joins and gets A as a parent with A's address and bitfield
      await clientA.report(t.peerId, T, [{ index: 0, digest: digestOf('p', 0) }, { index: 1, digest: digestOf('p', 1) }])
      const second = await clientB.announce(t.peerId, announce({ wantDigests: true }))
      expect(second.parents.map(p => p.peerId.toString())).to.deep.equal([a.toString()])
      expect(second.parents[0].addrs.map(x => x.toString())).to.deep.equal([addr.toString()])
      expect(Bitfield.from(second.parents[0].have, 8).indexes()).to.deep.equal([0, 1])
      expect(second.meta?.pieceDigests).to.have.length(8)
      expect(second.meta?.pieceDigests?.[1]).to.deep.equal(digestOf('p', 1))
      expect(second.meta?.pieceDigests?.[2]).to.be.undefined()
      expect(second.grant).to.deep.equal([], 'did not ask for a grant')
      expect(second.grantStripe).to.be.undefined()
      // A, granted the origin reads, is the task's source: its signed digests may be taken
      expect(first.sources.map(p => p.toString())).to.deep.equal([a.toString()])
      expect(second.sources.map(p => p.toString())).to.deep.equal([a.toString()])
      expect(t.counts.registrations).to.equal(2)
    })

    it('names the upstream: first parent, carried over the wire, none for the first peer, a DIRECT answer or with pipeline off', async () => {
      const t = await soleTracker()
      const [a, b, c] = await Promise.all([newPeerId(), newPeerId(), newPeerId()])
      const addr = multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${a.toString()}`)
      const first = await net.client(a).announce(t.peerId, announce({ meta: metaOf(8), addrs: [addr] }))
      expect(first.status).to.equal('ok')
      expect(first.upstream).to.be.undefined()
      const second = await net.client(b).announce(t.peerId, announce())
      expect(second.upstream?.toString()).to.equal(a.toString())
      // listed first with its address and bitfield, although it holds nothing yet
      expect(second.parents.map(p => p.peerId.toString())).to.deep.equal([a.toString()])
      expect(second.parents[0].addrs.map(x => x.toString())).to.deep.equal([addr.toString()])
      expect(Bitfield.from(second.parents[0].have, 8).indexes()).to.deep.equal([])
      expect((await net.client(c).announce(t.peerId, announce())).upstream?.toString()).to.equal(b.toString())

      // the field itself: encoded, decoded, empty when unset
      const answer = await answerRequest(c.toString(), { type: TrackerRequest.MessageType.ANNOUNCE, taskId: T, announce: { have: new Uint8Array(0), addrs: [], uploadSlots: 1, freeUploadSlots: 1, version: '0', wantGrant: false, wantDigests: false, attested: false, direct: false, waitMs: 0 } }, t.rpc)
      expect(answer.upstream).to.equal(b.toString())
      expect(TrackerResponse.decode(TrackerResponse.encode(answer)).upstream).to.equal(b.toString())
      expect(TrackerResponse.decode(TrackerResponse.encode({ ...answer, upstream: '' })).upstream).to.equal('')

      // a DIRECT answer is about this node's own copy: no upstream
      t.rpc.localTask = () => ({ meta: metaOf(8), pieceDigests: [], have: Uint8Array.of(0xff), addrs: [], freeUploadSlots: 1 })
      const direct = await net.client(c).announce(t.peerId, announce({ direct: true }))
      expect(direct.status).to.equal('ok')
      expect(direct.parents.map(p => p.peerId.toString())).to.deep.equal([t.id])
      expect(direct.upstream).to.be.undefined()

      const off = await soleTracker({ state: { pipeline: false } })
      await net.client(a).announce(off.peerId, announce({ meta: metaOf(8) }))
      const none = await net.client(b).announce(off.peerId, announce())
      expect(none.upstream).to.be.undefined()
      expect(none.parents).to.deep.equal([])
    })

    it('grants origin reads only from the first elected tracker; the second names parents but grants nothing', async () => {
      const [x, y] = await Promise.all([net.addTracker({ replicas: 2 }), net.addTracker({ replicas: 2 })])
      const both = [x.id, y.id]
      x.rpc.eligiblePeers = () => both
      y.rpc.eligiblePeers = () => both
      const [first, second] = electTrackers(T, both, 2).map(id => net.trackers.get(id)!)
      const [a, b] = await Promise.all([newPeerId(), newPeerId()])

      // the same announce to each replica: both serve it, one grants
      for (const client of [net.client(a), net.client(b)]) {
        const toFirst = await client.announce(first.peerId, announce({ meta: metaOf(8), wantGrant: true }))
        const toSecond = await client.announce(second.peerId, announce({ meta: metaOf(8), wantGrant: true }))
        expect(toFirst.status).to.equal('ok')
        expect(toSecond.status).to.equal('ok')
        expect(toSecond.grant).to.deep.equal([], 'a second replica must not hand out stripes the first may have granted')
      }
      expect(first.state.grantsOf(T, a.toString()).length + first.state.grantsOf(T, b.toString()).length).to.be.greaterThan(0)
      expect(second.state.grantsOf(T, a.toString())).to.deep.equal([])
      // the second one knows both peers (standby), so it can name them as parents
      expect(second.state.tasks()).to.have.length(1)

      // once the first is out of its view, the second grants
      second.rpc.eligiblePeers = () => [second.id]
      const after = await net.client(a).announce(second.peerId, announce({ wantGrant: true }))
      expect(after.grant.length).to.be.greaterThan(0)
    })

    it('answers REDIRECT when the tracker is not elected in its own view', async () => {
      const elected = await net.addTracker({ replicas: 1 })
      const other = await net.addTracker({ replicas: 1 })
      const both = [elected.id, other.id]
      elected.rpc.eligiblePeers = () => both
      other.rpc.eligiblePeers = () => both
      const [winner, loser] = electTrackers(T, both, 2).map(id => net.trackers.get(id)!)
      const client = net.client(await newPeerId())

      const answer = await client.announce(loser.peerId, announce({ meta: metaOf(4) }))
      expect(answer.status).to.equal('redirect')
      expect(answer.redirect?.peerId.toString()).to.equal(winner.id)
      expect(loser.state.tasks()).to.deep.equal([], 'a redirecting node keeps no state')
      expect(loser.counts.redirects).to.equal(1)
      expect(client.stats().failures.redirect).to.equal(1)
      // other message types are redirected too, and surface as a named error
      await expect(client.leave(loser.peerId, T)).to.eventually.be.rejected().with.property('name', 'TrackerRedirectError')
    })

    it('a node with serve: false redirects everything, or refuses when it sees no tracker', async () => {
      const real = await net.addTracker({ replicas: 1 })
      real.rpc.eligiblePeers = () => [real.id]
      const lurker = await net.addTracker({ serve: false, eligible: () => [real.id] })
      const client = net.client(await newPeerId())
      const answer = await client.announce(lurker.peerId, announce({ meta: metaOf(4) }))
      expect(answer.redirect?.peerId.toString()).to.equal(real.id)

      lurker.rpc.eligiblePeers = () => [lurker.id]
      const err = await client.announce(lurker.peerId, announce({ meta: metaOf(4) })).catch(e => e)
      expect(err).to.have.property('name', 'NotATrackerError')
      expect(err).to.have.property('code', 'NOT_A_TRACKER')
    })
  })

  describe('long polls (ANNOUNCE with wait_ms)', () => {
    it('holds an announce with nothing to offer until another peer reports a piece the waiter lacks', async () => {
      const { t, a, b } = await twoPeers()
      const started = Date.now()
      const waiting = b.announce(t.peerId, announce({ waitMs: 2000, have: Bitfield.from(Uint8Array.of(0b10000000), 8) }))
      await new Promise(resolve => setTimeout(resolve, 150))
      // a piece B already has does not wake it; one it lacks does
      await a.report(t.peerId, T, [{ index: 0, digest: digestOf('w', 0) }])
      await new Promise(resolve => setTimeout(resolve, 150))
      expect(t.rpc.waiters?.size).to.equal(1, 'still waiting after a report of a piece it has')
      await a.report(t.peerId, T, [{ index: 3, digest: digestOf('w', 3) }])
      const answer = await withTimeout(waiting, 1000, 'the held answer after the report')
      const waited = Date.now() - started
      expect(answer.parents).to.have.length(1)
      expect(Bitfield.from(answer.parents[0].have, 8).indexes()).to.deep.equal([0, 3])
      expect(waited).to.be.within(250, 1900)
      expect(t.rpc.waiters?.size).to.equal(0)
    })

    it('holds an idle peer whose upstream holds nothing it lacks, and wakes it when the upstream reports a piece it lacks', async () => {
      const { t, a, b } = await twoPeers()
      const started = Date.now()
      const waiting = b.announce(t.peerId, announce({ waitMs: 2000 }))
      await new Promise(resolve => setTimeout(resolve, 200))
      expect(t.rpc.waiters?.size).to.equal(1, 'an upstream with nothing for it is no work: held')
      await a.report(t.peerId, T, [{ index: 5, digest: digestOf('u', 5) }])
      const answer = await withTimeout(waiting, 1000, 'the held answer after the upstream\'s report')
      expect(Date.now() - started).to.be.within(150, 1900)
      expect(answer.upstream).to.not.be.undefined()
      expect(answer.parents.map(p => p.peerId.toString())).to.deep.equal([answer.upstream?.toString()])
      expect(Bitfield.from(answer.parents[0].have, 8).indexes()).to.deep.equal([5])
      expect(t.rpc.waiters?.size).to.equal(0)
    })

    it('answers at once a peer that takes attested pieces, once the task has a source; holds it while it has none', async () => {
      const { t, a, b } = await twoPeers()
      let started = Date.now()
      // no grant yet, so no source: an upstream with nothing is no work even for it
      await b.announce(t.peerId, announce({ waitMs: 400, attested: true }))
      expect(Date.now() - started).to.be.within(350, 1900)
      // A is granted the origin reads: B would ask A ahead at once
      expect((await a.announce(t.peerId, announce({ wantGrant: true }))).grant).to.not.deep.equal([])
      started = Date.now()
      const attested = await b.announce(t.peerId, announce({ waitMs: 2000, attested: true }))
      expect(Date.now() - started).to.be.below(300, 'not held')
      expect(attested.upstream?.toString()).to.equal(attested.sources[0].toString())
      // one that does not take them still waits for a report
      started = Date.now()
      await b.announce(t.peerId, announce({ waitMs: 400 }))
      expect(Date.now() - started).to.be.within(350, 1900)
    })

    it('answers at the end of the wait when nothing appears, and at once when there is something to fetch', async () => {
      const { t, a, b } = await twoPeers()
      let started = Date.now()
      const idle = await b.announce(t.peerId, announce({ waitMs: 400 }))
      expect(idle.parents.map(p => p.peerId.toString())).to.deep.equal([idle.upstream?.toString()], 'only the upstream, holding nothing')
      expect(Date.now() - started).to.be.within(350, 1900)

      await a.report(t.peerId, T, [{ index: 1, digest: digestOf('w', 1) }])
      started = Date.now()
      const busy = await b.announce(t.peerId, announce({ waitMs: 2000 }))
      expect(busy.parents).to.have.length(1)
      expect(Date.now() - started).to.be.below(300, 'a parent holds a piece B lacks: no wait')
    })

    it('caps the wait at MAX_ANNOUNCE_WAIT_MS and holds no more announces than allowed', async () => {
      const t = await net.addTracker({ replicas: 1, maxWaiters: 1 })
      t.rpc.eligiblePeers = () => [t.id]
      const [a, b, c] = await Promise.all([newPeerId(), newPeerId(), newPeerId()])
      await net.client(a).announce(t.peerId, announce({ meta: metaOf(8) }))
      // registered first: a peer's first announce is never held
      await net.client(b).announce(t.peerId, announce())
      await net.client(c).announce(t.peerId, announce())
      const started = Date.now()
      const held = net.client(b).announce(t.peerId, announce({ waitMs: 60_000 }), { timeoutMs: 10_000 })
      await new Promise(resolve => setTimeout(resolve, 100))
      const second = Date.now()
      await net.client(c).announce(t.peerId, announce({ waitMs: 2000 }))
      expect(Date.now() - second).to.be.below(300, 'the second waiter is answered at once: the cap is one')
      await held
      expect(Date.now() - started).to.be.within(MAX_ANNOUNCE_WAIT_MS - 100, MAX_ANNOUNCE_WAIT_MS + 1500)
    })
  })

  describe('metadata: one peer stats the origin', () => {
    it('tells the first peer to stat, holds the others until it announces the metadata, then registers them', async () => {
      const t = await soleTracker()
      const [a, b, c] = await Promise.all([newPeerId(), newPeerId(), newPeerId()])
      const [clientA, clientB, clientC] = [a, b, c].map(p => net.client(p))
      let started = Date.now()
      // one without an origin ORIGIN_URL cannot stat: nobody waits for it
      expect(await net.client(await newPeerId()).announce(t.peerId, announce({ waitMs: 2000 }))).to.deep.include({ status: 'need-meta' })
      expect(await clientA.announce(t.peerId, announce({ waitMs: 2000, url: ORIGIN_URL }))).to.deep.include({ status: 'need-meta' })
      expect(Date.now() - started).to.be.below(300, 'both are told at once')

      const held = [clientB, clientC].map(async client => client.announce(t.peerId, announce({ waitMs: 2000, url: ORIGIN_URL })))
      await new Promise(resolve => setTimeout(resolve, 150))
      expect(t.rpc.waiters?.size).to.equal(2)
      // one that cannot wait stats too
      expect(await net.client(await newPeerId()).announce(t.peerId, announce({ url: ORIGIN_URL }))).to.deep.include({ status: 'need-meta' })

      started = Date.now()
      await clientA.announce(t.peerId, announce({ meta: metaOf(8), wantGrant: true }))
      const answers = await withTimeout(Promise.all(held), 1000, 'the held answers after the metadata')
      expect(Date.now() - started).to.be.below(500)
      for (const answer of answers) {
        expect(answer.status).to.equal('ok')
        expect(answer.meta).to.deep.include(metaOf(8))
        expect(answer.upstream).to.not.be.undefined()
      }
      expect(t.state.task(T)?.peers).to.equal(3)
      expect(t.rpc.waiters?.size).to.equal(0)
      // known now: nobody waits for it
      started = Date.now()
      expect((await net.client(await newPeerId()).announce(t.peerId, announce({ waitMs: 2000 }))).meta).to.deep.include(metaOf(8))
      expect(Date.now() - started).to.be.below(300)
    })

    it('tells the next peer to stat once the first has not announced the metadata in time', async () => {
      const t = await soleTracker()
      const [a, b, c] = await Promise.all([newPeerId(), newPeerId(), newPeerId()])
      expect(await net.client(a).announce(t.peerId, announce({ waitMs: 2000, url: ORIGIN_URL }))).to.deep.include({ status: 'need-meta' })
      const started = Date.now()
      // A never comes back: B waits out the window, then is told to stat
      expect(await net.client(b).announce(t.peerId, announce({ waitMs: 60_000, url: ORIGIN_URL }), { timeoutMs: 10_000 })).to.deep.include({ status: 'need-meta' })
      expect(Date.now() - started).to.be.within(META_STAT_WAIT_MS - 300, META_STAT_WAIT_MS + 1500)
      // and C, asking now, waits for B
      const heldC = net.client(c).announce(t.peerId, announce({ waitMs: 2000, url: ORIGIN_URL }))
      await new Promise(resolve => setTimeout(resolve, 100))
      expect(t.rpc.waiters?.size).to.equal(1)
      await net.client(b).announce(t.peerId, announce({ meta: metaOf(4) }))
      expect((await withTimeout(heldC, 1000, 'C after B\'s metadata')).meta).to.deep.include(metaOf(4))
    })
  })

  describe('REPORT, LEAVE, BAD_PEER', () => {
    it('REPORT records digests, rejects conflicts and splits batches of more than 1024 pieces', async () => {
      const { t, a: clientA, b: clientB } = await twoPeers(2000)

      const before = t.counts.requests
      const all = range(0, 2000).map(i => ({ index: i, digest: digestOf('r', i) }))
      expect(await clientA.report(t.peerId, T, all)).to.deep.equal({ rejected: [] })
      expect(t.counts.requests - before).to.equal(2, 'two requests of at most 1024 pieces')
      expect(t.state.task(T)?.digestsKnown).to.equal(2000)

      const conflicting = await clientB.report(t.peerId, T, [{ index: 5, digest: digestOf('evil', 5) }, { index: 6, digest: digestOf('r', 6) }])
      expect(conflicting).to.deep.equal({ rejected: [5] })
      expect(t.state.digestOf(T, 5)).to.deep.equal(digestOf('r', 5))
      expect(t.counts.digestConflicts).to.equal(1)

      // a peer that never announced is told to
      const stranger = net.client(await newPeerId())
      await expect(stranger.report(t.peerId, T, [{ index: 0, digest: digestOf('r', 0) }])).to.eventually.be.rejected().with.property('name', 'NotRegisteredError')
      // a bad index is an ERROR, not retried
      const err = await clientA.report(t.peerId, T, [{ index: 2000, digest: digestOf('r', 0) }]).catch(e => e)
      expect(err).to.have.property('name', 'InvalidTrackerRequestError')
      expect(err).to.have.property('code', 'INVALID_REQUEST')
    })

    it('LEAVE releases the grants at once', async () => {
      const t = await soleTracker()
      const [a, b] = await Promise.all([newPeerId(), newPeerId()])
      await net.client(a).announce(t.peerId, announce({ meta: metaOf(8), wantGrant: true }))
      expect(t.state.grantsOf(T, a.toString())).to.deep.equal(range(0, 8))
      await net.client(a).leave(t.peerId, T)
      expect(t.state.grantsOf(T, a.toString())).to.deep.equal([])
      expect(t.state.hasPeer(T, a.toString())).to.be.false()
      expect((await net.client(b).announce(t.peerId, announce({ wantGrant: true }))).grant).to.deep.equal(range(0, 8))
    })

    it('BAD_PEER from two peers blocks the parent', async () => {
      const t = await soleTracker()
      const [bad, x, y, z] = await Promise.all([newPeerId(), newPeerId(), newPeerId(), newPeerId()])
      await net.client(bad).announce(t.peerId, announce({ meta: metaOf(4), have: Bitfield.from(Uint8Array.of(0xf0), 4) }))
      for (const p of [x, y, z]) {
        expect((await net.client(p).announce(t.peerId, announce())).parents.map(q => q.peerId.toString())).to.include(bad.toString())
      }
      await net.client(x).reportBadPeer(t.peerId, T, bad, 2)
      await net.client(y).reportBadPeer(t.peerId, T, bad.toString(), 3)
      expect(t.counts.badPeerReports).to.equal(2)
      expect(t.counts.blockedPeers).to.equal(1)
      // only z's upstream y (holding nothing) is left: never the blocked peer
      expect((await net.client(z).announce(t.peerId, announce())).parents.map(q => q.peerId.toString())).to.deep.equal([y.toString()])
      expect((await net.client(x).announce(t.peerId, announce())).upstream).to.be.undefined('the blocked peer is no upstream')
    })
  })

  describe('errors and retries', () => {
    it('REFUSED for capacity is thrown as a named error with the wire code, without retrying', async () => {
      const t = await soleTracker({ state: { maxTasks: 1 } })
      const client = net.client(await newPeerId())
      await client.announce(t.peerId, announce({ meta: metaOf(4) }))
      const dials = net.dials
      const err = await client.announce(t.peerId, { ...announce({ meta: metaOf(4) }), taskId: taskIdOf('second') }).catch(e => e)
      expect(err).to.have.property('name', 'TooManyTasksError')
      expect(err).to.have.property('code', 'TOO_MANY_TASKS')
      expect(err.message).to.match(/maximum/)
      expect(net.dials - dials).to.equal(1)
      expect(client.stats().failures.refused).to.equal(1)
      expect(t.counts.refusals).to.equal(1)

      const conflict = await client.announce(t.peerId, announce({ meta: metaOf(5) })).catch(e => e)
      expect(conflict).to.have.property('name', 'MetaConflictError')
      expect(client.stats().failures.error).to.equal(1)
    })

    it('retries BUSY with backoff and then throws TrackerBusyError', async () => {
      const t = await soleTracker({ maxConcurrentRequests: 0 })
      const client = net.client(await newPeerId(), { retries: 2 })
      const err = await client.announce(t.peerId, announce({ meta: metaOf(4) })).catch(e => e)
      expect(err).to.have.property('name', 'TrackerBusyError')
      expect(client.stats()).to.deep.include({ attempts: 3 })
      expect(client.stats().failures.refused).to.equal(3)
      expect(t.counts.busy).to.equal(3)
    })

    it('times out a tracker that never answers, per attempt, and retries', async () => {
      const t = await soleTracker({
        // read the request, never answer
        handler: async (stream) => { await readAll(stream) }
      })
      const client = net.client(await newPeerId(), { timeoutMs: 200, retries: 1 })
      const err = await client.announce(t.peerId, announce()).catch(e => e)
      expect(err).to.have.property('name', 'TimeoutError')
      expect(client.stats().failures.timeout).to.equal(2)
    })

    it('reports a malformed or oversized answer as a stream failure', async () => {
      const garbage = await soleTracker({
        handler: async (stream) => {
          stream.send(Uint8Array.of(3, 0xff, 0xff, 0xff))
          await stream.close()
        }
      })
      const client = net.client(await newPeerId(), { retries: 0 })
      const err = await client.announce(garbage.peerId, announce()).catch(e => e)
      expect(err).to.have.property('name', 'TrackerStreamError')
      expect(err.message).to.match(/Malformed answer/)

      const huge = await net.addTracker({
        handler: async (stream) => {
          // a length prefix announcing 1 GiB
          stream.send(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x04))
          await stream.close()
        }
      })
      const err2 = await client.announce(huge.peerId, announce()).catch(e => e)
      expect(err2).to.have.property('name', 'TrackerStreamError')
      expect(err2.cause).to.have.property('name', 'FrameTooLargeError')
      expect(client.stats().failures['stream-failed']).to.equal(2)
    })

    it('names the versions a peer speaks when it does not support ours, without retrying', async () => {
      const v2 = await net.addForeign(['/ipfs/id/1.0.0', '/damselfly/tracker/2.0.0'])
      const client = net.client(await newPeerId())
      const err = await client.announce(v2, announce()).catch(e => e)
      expect(err).to.have.property('name', 'TrackerProtocolNotSupportedError')
      expect(err.remoteProtocols).to.deep.equal(['/damselfly/tracker/2.0.0'])
      expect(err.message).to.include('/damselfly/tracker/1.0.0').and.include('it speaks /damselfly/tracker/2.0.0')
      expect(client.stats().failures['protocol-not-supported']).to.equal(1)
      expect(client.stats().attempts).to.equal(1)
    })

    it('retries a failed dial and then throws TrackerDialError', async () => {
      const t = await soleTracker()
      net.unreachable.add(t.id)
      const client = net.client(await newPeerId(), { retries: 2 })
      const err = await client.announce(t.peerId, announce()).catch(e => e)
      expect(err).to.have.property('name', 'TrackerDialError')
      expect(err.message).to.include('ECONNREFUSED')
      expect(client.stats().failures['dial-failed']).to.equal(3)
    })

    it('stops at once when the caller aborts, without counting a failure', async () => {
      const t = await soleTracker({ handler: async (stream) => { await readAll(stream) } })
      const client = net.client(await newPeerId(), { timeoutMs: 60_000 })
      const controller = new AbortController()
      setTimeout(() => { controller.abort(new Error('caller gave up')) }, 50)
      await expect(client.announce(t.peerId, announce(), { signal: controller.signal })).to.eventually.be.rejectedWith('caller gave up')
      expect(Object.values(client.stats().failures).reduce((a, b) => a + b)).to.equal(0)
    })

    it('validates requests before sending anything', async () => {
      const t = await soleTracker()
      const client = net.client(await newPeerId())
      await expect(client.announce(t.peerId, { ...announce(), taskId: 'nope' })).to.eventually.be.rejected().with.property('name', 'InvalidParametersError')
      await expect(client.announce(t.peerId, announce({ have: new Uint8Array(8193) }))).to.eventually.be.rejected().with.property('name', 'InvalidParametersError')
      await expect(client.report(t.peerId, T, [{ index: 0, digest: new Uint8Array(3) }])).to.eventually.be.rejected().with.property('name', 'InvalidParametersError')
      // a request the tracker would reject as too large is not sent
      await expect(client.announce(t.peerId, announce({ url: `https://example.com/${'é'.repeat(40_000)}` }))).to.eventually.be.rejected().with.property('name', 'InvalidParametersError')
      expect(net.dials).to.equal(0)
    })
  })

  describe('announceElected', () => {
    it('tries the second elected tracker when the first is unreachable', async () => {
      const trackers = await Promise.all([net.addTracker(), net.addTracker(), net.addTracker()])
      const ids = trackers.map(t => t.id)
      const [first, second] = electTrackers(T, ids, 2)
      net.unreachable.add(first)
      const client = net.client(await newPeerId(), { retries: 0 })
      const { tracker, response } = await client.announceElected(T, ids, { uploadSlots: 1, freeUploadSlots: 1, meta: metaOf(4) })
      expect(tracker.toString()).to.equal(second)
      expect(response.status).to.equal('ok')
    })

    it('follows a redirect from a node its stale view elected', async () => {
      const trackers = await Promise.all([net.addTracker(), net.addTracker(), net.addTracker()])
      const order = electTrackers(T, trackers.map(t => t.id), 3)
      const me = await newPeerId()
      const client = net.client(me)
      // the client only knows the node that ranks last: it is not elected in the full view
      const { tracker, response } = await client.announceElected(T, [order[2]], { uploadSlots: 1, freeUploadSlots: 1, meta: metaOf(4) })
      expect(tracker.toString()).to.equal(order[0])
      expect(response.status).to.equal('ok')
      expect(net.trackers.get(order[0])?.state.hasPeer(T, me.toString())).to.be.true()
      expect(net.trackers.get(order[2])?.state.task(T)).to.be.undefined()
      expect(client.stats().failures.redirect).to.equal(1)
    })

    it('throws NoTrackerReachableError naming each tracker and cause on a redirect loop or when nothing answers', async () => {
      const x = await net.addTracker({ replicas: 1 })
      const y = await net.addTracker({ replicas: 1 })
      // each one's view elects the other
      x.rpc.eligiblePeers = () => [y.id]
      y.rpc.eligiblePeers = () => [x.id]
      const client = net.client(await newPeerId(), { replicas: 1 })
      const err = await client.announceElected(T, [x.id], { uploadSlots: 1, freeUploadSlots: 1 }).catch(e => e)
      expect(err).to.have.property('name', 'NoTrackerReachableError')
      expect(err.attempts.map((a: { peerId: string, cause: string }) => [a.peerId, a.cause])).to.deep.equal([[x.id, 'redirect'], [y.id, 'redirect']])

      const foreign = await net.addForeign()
      const down = await net.addTracker()
      net.unreachable.add(down.id)
      const client2 = net.client(await newPeerId(), { retries: 0 })
      const err2 = await client2.announceElected(T, [foreign.toString(), down.id], { uploadSlots: 1, freeUploadSlots: 1 }).catch(e => e)
      expect(err2).to.have.property('name', 'NoTrackerReachableError')
      expect(err2.attempts.map((a: { cause: string }) => a.cause).sort()).to.deep.equal(['dial-failed', 'protocol-not-supported'])
      expect(err2.message).to.include(foreign.toString()).and.include(down.id)

      const none = await client2.announceElected(T, [], { uploadSlots: 1, freeUploadSlots: 1 }).catch(e => e)
      expect(none).to.have.property('name', 'NoTrackerReachableError')
      expect(none.attempts).to.deep.equal([])
    })

    it('answers in-process when this node is the elected tracker', async () => {
      const t = await soleTracker()
      const client = net.client(t.peerId, { local: { peerId: t.id, answer: async (request) => answerRequest(t.id, request, t.rpc) } })
      const { tracker, response } = await client.announceElected(T, [t.id], { uploadSlots: 1, freeUploadSlots: 1, meta: metaOf(4) })
      expect(tracker.toString()).to.equal(t.id)
      expect(response.status).to.equal('ok')
      expect(net.dials).to.equal(0)
      expect(t.state.hasPeer(T, t.id)).to.be.true()
    })
  })

  describe('framing and load', () => {
    it('aborts a stream whose length prefix announces more than 64 KiB, before the frame arrives', async () => {
      const t = await soleTracker({ timeoutMs: 60_000 })
      const [client, server] = await streamPair()
      net.streams.push(client, server)
      const served = handleTrackerStream(server, 'peer', t.server)
      // 1 GiB announced, nothing follows: only an early check can end this before the 60 s timeout
      client.send(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x04))
      await withTimeout(served, 10_000, 'the server aborting the stream')
      expect(server.status).to.equal('aborted')
      await expect(readAll(client)).to.eventually.be.rejected()
      expect(t.server.gate.active).to.equal(0)

      // exactly one byte over the limit is refused too
      const [c2, s2] = await streamPair()
      net.streams.push(c2, s2)
      const served2 = handleTrackerStream(s2, 'peer', t.server)
      const lp = boundedLpStream(c2, 2 * MAX_REQUEST_BYTES, 'test')
      void lp.write(new Uint8Array(MAX_REQUEST_BYTES + 1)).catch(() => {})
      await withTimeout(served2, 10_000, 'the server aborting the stream')
      expect(s2.status).to.equal('aborted')
    })

    it('aborts a stream whose frame does not decode or breaks a decoder limit', async () => {
      const t = await soleTracker({ timeoutMs: 60_000 })
      const frames: Uint8Array[] = [
        Uint8Array.of(0xff, 0xff, 0xff), // not protobuf
        TrackerRequest.encode({ type: TrackerRequest.MessageType.ANNOUNCE, taskId: T, announce: { have: new Uint8Array(0), addrs: range(0, 17).map(() => multiaddr('/ip4/1.2.3.4/tcp/1').bytes), uploadSlots: 1, freeUploadSlots: 1, version: '1', wantGrant: false, wantDigests: false, attested: false, direct: false, waitMs: 0 } }),
        TrackerRequest.encode({ type: TrackerRequest.MessageType.ANNOUNCE, taskId: T, announce: { have: new Uint8Array(0), addrs: [], uploadSlots: 1, freeUploadSlots: 1, version: '1', wantGrant: false, wantDigests: false, attested: false, direct: false, waitMs: 0, meta: { contentLength: 1n, pieceSize: 1, pieceDigests: [new Uint8Array(32)] } } })
      ]
      for (const frame of frames) {
        const [client, server] = await streamPair()
        net.streams.push(client, server)
        const served = handleTrackerStream(server, 'peer', t.server)
        await boundedLpStream(client, MAX_REQUEST_BYTES, 'test').write(frame)
        await withTimeout(served, 10_000, 'the server aborting the stream')
        expect(server.status).to.equal('aborted')
      }
      expect(t.state.tasks()).to.deep.equal([])
      expect(t.counts.requests ?? 0).to.equal(0)
    })

    it('answers a request without a type or with a bad task id with ERROR / INVALID_REQUEST', async () => {
      const t = await soleTracker()
      for (const request of [{ type: TrackerRequest.MessageType.UNSPECIFIED, taskId: T }, { type: TrackerRequest.MessageType.LEAVE, taskId: 'x'.repeat(64) }]) {
        const [client, server] = await streamPair()
        net.streams.push(client, server)
        void handleTrackerStream(server, 'peer', t.server)
        const pb = pbStream(client)
        await pb.write(request, TrackerRequest)
        const answer = await pb.read(TrackerResponse)
        expect(answer.status).to.equal(TrackerResponse.Status.ERROR)
        expect(answer.errorCode).to.equal(ErrorCode.INVALID_REQUEST)
        expect(answer.message).to.be.a('string').that.is.not.empty()
      }
    })

    it('answers or refuses every one of 500 announces issued within a second over separate streams', async function () {
      const t = await soleTracker({ maxConcurrentRequests: 64 })
      const peers = await Promise.all(range(0, 500).map(async () => newPeerId()))
      const log = defaultLogger().forComponent('test:storm')
      const started = Date.now()
      const outcomes = await Promise.all(peers.map(async (peer, i) => {
        const [client, server] = await streamPair()
        net.streams.push(client, server)
        void handleTrackerStream(server, peer.toString(), t.server)
        const pb = pbStream(client, { maxDataLength: 4 * 1024 * 1024 })
        await pb.write({
          type: TrackerRequest.MessageType.ANNOUNCE,
          taskId: T,
          announce: { have: new Uint8Array(0), addrs: [], uploadSlots: 1, freeUploadSlots: 1, version: '0.1.0', wantGrant: i % 2 === 0, wantDigests: false, attested: false, direct: false, waitMs: 0, meta: { contentLength: 64n * 1024n * 1024n, pieceSize: 1024 * 1024, pieceDigests: [] } }
        }, TrackerRequest)
        await client.close()
        const answer = await pb.read(TrackerResponse)
        return answer.status === TrackerResponse.Status.REFUSED ? `refused:${answer.errorCode}` : answer.status
      }))
      log('500 announces took %d ms: %o', Date.now() - started, outcomes.reduce<Record<string, number>>((acc, o) => { acc[o] = (acc[o] ?? 0) + 1; return acc }, {}))
      const ok = outcomes.filter(o => o === TrackerResponse.Status.OK).length
      const refused = outcomes.filter(o => o === `refused:${ErrorCode.BUSY}`).length
      expect(ok + refused).to.equal(500)
      // 500 streams against a cap of 64 in flight: both paths are taken
      expect(ok).to.be.greaterThan(0)
      expect(refused).to.be.greaterThan(0)
      expect(t.state.task(T)?.peers).to.equal(ok)
      expect(t.server.gate.active).to.equal(0)
      // the grants still cover every piece exactly once
      const granted = peers.flatMap(p => t.state.grantsOf(T, p.toString())).sort((a, b) => a - b)
      expect(granted).to.deep.equal(range(0, 64))
    })

    it('RequestGate admits up to its cap', () => {
      const gate = new RequestGate(2)
      expect([gate.tryEnter(), gate.tryEnter(), gate.tryEnter()]).to.deep.equal([true, true, false])
      gate.leave()
      expect(gate.tryEnter()).to.be.true()
    })
  })
})
