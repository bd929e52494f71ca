import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createLibp2p } from 'libp2p'
import { coalesceProtocolMerges } from '../../src/node/protocol-merges.ts'
import type { Libp2p, PeerData, PeerId } from '@libp2p/interface'

describe('node/protocol-merges', () => {
  let node: Libp2p
  let remote: PeerId
  let reached: PeerData[]
  let restore: () => void
  let now: number

  beforeEach(async () => {
    node = await createLibp2p({})
    remote = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    // count the merges that reach the real peer store
    reached = []
    const storeMerge = node.peerStore.merge
    node.peerStore.merge = async (id, data, options) => {
      reached.push(data)
      return storeMerge.call(node.peerStore, id, data, options)
    }
    now = 1_000_000
    restore = coalesceProtocolMerges({ peerStore: node.peerStore, events: node, refreshMs: 60_000, now: () => now })
  })

  afterEach(async () => {
    restore()
    await node.stop()
  })

  it('answers a merge of protocols the record already has without touching the store', async () => {
    await node.peerStore.merge(remote, { protocols: ['/a/1', '/b/1'] })
    expect(reached).to.have.length(1)

    const peer = await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    await node.peerStore.merge(remote, { protocols: ['/b/1', '/a/1'] })
    expect(reached).to.have.length(1)
    expect(peer.protocols).to.have.members(['/a/1', '/b/1'])
    expect(peer.id.equals(remote)).to.be.true()
  })

  it('stores a protocol the record lacks', async () => {
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    await node.peerStore.merge(remote, { protocols: ['/a/1', '/c/1'] })
    expect(reached).to.have.length(2)
    expect((await node.peerStore.get(remote)).protocols).to.have.members(['/a/1', '/c/1'])
    // and then knows it
    await node.peerStore.merge(remote, { protocols: ['/c/1'] })
    expect(reached).to.have.length(2)
  })

  it('lets a merge through again once the refresh interval has passed, so the record does not expire', async () => {
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    now += 59_999
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    expect(reached).to.have.length(1)
    now += 1
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    expect(reached).to.have.length(2)
  })

  it('passes every merge that sets more than protocols', async () => {
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    await node.peerStore.merge(remote, { protocols: ['/a/1'], multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')] })
    await node.peerStore.merge(remote, { multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')] })
    await node.peerStore.merge(remote, { protocols: ['/a/1'], tags: { x: { value: 1 } } })
    expect(reached).to.have.length(4)
    expect((await node.peerStore.get(remote)).addresses.map(a => a.multiaddr.toString())).to.deep.equal(['/ip4/127.0.0.1/tcp/4001'])
  })

  it('forgets a peer whose record changed elsewhere: a protocol removed by a patch is merged back', async () => {
    await node.peerStore.merge(remote, { protocols: ['/a/1', '/b/1'] })
    await node.peerStore.patch(remote, { protocols: ['/b/1'] })
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    expect(reached).to.have.length(2)
    expect((await node.peerStore.get(remote)).protocols).to.have.members(['/a/1', '/b/1'])
  })

  it('keeps peers apart', async () => {
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    await node.peerStore.merge(other, { protocols: ['/a/1'] })
    expect(reached).to.have.length(2)
    expect((await node.peerStore.get(other)).protocols).to.deep.equal(['/a/1'])
  })

  it('forgets the least recently merged peer beyond its memory', async () => {
    restore()
    restore = coalesceProtocolMerges({ peerStore: node.peerStore, events: node, memory: 2, now: () => now })
    const peers = [remote, ...await Promise.all([1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))]
    for (const p of peers) {
      await node.peerStore.merge(p, { protocols: ['/a/1'] })
    }
    reached = []
    await node.peerStore.merge(peers[2], { protocols: ['/a/1'] })
    await node.peerStore.merge(peers[1], { protocols: ['/a/1'] })
    expect(reached).to.have.length(0)
    await node.peerStore.merge(peers[0], { protocols: ['/a/1'] })
    expect(reached).to.have.length(1)
  })

  it('puts the store\'s merge back', async () => {
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    restore()
    restore = () => {}
    await node.peerStore.merge(remote, { protocols: ['/a/1'] })
    expect(reached).to.have.length(2)
  })
})
