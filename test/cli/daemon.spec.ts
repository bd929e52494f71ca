import '../../src/polyfill.ts'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { ControlClient } from '../../src/cli/client.ts'
import { socketPath } from '../../src/daemon/index.ts'
import { runCli, startDaemon, stopAll } from '../utils/cli.ts'
import { TestSwarm, waitFor } from '../utils/nodes.ts'
import type { DaemonProcess } from '../utils/cli.ts'

async function statusOf (d: DaemonProcess): Promise<any> {
  const r = await runCli(['status', '--json', '--data-dir', d.dataDir])
  expect(r.code, r.stderr).to.equal(0)
  return JSON.parse(r.stdout)
}

describe('daemon and CLI', function () {
  const daemons: DaemonProcess[] = []
  const t = new TestSwarm()
  let tmp: string

  beforeEach(async () => { tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-cli-')) })
  afterEach(async () => {
    await stopAll(daemons)
    await t.stopAll()
    await fs.rm(tmp, { recursive: true, force: true })
  })

  it('status --json has the contract fields; peers and members count live', async () => {
    const a = await startDaemon()
    daemons.push(a)
    const b = await startDaemon(['--bootstrap', a.addrs[0]])
    daemons.push(b)
    await waitFor(async () => (await statusOf(b)).members === 1, 30_000, 'b to see a as a member')
    const s = await statusOf(b)
    expect(s.peerId).to.equal(b.peerId)
    expect(s.addresses).to.be.an('array').that.is.not.empty()
    expect(s.swarm).to.equal('default')
    expect(s.peers).to.equal(1)
    expect(s.members).to.equal(1)
    expect(s.transfer).to.deep.equal({ bytesUploaded: 0, bytesDownloaded: 0, piecesUploaded: 0, piecesDownloaded: 0, badPieces: 0, busyAnswers: 0, piecesForwarded: 0, activeUploads: 0 })
    const human = await runCli(['status', '--data-dir', b.dataDir])
    expect(human.stdout).to.match(/^pieces +0 fetched from peers \(0 failed verification\), 0 served \(0 sent on while still arriving\); 0 requests answered busy/m)
    expect(s.dht.provides).to.deep.equal({ waiting: 0, provided: 0, failed: 0 })
    expect(human.stdout).to.match(/^dht +\d+ peers in the routing table; provider records: 0 sent, 0 waiting for the node to be quiet, 0 failed$/m)
    // --control works as well as the socket
    const viaTcp = await runCli(['peers', '--json', '--control', b.control])
    expect(JSON.parse(viaTcp.stdout).map((p: any) => p.peerId)).to.deep.equal([a.peerId])
    const metrics = await fetch(`http://${b.control}/metrics`).then(async r => r.text())
    expect(metrics).to.match(/^damselfly_swarm_peers 1$/m)
    expect(metrics).to.match(/^damselfly_swarm_members 1$/m)
    expect(metrics).to.include('libp2p_data_transfer_bytes_total')
    expect(metrics).to.match(/^damselfly_transfer_answer_wait_seconds_bucket\{le="0.5"\} 0$/m)
    expect(metrics).to.match(/^damselfly_transfer_piece_receive_seconds_count 0$/m)
    // the process's own figures
    expect(metrics).to.match(/^process_cpu_seconds_total \d/m)
    // declared from the start; its series appear with the first collection after the daemon started
    expect(metrics).to.match(/^# TYPE nodejs_gc_duration_seconds histogram$/m)
    const health = await fetch(`http://${b.control}/healthz`).then(async r => r.json())
    expect(health.ok).to.equal(true)
    // a bad escape in a path is a 400, not a crash
    const bad = await fetch(`http://${b.control}/tasks/%E0%A4%A`)
    expect(bad.status).to.equal(400)
    const unknown = await fetch(`http://${b.control}/tasks/${'0'.repeat(64)}`)
    expect(unknown.status).to.equal(404)
    expect((await fetch(`http://${b.control}/healthz`)).ok).to.equal(true)
  })

  it('keeps its peer id across restarts, stops on SIGTERM with exit 0, refuses a second daemon on one data dir', async () => {
    const a = await startDaemon()
    daemons.push(a)
    const second = await runCli(['daemon', '--data-dir', a.dataDir, '--control', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(second.code).to.equal(1)
    expect(second.stderr).to.include('already runs with data dir')
    expect(await a.stop('SIGTERM')).to.equal(0)
    expect(a.output()).to.include('stopped')
    const again = await startDaemon([], { dataDir: a.dataDir })
    daemons.push(again)
    expect(again.peerId).to.equal(a.peerId)
  })

  it('private swarm: same key connects; another key and no key never connect; doctor names the swarm key', async function () {
    // two doctor runs each wait out handshakes that stall (5 s dial timeout + a TCP probe per address)
    this.timeout(300_000)
    const keyA = path.join(tmp, 'a.key')
    const keyB = path.join(tmp, 'b.key')
    expect((await runCli(['keygen', '--swarm-key', keyA])).code).to.equal(0)
    expect((await runCli(['keygen', '--swarm-key', keyB])).code).to.equal(0)
    const refused = await runCli(['keygen', '--swarm-key', keyA])
    expect(refused.code).to.not.equal(0)
    expect(refused.stderr).to.include('--force')

    const a = await startDaemon(['--swarm-key', keyA])
    daemons.push(a)
    const member = await startDaemon(['--swarm-key', keyA, '--bootstrap', a.addrs[0]])
    daemons.push(member)
    const outsider = await startDaemon(['--swarm-key', keyB, '--bootstrap', a.addrs[0]])
    daemons.push(outsider)
    const keyless = await startDaemon(['--bootstrap', a.addrs[0]])
    daemons.push(keyless)

    await waitFor(async () => (await statusOf(member)).peers === 1, 30_000, 'the member to join')
    await new Promise(resolve => setTimeout(resolve, 3000))
    expect((await statusOf(outsider)).peers).to.equal(0)
    expect((await statusOf(outsider)).connections).to.equal(0)
    expect((await statusOf(keyless)).peers).to.equal(0)
    expect((await statusOf(a)).peers).to.equal(1)

    const doctor = await runCli(['doctor', '--data-dir', outsider.dataDir])
    expect(doctor.code).to.equal(1)
    const line = doctor.stdout.split('\n').find(l => l.startsWith('fail bootstrap'))
    expect(line, doctor.stdout).to.match(/swarm-key/).and.match(/not in this private swarm/)
    expect(doctor.stdout).to.match(/^fail peer count: 0 swarm peers: \[swarm-key\]/m)

    const keylessDoctor = await runCli(['doctor', '--data-dir', keyless.dataDir])
    expect(keylessDoctor.code).to.equal(1)
    expect(keylessDoctor.stdout).to.match(/^fail bootstrap .*\[(swarm-key|timeout)\]/m)
  })

  it('a peer speaking an incompatible protocol version is reported with both versions by status and doctor', async () => {
    const a = await startDaemon()
    daemons.push(a)
    const future = await t.start({ config: { swarm: { bootstrap: [a.addrs[0]] } }, service: { protocolVersions: { piece: '2.0.0' } } })
    await waitFor(async () => (await statusOf(a)).incompatible.length > 0, 30_000, 'the daemon to report the incompatible peer')
    const inc = (await statusOf(a)).incompatible[0]
    expect(inc).to.include({ peerId: future.peerId.toString(), protocol: 'piece', ours: '1.0.0', theirs: '2.0.0' })
    const human = await runCli(['status', '--data-dir', a.dataDir])
    expect(human.stdout).to.include('piece 2.0.0 (ours 1.0.0)')
    const doctor = await runCli(['doctor', '--data-dir', a.dataDir])
    expect(doctor.stdout).to.match(/^fail peer .*incompatible: it speaks \/damselfly\/piece\/2\.0\.0, this node \/damselfly\/piece\/1\.0\.0/m)
  })

  it('doctor names a download that reaches no tracker, with the reason; status shows bytes by source', async () => {
    const file = path.join(tmp, 'f.bin')
    await fs.writeFile(file, Buffer.alloc(3 * 1024 * 1024, 7))
    const { startOrigin } = await import('../../src/cli/demo/origin.ts')
    const origin = await startOrigin(file)
    try {
      const a = await startDaemon(['--supernode', 'never'])
      daemons.push(a)
      const res = await fetch(`http://${a.control}/tasks`, { method: 'POST', body: JSON.stringify({ url: origin.url, rateBps: 512 * 1024 }) })
      const { taskId } = await res.json()
      await waitFor(async () => (await (await fetch(`http://${a.control}/tasks/${taskId}`)).json()).trackerError != null, 20_000, 'the download to report no tracker')
      const doctor = await runCli(['doctor', '--data-dir', a.dataDir])
      expect(doctor.stdout).to.match(/^fail task [0-9a-f]{16}: no tracker reachable: No eligible tracker is known/m)
      await waitFor(async () => (await (await fetch(`http://${a.control}/tasks/${taskId}`)).json()).state === 'succeeded', 60_000, 'the download to finish from the origin')
      const s = await statusOf(a)
      expect(s.bytes.fromOrigin).to.equal(3 * 1024 * 1024)
      expect(s.bytes.fromPeers).to.equal(0)
      const human = await runCli(['status', '--data-dir', a.dataDir])
      expect(human.stdout).to.match(/bytes\s+0 B from peers, 3\.0 MiB from origins/)
    } finally {
      await origin.close()
    }
  })

  it('bad config fails at start with the key: unknown key, bad port, unreadable swarm key', async () => {
    const conf = path.join(tmp, 'bad.yaml')
    await fs.writeFile(conf, 'swarm:\n  bootstrapp: []\n')
    const unknown = await runCli(['daemon', '--config', conf])
    expect(unknown.code).to.equal(2)
    expect(unknown.stderr.trim().split('\n')).to.have.length(1)
    expect(unknown.stderr).to.include('swarm.bootstrapp').and.include('unknown key')

    const port = await runCli(['daemon', '--data-dir', tmp, '--control', 'localhost:70000'])
    expect(port.code).to.equal(2)
    expect(port.stderr).to.include('control.listen')

    const key = await runCli(['daemon', '--data-dir', tmp, '--swarm-key', path.join(tmp, 'nope.key')])
    expect(key.code).to.equal(2)
    expect(key.stderr.trim().split('\n')).to.have.length(1)
    expect(key.stderr).to.include('swarm.keyFile').and.include('nope.key')

    const env = await runCli(['daemon', '--data-dir', tmp], { env: { DAMSELFLY_SUPERNODE: 'maybe' } })
    expect(env.code).to.equal(2)
    expect(env.stderr).to.include('DAMSELFLY_SUPERNODE')

    const quota = await runCli(['daemon', '--data-dir', tmp, '--storage-quota', '150%'])
    expect(quota.code).to.equal(2)
    expect(quota.stderr).to.include('storage.quota').and.include('80%')
  })

  it('import, export, GET /tasks/:id/data and rm work through the daemon, and all but the data route without one; rm frees the task, an unknown one is named', async () => {
    const file = path.join(tmp, 'rm.bin')
    await fs.writeFile(file, Buffer.alloc(200_000, 'rm'))
    const d = await startDaemon()
    daemons.push(d)
    const imported = await runCli(['import', file, '--data-dir', d.dataDir, '--json'])
    expect(imported.code).to.equal(0, imported.stderr)
    const id = JSON.parse(imported.stdout).taskId
    const out = path.join(tmp, 'rm-out.bin')
    const exported = await runCli(['export', id, '-O', out, '--data-dir', d.dataDir])
    expect(exported.code).to.equal(0, exported.stderr)
    expect(await fs.readFile(out)).to.deep.equal(await fs.readFile(file))
    // GET /tasks/:id/data streams the verified bytes; an unknown task is a 404
    const client = new ControlClient([{ socketPath: socketPath(d.dataDir) }])
    const body = await client.body(`/tasks/${id}/data`)
    const chunks: Uint8Array[] = []
    for await (const c of body.chunks) {
      chunks.push(c)
    }
    expect(body.length).to.equal(200_000)
    expect(Buffer.concat(chunks)).to.deep.equal(await fs.readFile(file))
    await expect(client.body(`/tasks/${'0'.repeat(64)}/data`)).to.eventually.be.rejected.with.property('status', 404)
    const rm = await runCli(['rm', id, '--data-dir', d.dataDir])
    expect(rm.code).to.equal(0, rm.stderr)
    expect(rm.stdout).to.include(`removed ${id} (195.3 KiB)`)
    expect(JSON.parse((await runCli(['tasks', '--json', '--data-dir', d.dataDir])).stdout)).to.deep.equal([])
    await expect(fs.stat(path.join(d.dataDir, 'tasks', id))).to.eventually.be.rejected.with.property('code', 'ENOENT')
    const unknown = await runCli(['rm', '0'.repeat(64), '--data-dir', d.dataDir])
    expect(unknown.code).to.not.equal(0)
    expect(unknown.stderr).to.include('0'.repeat(64)).and.include('not in the store')

    await d.stop()
    const offline = await runCli(['import', file, '--data-dir', d.dataDir, '--json'])
    expect(offline.code).to.equal(0, offline.stderr)
    const exportedOffline = await runCli(['export', id, '-O', out, '--overwrite', '--data-dir', d.dataDir])
    expect(exportedOffline.code).to.equal(0, exportedOffline.stderr)
    expect(await fs.readFile(out)).to.deep.equal(await fs.readFile(file))
    const rmOffline = await runCli(['rm', id, '--data-dir', d.dataDir, '--json'])
    expect(rmOffline.code).to.equal(0, rmOffline.stderr)
    expect(JSON.parse(rmOffline.stdout)).to.deep.equal({ taskId: id, bytes: 200_000 })
    expect(await fs.readdir(path.join(d.dataDir, 'tasks'))).to.deep.equal([])
  })

  it('gc removes tasks unused for --older-than through the daemon and without one; --dry-run removes nothing; bad ages are usage errors; tasks says when each was used', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-daemon-'))
    const ids: string[] = []
    for (const name of ['stale.bin', 'fresh.bin']) {
      const file = path.join(tmp, name)
      await fs.writeFile(file, Buffer.alloc(100_000, name))
      const r = await runCli(['import', file, '--data-dir', dataDir, '--json'])
      expect(r.code).to.equal(0, r.stderr)
      ids.push(JSON.parse(r.stdout).taskId)
    }
    const [stale, fresh] = ids
    const when = new Date(Date.now() - 3 * 3600_000)
    for (const f of await fs.readdir(path.join(dataDir, 'tasks', stale))) {
      await fs.utimes(path.join(dataDir, 'tasks', stale, f), when, when)
    }

    // tasks works without a daemon too, and says when each task was last used
    const listed = await runCli(['tasks', '--data-dir', dataDir])
    expect(listed.code, listed.stderr).to.equal(0)
    expect(listed.stdout.split('\n').find(l => l.startsWith(stale))).to.match(/used 3h00m ago/)
    expect(listed.stdout.split('\n').find(l => l.startsWith(fresh))).to.match(/used \d+s ago/)

    const dry = await runCli(['gc', '--older-than', '1h', '--dry-run', '--data-dir', dataDir])
    expect(dry.code).to.equal(0, dry.stderr)
    expect(dry.stdout).to.include('would remove 1 task, 97.7 KiB').and.include(stale).and.include('would hold 1 task')
    expect((await fs.readdir(path.join(dataDir, 'tasks'))).sort()).to.deep.equal([...ids].sort())
    for (const bad of ['0', 'soon']) {
      const r = await runCli(['gc', '--older-than', bad, '--data-dir', dataDir])
      expect(r.code).to.equal(2, r.stderr)
      expect(r.stderr).to.include('--older-than')
    }

    const d = await startDaemon([], { dataDir })
    daemons.push(d)
    const viaDaemon = await runCli(['gc', '--older-than', '1h', '--json', '--data-dir', dataDir])
    expect(viaDaemon.code).to.equal(0, viaDaemon.stderr)
    const report = JSON.parse(viaDaemon.stdout)
    expect(report.removed).to.deep.equal([{ taskId: stale, bytes: 100_000, reason: 'older' }])
    expect(report.store).to.deep.include({ tasks: 1, bytesStored: 100_000 })
    expect((await statusOf(d)).store.gc).to.include({ evicted: 1, evictedBytes: 100_000 })
    const viaDaemonTasks = JSON.parse((await runCli(['tasks', '--json', '--data-dir', dataDir])).stdout)
    expect(viaDaemonTasks.map((t: any) => t.taskId)).to.deep.equal([fresh])
    expect(viaDaemonTasks[0].lastUsedAt).to.be.a('number')
    await d.stop()

    // without a daemon: the fresh task was used minutes ago, so it stays whatever the age asked for
    const offline = await runCli(['gc', '--older-than', '1s', '--data-dir', dataDir])
    expect(offline.code).to.equal(0, offline.stderr)
    expect(offline.stdout).to.include('nothing to remove').and.include('holds 1 task')
    expect(await fs.readdir(path.join(dataDir, 'tasks'))).to.deep.equal([fresh])
  })

  it('over its storage quota, removes the least recently used tasks at start; status counts them', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-daemon-'))
    const ids: string[] = []
    for (const name of ['old.bin', 'older.bin', 'new.bin']) {
      const file = path.join(tmp, name)
      await fs.writeFile(file, Buffer.alloc(300_000, name))
      const r = await runCli(['import', file, '--data-dir', dataDir, '--json'])
      expect(r.code).to.equal(0, r.stderr)
      ids.push(JSON.parse(r.stdout).taskId)
    }
    // written one and two hours ago (the files are what a restarted store goes by)
    for (const [i, hours] of [[0, 1], [1, 2]]) {
      const when = new Date(Date.now() - hours * 3600_000)
      const dir = path.join(dataDir, 'tasks', ids[i])
      for (const f of await fs.readdir(dir)) {
        await fs.utimes(path.join(dir, f), when, when)
      }
    }
    // 900,000 bytes held, quota 700,000: down to 525,000 takes the two old ones, oldest first
    const d = await startDaemon(['--storage-quota', '700000'], { dataDir })
    daemons.push(d)
    await waitFor(async () => (await statusOf(d)).store.gc?.runs > 0, 20_000, 'a GC run')
    const s = await statusOf(d)
    expect(s.store).to.deep.include({ tasks: 1, bytesStored: 300_000 })
    expect(s.store.gc).to.include({ quotaBytes: 700_000, evicted: 2, evictedBytes: 600_000, overQuota: false })
    await expect(fs.stat(path.join(dataDir, 'tasks', ids[0]))).to.eventually.be.rejected.with.property('code', 'ENOENT')
    expect((await fs.stat(path.join(dataDir, 'tasks', ids[2]))).isDirectory()).to.equal(true)
    const human = await runCli(['status', '--data-dir', dataDir])
    expect(human.stdout).to.match(/quota 683\.6 KiB.*GC removed 2 tasks \(585\.9 KiB\)/)
  })

  it('survives peers that drop mid-handshake and a dial flood; the count stays right', async () => {
    const a = await startDaemon()
    daemons.push(a)
    const b = await startDaemon(['--bootstrap', a.addrs[0]])
    daemons.push(b)
    await waitFor(async () => (await statusOf(a)).peers === 1, 30_000, 'b to join')
    const [, , host, , port] = a.addrs[0].split('/')
    // 200 raw connections: half send garbage, half close right after the first bytes of multistream
    await Promise.all(Array.from({ length: 200 }, async (_, i) => new Promise<void>(resolve => {
      const s = net.connect(Number(port), host)
      s.on('error', () => { resolve() })
      s.on('close', () => { resolve() })
      s.on('connect', () => {
        s.write(i % 2 === 0 ? Buffer.alloc(512, 0xff) : Buffer.from('\x13/multistream/1.0.0\n'))
        setTimeout(() => s.destroy(), 20)
      })
    })))
    // and a flood of real libp2p dials from one short-lived node
    const flooder = await t.start()
    await Promise.allSettled(Array.from({ length: 50 }, async () => flooder.libp2p.dial((await import('@multiformats/multiaddr')).multiaddr(a.addrs[0]))))
    await flooder.stop()
    await waitFor(async () => (await statusOf(a)).peers === 1, 30_000, 'the count to settle back to 1')
    const s = await statusOf(a)
    expect(s.peers).to.equal(1)
    expect(a.proc.exitCode).to.equal(null)
  })
})
