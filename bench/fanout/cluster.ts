/**
 * Where a fan-out scenario runs: the origin, the peer daemons and the
 * plain-HTTP fetchers, either all on 127.0.0.1 (loopback) or each host in its
 * own network namespace with capped links (netns). The measuring code in
 * measure.ts sees only this interface.
 */
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { ControlClient } from '../../src/cli/client.ts'
import { spawnDaemon } from '../../src/cli/demo/daemons.ts'
import { startOrigin } from '../../src/cli/demo/origin.ts'
import { cliPath } from '../lib/paths.ts'
import { sleep } from '../lib/proc.ts'
import { inNamespace, NetnsLab } from './netns.ts'
import type { Guard } from './guard.ts'
import type { DemoOrigin } from '../../src/cli/demo/origin.ts'
import type { Resources, Watched } from '../lib/proc.ts'
import type { ChildProcess } from 'node:child_process'

/** A daemon's libp2p TCP port inside its namespace (Damselfly's default port) */
const NETNS_P2P_PORT = 4780
/** The origin's HTTP port inside its namespace */
const NETNS_ORIGIN_PORT = 8080
/** Time a daemon may take to print its addresses */
const DAEMON_START_MS = 60_000
/** Time a stopped daemon may take to exit before SIGKILL */
const DAEMON_STOP_MS = 10_000
/** Time a fetch worker may take to start */
const WORKER_START_MS = 30_000

export interface DaemonOptions {
  /** membership heartbeat interval, ms */
  heartbeatMs: number
  /** DEBUG pattern for the daemons ('' = the daemon's default: errors only) */
  debug: string
  /** more `damselfly daemon` arguments */
  extraArgs: string[]
}

export interface Peer {
  index: number
  peerId: string
  /** multiaddrs with /p2p/ */
  addrs: string[]
  client: ControlClient
  dataDir: string
  proc: ChildProcess
  output(): string
  stop(): Promise<void>
}

export interface FetchResult {
  /** seconds from the common start signal until this copy was complete */
  seconds: number
  bytes: number
  sha256: string
}

export interface Cluster {
  readonly originUrl: string
  /** HTTP body bytes the origin has sent so far */
  originSent(): Promise<number>
  /** start n daemons (the first is everyone's bootstrap); each gets a data dir under `dir` */
  startPeers(n: number, dir: string, options: DaemonOptions): Promise<Peer[]>
  /** N concurrent plain HTTP downloads of the file straight from the origin, one in each of the first n peers' places */
  plainHttp(n: number, timeoutMs: number): Promise<FetchResult[]>
  close(): Promise<void>
}

function workerFile (name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url))
}

function daemonEnv (debug: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    // every daemon runs on its defaults plus our flags
    if (!k.startsWith('DAMSELFLY_') && k !== 'DEBUG') {
      env[k] = v
    }
  }
  if (debug !== '') {
    env.DEBUG = debug
  }
  return env
}

async function waitLine (w: Watched, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return w.waitFor(re, ms)
}

/**
 * Start the fetch workers (already spawned), release them together with
 * SIGUSR2 and time each until its `done` line
 */
async function timeFetches (workers: Watched[], timeoutMs: number): Promise<FetchResult[]> {
  await Promise.all(workers.map(async w => waitLine(w, /^ready$/m, WORKER_START_MS)))
  const started = performance.now()
  for (const w of workers) {
    w.proc.kill('SIGUSR2')
  }
  return Promise.all(workers.map(async (w) => {
    const m = await waitLine(w, /^done (\{.*\})$/m, timeoutMs)
    const at = w.lines().find(l => l.line.startsWith('done '))?.at ?? performance.now()
    const body = JSON.parse(m[1])
    return { seconds: (at - started) / 1000, bytes: body.bytes, sha256: body.sha256 }
  }))
}

async function stopProc (proc: ChildProcess): Promise<void> {
  if (proc.exitCode != null || proc.signalCode != null) {
    return
  }
  const exited = new Promise<void>(resolve => proc.once('exit', () => { resolve() }))
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), DAEMON_STOP_MS)
  await exited
  clearTimeout(timer)
}

/**
 * Loopback: the origin is src/cli/demo/origin.ts in this process, the
 * daemons come from src/cli/demo/daemons.ts
 */
export class LoopbackCluster implements Cluster {
  private constructor (private readonly origin: DemoOrigin, private readonly resources: Resources, private readonly guard: Guard) {}

  static async start (file: string, resources: Resources, guard: Guard): Promise<LoopbackCluster> {
    return new LoopbackCluster(await startOrigin(file), resources, guard)
  }

  get originUrl (): string {
    return this.origin.url
  }

  async originSent (): Promise<number> {
    return this.origin.bytesSent()
  }

  async startPeers (n: number, dir: string, options: DaemonOptions): Promise<Peer[]> {
    const env = daemonEnv(options.debug)
    const args = ['--heartbeat-interval', String(options.heartbeatMs), ...options.extraArgs]
    const start = async (i: number, bootstrap?: string): Promise<Peer> => {
      const dataDir = path.join(dir, `node-${i + 1}`)
      const d = await spawnDaemon(dataDir, bootstrap == null ? args : [...args, '--bootstrap', bootstrap], env)
      this.guard.track(d.proc)
      return {
        index: i,
        peerId: d.peerId,
        addrs: d.addrs,
        client: new ControlClient([{ address: d.control }]),
        dataDir,
        proc: d.proc,
        output: d.output,
        stop: async () => { await d.stop() }
      }
    }
    const first = await start(0)
    const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, i) => start(i + 1, first.addrs[0])))
    return [first, ...rest]
  }

  async plainHttp (n: number, timeoutMs: number): Promise<FetchResult[]> {
    const workers = Array.from({ length: n }, () => {
      const w = this.resources.spawnWatched(process.execPath, [workerFile('fetch-worker'), this.origin.url])
      this.guard.track(w.proc)
      return w
    })
    try {
      return await timeFetches(workers, timeoutMs)
    } finally {
      await Promise.all(workers.map(async w => stopProc(w.proc)))
    }
  }

  async close (): Promise<void> {
    await this.origin.close()
  }
}

