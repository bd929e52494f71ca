/**
 * Issue 4 acceptance with real nodes on 127.0.0.1: exactly the elected
 * nodes track a task, origin egress with 8 nodes, kill -9 of the tracker in
 * use mid-download, and downloads with no tracker at all.
 */
import '../../src/polyfill.ts'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { startOrigin } from '../../src/cli/demo/origin.ts'
import { electTrackers } from '../../src/election/index.ts'
import { taskCid } from '../../src/node/damselfly.ts'
import { loadOrCreateIdentity } from '../../src/node/index.ts'
import { DEFAULT_ORIGIN_RUN_PIECES } from '../../src/task/constants.ts'
import { taskId as computeTaskId } from '../../src/task/id.ts'
import { TestSwarm, dialAddr, waitFor } from '../utils/nodes.ts'
import { MiB, getJson, killAll, postJson, sha256File, startSwarmDaemons, tempRoot, until, waitForDownload, waitForMembers, writeRandomFile } from './helpers.ts'
import type { DemoOrigin } from '../../src/cli/demo/origin.ts'
import type { DamselflyInit, DamselflyNode } from '../../src/node/index.ts'
import type { Download } from '../../src/task/download.ts'
import type { DaemonProcess } from '../utils/cli.ts'

/**
 * `n` in-process nodes on 127.0.0.1 (heartbeat 500 ms), all bootstrapping
 * from the first, and wait until each sees the other n - 1 as live members
 */
async function startNodes (swarm: TestSwarm, n: number, config: Record<string, unknown> = {}, service?: Partial<DamselflyInit>): Promise<DamselflyNode[]> {
  const first = await swarm.start({ config, service })
  // allSettled: every node that did start is in the swarm (and stopped by stopAll) before this throws
  const results = await Promise.allSettled(Array.from({ length: n - 1 }, async () => swarm.start({ config: { ...config, swarm: { bootstrap: [dialAddr(first)] } }, service })))
  const failed = results.find(r => r.status === 'rejected')
  if (failed != null) {
    throw failed.reason
  }
  const nodes = [first, ...results.map(r => (r as PromiseFulfilledResult<DamselflyNode>).value)]
  await waitFor(() => nodes.every(node => node.status().members === n - 1), 60_000, `${n} nodes to see each other as members`)
  return nodes
}

/**
 * Export the task from every node and check each copy's sha256
 */
async function expectCopies (nodes: DamselflyNode[], taskId: string, dir: string, hex: string): Promise<void> {
  for (const [i, node] of nodes.entries()) {
    const out = path.join(dir, `out-${i}.bin`)
    await node.service.export(taskId, out)
    expect(await sha256File(out), `the copy of node ${i}`).to.equal(hex)
    await fs.promises.rm(out)
  }
}

function holdersOf (nodes: DamselflyNode[], taskId: string): string[] {
  return nodes
    .filter(node => node.service.tracker.tasks().some(t => t.taskId === taskId))
    .map(node => node.peerId.toString())
    .sort()
}

/**
 * Every upstream the downloads report while they run (the pipeline's links)
 */
function upstreamsSeen (downloads: Download[]): Set<string> {
  const seen = new Set<string>()
  for (const d of downloads) {
    d.addEventListener('progress', (evt) => {
      if (evt.detail.upstream != null) {
        seen.add(evt.detail.upstream)
      }
    })
  }
  return seen
}

