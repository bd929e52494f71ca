/**
 * Node and swarm benchmark: every node is a separate `damselfly daemon`
 * process started with the real CLI on 127.0.0.1.
 *
 * 1. Convergence: spawn a bootstrap daemon, then N-1 daemons pointing at it;
 * time until every node has a peer, and until every node sees N-1 live
 * members. Once with the default heartbeat interval and once with a short
 * one; reported also as a multiple of the heartbeat interval.
 * 2. Idle memory: VmRSS of the daemons of a 2-node swarm after an idle
 * period ÷ VmRSS of a bare libp2p node (TCP + Noise + yamux + identify,
 * workers/bare-node.ts) in a 2-node pair, measured the same way.
 * 3. Start-up: spawn → `control` line of `damselfly daemon`, ÷ spawn → exit of
 * `node -e ''`, and ÷ spawn → `ready` of the bare libp2p node; and spawn →
 * exit of `damselfly status` asking that daemon, ÷ `node -e ''`.
 */
import { performance } from 'node:perf_hooks'
import { CLI_NODE_FLAGS } from '../src/cli/node-flags.ts'
import { intFlag, listFlag, UsageError } from './lib/args.ts'
import { print, printTable, progress, writeResults } from './lib/output.ts'
import { cliPath, workerPath } from './lib/paths.ts'
import { procCpuSeconds, procStatusKiB, sleep } from './lib/proc.ts'
import { fmt, fmtRange, summarize } from './lib/stats.ts'
import type { Args } from './lib/args.ts'
import type { Bench } from './lib/bench.ts'
import type { Resources, Watched } from './lib/proc.ts'
import type { Summary } from './lib/stats.ts'

/** The daemon's default heartbeat interval (config/default.yaml swarm.heartbeatInterval), ms */
const DEFAULT_HEARTBEAT_MS = 5000

const LISTEN_LINE = /^listen\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/m
const CONTROL_LINE = /^control\s+http:\/\/(\S+)$/m
const STARTED_LINE = /daemon started in (\d+) ms/

/** After converging, wait this long before measuring the idle swarm's CPU (the last joins' identify and gossip grafts) */
const IDLE_CPU_SETTLE_MS = 5000

/** the environment of a child: ours without DAMSELFLY_* settings or DEBUG, so every daemon runs on its defaults and flags */
function childEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('DAMSELFLY_') && k !== 'DEBUG') {
      env[k] = v
    }
  }
  return env
}

interface SwarmOptions {
  runs: number
  nodes: number
  heartbeats: number[]
  idleS: number
  /** seconds over which the converged swarm's idle CPU is measured (0: not measured) */
  idleCpuS: number
  convergeTimeoutS: number
  pollMs: number
  parts: string[]
}

async function spawnDaemon (res: Resources, args: string[]): Promise<{ w: Watched, dataDir: string, spawnedAt: number }> {
  const dataDir = await res.tempDir('damselfly-bench-swarm-')
  const spawnedAt = performance.now()
  const w = res.spawnWatched(process.execPath, [
    ...CLI_NODE_FLAGS, cliPath(), 'daemon', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--control', '127.0.0.1:0', ...args
  ], { env: childEnv() })

  return { w, dataDir, spawnedAt }
}

interface StatusSample { peers: number, members: number, meshPeers?: number, topicPeers?: number, published?: number }

async function getStatus (control: string): Promise<StatusSample | undefined> {
  try {
    const res = await fetch(`http://${control}/status`, { signal: AbortSignal.timeout(5000) })
    if (!res.ok) {
      return undefined
    }
    const body = await res.json() as { peers: number, members: number, gossip?: { meshPeers: number, topicPeers: number, published: number } }
    return { peers: body.peers, members: body.members, meshPeers: body.gossip?.meshPeers, topicPeers: body.gossip?.topicPeers, published: body.gossip?.published }
  } catch {
    return undefined
  }
}