/**
 * Netns: the origin worker and every daemon run in their own namespace of a
 * NetnsLab. The daemons' control APIs are reached over their unix sockets
 * (the filesystem is shared), the origin's counter by a signal, so the bench
 * sends nothing over the capped links itself.
 */
export class NetnsCluster implements Cluster {
  public readonly lab: NetnsLab
  private readonly originProc: Watched

  private constructor (lab: NetnsLab, originProc: Watched, public readonly originUrl: string, private readonly resources: Resources, private readonly guard: Guard) {
    this.lab = lab
    this.originProc = originProc
  }

  /**
   * Create the lab (origin + `peers` hosts at `rateMbit`) and start the origin in it
   */
  static async start (file: string, peers: number, rateMbit: number, tag: number, resources: Resources, guard: Guard): Promise<NetnsCluster> {
    const lab = new NetnsLab(peers, rateMbit, tag)
    guard.addLab(lab)
    lab.create()
    const [cmd, args] = inNamespace(lab.origin.ns, process.execPath, [workerFile('origin-worker'), file, lab.origin.ip, String(NETNS_ORIGIN_PORT)])
    const w = resources.spawnWatched(cmd, args)
    guard.track(w.proc)
    const m = await w.waitFor(/^listening (\S+)$/m, WORKER_START_MS)
    return new NetnsCluster(lab, w, m[1], resources, guard)
  }

  async originSent (): Promise<number> {
    const reports = (): string[] => this.originProc.lines().filter(l => l.line.startsWith('stats ')).map(l => l.line)
    const before = reports().length
    this.originProc.proc.kill('SIGUSR2')
    const deadline = Date.now() + 10_000
    for (;;) {
      const now = reports()
      if (now.length > before) {
        return JSON.parse(now[now.length - 1].slice(6)).sent
      }
      if (Date.now() > deadline || this.originProc.proc.exitCode != null) {
        throw new Error(`the origin worker did not report its counters:\n${this.originProc.output()}`)
      }
      await sleep(5)
    }
  }

  async startPeers (n: number, dir: string, options: DaemonOptions): Promise<Peer[]> {
    if (n > this.lab.peers.length) {
      throw new Error(`the lab has ${this.lab.peers.length} peer namespaces, ${n} asked for`)
    }
    const env = daemonEnv(options.debug)
    const start = async (i: number, bootstrap?: string): Promise<Peer> => {
      const host = this.lab.peers[i]
      const dataDir = path.join(dir, `node-${i + 1}`)
      await fs.promises.mkdir(dataDir, { recursive: true })
      const [cmd, args] = inNamespace(host.ns, process.execPath, [
        cliPath(), 'daemon', '--data-dir', dataDir,
        '--listen', `/ip4/${host.ip}/tcp/${NETNS_P2P_PORT}`,
        '--control', '127.0.0.1:0',
        '--heartbeat-interval', String(options.heartbeatMs),
        ...(bootstrap == null ? [] : ['--bootstrap', bootstrap]),
        ...options.extraArgs
      ])
      const w = this.resources.spawnWatched(cmd, args, { env })
      this.guard.track(w.proc)
      const m = await w.waitFor(/^socket\s+(\S+)$/m, DAEMON_START_MS)
      const out = w.output()
      return {
        index: i,
        peerId: /^peer id\s+(\S+)$/m.exec(out)?.[1] ?? '',
        addrs: [...out.matchAll(/^listen\s+(\S+)$/gm)].map(l => l[1]),
        client: new ControlClient([{ socketPath: m[1] }]),
        dataDir,
        proc: w.proc,
        output: w.output,
        stop: async () => { await stopProc(w.proc) }
      }
    }
    const first = await start(0)
    const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, i) => start(i + 1, first.addrs[0])))
    return [first, ...rest]
  }

  async plainHttp (n: number, timeoutMs: number): Promise<FetchResult[]> {
    const workers = this.lab.peers.slice(0, n).map(h => {
      const [cmd, args] = inNamespace(h.ns, process.execPath, [workerFile('fetch-worker'), this.originUrl])
      const w = this.resources.spawnWatched(cmd, args)
      this.guard.track(w.proc)
      return w
    })
    try {
      return await timeFetches(workers, timeoutMs)
    } finally {
      await Promise.all(workers.map(async w => stopProc(w.proc)))
    }
  }

  /** the origin worker's pid (its CPU is ours, not foreign load) */
  originPid (): number {
    return this.originProc.proc.pid ?? 0
  }

  /** link-level bytes the origin's namespace has sent (TCP/IP headers included) */
  originLinkTx (): number {
    return this.lab.txBytes(this.lab.origin)
  }

  async close (): Promise<void> {
    await stopProc(this.originProc.proc)
    this.lab.destroy()
  }
}
