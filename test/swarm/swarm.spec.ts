import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { heartbeatInterval } from '../../src/swarm/membership.ts'
import { TEST_HEARTBEAT_MS, TestSwarm, dialAddr, waitFor } from '../utils/nodes.ts'
import type { DamselflyNode } from '../../src/node/index.ts'

async function swarmOf (t: TestSwarm, n: number): Promise<DamselflyNode[]> {
  const boot = await t.start()
  const bootAddr = dialAddr(boot)
  const rest = await Promise.all(Array.from({ length: n - 1 }, async () => t.start({ config: { swarm: { bootstrap: [bootAddr] } } })))
  return [boot, ...rest]
}

/** whether every node holds every member at heartbeat interval `ms` */
function heartbeatsEvery (nodes: DamselflyNode[], ms: number): boolean {
  return nodes.every(node => node.service.members().every(m => m.intervalMs === ms))
}

describe('swarm', function () {
  const t = new TestSwarm()
  afterEach(async () => { await t.stopAll() })

  for (const n of [3, 12]) {
    it(`${n} nodes from one bootstrap: peers > 0 and full live membership everywhere`, async () => {
      const nodes = await swarmOf(t, n)
      await waitFor(() => nodes.every(node => node.status().peers > 0), 30_000, 'every node to have a peer')
      await waitFor(() => nodes.every(node => node.status().members === n - 1), 60_000, 'every node to see every other as a live member')
      // beyond FULL_RATE_SWARM_SIZE nodes every member heartbeats less often, and says so
      const interval = heartbeatInterval(TEST_HEARTBEAT_MS, n)
      await waitFor(() => heartbeatsEvery(nodes, interval), 30_000, `every member to heartbeat every ${interval} ms`)
      // the longer interval loses no one: still everyone, several intervals later
      await new Promise(resolve => setTimeout(resolve, 4 * interval))
      for (const node of nodes) {
        const s = node.status()
        expect(s.members).to.equal(n - 1)
        expect(s.peerId).to.equal(node.peerId.toString())
        expect(s.swarm).to.equal('default')
        expect(s.incompatible).to.deep.equal([])
      }
    })
  }

  it('the DHT finds a provider across nodes that were not directly connected', async () => {
    const [boot, a, b] = await swarmOf(t, 3)
    await waitFor(() => [boot, a, b].every(node => node.status().dht.routingTable > 0), 30_000, 'routing tables')
    // make sure a and b are not directly connected
    await a.libp2p.hangUp(b.peerId).catch(() => {})
    const cid = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('a task')))
    await a.libp2p.contentRouting.provide(cid, { signal: AbortSignal.timeout(30_000) })
    const found: string[] = []
    for await (const prov of b.libp2p.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(30_000) })) {
      found.push(prov.id.toString())
      if (found.includes(a.peerId.toString())) {
        break
      }
    }
    expect(found).to.include(a.peerId.toString())
  })

  it('a node started 5 s before its bootstrap joins it once the bootstrap is up, without restart', async () => {
    // learn a free port and an identity for the bootstrap, then stop it
    const bootDir = await t.tempDir()
    const probe = await t.start({ config: { dataDir: bootDir } })
    const bootAddr = dialAddr(probe)
    await probe.stop()
    t.nodes.splice(t.nodes.indexOf(probe), 1)

    const early = await t.start({ config: { swarm: { bootstrap: [bootAddr] } } })
    await new Promise(resolve => setTimeout(resolve, 5000))
    expect(early.status().peers).to.equal(0)
    expect(early.status().dialFailures.refused).to.be.greaterThan(0)

    const port = bootAddr.split('/tcp/')[1].split('/')[0]
    const boot = await t.start({ config: { dataDir: bootDir, listen: [`/ip4/127.0.0.1/tcp/${port}`] } })
    expect(boot.peerId.toString()).to.equal(probe.peerId.toString(), 'identity persisted in the data dir')
    await waitFor(() => early.status().peers > 0, 30_000, 'the early node to join')
  })

  it('rejoins through the bootstrap list after losing every peer', async () => {
    const [boot, a] = await swarmOf(t, 2)
    await waitFor(() => a.status().peers > 0, 30_000, 'join')
    const bootDir = boot.config.dataDir
    const port = dialAddr(boot).split('/tcp/')[1].split('/')[0]
    await boot.stop()
    t.nodes.splice(t.nodes.indexOf(boot), 1)
    await waitFor(() => a.status().peers === 0, 30_000, 'the peer count to drop to 0')
    await t.start({ config: { dataDir: bootDir, listen: [`/ip4/127.0.0.1/tcp/${port}`] } })
    await waitFor(() => a.status().peers > 0, 30_000, 'the node to rejoin')
  })
})
