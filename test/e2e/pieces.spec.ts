/**
 * Issue 3 acceptance with real daemons on 127.0.0.1: a 256 MiB task fetched
 * whole by digest, a seed serving corrupted pieces, and kill -9 at ~50 %
 * then resume on the same data dir.
 */
import '../../src/polyfill.ts'
import fs from 'node:fs'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { electTrackers } from '../../src/election/index.ts'
import { DEFAULT_PIPELINE_MAX_DEPTH } from '../../src/scheduler/constants.ts'
import { runCli, startDaemon } from '../utils/cli.ts'
import { MiB, daemonEnv, getJson, killAll, metricOf, postJson, sha256File, sleep, startSwarmDaemons, tempRoot, until, waitForDownload, waitForMembers, writeRandomFile } from './helpers.ts'
import type { DaemonProcess } from '../utils/cli.ts'

/**
 * Wait until the task's first elected tracker (the one every node asks
 * first) holds a registration, so a digest-only get finds the seed
 */
async function waitForTracked (daemons: DaemonProcess[], taskId: string): Promise<DaemonProcess> {
  const [first] = electTrackers(taskId, daemons.map(d => d.peerId))
  const tracker = daemons.find(d => d.peerId === first)!
  await until(async () => {
    const s = await getJson(tracker, '/status')
    return s.tracker.tasks >= 1 && s.tracker.peers >= 1
  }, 30_000, `tracker ${first} to hold task ${taskId}`)
  return tracker
}

/**
 * Read a counter until it stops moving (two equal readings `ms` apart)
 */
async function settled (read: () => Promise<number>, ms = 500): Promise<number> {
  let last = await read()
  for (let i = 0; i < 40; i++) {
    await sleep(ms)
    const now = await read()
    if (now === last) {
      return now
    }
    last = now
  }
  throw new Error(`the counter did not settle; last value ${last}`)
}