describe('e2e: 8 in-process nodes and an HTTP origin', function () {
  this.timeout(180_000)

  const swarm = new TestSwarm()
  const origins: DemoOrigin[] = []
  let nodes: DamselflyNode[]
  let dir: string

  before(async () => {
    dir = await swarm.tempDir('damselfly-e2e-files-')
    nodes = await startNodes(swarm, 8)
  })

  after(async () => {
    await Promise.allSettled(origins.splice(0).map(async o => o.close()))
    await swarm.stopAll()
  })

  async function fetchAll (size: number, name: string): Promise<{ hex: string, origin: DemoOrigin, downloads: Download[], taskId: string, upstreams: Set<string> }> {
    const file = path.join(dir, name)
    const hex = await writeRandomFile(file, size)
    const origin = await startOrigin(file, { name })
    origins.push(origin)
    const downloads = nodes.map(node => node.service.get({ url: origin.url }))
    const upstreams = upstreamsSeen(downloads)
    await Promise.all(downloads.map(async d => d.done))
    return { hex, origin, downloads, taskId: downloads[0].request.taskId, upstreams }
  }

  it('8 nodes fetch one 64 MiB file: every copy is correct, origin egress ≤ 1.1 × size, ≥ 80 % of bytes from peers', async () => {
    const size = 64 * MiB
    const started = Date.now()
    const { hex, origin, downloads, taskId, upstreams } = await fetchAll(size, 'egress.bin')
    const seconds = (Date.now() - started) / 1000
    const progress = downloads.map(d => d.progress())
    const fromPeers = progress.reduce((n, p) => n + p.fromPeers, 0)
    const fromOrigin = progress.reduce((n, p) => n + p.fromOrigin, 0)
    const egress = origin.bytesSent()
    // eslint-disable-next-line no-console
    console.log(`      8 × 64 MiB in ${seconds.toFixed(1)} s: origin egress ${(egress / size).toFixed(3)} × size, from peers ${(100 * fromPeers / (fromPeers + fromOrigin)).toFixed(1)} % (${(fromPeers / MiB).toFixed(0)} MiB peers, ${(fromOrigin / MiB).toFixed(0)} MiB origin)`)

    expect(progress.every(p => p.state === 'succeeded')).to.equal(true)
    await expectCopies(nodes, taskId, dir, hex)
    expect(egress).to.be.at.least(size)
    expect(egress).to.be.at.most(1.1 * size)
    expect(fromPeers / (fromPeers + fromOrigin)).to.be.at.least(0.8)
    // the pipeline is on by default: all but its head stream from an upstream
    expect(upstreams.size, 'distinct upstreams named').to.be.at.least(4)
  })

  it('only the elected nodes track the task, and every download uses the first elected tracker', async () => {
    const { hex, downloads, taskId } = await fetchAll(4 * MiB, 'elected.bin')
    await expectCopies(nodes, taskId, dir, hex)

    // the live eligible set is the same on every node: all 8
    const all = nodes.map(node => node.peerId.toString()).sort()
    for (const node of nodes) {
      expect([...node.service.eligiblePeers()].sort()).to.deep.equal(all)
    }
    const elected = electTrackers(taskId, all)
    expect(elected).to.have.length(2)
    for (const d of downloads) {
      expect(d.progress().tracker).to.equal(elected[0])
    }
    const holders = holdersOf(nodes, taskId)
    expect(holders).to.include(elected[0])
    expect(elected).to.include.members(holders)
    // the others redirected or were never asked: none holds the task
    for (const node of nodes.filter(n => !elected.includes(n.peerId.toString()))) {
      expect(node.service.tracker.tasks().map(t => t.taskId), `node ${node.peerId.toString()}`).to.not.include(taskId)
    }
  })

  it('both elected trackers of a task hold its registrations (issue 4: the client registers with both)', async () => {
    const { taskId } = await fetchAll(4 * MiB, 'both.bin')
    const elected = electTrackers(taskId, nodes.map(node => node.peerId.toString()))
    // announces are refreshed every second: give the second tracker a few
    await until(() => holdersOf(nodes, taskId).length === 2, 10_000, 'both elected trackers to hold the task').catch(() => {})
    expect(holdersOf(nodes, taskId)).to.deep.equal([...elected].sort())
  })
})

