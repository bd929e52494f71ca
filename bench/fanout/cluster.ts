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
import { CLI_NODE_FLAGS } from '../../src/cli/node-flags.ts'
import { cliPath } from '../lib/paths.ts'
import { sleep } from '../lib/proc.ts'
import { inNamespace, NetnsLab } from './netns.ts'
import type { Guard } from './guard.ts'
import type { LabOptions } from './netns.ts'
import type { DemoOrigin } from '../../src/cli/demo/origin.ts'
import type { Resources, Watched } from '../lib/proc.ts'
import type { ChildProcess } from 'node:child_process'

/** A daemon's libp2p TCP port inside its namespace (Damselfly's default port) */
const NETNS_P2P_PORT = 4780
/** The origin's HTTP port inside its namespace */
const NETNS_ORIGIN_PORT = 8080
/**
 * Arguments of every daemon: no registry mirror (its fixed default port
 * 127.0.0.1:4782 would be taken by our first daemon, away from anyone else on
 * this host; the bench does not use it)
 */
const BASE_DAEMON_ARGS = ['--proxy', '']

/** Time a daemon may take to print its addresses */
const DAEMON_START_MS = 60_000
/** Time a stopped daemon may take to exit before SIGKILL */
const DAEMON_STOP_MS = 10_000
/** Time a fetch worker may take to start */
const WORKER_START_MS = 30_000

export interface DaemonOptions {
  /** membership heartbeat interval, ms; undefined = the daemon's default */
  heartbeatMs?: number
  /** DEBUG pattern for the daemons ('' = the daemon's default: errors only) */
  debug: string
  /** more `damselfly daemon` arguments */
  extraArgs: string[]
  /** NODE_OPTIONS for the daemons, e.g. `--import /abs/preload.mjs` ('' = none) */
  nodeOptions: string
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
  /** the origin's requests since `since` (epoch ms), when the origin logs them */
  originRequests(since: number): OriginRequest[] | undefined
  /** pids of helper processes of ours besides the daemons (their CPU is not foreign load) */
  helperPids(): number[]
  /** start n daemons (the first is everyone's bootstrap); each gets a data dir under `dir` */
  startPeers(n: number, dir: string, options: DaemonOptions): Promise<Peer[]>
  /** N concurrent plain HTTP downloads of the file straight from the origin, one in each of the first n peers' places */
  plainHttp(n: number, timeoutMs: number): Promise<FetchResult[]>
  close(): Promise<void>
}

function workerFile (name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url))
}

function heartbeatArgs (options: DaemonOptions): string[] {
  return options.heartbeatMs == null ? [] : ['--heartbeat-interval', String(options.heartbeatMs)]
}