/** first line matching `re`, with its arrival time */
function firstLine (w: Watched, re: RegExp): { at: number, m: RegExpExecArray } | undefined {
  for (const l of w.lines()) {
    const m = re.exec(l.line)
    if (m != null) {
      return { at: l.at, m }
    }
  }
  return undefined
}

interface ConvergeRun {
  heartbeatMs: number
  /** spawn of the bootstrap → its control line */
  bootstrapUpMs: number
  /** spawn of the bootstrap → the last daemon's control line */
  allUpMs: number
  /** spawn of the bootstrap → every node has had peers > 0 */
  allPeersMs: number
  /** spawn of the bootstrap → every node sees N-1 live members at once */
  convergedMs: number
  /** the last daemon's control line → converged */
  convergedAfterUpMs: number
  /** members seen by each node at the end */
  members: number[]
  /** each node's last status: peers, members, gossip mesh/topic peers, heartbeats published */
  last: StatusSample[]
  ok: boolean
  /** cores all daemons used together while idle after converging (NaN when not converged or --idle-cpu 0) */
  idleCores: number
}

async function convergeRun (res: Resources, o: SwarmOptions, heartbeatMs: number): Promise<ConvergeRun> {
  const hbArgs = ['--heartbeat-interval', String(heartbeatMs)]
  const daemons: Array<{ w: Watched, dataDir: string, spawnedAt: number }> = []
  const want = o.nodes - 1

  try {
    const boot = await spawnDaemon(res, hbArgs)
    daemons.push(boot)
    const t0 = boot.spawnedAt
    const bootAddr = (await boot.w.waitFor(LISTEN_LINE, 60_000))[1]
    await boot.w.waitFor(CONTROL_LINE, 60_000)

    for (let i = 1; i < o.nodes; i++) {
      daemons.push(await spawnDaemon(res, [...hbArgs, '--bootstrap', bootAddr]))
    }

    const controls: Array<string | undefined> = daemons.map(() => undefined)
    const peersAt: Array<number | undefined> = daemons.map(() => undefined)
    const last: StatusSample[] = daemons.map(() => ({ peers: 0, members: 0 }))
    const deadline = performance.now() + o.convergeTimeoutS * 1000
    let convergedAt: number | undefined

    while (performance.now() < deadline) {
      await Promise.all(daemons.map(async (d, i) => {
        if (d.w.proc.exitCode != null) {
          throw new Error(`daemon ${i} exited with ${d.w.proc.exitCode}:\n${d.w.output()}`)
        }
        controls[i] ??= firstLine(d.w, CONTROL_LINE)?.m[1]
        // the daemon prints "peers N" on every change of its peer count: exact time of the first peer
        peersAt[i] ??= firstLine(d.w, /^peers\s+[1-9]/)?.at
        const control = controls[i]
        if (control == null) {
          return
        }
        const s = await getStatus(control)
        if (s != null) {
          last[i] = s
          if (s.peers > 0) {
            peersAt[i] ??= performance.now()
          }
        }
      }))

      if (last.every(s => s.members >= want)) {
        convergedAt = performance.now()
        break
      }
      await sleep(o.pollMs)
    }

    // the converged swarm at rest: heartbeats, gossip, pings - what every node pays all the time
    let idleCores = NaN
    if (convergedAt != null && o.idleCpuS > 0) {
      await sleep(IDLE_CPU_SETTLE_MS)
      const pids = daemons.map(d => d.w.proc.pid ?? 0)
      const before = pids.map(pid => procCpuSeconds(pid) ?? NaN)
      const t = performance.now()
      await sleep(o.idleCpuS * 1000)
      const after = pids.map(pid => procCpuSeconds(pid) ?? NaN)
      idleCores = after.reduce((sum, a, i) => sum + a - before[i], 0) / ((performance.now() - t) / 1000)
    }

    const upAt = daemons.map(d => firstLine(d.w, CONTROL_LINE)?.at ?? NaN)
    const allUp = Math.max(...upAt)
    const allPeers = peersAt.every(p => p != null) ? Math.max(...(peersAt as number[])) : NaN
    const converged = convergedAt ?? NaN

    return {
      heartbeatMs,
      bootstrapUpMs: upAt[0] - t0,
      allUpMs: allUp - t0,
      allPeersMs: allPeers - t0,
      convergedMs: converged - t0,
      convergedAfterUpMs: converged - allUp,
      members: last.map(s => s.members),
      last,
      ok: convergedAt != null,
      idleCores
    }
  } finally {
    await Promise.allSettled(daemons.map(async d => {
      await res.stop(d.w.proc)
      await res.removeDir(d.dataDir)
    }))
  }
}