describe('e2e: the tracker\'s settings (pipeline off, two source peers)', function () {
  this.timeout(180_000)

  const swarm = new TestSwarm()
  const origins: DemoOrigin[] = []

  // each test starts a swarm of its own
  afterEach(async () => {
    await swarm.stopAll()
  })

  after(async () => {
    await Promise.all(origins.map(async o => o.close()))
  })

  /** Every node fetches a new random file of `size` from a new origin */
  async function fetchNew (nodes: DamselflyNode[], name: string, size: number): Promise<{ dir: string, hex: string, origin: DemoOrigin, downloads: Download[] }> {
    const dir = await swarm.tempDir('damselfly-e2e-settings-')
    const file = path.join(dir, name)
    const hex = await writeRandomFile(file, size)
    const origin = await startOrigin(file, { name })
    origins.push(origin)
    const downloads = nodes.map(node => node.service.get({ url: origin.url }))
    return { dir, hex, origin, downloads }
  }

  it('the mesh (--no-pipeline): 5 nodes fetch one 24 MiB file: every copy is correct, origin egress ≤ 1.1 × size, ≥ 60 % of bytes from peers', async () => {
    const nodes = await startNodes(swarm, 5, { pipeline: false })
    const size = 24 * MiB
    const { dir, hex, origin, downloads } = await fetchNew(nodes, 'mesh.bin', size)
    const upstreams = upstreamsSeen(downloads)
    await Promise.all(downloads.map(async d => d.done))
    const taskId = downloads[0].request.taskId
    const progress = downloads.map(d => d.progress())
    const fromPeers = progress.reduce((n, p) => n + p.fromPeers, 0)
    const fromOrigin = progress.reduce((n, p) => n + p.fromOrigin, 0)

    expect(progress.every(p => p.state === 'succeeded')).to.equal(true)
    await expectCopies(nodes, taskId, dir, hex)
    expect(origin.bytesSent()).to.be.at.most(1.1 * size)
    // 4 of 5 copies could come from peers (80 %); the mesh gets most of that
    expect(fromPeers / (fromPeers + fromOrigin)).to.be.at.least(0.6)
    expect(upstreams, 'no download was given an upstream').to.deep.equal(new Set())
  })

  it('sourcePeers 2: 4 nodes fetch one 64 MiB file: two of them read the origin, each piece about once, every copy correct', async () => {
    const nodes = await startNodes(swarm, 4, { sourcePeers: 2 })
    const size = 64 * MiB
    const { dir, hex, origin, downloads } = await fetchNew(nodes, 'sources.bin', size)
    await Promise.all(downloads.map(async d => d.done))
    const readers = downloads.filter(d => d.progress().fromOrigin > 0)

    await expectCopies(nodes, downloads[0].request.taskId, dir, hex)
    expect(readers, 'nodes that read from the origin').to.have.length(2)
    expect(origin.bytesSent()).to.be.at.most(1.1 * size)
  })
})

describe('e2e: a node that just joined gets a seeded task by digest', function () {
  this.timeout(60_000)

  const swarm = new TestSwarm()

  after(async () => {
    await swarm.stopAll()
  })

  it('finds the seed though its own view elects itself first and the seed announced only to the other tracker', async () => {
    const seed = await swarm.start()
    // b's identity first, to pick content whose first elected tracker is b
    const bDir = await swarm.tempDir()
    const bId = peerIdFromPrivateKey(await loadOrCreateIdentity(bDir)).toString()
    let bytes: Uint8Array
    let hex: string
    do {
      bytes = randomBytes(2 * MiB)
      hex = createHash('sha256').update(bytes).digest('hex')
    } while (electTrackers(computeTaskId({ digest: `sha256:${hex}` }), [seed.peerId.toString(), bId])[0] !== bId)
    const file = path.join(await swarm.tempDir(), 'seeded.bin')
    await fs.promises.writeFile(file, bytes)
    // alone, the seed is its own tracker
    const meta = await seed.service.import(file, { digest: `sha256:${hex}` })
    await waitFor(() => seed.service.tracker.tasks().some(t => t.taskId === meta.taskId), 10_000, 'the seed to track its task')

    const b = await swarm.start({ config: { dataDir: bDir, swarm: { bootstrap: [dialAddr(seed)] } } })
    expect(b.peerId.toString()).to.equal(bId)
    await waitFor(() => b.status().members === 1, 30_000, 'b to see the seed')
    // the elected trackers in b's view: b, then the seed (which knows the task)
    expect(electTrackers(meta.taskId, b.service.eligiblePeers())).to.deep.equal([bId, seed.peerId.toString()])
    const d = b.service.get({ digest: `sha256:${hex}` })
    let error: any
    await d.done.catch((err) => { error = err })
    expect(error?.message, 'the download failed').to.equal(undefined)
    expect(d.progress().fromPeers).to.equal(2 * MiB)
  })
})

