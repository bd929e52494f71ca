/**
 * One round of the mirror benchmark: N skopeo pulls of the image at once,
 * straight from the registry (direct) or each through its own node's mirror
 * (mirror), every pulled blob's sha256 checked, the registry's access log
 * and the mirrors' per-request timing read.
 */
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { layoutBlobDigests } from '../../test/proxy/registry.ts'
import { procCpuSeconds, sleep } from '../lib/proc.ts'
import { median } from '../lib/stats.ts'
import { BenchRegistry } from './registry.ts'
import type { DaemonOptions, MirrorCluster, MirrorNode } from './cluster.ts'
import type { AccessLine, Served } from './registry.ts'
import type { OciImage } from '../../test/proxy/registry.ts'
import type { Resources } from '../lib/proc.ts'

export const REPO = 'bench/img'

/** Time the swarm may take until every node sees all others as live members */
const MEMBERSHIP_TIMEOUT_MS = 180_000

/** After the last pull, the registry's last access-log lines may take this long to arrive */
const LOG_SETTLE_MS = 1000

/** One request a mirror answered, from its `damselfly:proxy` log line */
export interface ProxyRequest {
  method: string
  path: string
  status: number
  outcome: string
  bytes: number
  /** ms from the request's arrival to its first body byte, and to its end */
  firstByteMs?: number
  totalMs: number
  /** ms since the pulls started when the request arrived */
  arrivedMs: number
}

export interface PullRound {
  mode: 'direct' | 'mirror'
  /** every pull exited 0 and every blob of every pull matches its digest */
  ok: boolean
  errors: string[]
  /** seconds from the start of the pulls until each pull exited */
  perPullS: number[]
  lastS: number
  p50S: number
  /** registry body bytes of blob GETs ÷ image size */
  registryRatio: number
  served: Served
  /** per node: seconds from the start of the pulls until the first body byte of the biggest layer left its mirror (mirror rounds) */
  biggestFirstByteS?: number[]
  /** per node, the requests its mirror answered (mirror rounds) */
  proxyRequests?: ProxyRequest[][]
  /** seconds until every node saw the N-1 others (mirror rounds) */
  membershipS?: number
  /** per node, CPU seconds its daemon used during the pulls (mirror rounds) */
  daemonCpuS?: number[]
  /** tracker requests all nodes answered during the pulls (announces, reports, leaves), and the timeouts and failures their clients saw (mirror rounds) */
  tracker?: { requests: number, clientStats: unknown[] }
  /** each node's GET /status after the pulls (mirror rounds) */
  finalStatus?: unknown[]
  /** the registry's blob GETs: seconds since the start when each ended, digest prefix, bytes, client */
  registryGets: Array<[number, string, number, string]>
}

export interface RoundOptions extends DaemonOptions {
  nodes: number
  image: OciImage
  /** the round's scratch directory */
  dir: string
  timeoutMs: number
  /** where to keep the daemons' logs, or undefined */
  logDir?: string
  onProgress?(line: string): void
}

const PROXY_LINE = /(GET|HEAD) (\S+) → (\d+) (\S+); (\d+) body bytes, first after (\d+|-) ms, total (\d+) ms \(arrived (\d+)\)/

export function proxyRequests (output: string, t0Epoch: number): ProxyRequest[] {
  const out: ProxyRequest[] = []
  for (const m of output.matchAll(new RegExp(PROXY_LINE, 'g'))) {
    out.push({
      method: m[1],
      path: m[2],
      status: Number(m[3]),
      outcome: m[4],
      bytes: Number(m[5]),
      firstByteMs: m[6] === '-' ? undefined : Number(m[6]),
      totalMs: Number(m[7]),
      arrivedMs: Number(m[8]) - t0Epoch
    })
  }
  return out.filter(r => r.arrivedMs >= 0)
}

/**
 * Run N skopeo pulls at once, pull i in node i's place from `hosts[i]`;
 * resolves with each pull's seconds since the common start and any errors
 */