interface RssRun {
  /** KiB: bootstrap daemon, joining daemon */
  daemonRssKiB: number[]
  daemonHwmKiB: number[]
  /** KiB: listening bare node, dialling bare node */
  bareRssKiB: number[]
  bareHwmKiB: number[]
}

async function rssRun (res: Resources, o: SwarmOptions): Promise<RssRun> {
  const daemons: Array<{ w: Watched, dataDir: string }> = []
  const bare: Watched[] = []

  try {
    // daemons and bare nodes idle side by side, so both see the same machine
    const boot = await spawnDaemon(res, [])
    daemons.push(boot)
    const bareA = res.spawnWatched(process.execPath, [workerPath('bare-node')], { env: childEnv() })
    bare.push(bareA)

    const bootAddr = (await boot.w.waitFor(LISTEN_LINE, 60_000))[1]
    const joiner = await spawnDaemon(res, ['--bootstrap', bootAddr])
    daemons.push(joiner)
    const bareAddr = (await bareA.waitFor(/^listen\s+(\S+)$/m, 60_000))[1]
    const bareB = res.spawnWatched(process.execPath, [workerPath('bare-node'), '--dial', bareAddr], { env: childEnv() })
    bare.push(bareB)

    await bareB.waitFor(/^connected$/m, 60_000)
    const controls = await Promise.all(daemons.map(async d => (await d.w.waitFor(CONTROL_LINE, 60_000))[1]))
    const deadline = performance.now() + 60_000
    while (true) {
      const s = await Promise.all(controls.map(getStatus))
      if (s.every(x => x != null && x.peers > 0)) {
        break
      }
      if (performance.now() > deadline) {
        throw new Error(`the 2-node swarm did not connect within 60 s:\n${daemons.map(d => d.w.output()).join('\n---\n')}`)
      }
      await sleep(200)
    }

    await sleep(o.idleS * 1000)

    const read = (pid: number | undefined, field: string): number => (pid == null ? undefined : procStatusKiB(pid, field)) ?? NaN

    return {
      daemonRssKiB: daemons.map(d => read(d.w.proc.pid, 'VmRSS')),
      daemonHwmKiB: daemons.map(d => read(d.w.proc.pid, 'VmHWM')),
      bareRssKiB: bare.map(b => read(b.proc.pid, 'VmRSS')),
      bareHwmKiB: bare.map(b => read(b.proc.pid, 'VmHWM'))
    }
  } finally {
    await Promise.allSettled([
      ...daemons.map(async d => {
        await res.stop(d.w.proc)
        await res.removeDir(d.dataDir)
      }),
      ...bare.map(async b => { await res.stop(b.proc) })
    ])
  }
}

interface StartupRun {
  /** spawn → exit of `node -e ''` */
  nodeMs: number
  /** spawn → `ready` of the bare libp2p node */
  bareMs: number
  /** spawn → `control` line of the daemon (fresh data dir: makes its identity) */
  daemonMs: number
  /** what the daemon itself reports: Daemon.start() only, without loading modules */
  daemonSelfMs: number
  /** spawn → exit of `damselfly status` asking the running daemon */
  statusMs: number
}