describe('e2e: a short outage of the only tracker', function () {
  this.timeout(90_000)

  const swarm = new TestSwarm()
  let origin: DemoOrigin | undefined

  after(async () => {
    await origin?.close()
    await swarm.stopAll()
  })

  it('once the tracker answers again, the download stops taking pieces from the origin that a parent holds', async () => {
    // x: the only eligible tracker; seed: holds the whole file; b: downloads it
    const x = await swarm.start({ config: { supernode: 'always' } })
    const bootstrap = { supernode: 'never' as const, swarm: { bootstrap: [dialAddr(x)] } }
    const [seed, b] = await Promise.all([swarm.start({ config: bootstrap }), swarm.start({ config: bootstrap })])
    await waitFor(() => [x, seed, b].every(n => n.status().members === 2), 30_000, 'the three nodes to see each other')

    const size = 32 * MiB
    const file = path.join(await swarm.tempDir(), 'outage.bin')
    const hex = await writeRandomFile(file, size)
    origin = await startOrigin(file, { name: 'outage.bin' })
    const meta = await seed.service.import(file, { url: origin.url })
    await waitFor(() => x.service.tracker.tasks().some(t => t.taskId === meta.taskId && t.completePeers === 1), 10_000, 'the seed to register')

    // 4 MiB/s: about 8 s, time for an outage in the middle
    const d = b.service.get({ url: origin.url, rateBps: 4 * MiB })
    expect(d.request.taskId).to.equal(meta.taskId)
    await waitFor(() => d.progress().piecesDone >= meta.pieceCount / 4, 30_000, 'a quarter of the file')
    const atOutage = d.progress()
    const failures = (): number => Object.values(b.service.tracker.stats().client.failures).reduce((n, f) => n + f, 0)
    const failedBefore = failures()
    await x.service.tracker.stop()
    await waitFor(() => failures() > failedBefore, 10_000, 'b to find the tracker gone')
    await x.service.tracker.start()
    // two announce intervals: b has heard the tracker again
    await new Promise(resolve => setTimeout(resolve, 2_000))
    const recovered = d.progress()
    expect(recovered.state).to.equal('running')
    await d.done
    const end = d.progress()
    // eslint-disable-next-line no-console
    console.log(`      outage at ${atOutage.piecesDone}/${meta.pieceCount} pieces: from the origin ${(atOutage.fromOrigin / MiB).toFixed(0)} MiB before, ${(recovered.fromOrigin / MiB).toFixed(0)} MiB 2 s after the tracker came back, ${(end.fromOrigin / MiB).toFixed(0)} MiB at the end (origin sent ${(origin.bytesSent() / MiB).toFixed(0)} MiB)`)

    await expectCopies([b], meta.taskId, path.dirname(file), hex)
    // at most the origin run that was in flight when the tracker came back
    expect(end.fromOrigin).to.be.at.most(recovered.fromOrigin + DEFAULT_ORIGIN_RUN_PIECES * meta.pieceSize)
  })
})

describe('e2e: no tracker eligible (every node supernode: never)', function () {
  this.timeout(120_000)

  const swarm = new TestSwarm()
  const origins: DemoOrigin[] = []
  let nodes: DamselflyNode[]
  let dir: string

  before(async () => {
    dir = await swarm.tempDir('damselfly-e2e-files-')
    // provider records 1 s after a node goes quiet (30 s by default), for the DHT test below
    nodes = await startNodes(swarm, 4, { supernode: 'never' }, { provideQuietMs: 1000 })
  })

  after(async () => {
    await Promise.allSettled(origins.splice(0).map(async o => o.close()))
    await swarm.stopAll()
  })

  async function serve (size: number, name: string): Promise<{ hex: string, origin: DemoOrigin }> {
    const file = path.join(dir, name)
    const hex = await writeRandomFile(file, size)
    const origin = await startOrigin(file, { name })
    origins.push(origin)
    return { hex, origin }
  }

  it('downloads still complete through the origin, sha256 correct', async () => {
    const size = 8 * MiB
    const { hex, origin } = await serve(size, 'blocked.bin')
    for (const node of nodes) {
      expect(node.service.eligiblePeers()).to.deep.equal([])
    }
    const downloads = nodes.map(node => node.service.get({ url: origin.url, digest: `sha256:${hex}` }))
    await Promise.all(downloads.map(async d => d.done))
    const taskId = downloads[0].request.taskId
    await expectCopies(nodes, taskId, dir, hex)
    for (const [i, d] of downloads.entries()) {
      const p = d.progress()
      expect(p.state).to.equal('succeeded')
      expect(p.tracker, `node ${i} had no tracker`).to.equal(undefined)
      expect(p.fromPeers + p.fromOrigin).to.be.at.least(size)
    }
    for (const node of nodes) {
      expect(node.service.tracker.stats().tasks).to.equal(0)
    }
    // eslint-disable-next-line no-console
    console.log(`      no tracker: origin egress ${(origin.bytesSent() / size).toFixed(2)} × size for ${nodes.length} nodes`)
  })

  it('a digest-only get finds the content through DHT providers when no tracker is reachable (issue 4)', async () => {
    const size = 4 * MiB
    const { hex, origin } = await serve(size, 'dht.bin')
    const digest = `sha256:${hex}`
    const [seed, other] = nodes
    const first = seed.service.get({ url: origin.url, digest })
    await first.done
    const taskId = first.request.taskId
    // the seed provided the task in the DHT, and the other node can find that record
    await until(async () => {
      for await (const provider of other.libp2p.contentRouting.findProviders(taskCid(taskId), { signal: AbortSignal.timeout(5_000) })) {
        if (provider.id.equals(seed.peerId)) {
          return true
        }
      }
      return false
    }, 30_000, 'the provider record of the seed')

    const d = other.service.get({ digest, backToSource: false })
    let error: any
    await d.done.catch((err) => { error = err })
    expect(error?.message, 'the download failed').to.equal(undefined)
    expect(d.progress().fromPeers).to.equal(size)
    await expectCopies([other], taskId, dir, hex)
  })
})