function daemonEnv ({ debug, nodeOptions }: DaemonOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    // every daemon runs on its defaults plus our flags
    if (!k.startsWith('DAMSELFLY_') && k !== 'DEBUG' && k !== 'NODE_OPTIONS') {
      env[k] = v
    }
  }
  if (debug !== '') {
    env.DEBUG = debug
  }
  if (nodeOptions !== '') {
    env.NODE_OPTIONS = nodeOptions
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

export interface OriginRequest {
  /** epoch ms when the request arrived and when its response closed */
  t0: number
  t1: number
  /** byte range asked for (inclusive) */
  start: number
  end: number
  /** body bytes sent */
  sent: number
  remote: string
}

/**
 * The origin as a child process (origin-worker.ts), optionally inside a
 * namespace: it logs every request, and reports its counter on SIGUSR2
 */
export class WorkerOrigin {
  private constructor (private readonly w: Watched, public readonly url: string) {}

  static async start (file: string, host: string, port: number, ns: string | undefined, resources: Resources, guard: Guard): Promise<WorkerOrigin> {
    const argv = [workerFile('origin-worker'), file, host, String(port)]
    const [cmd, args] = ns == null ? [process.execPath, argv] : inNamespace(ns, process.execPath, argv)
    const w = resources.spawnWatched(cmd, args)
    guard.track(w.proc)
    const m = await w.waitFor(/^listening (\S+)$/m, WORKER_START_MS)
    return new WorkerOrigin(w, m[1])
  }

  get pid (): number {
    return this.w.proc.pid ?? 0
  }

  async sent (): Promise<number> {
    const reports = (): string[] => this.w.lines().filter(l => l.line.startsWith('stats ')).map(l => l.line)
    const before = reports().length
    this.w.proc.kill('SIGUSR2')
    const deadline = Date.now() + 10_000
    for (;;) {
      const now = reports()
      if (now.length > before) {
        return JSON.parse(now[now.length - 1].slice(6)).sent
      }
      if (Date.now() > deadline || this.w.proc.exitCode != null) {
        throw new Error(`the origin worker did not report its counters:\n${this.w.output()}`)
      }
      await sleep(5)
    }
  }

  /** requests that arrived at or after `since` (epoch ms) */
  requests (since: number): OriginRequest[] {
    return this.w.lines()
      .filter(l => l.line.startsWith('served '))
      .map(l => JSON.parse(l.line.slice(7)) as OriginRequest)
      .filter(r => r.t0 >= since)
  }

  async close (): Promise<void> {
    await stopProc(this.w.proc)
  }
}

/**
 * Loopback: the origin is src/cli/demo/origin.ts in this process, the
 * daemons come from src/cli/demo/daemons.ts
 */
export class LoopbackCluster implements Cluster {
  private constructor (private readonly origin: DemoOrigin | WorkerOrigin, private readonly resources: Resources, private readonly guard: Guard) {}

  /**
   * Start the origin: src/cli/demo/origin.ts, or with `workerOrigin`
   * origin-worker.ts on 127.0.0.1, which logs the origin's requests
   */
  static async start (file: string, workerOrigin: boolean, resources: Resources, guard: Guard): Promise<LoopbackCluster> {
    const origin = workerOrigin ? await WorkerOrigin.start(file, '127.0.0.1', 0, undefined, resources, guard) : await startOrigin(file)
    return new LoopbackCluster(origin, resources, guard)
  }

  get originUrl (): string {
    return this.origin.url
  }

  async originSent (): Promise<number> {
    return this.origin instanceof WorkerOrigin ? this.origin.sent() : this.origin.bytesSent()
  }

  originRequests (since: number): OriginRequest[] | undefined {
    return this.origin instanceof WorkerOrigin ? this.origin.requests(since) : undefined
  }

  helperPids (): number[] {
    return this.origin instanceof WorkerOrigin ? [this.origin.pid] : []
  }

  async startPeers (n: number, dir: string, options: DaemonOptions): Promise<Peer[]> {
    const env = daemonEnv(options)
    const args = [...BASE_DAEMON_ARGS, ...heartbeatArgs(options), ...options.extraArgs]
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
  private readonly origin: WorkerOrigin

  private constructor (lab: NetnsLab, origin: WorkerOrigin, private readonly resources: Resources, private readonly guard: Guard) {
    this.lab = lab
    this.origin = origin
  }

  /**
   * Create the lab (origin + `peers` hosts at `rateMbit`) and start the origin in it
   */
  static async start (file: string, peers: number, rateMbit: number, tag: number, resources: Resources, guard: Guard, labOptions: LabOptions = {}): Promise<NetnsCluster> {
    const lab = new NetnsLab(peers, rateMbit, tag, labOptions)
    guard.addLab(lab)
    lab.create()
    const origin = await WorkerOrigin.start(file, lab.origin.ip, NETNS_ORIGIN_PORT, lab.origin.ns, resources, guard)
    return new NetnsCluster(lab, origin, resources, guard)
  }

  get originUrl (): string {
    return this.origin.url
  }

  async originSent (): Promise<number> {
    return this.origin.sent()
  }

  originRequests (since: number): OriginRequest[] {
    return this.origin.requests(since)
  }

  helperPids (): number[] {
    return [this.origin.pid]
  }

  async startPeers (n: number, dir: string, options: DaemonOptions): Promise<Peer[]> {
    if (n > this.lab.peers.length) {
      throw new Error(`the lab has ${this.lab.peers.length} peer namespaces, ${n} asked for`)
    }
    const env = daemonEnv(options)
    const start = async (i: number, bootstrap?: string): Promise<Peer> => {
      const host = this.lab.peers[i]
      const dataDir = path.join(dir, `node-${i + 1}`)
      await fs.promises.mkdir(dataDir, { recursive: true })
      const [cmd, args] = inNamespace(host.ns, process.execPath, [
        ...CLI_NODE_FLAGS, cliPath(), 'daemon', '--data-dir', dataDir,
        '--listen', `/ip4/${host.ip}/tcp/${NETNS_P2P_PORT}`,
        '--control', '127.0.0.1:0',
        ...BASE_DAEMON_ARGS,
        ...heartbeatArgs(options),
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

  /** link-level bytes the origin's namespace has sent (TCP/IP headers included) */
  originLinkTx (): number {
    return this.lab.txBytes(this.lab.origin)
  }

  /** link-level bytes each peer's namespace has received */
  peerLinksRx (): number[] {
    return this.lab.peers.map(h => this.lab.rxBytes(h))
  }

  async close (): Promise<void> {
    await this.origin.close()
    this.lab.destroy()
  }
}
