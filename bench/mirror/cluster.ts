/**
 * Where the mirror benchmark runs: the registry, N daemons with their
 * registry mirrors, and a skopeo next to each daemon - all on 127.0.0.1
 * (loopback), or every host in its own network namespace with links capped
 * by tc tbf (netns, bench/fanout/netns.ts): the registry alone in one, each
 * daemon and its skopeo in another, where skopeo reaches the mirror over the
 * namespace's own loopback and the registry over the capped link.
 */
import fs from 'node:fs'
import path from 'node:path'
import { ControlClient } from '../../src/cli/client.ts'
import { CLI_NODE_FLAGS } from '../../src/cli/node-flags.ts'
import { freePort, SKOPEO_BIN } from '../../test/proxy/registry.ts'
import { inNamespace, NetnsLab } from '../fanout/netns.ts'
import { cliPath } from '../lib/paths.ts'
import { BenchRegistry } from './registry.ts'
import type { Guard } from '../fanout/guard.ts'
import type { Resources, Watched } from '../lib/proc.ts'

/** Time a daemon may take to print its addresses */
const DAEMON_START_MS = 60_000
/** A daemon's libp2p TCP port inside its namespace */
const NETNS_P2P_PORT = 4780
/** The mirror's port inside a daemon's namespace (each has its own loopback) */
const NETNS_PROXY = '127.0.0.1:4782'
/** The registry's port */
const NETNS_REGISTRY_PORT = 5000

export interface DaemonOptions {
  /** DEBUG pattern for the daemons; damselfly:proxy is always on (per-request timing) */
  debug: string
  /** more `damselfly daemon` arguments */
  extraArgs: string[]
  /** NODE_OPTIONS for the daemons, e.g. `--import /abs/profiler.mjs` ('' = none) */
  nodeOptions: string
}

export interface MirrorNode {
  index: number
  client: ControlClient
  /** HOST:PORT of the mirror, as its skopeo reaches it */
  mirror: string
  proc: Watched['proc']
  output(): string
  stop(): Promise<void>
}

export interface MirrorCluster {
  readonly mode: 'loopback' | 'netns'
  registry: BenchRegistry
  /** the registry's HOST:PORT as skopeo and the daemons reach it */
  readonly registryHost: string
  /** start n daemons with mirrors of the registry (the first is everyone's bootstrap) */
  startNodes(n: number, dir: string, options: DaemonOptions): Promise<MirrorNode[]>
  /** [command, args] to run skopeo in node i's place */
  skopeo(i: number, args: string[]): [string, string[]]
  /** [command, args] to run skopeo next to the registry (pushing the image) */
  skopeoAtRegistry(args: string[]): [string, string[]]
  close(): Promise<void>
}

function daemonEnv ({ debug, nodeOptions }: DaemonOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    // every daemon runs on its defaults plus our flags
    if (!k.startsWith('DAMSELFLY_') && k !== 'DEBUG' && k !== 'NODE_OPTIONS') {
      env[k] = v
    }
  }
  env.DEBUG = ['damselfly:proxy', ...debug.split(',').filter(Boolean)].join(',')
  if (nodeOptions !== '') {
    env.NODE_OPTIONS = nodeOptions
  }
  return env
}

/**
 * Spawn a daemon and wait for its addresses; its control API is reached over
 * its unix socket (`viaSocket`, from outside its namespace) or loopback HTTP
 */
async function startDaemon (resources: Resources, guard: Guard, index: number, cmd: string, args: string[], env: NodeJS.ProcessEnv, viaSocket: boolean): Promise<MirrorNode> {
  const w = resources.spawnWatched(cmd, args, { env })
  guard.track(w.proc)
  const m = await w.waitFor(viaSocket ? /^socket\s+(\S+)$/m : /^control\s+http:\/\/(\S+)$/m, DAEMON_START_MS)
  await w.waitFor(/^(mirror|warning)\s/m, DAEMON_START_MS)
  const address = /^mirror\s+http:\/\/(\S+)/m.exec(w.output())?.[1]
  if (address == null) {
    throw new Error(`daemon ${index + 1} has no registry mirror:\n${w.output()}`)
  }
  return {
    index,
    client: new ControlClient([viaSocket ? { socketPath: m[1] } : { address: m[1] }]),
    mirror: address,
    proc: w.proc,
    output: w.output,
    stop: async () => { await resources.stop(w.proc, 'SIGTERM', 10_000) }
  }
}

export class LoopbackMirrorCluster implements MirrorCluster {
  public readonly mode = 'loopback'