describe('e2e: kill -9 of the tracker in use, 8 daemons', function () {
  this.timeout(240_000)

  let root: string
  let origin: DemoOrigin | undefined
  const daemons: DaemonProcess[] = []

  before(async () => {
    root = await tempRoot('damselfly-e2e-failover-')
  })

  after(async () => {
    await killAll(daemons)
    await origin?.close()
    await fs.promises.rm(root, { recursive: true, force: true })
  })

  it('every other download completes with sha256 correct, and the replacement tracker takes over', async () => {
    const size = 32 * MiB
    const file = path.join(root, 'file.bin')
    const hex = await writeRandomFile(file, size)
    origin = await startOrigin(file)
    const all = await startSwarmDaemons(root, 8, [], daemons)
    await waitForMembers(all, 90_000)

    // 2 MiB/s per download: ≥ 16 s, time enough to kill the tracker in the middle
    const started = await Promise.all(all.map(async d => postJson(d, '/tasks', { url: origin!.url, rateBps: 2 * MiB })))
    const taskId: string = started[0].taskId
    expect(started.every(s => s.taskId === taskId)).to.equal(true)
    const elected = electTrackers(taskId, all.map(d => d.peerId))
    const victim = all.find(d => d.peerId === elected[0])!
    const survivors = all.filter(d => d !== victim)
    const replacement = electTrackers(taskId, survivors.map(d => d.peerId))[0]
    expect(replacement).to.equal(elected[1])

    const progressOf = async (): Promise<any[]> => Promise.all(survivors.map(async d => getJson(d, `/tasks/${taskId}`)))
    const before = await until(async () => {
      const ps = await progressOf()
      const count = ps[0].pieceCount ?? 1
      return ps.every(p => p.state === 'running' && p.tracker === victim.peerId) && ps.some(p => p.piecesDone >= count / 5) ? ps : undefined
    }, 60_000, `every download to use tracker ${victim.peerId} and one to be 20 % done`)
    const killedAt = Date.now()
    victim.proc.kill('SIGKILL')

    // failover: the first download whose progress names another tracker
    const switched = await until(async () => {
      const ps = await progressOf()
      const moved = ps.find(p => p.tracker != null && p.tracker !== victim.peerId)
      return moved != null ? { ms: Date.now() - killedAt, tracker: moved.tracker } : undefined
    }, 30_000, 'a download to use another tracker', 50)
    const allSwitched = await until(async () => {
      const ps = await progressOf()
      return ps.every(p => p.state === 'succeeded' || p.tracker !== victim.peerId) ? Date.now() - killedAt : undefined
    }, 30_000, 'every running download to use another tracker', 50)
    const done = await Promise.all(survivors.map(async d => waitForDownload(d, taskId, 120_000)))
    const egress = origin.bytesSent()
    // eslint-disable-next-line no-console
    console.log(`      killed tracker at ${Math.round(100 * Math.max(...before.map(p => p.piecesDone)) / before[0].pieceCount)} % (most advanced node); failover ${switched.ms} ms to the first download, ${allSwitched} ms to all; origin egress ${(egress / size).toFixed(2)} × size (survivors from the origin, MiB: ${done.map(p => (p.fromOrigin / MiB).toFixed(0)).join(' ')})`)

    expect(switched.tracker).to.equal(replacement)
    expect(switched.ms).to.be.below(15_000)
    // under load a node may also try the next tracker for a while; none stays on the dead one
    for (const p of done) {
      expect(p.tracker).to.be.oneOf(survivors.map(d => d.peerId))
    }
    for (const [i, d] of survivors.entries()) {
      const out = path.join(root, `out-${i}.bin`)
      await postJson(d, `/tasks/${taskId}/export`, { output: out })
      expect(await sha256File(out), `the copy of ${d.peerId}`).to.equal(hex)
      await fs.promises.rm(out)
    }
  })
})