async function pullAll (cluster: MirrorCluster, hosts: string[], o: RoundOptions, resources: Resources): Promise<{ perPullS: number[], errors: string[], t0: number, t0Epoch: number }> {
  const errors: string[] = []
  await fs.promises.mkdir(o.dir, { recursive: true })
  const t0Epoch = Date.now()
  const t0 = performance.now()
  const perPullS = await Promise.all(hosts.map(async (host, i) => {
    const out = path.join(o.dir, `pull-${i + 1}`)
    const [cmd, args] = cluster.skopeo(i, ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${host}/${REPO}:${o.image.tag}`, `oci:${out}:${o.image.tag}`])
    const w = resources.spawnWatched(cmd, args)
    const timer = setTimeout(() => { w.proc.kill('SIGKILL') }, o.timeoutMs)
    const code = await w.exited
    clearTimeout(timer)
    const seconds = (performance.now() - t0) / 1000
    if (code !== 0) {
      errors.push(`pull ${i + 1} through ${host} exited ${code ?? w.proc.signalCode} after ${seconds.toFixed(1)} s: ${w.output().trim().slice(-500)}`)
    }
    return seconds
  }))
  // every blob of every pull: present, and its bytes match its digest
  const want = [...o.image.layers, o.image.config].map(b => b.digest)
  for (let i = 0; i < hosts.length; i++) {
    const out = path.join(o.dir, `pull-${i + 1}`)
    if (!fs.existsSync(out)) {
      continue
    }
    const blobs = await layoutBlobDigests(out)
    for (const b of blobs) {
      if (b.actual !== b.name) {
        errors.push(`pull ${i + 1}: blob ${b.name} has the digest ${b.actual}`)
      }
    }
    const missing = want.filter(d => !blobs.some(b => b.name === d))
    if (missing.length > 0) {
      errors.push(`pull ${i + 1}: blobs missing: ${missing.join(', ')}`)
    }
    await fs.promises.rm(out, { recursive: true, force: true })
  }
  return { perPullS, errors, t0, t0Epoch }
}

async function waitMembership (nodes: MirrorNode[]): Promise<void> {
  const deadline = Date.now() + MEMBERSHIP_TIMEOUT_MS
  let last: number[] = []
  while (Date.now() < deadline) {
    last = await Promise.all(nodes.map(async n => (await n.client.get('/status', { signal: AbortSignal.timeout(10_000) }).catch(() => ({ members: -1 }))).members as number))
    if (last.every(m => m === nodes.length - 1)) {
      return
    }
    await sleep(200)
  }
  throw new Error(`the swarm did not form in ${MEMBERSHIP_TIMEOUT_MS / 1000} s: live members per node ${last.join(',')} (want ${nodes.length - 1} each)`)
}

function round (mode: PullRound['mode'], pulls: { perPullS: number[], errors: string[], t0: number }, lines: AccessLine[], o: RoundOptions): PullRound {
  const served = BenchRegistry.served(lines)
  return {
    mode,
    ok: pulls.errors.length === 0,
    errors: pulls.errors,
    perPullS: pulls.perPullS,
    lastS: Math.max(...pulls.perPullS),
    p50S: median(pulls.perPullS),
    registryRatio: served.blobBytes / o.image.totalBytes,
    served,
    registryGets: lines.filter(l => l.method === 'GET' && l.path.includes('/blobs/')).map(l => [Number(((l.at - pulls.t0) / 1000).toFixed(2)), l.path.slice(l.path.lastIndexOf(':') + 1, l.path.lastIndexOf(':') + 9), l.bytes, l.userAgent.split('/')[0]])
  }
}

/**
 * N pulls at once straight from the registry
 */
export async function directRound (cluster: MirrorCluster, o: RoundOptions, resources: Resources): Promise<PullRound> {
  const mark = cluster.registry.lines().length
  const pulls = await pullAll(cluster, Array.from({ length: o.nodes }, () => cluster.registryHost), o, resources)
  await sleep(LOG_SETTLE_MS)
  return round('direct', pulls, cluster.registry.lines().slice(mark), o)
}

/**
 * N fresh daemons, then N pulls at once, each through its own node's mirror
 */
export async function mirrorRound (cluster: MirrorCluster, o: RoundOptions, resources: Resources): Promise<PullRound> {
  let nodes: MirrorNode[] = []
  try {
    const started = Date.now()
    nodes = await cluster.startNodes(o.nodes, path.join(o.dir, 'nodes'), o)
    await waitMembership(nodes)
    const membershipS = (Date.now() - started) / 1000
    o.onProgress?.(`the ${o.nodes} daemons formed a swarm in ${membershipS.toFixed(1)} s; pulling through their mirrors`)
    const mark = cluster.registry.lines().length
    const cpu0 = nodes.map(n => procCpuSeconds(n.proc.pid ?? 0) ?? NaN)
    const status0 = await Promise.all(nodes.map(async n => n.client.get('/status', { signal: AbortSignal.timeout(10_000) })))
    const pulls = await pullAll(cluster, nodes.map(n => n.mirror), o, resources)
    const daemonCpuS = nodes.map((n, i) => (procCpuSeconds(n.proc.pid ?? 0) ?? NaN) - cpu0[i])
    await sleep(LOG_SETTLE_MS)
    const r = round('mirror', pulls, cluster.registry.lines().slice(mark), o)
    r.membershipS = membershipS
    r.daemonCpuS = daemonCpuS
    const status1 = await Promise.all(nodes.map(async n => n.client.get('/status', { signal: AbortSignal.timeout(10_000) })))
    r.tracker = {
      requests: status1.reduce((a, st, i) => a + (st.tracker?.requests ?? NaN) - (status0[i].tracker?.requests ?? NaN), 0),
      clientStats: status1.map(st => st.tracker?.client)
    }
    r.finalStatus = status1.map(st => ({ members: st.members, bytes: st.bytes, downloads: st.downloads, tracker: st.tracker, proxy: st.proxy }))
    r.proxyRequests = nodes.map(n => proxyRequests(n.output(), pulls.t0Epoch))
    const biggest = [...o.image.layers].sort((a, b) => b.size - a.size)[0].digest
    r.biggestFirstByteS = r.proxyRequests.map(reqs => {
      const get = reqs.find(q => q.method === 'GET' && q.path.endsWith(`/blobs/${biggest}`) && q.firstByteMs != null)
      return get == null ? NaN : (get.arrivedMs + get.firstByteMs!) / 1000
    })
    return r
  } finally {
    await Promise.allSettled(nodes.map(async n => n.stop()))
    if (o.logDir != null) {
      await fs.promises.mkdir(o.logDir, { recursive: true })
      await Promise.all(nodes.map(async n => fs.promises.writeFile(path.join(o.logDir!, `node-${n.index + 1}.log`), n.output())))
    }
  }
}