  private constructor (public readonly registry: BenchRegistry, private readonly resources: Resources, private readonly guard: Guard) {}

  static async start (dir: string, resources: Resources, guard: Guard): Promise<LoopbackMirrorCluster> {
    const registry = await BenchRegistry.start(path.join(dir, 'registry'), '127.0.0.1', await freePort(), undefined, resources, guard)
    return new LoopbackMirrorCluster(registry, resources, guard)
  }

  get registryHost (): string {
    return this.registry.host
  }

  async startNodes (n: number, dir: string, options: DaemonOptions): Promise<MirrorNode[]> {
    const env = daemonEnv(options)
    const start = async (i: number, bootstrap?: string): Promise<MirrorNode> => {
      const dataDir = path.join(dir, `node-${i + 1}`)
      return startDaemon(this.resources, this.guard, i, process.execPath, [
        ...CLI_NODE_FLAGS, cliPath(), 'daemon', '--data-dir', dataDir,
        '--listen', '/ip4/127.0.0.1/tcp/0',
        '--control', '127.0.0.1:0',
        '--proxy', '127.0.0.1:0',
        '--registry-mirror', this.registry.url,
        ...(bootstrap == null ? [] : ['--bootstrap', bootstrap]),
        ...options.extraArgs
      ], env, false)
    }
    const first = await start(0)
    const addr = /^listen\s+(\S+)$/m.exec(first.output())?.[1]
    const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, i) => start(i + 1, addr)))
    return [first, ...rest]
  }

  skopeo (_i: number, args: string[]): [string, string[]] {
    return [SKOPEO_BIN, args]
  }

  skopeoAtRegistry (args: string[]): [string, string[]] {
    return [SKOPEO_BIN, args]
  }

  async close (): Promise<void> {
    await this.registry.stop(this.resources)
  }
}

export class NetnsMirrorCluster implements MirrorCluster {
  public readonly mode = 'netns'

  private constructor (public readonly lab: NetnsLab, public readonly registry: BenchRegistry, private readonly resources: Resources, private readonly guard: Guard) {}

  /**
   * Create the lab (registry + `peers` hosts, links at `rateMbit`) and start the registry in it
   */
  static async start (dir: string, peers: number, rateMbit: number, tag: number, resources: Resources, guard: Guard): Promise<NetnsMirrorCluster> {
    const lab = new NetnsLab(peers, rateMbit, tag)
    guard.addLab(lab)
    lab.create()
    const registry = await BenchRegistry.start(path.join(dir, 'registry'), lab.origin.ip, NETNS_REGISTRY_PORT, lab.origin.ns, resources, guard)
    return new NetnsMirrorCluster(lab, registry, resources, guard)
  }

  get registryHost (): string {
    return this.registry.host
  }

  async startNodes (n: number, dir: string, options: DaemonOptions): Promise<MirrorNode[]> {
    if (n > this.lab.peers.length) {
      throw new Error(`the lab has ${this.lab.peers.length} peer namespaces, ${n} asked for`)
    }
    const env = daemonEnv(options)
    const start = async (i: number, bootstrap?: string): Promise<MirrorNode> => {
      const host = this.lab.peers[i]
      const dataDir = path.join(dir, `node-${i + 1}`)
      await fs.promises.mkdir(dataDir, { recursive: true })
      const [cmd, args] = inNamespace(host.ns, process.execPath, [
        ...CLI_NODE_FLAGS, cliPath(), 'daemon', '--data-dir', dataDir,
        '--listen', `/ip4/${host.ip}/tcp/${NETNS_P2P_PORT}`,
        '--control', '127.0.0.1:0',
        '--proxy', NETNS_PROXY,
        '--registry-mirror', this.registry.url,
        ...(bootstrap == null ? [] : ['--bootstrap', bootstrap]),
        ...options.extraArgs
      ])
      return startDaemon(this.resources, this.guard, i, cmd, args, env, true)
    }
    const first = await start(0)
    const addr = /^listen\s+(\S+)$/m.exec(first.output())?.[1]
    const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, i) => start(i + 1, addr)))
    return [first, ...rest]
  }

  skopeo (i: number, args: string[]): [string, string[]] {
    return inNamespace(this.lab.peers[i].ns, SKOPEO_BIN, args)
  }

  skopeoAtRegistry (args: string[]): [string, string[]] {
    return inNamespace(this.lab.origin.ns, SKOPEO_BIN, args)
  }

  async close (): Promise<void> {
    await this.registry.stop(this.resources)
    this.guard.removeLab(this.lab)
  }
}