async function startupRun (res: Resources): Promise<StartupRun> {
  const t0 = performance.now()
  const plain = res.spawnWatched(process.execPath, ['-e', ''], { env: childEnv() })
  await plain.exited
  const nodeMs = performance.now() - t0

  const bare = res.spawnWatched(process.execPath, [workerPath('bare-node')], { env: childEnv() })
  const t1 = performance.now()
  try {
    await bare.waitFor(/^ready$/m, 60_000)
  } finally {
    await res.stop(bare.proc)
  }
  const bareMs = (firstLine(bare, /^ready$/)?.at ?? NaN) - t1

  const d = await spawnDaemon(res, [])
  let statusMs = NaN
  try {
    await d.w.waitFor(CONTROL_LINE, 60_000)
    const control = CONTROL_LINE.exec(d.w.output())?.[1] ?? ''
    const t2 = performance.now()
    const status = res.spawnWatched(process.execPath, [...CLI_NODE_FLAGS, cliPath(), 'status', '--control', control], { env: childEnv() })
    if (await status.exited === 0) {
      statusMs = performance.now() - t2
    }
  } finally {
    await res.stop(d.w.proc)
    await res.removeDir(d.dataDir)
  }
  const daemonMs = (firstLine(d.w, CONTROL_LINE)?.at ?? NaN) - d.spawnedAt
  const daemonSelfMs = Number(STARTED_LINE.exec(d.w.output())?.[1] ?? NaN)

  return { nodeMs, bareMs, daemonMs, daemonSelfMs, statusMs }
}

const MiBk = 1024