describe('e2e: pieces between real daemons on 127.0.0.1', function () {
  this.timeout(240_000)

  let root: string
  const daemons: DaemonProcess[] = []

  beforeEach(async () => {
    root = await tempRoot('damselfly-e2e-pieces-')
  })

  afterEach(async () => {
    await killAll(daemons)
    await fs.promises.rm(root, { recursive: true, force: true })
  })

  it('a 256 MiB file imported on one node is fetched whole by the other with `get sha256:<hex>`, only from peers', async () => {
    const size = 256 * MiB
    const file = path.join(root, 'file.bin')
    const hex = await writeRandomFile(file, size)
    const [a, b] = await startSwarmDaemons(root, 2, [], daemons)
    await waitForMembers([a, b])

    const meta = await postJson(a, '/import', { path: file, digest: `sha256:${hex}` })
    expect(meta.contentLength).to.equal(size)
    expect(meta.state).to.equal('complete')
    await waitForTracked([a, b], meta.taskId)

    const out = path.join(root, 'out.bin')
    const started = Date.now()
    const r = await runCli(['get', `sha256:${hex}`, '-O', out, '--control', b.control, '--json', '--no-progress'], { timeoutMs: 180_000 })
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0)
    const result = JSON.parse(r.stdout)
    // eslint-disable-next-line no-console
    console.log(`      256 MiB a → b in ${((Date.now() - started) / 1000).toFixed(1)} s (get, export included)`)

    expect(result.via).to.equal('daemon')
    expect(result.taskId).to.equal(meta.taskId)
    expect(result.state).to.equal('succeeded')
    expect(result.fromOrigin).to.equal(0)
    expect(result.fromPeers).to.equal(size)
    expect((await fs.promises.stat(out)).size).to.equal(size)
    expect(await sha256File(out)).to.equal(hex)

    const sb = await getJson(b, '/status')
    expect(sb.bytes.fromOrigin).to.equal(0)
    expect(sb.bytes.fromPeers).to.equal(size)
    // one parent: nothing fetched twice, and the parent counted what it served
    expect(sb.transfer.bytesDownloaded).to.equal(size)
    const sa = await getJson(a, '/status')
    expect(sa.bytes.uploaded).to.be.at.least(size)
    expect(sa.transfer.piecesUploaded).to.be.at.least(sb.transfer.piecesDownloaded)
  })

  it('with one parent, no piece is sent twice: the seed uploads exactly the file size', async () => {
    const size = 32 * MiB
    const file = path.join(root, 'file.bin')
    const hex = await writeRandomFile(file, size)
    const digest = `sha256:${hex}`
    const [seed, d] = await startSwarmDaemons(root, 2, [], daemons)
    await waitForMembers([seed, d])
    const meta = await postJson(seed, '/import', { path: file, digest })
    await waitForTracked([seed, d], meta.taskId)

    const { taskId } = await postJson(d, '/tasks', { digest })
    const done = await waitForDownload(d, taskId, 60_000)
    expect(done.fromPeers).to.equal(size)
    const uploaded = await settled(async () => (await getJson(seed, '/status')).bytes.uploaded)
    // eslint-disable-next-line no-console
    console.log(`      one parent: the seed uploaded ${(uploaded / MiB).toFixed(0)} MiB for a ${size / MiB} MiB file`)
    // end-game duplicates make sense across parents; from a single parent every extra piece is waste
    expect(uploaded).to.equal(size)
    const out = path.join(root, 'out.bin')
    await postJson(d, `/tasks/${taskId}/export`, { output: out })
    expect(await sha256File(out)).to.equal(hex)
  })

  it('a seed serving corrupted pieces is detected and reported; the pieces come from a good seed', async () => {
    const size = 16 * MiB
    const file = path.join(root, 'file.bin')
    const hex = await writeRandomFile(file, size)
    const digest = `sha256:${hex}`
    // a: the good seed (imports later), b: the bad seed, c: fetches
    const [a, b, c] = await startSwarmDaemons(root, 3, [], daemons)
    await waitForMembers([a, b, c])

    const meta = await postJson(b, '/import', { path: file, digest })
    expect(meta.pieceCount).to.be.greaterThan(2)
    // flip one byte of every piece of b's copy, behind the running store's back
    const fh = await fs.promises.open(path.join(b.dataDir, 'tasks', meta.taskId, 'data'), 'r+')
    try {
      const one = Buffer.alloc(1)
      for (let i = 0; i < meta.pieceCount; i++) {
        const offset = i * meta.pieceSize + 4321
        await fh.read(one, 0, 1, offset)
        one[0] ^= 0xff
        await fh.write(one, 0, 1, offset)
      }
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await waitForTracked([a, b, c], meta.taskId)

    // b is the only seed: c gets only bad pieces from it, and stores none
    const { taskId } = await postJson(c, '/tasks', { digest })
    expect(taskId).to.equal(meta.taskId)
    await until(async () => (await metricOf(c, 'damselfly_transfer_bad_pieces_total')) >= 2, 30_000, 'c to receive two bad pieces from b')
    const during = await getJson(c, `/tasks/${taskId}`)
    expect(during.state).to.equal('running')
    expect(during.piecesDone).to.equal(0)
    expect(during.fromPeers).to.equal(0)

    // now a good seed joins the task
    await postJson(a, '/import', { path: file, digest })
    const done = await waitForDownload(c, taskId, 90_000)
    expect(done.fromPeers).to.equal(size)
    expect(done.fromOrigin).to.equal(0)
    const out = path.join(root, 'out.bin')
    await postJson(c, `/tasks/${taskId}/export`, { output: out })
    expect(await sha256File(out)).to.equal(hex)

    // c reported b: its log names b as the sender of bad pieces, and the
    // tracker c registered with counted a bad-peer report
    const blamed = c.output().split('\n').filter(l => l.includes('bad piece') && l.includes(b.peerId))
    expect(blamed, c.output()).to.not.be.empty()
    expect(c.output().split('\n').filter(l => l.includes('bad piece') && l.includes(a.peerId))).to.be.empty()
    const reports = await until(async () => {
      const n = (await Promise.all([a, b, c].map(async d => (await getJson(d, '/status')).tracker.badPeerReports as number))).reduce((x, y) => x + y, 0)
      return n >= 1 ? n : undefined
    }, 10_000, 'a tracker to count the bad-peer report')
    expect(reports).to.be.at.least(1)
    // every good byte came from a
    expect((await getJson(a, '/status')).bytes.uploaded).to.be.at.least(size)
  })

  it('kill -9 at ~50 %, restart on the same data dir: finishes without fetching a verified piece twice', async () => {
    const size = 64 * MiB
    const file = path.join(root, 'file.bin')
    const hex = await writeRandomFile(file, size)
    const digest = `sha256:${hex}`
    const [seed, d0] = await startSwarmDaemons(root, 2, [], daemons)
    await waitForMembers([seed, d0])
    const meta = await postJson(seed, '/import', { path: file, digest })
    await waitForTracked([seed, d0], meta.taskId)

    // slow enough (8 MiB/s) to catch it half way
    const { taskId } = await postJson(d0, '/tasks', { digest, rateBps: 8 * MiB })
    const atKill = await until(async () => {
      const p = await getJson(d0, `/tasks/${taskId}`)
      if (p.state !== 'running') {
        throw new Error(`the download ended (${p.state}) before it could be killed`)
      }
      return p.piecesDone >= meta.pieceCount / 2 ? p : undefined
    }, 60_000, 'the download to reach 50 %', 50)
    d0.proc.kill('SIGKILL')
    await d0.stop('SIGKILL')
    expect(d0.proc.signalCode).to.equal('SIGKILL')
    expect(atKill.piecesDone).to.be.below(meta.pieceCount)
    const uploadedBefore = await settled(async () => (await getJson(seed, '/status')).bytes.uploaded)

    const d1 = await startDaemon(['--bootstrap', seed.addrs[0]], { dataDir: d0.dataDir, env: daemonEnv() })
    daemons.push(d1)
    expect(d1.peerId).to.equal(d0.peerId)
    const stored = (await getJson(d1, '/status')).store.bytesStored as number
    // every piece verified before the kill is still there
    expect(stored).to.be.at.least(atKill.piecesDone * meta.pieceSize)
    expect(stored).to.be.below(size)
    const missing = size - stored

    await waitForMembers([seed, d1])
    const again = await postJson(d1, '/tasks', { digest })
    expect(again.taskId).to.equal(taskId)
    const done = await waitForDownload(d1, taskId, 120_000)
    const fetched = done.fromPeers + done.fromOrigin
    const uploaded = (await getJson(seed, '/status')).bytes.uploaded - uploadedBefore
    // eslint-disable-next-line no-console
    console.log(`      killed at ${atKill.piecesDone}/${meta.pieceCount} pieces; ${stored / MiB} MiB kept, ${missing / MiB} MiB missing; after the restart ${fetched / MiB} MiB fetched, the seed uploaded ${(uploaded / MiB).toFixed(1)} MiB`)

    const allowance = DEFAULT_PIPELINE_MAX_DEPTH * meta.pieceSize
    expect(fetched).to.be.at.least(missing)
    expect(fetched).to.be.at.most(missing + allowance)
    expect(uploaded).to.be.at.least(missing)
    expect(uploaded).to.be.at.most(missing + allowance)

    const out = path.join(root, 'out.bin')
    await postJson(d1, `/tasks/${taskId}/export`, { output: out })
    expect(await sha256File(out)).to.equal(hex)
  })
})
