import '../../src/polyfill.ts'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { expect } from 'aegir/chai'
import { createLibp2p } from 'libp2p'
import { electTrackers } from '../../src/election/index.ts'
import { TrackerClient } from '../../src/tracker/client.ts'
import { tracker } from '../../src/tracker/index.ts'
import { digestOf, metaOf, taskIdOf } from './helpers.ts'
import type { Tracker } from '../../src/tracker/index.ts'
import type { Libp2p } from '@libp2p/interface'

type TrackerNode = Libp2p<{ identify: unknown, tracker: Tracker }>

const T = taskIdOf('nodes')

async function waitFor (fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) {
      return
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

const base = {
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // loopback swarms dial more than 5 times a second from one host (notes P7)
  connectionManager: { inboundConnectionThreshold: 1000 }
}

describe('tracker on real libp2p nodes (tcp + noise + yamux + identify on 127.0.0.1)', function () {
  this.timeout(60_000)

  const eligible: string[] = []
  let a: TrackerNode
  let b: TrackerNode
  /** A plain node: no tracker protocol at all */
  let plain: Libp2p<{ identify: unknown }>
  /** A node that speaks only a newer tracker version */
  let newer: Libp2p<{ identify: unknown }>
  let elected: TrackerNode
  let other: TrackerNode
  /** A tracker client on the plain node */
  let client: TrackerClient

  before(async () => {
    const trackerNode = async (): Promise<TrackerNode> => createLibp2p({
      ...base,
      services: { identify: identify(), tracker: tracker({ eligiblePeers: () => eligible, replicas: 1, client: { retryBaseDelayMs: 10 } }) }
    })
    a = await trackerNode()
    b = await trackerNode()
    plain = await createLibp2p({ ...base, services: { identify: identify() } })
    newer = await createLibp2p({ ...base, services: { identify: identify() } })
    await newer.handle('/damselfly/tracker/2.0.0', (stream) => { stream.abort(new Error('test node')) })
    eligible.push(a.peerId.toString(), b.peerId.toString())
    const [winner] = electTrackers(T, eligible, 1)
    elected = winner === a.peerId.toString() ? a : b
    other = elected === a ? b : a

    // trackers know each other (for redirect addresses); the client knows both trackers
    await a.dial(b.getMultiaddrs())
    for (const node of [a, b, newer]) {
      await plain.peerStore.merge(node.peerId, { multiaddrs: node.getMultiaddrs() })
    }
    await a.dial(plain.getMultiaddrs())
    await plain.dial(newer.getMultiaddrs())
    await waitFor(async () => (await other.peerStore.get(elected.peerId)).addresses.length > 0, 10_000, 'identify between the trackers')
    await waitFor(async () => (await plain.peerStore.get(newer.peerId)).protocols.includes('/damselfly/tracker/2.0.0'), 10_000, 'identify of the newer node')
    await waitFor(async () => (await a.peerStore.get(plain.peerId)).protocols.length > 0, 10_000, 'identify of the plain node')

    client = new TrackerClient({
      connectionManager: { openConnection: async (peer, options) => plain.dial(peer, options) },
      peerStore: plain.peerStore,
      logger: plain.logger
    }, { retries: 1, retryBaseDelayMs: 10 })
  })

  after(async () => {
    await Promise.allSettled([a, b, plain, newer].filter(n => n != null).map(async n => n.stop()))
  })

  it('runs the service with its protocol id and tag', () => {
    expect(a.services.tracker.protocol).to.equal('/damselfly/tracker/1.0.0')
    expect(a.services.tracker.isStarted()).to.be.true()
    expect(Object.prototype.toString.call(a.services.tracker)).to.equal('[object @damselfly/tracker]')
    expect(a.getProtocols()).to.include('/damselfly/tracker/1.0.0')
  })

  it('a client announces to the elected tracker: NEED_META, then OK', async () => {
    expect((await client.announce(elected.peerId, { taskId: T, uploadSlots: 4, freeUploadSlots: 4 })).status).to.equal('need-meta')
    const answer = await client.announce(elected.peerId, {
      taskId: T, uploadSlots: 4, freeUploadSlots: 4, meta: metaOf(8), wantGrant: true, addrs: plain.getMultiaddrs()
    })
    expect(answer.status).to.equal('ok')
    expect(answer.meta?.contentLength).to.equal(metaOf(8).contentLength)
    expect(answer.grant).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7])
    expect(answer.intervalMs).to.equal(1000)

    expect(await client.report(elected.peerId, T, [{ index: 0, digest: digestOf('n', 0) }])).to.deep.equal({ rejected: [] })
    expect(elected.services.tracker.tasks()).to.deep.equal([{ taskId: T, pieceCount: 8, peers: 1, completePeers: 0, grantsOutstanding: 7, digestsKnown: 1, slowPeersMoved: [] }])
    expect(elected.services.tracker.stats()).to.deep.include({ tasks: 1, peers: 1, registrations: 1, grants: 1 })

    // the elected tracker's own client answers in-process and sees the plain node as a parent
    const own = await elected.services.tracker.client.announceElected(T, eligible, { uploadSlots: 4, freeUploadSlots: 4 })
    expect(own.tracker.equals(elected.peerId)).to.be.true()
    expect(own.response.parents.map(p => p.peerId.toString())).to.deep.equal([plain.peerId.toString()])
    expect(own.response.parents[0].addrs.map(String)).to.deep.equal(plain.getMultiaddrs().map(String))
  })

  it('a non-elected node answers REDIRECT to the elected one, and announceElected follows it', async () => {
    const redirected = await client.announce(other.peerId, { taskId: T, uploadSlots: 4, freeUploadSlots: 4 })
    expect(redirected.status).to.equal('redirect')
    expect(redirected.redirect?.peerId.equals(elected.peerId)).to.be.true()
    const withoutId = (addr: string): string => addr.replace(/\/p2p\/[^/]+$/, '')
    expect(redirected.redirect?.addrs.map(String)).to.include.members(elected.getMultiaddrs().map(String).map(withoutId))
    expect(other.services.tracker.stats().redirects).to.be.greaterThan(0)
    expect(other.services.tracker.tasks()).to.deep.equal([])

    // a stale view that only knows the non-elected node
    const result = await client.announceElected(T, [other.peerId.toString()], { uploadSlots: 4, freeUploadSlots: 4 })
    expect(result.tracker.equals(elected.peerId)).to.be.true()
    expect(result.response.status).to.equal('ok')
    expect(client.stats().failures.redirect).to.be.greaterThan(0)
  })

  it('reports "protocol not supported" with the versions the remote speaks', async () => {
    const err = await client.announce(newer.peerId, { taskId: T, uploadSlots: 4, freeUploadSlots: 4 }).catch(e => e)
    expect(err).to.have.property('name', 'TrackerProtocolNotSupportedError')
    expect(err.remoteProtocols).to.deep.equal(['/damselfly/tracker/2.0.0'])
    expect(err.message).to.include('does not support /damselfly/tracker/1.0.0').and.include('/damselfly/tracker/2.0.0')

    const own = a.services.tracker.client
    const err2 = await own.announce(plain.peerId, { taskId: T, uploadSlots: 4, freeUploadSlots: 4 }).catch(e => e)
    expect(err2).to.have.property('name', 'TrackerProtocolNotSupportedError', err2.message)
    expect(err2.message).to.include('announces no tracker protocol')
    expect(own.stats().failures['protocol-not-supported']).to.equal(1)

    // a client on a tracker node (replicas 2) whose view holds only nodes without the protocol
    await a.peerStore.merge(newer.peerId, { multiaddrs: newer.getMultiaddrs() })
    const fromA = new TrackerClient({
      connectionManager: { openConnection: async (peer, options) => a.dial(peer, options) },
      peerStore: a.peerStore,
      logger: a.logger
    })
    const err3 = await fromA.announceElected(T, [plain.peerId.toString(), newer.peerId.toString()], { uploadSlots: 4, freeUploadSlots: 4 }).catch(e => e)
    expect(err3).to.have.property('name', 'NoTrackerReachableError')
    expect(err3.attempts.map((x: { cause: string }) => x.cause)).to.deep.equal(['protocol-not-supported', 'protocol-not-supported'])
  })

  it('LEAVE over the network drops the peer and its grants', async () => {
    await client.leave(elected.peerId, T)
    const summary = elected.services.tracker.tasks().find(t => t.taskId === T)
    expect(summary?.peers).to.equal(1, 'only the tracker itself is left')
    expect(summary?.grantsOutstanding).to.equal(0)
  })
})