async function run (args: Args, res: Resources): Promise<string> {
  const o: SwarmOptions = {
    runs: intFlag(args, 'runs', 5),
    nodes: intFlag(args, 'nodes', 16, 2),
    heartbeats: listFlag(args, 'heartbeats', [String(DEFAULT_HEARTBEAT_MS), '1000']).map(Number),
    idleS: intFlag(args, 'idle', 10, 0),
    idleCpuS: intFlag(args, 'idle-cpu', 10, 0),
    convergeTimeoutS: intFlag(args, 'converge-timeout', 60),
    pollMs: intFlag(args, 'poll', 100, 10),
    parts: listFlag(args, 'parts', ['converge', 'rss', 'startup'])
  }
  if (o.heartbeats.some(h => !Number.isInteger(h) || h < 100)) {
    throw new UsageError('--heartbeats takes a comma-separated list of intervals in ms (≥ 100)')
  }
  for (const p of o.parts) {
    if (!['converge', 'rss', 'startup'].includes(p)) {
      throw new UsageError(`--parts: unknown part "${p}" (converge, rss, startup)`)
    }
  }

  const cli = cliPath()
  const results: Record<string, unknown> = {
    bench: 'swarm',
    date: new Date().toISOString(),
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
    cli,
    options: o
  }
  print(`swarm: damselfly daemons as separate processes on 127.0.0.1 (${cli}); ${o.runs} runs each, median (min–max)`)

  if (o.parts.includes('converge')) {
    const byHb: Record<string, ConvergeRun[]> = {}
    for (const hb of o.heartbeats) {
      byHb[hb] = []
      for (let r = 0; r < o.runs; r++) {
        const failed = byHb[hb].slice(-2)
        if (failed.length === 2 && failed.every(c => !c.ok)) {
          progress(`convergence: heartbeat ${hb} ms did not converge twice in a row; skipping its remaining runs`)
          break
        }
        progress(`convergence: ${o.nodes} daemons, heartbeat ${hb} ms, run ${r + 1}/${o.runs}`)
        const c = await convergeRun(res, o, hb)
        byHb[hb].push(c)
        progress(`  up ${fmt(c.allUpMs)} ms, all peers ${fmt(c.allPeersMs)} ms, converged ${c.ok ? `${fmt(c.convergedMs)} ms` : `NO after ${o.convergeTimeoutS} s; peers/members/mesh/topic/published per node: ${c.last.map(x => `${x.peers}/${x.members}/${x.meshPeers}/${x.topicPeers}/${x.published}`).join(' ')}`}`)
      }
    }
    results.converge = byHb
    const rows = o.heartbeats.map(hb => {
      const runs = byHb[hb]
      const s = (f: (c: ConvergeRun) => number): Summary => summarize(runs.map(f))
      return [
        `${hb} ms`,
        fmtRange(s(c => c.bootstrapUpMs)),
        fmtRange(s(c => c.allUpMs)),
        fmtRange(s(c => c.allPeersMs)),
        fmtRange(s(c => c.convergedMs)),
        fmtRange(s(c => c.convergedMs / hb), 2, '×'),
        fmtRange(s(c => c.convergedAfterUpMs / hb), 2, '×'),
        `${runs.filter(c => c.ok).length}/${runs.length}`,
        fmtRange(summarize(runs.map(c => c.idleCores).filter(x => Number.isFinite(x))), 3)
      ]
    })
    printTable(`1. Convergence: ${o.nodes} daemons (1 bootstrap + ${o.nodes - 1} --bootstrap it), ms from spawning the bootstrap`,
      ['heartbeat', 'bootstrap up', `all ${o.nodes} up`, 'all peers > 0', `all see ${o.nodes - 1} members`, 'converged ÷ heartbeat', '(from all up) ÷ heartbeat', 'converged', `idle swarm (cores, all ${o.nodes})`],
      rows,
      [
        `"up" = the daemon printed its control line; the other ${o.nodes - 1} are spawned when the bootstrap's address is known.`,
        `members polled over GET /status every ${o.pollMs} ms; peers > 0 from the daemon's "peers N" line. A member is live while heard within 3 heartbeats.`,
        `All ${o.nodes} processes share this machine's cores: start-up CPU of ${o.nodes} daemons competes with the gossip.`,
        `idle swarm = CPU of all ${o.nodes} daemons together over ${o.idleCpuS} s, ${IDLE_CPU_SETTLE_MS / 1000} s after converging (heartbeats, gossip, pings); a heartbeat of 600000 ms shows the swarm without membership gossip.`,
        ...o.heartbeats.flatMap(hb => {
          const bad = byHb[hb].find(c => !c.ok)
          return bad == null
            ? []
            : [`heartbeat ${hb} ms, a run that did not converge within ${o.convergeTimeoutS} s - per node peers/members/gossip mesh peers/topic peers: ${bad.last.map(x => `${x.peers}/${x.members}/${x.meshPeers}/${x.topicPeers}`).join(' ')}`]
        })
      ])
  }

  if (o.parts.includes('rss')) {
    const runs: RssRun[] = []
    for (let r = 0; r < o.runs; r++) {
      progress(`idle memory: 2 daemons + 2 bare libp2p nodes, ${o.idleS} s idle, run ${r + 1}/${o.runs}`)
      runs.push(await rssRun(res, o))
    }
    results.rss = runs
    const daemonRss = summarize(runs.flatMap(x => x.daemonRssKiB).map(k => k / MiBk))
    const daemonHwm = summarize(runs.flatMap(x => x.daemonHwmKiB).map(k => k / MiBk))
    const bareRss = summarize(runs.flatMap(x => x.bareRssKiB).map(k => k / MiBk))
    const bareHwm = summarize(runs.flatMap(x => x.bareHwmKiB).map(k => k / MiBk))
    const ratios = summarize(runs.map(x => (x.daemonRssKiB[0] + x.daemonRssKiB[1]) / (x.bareRssKiB[0] + x.bareRssKiB[1])))
    printTable(`2. Idle memory: VmRSS after ${o.idleS} s idle in a 2-node swarm/pair (both processes of each pair, ${o.runs} runs)`,
      ['process', 'VmRSS MiB', 'VmHWM MiB', 'RSS ÷ bare libp2p'],
      [
        ['damselfly daemon (defaults)', fmtRange(daemonRss, 1), fmtRange(daemonHwm, 1), fmtRange(ratios, 2, '×')],
        ['bare libp2p: tcp+noise+yamux+identify', fmtRange(bareRss, 1), fmtRange(bareHwm, 1), '1.00×']
      ],
      ['ratio per run = (both daemons) ÷ (both bare nodes), measured side by side in the same run']
    )
    results.rssSummary = { daemonRssMiB: daemonRss, daemonHwmMiB: daemonHwm, bareRssMiB: bareRss, bareHwmMiB: bareHwm, ratio: ratios }
  }

  if (o.parts.includes('startup')) {
    const runs: StartupRun[] = []
    for (let r = 0; r < o.runs; r++) {
      progress(`start-up: node -e '', bare libp2p node, damselfly daemon and status, run ${r + 1}/${o.runs}`)
      runs.push(await startupRun(res))
    }
    results.startup = runs
    const s = (f: (x: StartupRun) => number): Summary => summarize(runs.map(f))
    printTable(`3. Start-up: spawn → ready, ms (${o.runs} runs, interleaved)`,
      ['process', 'ms', 'daemon ÷ this (per run)', 'this ÷ node -e \'\' (per run)'],
      [
        ['node -e \'\' (spawn → exit)', fmtRange(s(x => x.nodeMs)), fmtRange(s(x => x.daemonMs / x.nodeMs), 2, '×'), '1.00×'],
        ['bare libp2p node (spawn → "ready")', fmtRange(s(x => x.bareMs)), fmtRange(s(x => x.daemonMs / x.bareMs), 2, '×'), fmtRange(s(x => x.bareMs / x.nodeMs), 2, '×')],
        ['damselfly daemon (spawn → "control" line)', fmtRange(s(x => x.daemonMs)), '1.00×', fmtRange(s(x => x.daemonMs / x.nodeMs), 2, '×')],
        ['  of which Daemon.start() (its own "started in")', fmtRange(s(x => x.daemonSelfMs)), '–', '–'],
        ['damselfly status, asking that daemon (spawn → exit)', fmtRange(s(x => x.statusMs)), '–', fmtRange(s(x => x.statusMs / x.nodeMs), 2, '×')]
      ],
      ['the daemon starts with an empty data dir each run (creates its identity key); a command that asks a daemon loads no libp2p (test/cli/startup.spec.ts)']
    )
    results.startupSummary = {
      nodeMs: s(x => x.nodeMs),
      bareMs: s(x => x.bareMs),
      daemonMs: s(x => x.daemonMs),
      daemonSelfMs: s(x => x.daemonSelfMs),
      statusMs: s(x => x.statusMs),
      statusOverNode: s(x => x.statusMs / x.nodeMs),
      daemonOverNode: s(x => x.daemonMs / x.nodeMs),
      daemonOverBare: s(x => x.daemonMs / x.bareMs)
    }
  }

  return writeResults('swarm', results)
}

export const swarmBench: Bench = {
  name: 'swarm',
  describe: 'swarm convergence of 16 daemons, idle RSS and start-up time vs a bare libp2p node',
  flags: [
    { name: 'runs', describe: 'runs per measurement (swarm: 5, transfer: 3)' },
    { name: 'nodes', describe: 'swarm: daemons in the convergence test (16)' },
    { name: 'heartbeats', describe: `swarm: heartbeat intervals to converge with, ms, comma-separated (${DEFAULT_HEARTBEAT_MS},1000)` },
    { name: 'idle', describe: 'swarm: seconds idle before reading RSS (10)' },
    { name: 'idle-cpu', describe: 'swarm: seconds over which the converged swarm\'s idle CPU is measured, 0 = not measured (10)' },
    { name: 'converge-timeout', describe: 'swarm: seconds a convergence run may take before it counts as not converged; two such runs in a row skip the rest (60)' },
    { name: 'poll', describe: 'swarm: GET /status poll interval, ms (100)' },
    { name: 'parts', describe: 'swarm: which parts to run: converge,rss,startup (all)' }
  ],
  run
}
