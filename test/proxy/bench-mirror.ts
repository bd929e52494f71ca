/**
 * Measurement for issue 6 (not a test): pull time of a multi-layer image by
 * N nodes at once through their Damselfly registry mirrors, against N pulls
 * at once straight from the registry, and the registry's bytes served ÷
 * image size, on loopback. Each round uses fresh daemons and output dirs.
 *
 * Compile the tree into a build dir, then run
 * `node <build>/test/proxy/bench-mirror.js [--nodes 8] [--layers 64,48,40,32,24] [--rounds 2]`
 * (layer sizes in MiB). Prints one JSON document.
 */
import '../../src/polyfill.ts'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startDaemon, stopAll } from '../utils/cli.ts'
import { MiB, buildOciImage, layoutBlobDigests, pullImage, pushImage, startRegistry } from './registry.ts'
import type { OciImage, TestRegistry } from './registry.ts'
import type { DaemonProcess } from '../utils/cli.ts'

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}

interface Round {
  /** direct: skopeo from the registry; mirror: skopeo through each daemon's mirror; tasks: the same blobs as control API tasks (the swarm without the proxy and skopeo) */
  mode: 'direct' | 'mirror' | 'tasks'
  /** from the first pull's start to the last pull's end */
  wallMs: number
  pullMs: number[]
  /** registry body bytes for blob GETs during the round ÷ image bytes */
  registryBytesPerImage: number
  registryBlobGets: number
  /** 1-minute load average of the host when the round ended (other work on the host slows every mode) */
  load1: number
}

function registryTotals (registry: TestRegistry): { bytes: number, gets: number } {
  let bytes = 0
  let gets = 0
  for (const c of registry.blobCounts().values()) {
    bytes += c.bytes
    gets += c.gets
  }
  return { bytes, gets }
}

/**
 * GET JSON from a daemon's control API, retrying a failed connection a few
 * times; when it keeps failing, the error carries the daemons' last output
 */
async function getJson (url: string, daemons: DaemonProcess[]): Promise<any> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await fetch(url)).json()
    } catch (err: any) {
      if (attempt >= 5) {
        const dead = daemons.filter(d => d.proc.exitCode != null || d.proc.signalCode != null)
        throw new Error(`${url}: ${err.cause?.message ?? err.message}; ${dead.length} daemon(s) exited:\n${dead.map(d => `--- ${d.dataDir} (exit ${d.proc.exitCode ?? d.proc.signalCode})\n${d.output().slice(-3000)}`).join('\n')}`)
      }
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  }
}

async function pullAll (hosts: string[], image: OciImage, outRoot: string): Promise<{ wallMs: number, pullMs: number[] }> {
  await fs.mkdir(outRoot, { recursive: true })
  const started = Date.now()
  const results = await Promise.all(hosts.map(async (host, i) => pullImage(host, 'bench/img', image.tag, path.join(outRoot, `pull-${i}`))))
  const wallMs = Date.now() - started
  for (const [i, r] of results.entries()) {
    if (r.code !== 0) {
      throw new Error(`pull ${i} through ${hosts[i]} failed: ${r.stderr}`)
    }
    for (const blob of await layoutBlobDigests(path.join(outRoot, `pull-${i}`))) {
      if (blob.actual !== blob.name) {
        throw new Error(`pull ${i}: blob ${blob.name} has digest ${blob.actual}`)
      }
    }
  }
  return { wallMs, pullMs: results.map(r => r.ms) }
}

async function main (): Promise<void> {
  const nodes = Number(arg('nodes', '8'))
  const layers = arg('layers', '64,48,40,32,24').split(',').map(s => Number(s) * MiB)
  const rounds = Number(arg('rounds', '2'))
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-bench-mirror-'))
  const daemons: DaemonProcess[] = []
  let registry: TestRegistry | undefined
  try {
    registry = await startRegistry(path.join(root, 'registry'))
    const image = await buildOciImage(path.join(root, 'image'), layers)
    await pushImage(image, registry.host, 'bench/img')
    const out: Round[] = []

    const startSwarm = async (r: number, mode: string): Promise<any[]> => {
      const args = ['--proxy', '127.0.0.1:0', '--registry-mirror', registry!.url]
      const first = await startDaemon(args, { dataDir: path.join(root, `r${r}-${mode}-node-0`) })
      daemons.push(first)
      const rest = await Promise.all(Array.from({ length: nodes - 1 }, async (_, i) => {
        const d = await startDaemon([...args, '--bootstrap', first.addrs[0]], { dataDir: path.join(root, `r${r}-${mode}-node-${i + 1}`) })
        daemons.push(d)
        return d
      }))
      const swarm = [first, ...rest]
      const deadline = Date.now() + 180_000
      let statuses: any[] = []
      while (Date.now() < deadline) {
        statuses = await Promise.all(swarm.map(async d => ({ ...await getJson(`http://${d.control}/status`, daemons), control: d.control })))
        if (statuses.every(s => s.members === nodes - 1)) {
          return statuses
        }
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      throw new Error(`the ${nodes} daemons did not see each other in 180 s`)
    }

    for (let r = 0; r < rounds; r++) {
      // straight from the registry
      let before = registryTotals(registry)
      const direct = await pullAll(Array.from({ length: nodes }, () => registry!.host), image, path.join(root, `direct-${r}`))
      let after = registryTotals(registry)
      out.push({ mode: 'direct', ...direct, registryBytesPerImage: (after.bytes - before.bytes) / image.totalBytes, registryBlobGets: after.gets - before.gets, load1: os.loadavg()[0] })
      process.stderr.write(`${JSON.stringify(out[out.length - 1])}\n`)
      await fs.rm(path.join(root, `direct-${r}`), { recursive: true, force: true })

      // through fresh daemons' mirrors, one client per daemon
      let statuses = await startSwarm(r, 'mirror')
      before = registryTotals(registry)
      const mirrored = await pullAll(statuses.map(s => s.proxy.address), image, path.join(root, `mirror-${r}`))
      after = registryTotals(registry)
      out.push({ mode: 'mirror', ...mirrored, registryBytesPerImage: (after.bytes - before.bytes) / image.totalBytes, registryBlobGets: after.gets - before.gets, load1: os.loadavg()[0] })
      process.stderr.write(`${JSON.stringify(out[out.length - 1])}\n`)
      await stopAll(daemons)
      await fs.rm(path.join(root, `mirror-${r}`), { recursive: true, force: true })

      // the same blobs as tasks on fresh daemons: the swarm without the proxy
      statuses = await startSwarm(r, 'tasks')
      before = registryTotals(registry)
      const blobs = [...image.layers, image.config]
      const started = Date.now()
      const perNode = await Promise.all(statuses.map(async (st) => {
        const ids = await Promise.all(blobs.map(async (b) => {
          const res = await fetch(`http://${st.control}/tasks`, { method: 'POST', body: JSON.stringify({ url: `${registry!.url}/v2/bench/img/blobs/${b.digest}`, digest: b.digest }), headers: { 'content-type': 'application/json' } })
          return (await res.json()).taskId as string
        }))
        for (const id of ids) {
          while (true) {
            const p = await getJson(`http://${st.control}/tasks/${id}`, daemons)
            if (p.state === 'succeeded') {
              break
            }
            if (p.state !== 'running' && p.state !== 'pending') {
              throw new Error(`task ${id} ${p.state}: ${p.error?.message}`)
            }
            await new Promise(resolve => setTimeout(resolve, 100))
          }
        }
        return Date.now() - started
      }))
      after = registryTotals(registry)
      out.push({ mode: 'tasks', wallMs: Date.now() - started, pullMs: perNode, registryBytesPerImage: (after.bytes - before.bytes) / image.totalBytes, registryBlobGets: after.gets - before.gets, load1: os.loadavg()[0] })
      process.stderr.write(`${JSON.stringify(out[out.length - 1])}\n`)
      await stopAll(daemons)
    }

    const summary = (mode: Round['mode']): Record<string, number> => {
      const rs = out.filter(o => o.mode === mode)
      const walls = rs.map(o => o.wallMs)
      return {
        wallMsMedian: walls.sort((a, b) => a - b)[Math.floor(walls.length / 2)],
        wallMsMin: Math.min(...walls),
        registryBytesPerImage: Math.max(...rs.map(o => o.registryBytesPerImage))
      }
    }
    process.stdout.write(JSON.stringify({
      nodes,
      cpus: os.cpus().length,
      image: { layers: image.layers.map(l => l.size), totalBytes: image.totalBytes, totalMiB: Number((image.totalBytes / MiB).toFixed(1)) },
      rounds: out,
      direct: summary('direct'),
      mirror: summary('mirror'),
      tasks: summary('tasks')
    }, null, 2) + '\n')
  } finally {
    await stopAll(daemons)
    await registry?.stop()
    await fs.rm(root, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`)
  process.exitCode = 1
})
