/**
 * One fan-out run: start N daemons, wait for the swarm, ask every daemon for
 * the file at once, follow the progress until the last copy is complete,
 * then read memory and CPU, export and hash every copy. And the plain-HTTP
 * baseline: N copies straight from the origin at once.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { machineBusySeconds, procCpuSeconds, procStatusKiB, sleep, timerInterrupts } from '../lib/proc.ts'
import { median } from '../lib/stats.ts'
import { sha256File } from './files.ts'
import type { Cluster, DaemonOptions, OriginRequest, Peer } from './cluster.ts'
import type { DownloadProgress } from '../../src/task/download.ts'

/**
 * After the swarm settled, the daemons' CPU is measured over this idle window
 * before the tasks are posted: the swarm's background cost (membership
 * heartbeats, gossip, pings), which a busy run pays too
 */
const IDLE_WINDOW_MS = 5000

/**
 * A swarm that just formed is still connecting: for about 10 s its 16
 * daemons use both cores (TLS handshakes, identify, DHT and gossipsub
 * set-up), then about 0.03 cores each. Daemons run long before a pull in
 * use, so the task waits until the swarm settled: a window of
 * SETTLE_WINDOW_MS in which the daemons used at most SETTLE_CORES_PER_NODE
 * cores each, or SETTLE_MAX_MS at most.
 */
const SETTLE_WINDOW_MS = 1000
const SETTLE_CORES_PER_NODE = 0.06
const SETTLE_MAX_MS = 60_000

/** Linux USER_HZ: clock ticks per second in /proc/<pid>/stat */
const CLK_TCK = 100

/** [user, system] CPU seconds of a process, from /proc/<pid>/stat; NaN once it is gone */
function cpuSplit (pid: number): [number, number] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return [Number(fields[11]) / CLK_TCK, Number(fields[12]) / CLK_TCK]
  } catch {
    return [NaN, NaN]
  }
}

/** One progress poll of one daemon */
const POLL_TIMEOUT_MS = 10_000
/** A daemon that answers no poll for this long fails the run */
const POLL_GIVE_UP_MS = 60_000

/** Time the swarm may take until every node sees all others as live members */
const MEMBERSHIP_TIMEOUT_MS = 120_000

export interface Timeline {
  /** seconds since the tasks were posted */
  t: number[]
  /** origin body bytes sent since the tasks were posted, per sample */
  egress: number[]
  /** per sample, per node */
  bytesDone: number[][]
  fromOrigin: number[][]
  parents: number[][]
  /** per sample, per node: ms the daemon took to answer GET /tasks/:id (event-loop lag shows here) */
  answerMs: number[][]
  /** netns, per sample: link-level bytes out of the origin's namespace, and into each peer's, since the tasks were posted */
  originLinkTx?: number[]
  peersLinkRx?: number[][]
}

/**
 * netns: how busy the peers' download links were, on average, while the
 * origin's link was at least half busy (the origin sending the file): a node
 * keeps up with the origin only if its link is as busy as the origin's.
 * `bytesPerS` is the links' rate; undefined without link samples.
 */
export function downlinkBusyWhileOriginSends (tl: Timeline, bytesPerS: number): number | undefined {
  const up = tl.originLinkTx
  const down = tl.peersLinkRx
  if (up == null || down == null) {
    return undefined
  }
  let busy = 0
  let seconds = 0
  for (let i = 1; i < tl.t.length; i++) {
    const dt = tl.t[i] - tl.t[i - 1]
    if (dt <= 0 || (up[i] - up[i - 1]) / dt < bytesPerS / 2) {
      continue
    }
    const nodes = down[i].length
    busy += down[i].reduce((a, rx, n) => a + (rx - down[i - 1][n]), 0) / nodes / bytesPerS
    seconds += dt
  }
  return seconds > 0 ? busy / seconds : undefined
}

export interface SwarmRun {
  /** every copy's sha256 equals the origin file's */
  ok: boolean
  sha256ok: boolean[]
  /** seconds from posting the tasks until each node's download succeeded */
  perNodeS: number[]
  lastS: number
  p50S: number
  /** seconds until every node saw N-1 live members */
  membershipS: number
  /** seconds from the swarm forming until the daemons' CPU settled (SETTLE_CORES_PER_NODE), before the idle window */
  settleS: number
  /** CPU of all daemons together while the settled swarm idled before the tasks, in cores */
  idleCores: number
  /** origin HTTP body bytes sent for this run */
  egress: number
  /** netns: link-level bytes out of the origin's namespace (headers included) */
  originLinkTx?: number
  /** per node, bytes of this download from peers / from the origin, bytes it uploaded */
  fromPeers: number[]
  fromOrigin: number[]
  uploaded: number[]
  /** per node VmHWM at the end of the download, KiB */
  peakRssKiB: number[]
  /** per node CPU seconds (utime + stime) spent during the download */
  cpuS: number[]
  /** per node, the part of cpuS spent in the kernel (stime: network stack, disk) */
  cpuSysS: number[]
  /** per node CPU seconds since the daemon started (start-up and swarm joining included) */
  cpuTotalS: number[]
  /** CPU used by processes other than ours during the download, in cores (noise on a shared machine) */
  foreignCores: number
  /**
   * Share of all the machine's cores that was busy during the download
   * (every process and the kernel's network work): near 1 the run was
   * CPU-bound, not network-bound, whatever the link rate
   */
  machineBusy: number
  /** local timer interrupts per second on the whole machine during the download (netns: mostly the tbf queues') */
  timerIrqPerS: number
  /** tracker requests the daemons sent (client attempts, this node's own included) per node and second of the run */
  trackerRequestsPerNodeS: number
  /** per node, verified piece bytes received from peers, copies of pieces it already had or was storing included */
  peerBytesReceived: number[]
  /** per node, sum (s) and count of its piece client's answer waits and piece receive times (/metrics histograms) */
  pieceTiming: Array<{ answerWait: SumCount, receive: SumCount }>
  /** per node: GC pauses during the download */
  gc: GcPauses[]
  /** each node's GET /status at the end (tracker role and client counters, downloads, connections) */
  finalStatus: unknown[]
  /** peers the trackers moved to the end of the pipeline for being slow, by time */
  slowPeerMoves: SlowPeerMoveAt[]
  /** the origin's requests during the run (times in ms since the tasks were posted), when the origin logs them */
  originRequests?: OriginRequest[]
  timeline: Timeline
}

export interface SlowPeerMoveAt {
  /** 1-based node numbers: the node whose tracker moved the peer, and the peer */
  tracker: number
  peer: number
  /** seconds after the tasks were posted */
  atS: number
  /** pieces per second of the peer and of its upstream in the windows that decided */
  rate: number
  upstreamRate: number
}

/** The moves every node's tracker recorded for the task, as node numbers and run time */
function slowPeerMoves (status: any[], taskId: string, t0: number): SlowPeerMoveAt[] {
  const node = new Map<string, number>(status.map((st, i) => [String(st.peerId), i + 1]))
  const moves: SlowPeerMoveAt[] = []
  status.forEach((st, i) => {
    const task = (st.trackedTasks ?? []).find((t: any) => t.taskId === taskId)
    for (const m of task?.slowPeersMoved ?? []) {
      moves.push({ tracker: i + 1, peer: node.get(m.peerId) ?? 0, atS: (m.at - t0) / 1000, rate: m.rate, upstreamRate: m.upstreamRate })
    }
  })
  return moves.sort((a, b) => a.atS - b.atS)
}

export interface RunOptions extends DaemonOptions {
  nodes: number
  size: number
  sha256: string
  /** give up on a download after this long */
  timeoutMs: number
  /**
   * Before the measured task, let the swarm fetch the same file once under
   * another URL (another task), unmeasured: daemons that have served a pull
   * before, as long-running ones have, with their code compiled
   */
  warmUp?: boolean
  /** progress sample interval, ms */
  sampleMs: number
  /** the run's scratch directory (data dirs, exported copies) */
  dir: string
  /** where to keep the daemons' logs, or undefined */
  logDir?: string
  /** where to keep the daemons' logs when the run fails (when logDir is not set) */
  failureLogDir: string
  /** link-level origin counter, netns only */
  originLinkTx?(): number
  /** link-level bytes into each peer's namespace, netns only */
  peerLinksRx?(): number[]
  /** called with a one-line summary while the run progresses */
  onProgress?(line: string): void
}

export interface SumCount {
  sum: number
  count: number
}

/** the _sum and _count of one Prometheus histogram in a /metrics text (zeros when absent) */
function histogramSumCount (metrics: string, name: string): SumCount {
  const value = (suffix: string): number => {
    const m = new RegExp(`^${name}_${suffix} (\\S+)$`, 'm').exec(metrics)
    return m == null ? 0 : Number(m[1])
  }
  return { sum: value('sum'), count: value('count') }
}

async function getMetrics (p: Peer): Promise<string> {
  return String(await p.client.get('/metrics', { signal: AbortSignal.timeout(10_000) }))
}

function pieceTimingOf (metrics: string): { answerWait: SumCount, receive: SumCount } {
  return {
    answerWait: histogramSumCount(metrics, 'damselfly_transfer_answer_wait_seconds'),
    receive: histogramSumCount(metrics, 'damselfly_transfer_piece_receive_seconds')
  }
}

/** Seconds of GC pauses so far, all kinds and full (major) collections, with their count, from a daemon's nodejs_gc_duration_seconds */
export interface GcPauses { allS: number, majorS: number, majorCount: number }

function gcPauses (metrics: string): GcPauses {
  const out = { allS: 0, majorS: 0, majorCount: 0 }
  for (const m of metrics.matchAll(/^nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} (\S+)$/gm)) {
    const v = Number(m[3])
    if (m[1] === 'sum') {
      out.allS += v
      out.majorS += m[2] === 'major' ? v : 0
    } else if (m[2] === 'major') {
      out.majorCount += v
    }
  }
  return out
}

async function getStatus (p: Peer): Promise<any> {
  return p.client.get('/status', { signal: AbortSignal.timeout(10_000) })
}

function tail (text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n')
}

/** Tracker requests the daemons have sent so far, summed over their GET /status answers */
function trackerAttempts (status: any[]): number {
  return status.reduce((a, st) => a + Number(st.tracker?.client?.attempts ?? NaN), 0)
}

async function waitMembership (peers: Peer[]): Promise<void> {
  const deadline = Date.now() + MEMBERSHIP_TIMEOUT_MS
  let last: number[] = []
  while (Date.now() < deadline) {
    last = await Promise.all(peers.map(async p => (await getStatus(p).catch(() => ({ members: -1 }))).members as number))
    if (last.every(m => m === peers.length - 1)) {
      return
    }
    await sleep(200)
  }
  throw new Error(`the swarm did not form in ${MEMBERSHIP_TIMEOUT_MS / 1000} s: live members per node ${last.join(',')} (want ${peers.length - 1} each)`)
}

async function saveLogs (peers: Peer[], logDir: string | undefined): Promise<void> {
  if (logDir == null) {
    return
  }
  await fs.promises.mkdir(logDir, { recursive: true })
  await Promise.all(peers.map(async p => fs.promises.writeFile(path.join(logDir, `node-${p.index + 1}.log`), p.output())))
}

/**
 * Sample every node's progress and the origin's egress until every download
 * succeeded; throws when one fails or the run takes too long
 */
async function follow (cluster: Cluster, peers: Peer[], taskId: string, t0: number, egress0: number, o: RunOptions): Promise<{ timeline: Timeline, last: DownloadProgress[] }> {
  const timeline: Timeline = { t: [], egress: [], bytesDone: [], fromOrigin: [], parents: [], answerMs: [] }
  const up0 = o.originLinkTx?.()
  const down0 = o.peerLinksRx?.()
  if (up0 != null && down0 != null) {
    timeline.originLinkTx = []
    timeline.peersLinkRx = []
  }
  let nextNote = Date.now() + 5000
  // a daemon starved of CPU on a loaded host may miss a poll: its last answer
  // stands in, and only a daemon silent for POLL_GIVE_UP_MS fails the run
  const lastAnswer: Array<DownloadProgress | undefined> = []
  const silentSince: number[] = []
  for (;;) {
    const answerMs: number[] = []
    const [progress, sent] = await Promise.all([
      Promise.all(peers.map(async (p, i) => {
        const asked = performance.now()
        try {
          const res = await p.client.get<DownloadProgress>(`/tasks/${taskId}`, { signal: AbortSignal.timeout(POLL_TIMEOUT_MS) })
          answerMs[i] = Math.round(performance.now() - asked)
          lastAnswer[i] = res
          silentSince[i] = 0
          return res
        } catch (err: any) {
          answerMs[i] = Math.round(performance.now() - asked)
          silentSince[i] = silentSince[i] > 0 ? silentSince[i] : Date.now()
          if (lastAnswer[i] == null || Date.now() - silentSince[i] > POLL_GIVE_UP_MS) {
            throw new Error(`node ${i + 1} did not answer GET /tasks/${taskId} for ${Math.round((Date.now() - silentSince[i]) / 1000)} s: ${err.message}`)
          }
          return lastAnswer[i]!
        }
      })),
      cluster.originSent()
    ])
    timeline.answerMs.push(answerMs)
    timeline.t.push((Date.now() - t0) / 1000)
    timeline.egress.push(sent - egress0)
    timeline.bytesDone.push(progress.map(p => p.bytesDone))
    timeline.fromOrigin.push(progress.map(p => p.fromOrigin))
    timeline.parents.push(progress.map(p => p.parents))
    if (up0 != null && down0 != null) {
      timeline.originLinkTx!.push(o.originLinkTx!() - up0)
      timeline.peersLinkRx!.push(o.peerLinksRx!().map((rx, i) => rx - down0[i]))
    }
    const bad = progress.findIndex(p => p.state === 'failed' || p.state === 'cancelled')
    if (bad !== -1) {
      throw new Error(`node ${bad + 1}: the download ${progress[bad].state}: ${progress[bad].error?.name ?? ''} ${progress[bad].error?.message ?? ''}\n--- its log (tail) ---\n${tail(peers[bad].output())}`)
    }
    if (progress.every(p => p.state === 'succeeded')) {
      return { timeline, last: progress }
    }
    if (Date.now() - t0 > o.timeoutMs) {
      const behind = progress.map((p, i) => `node ${i + 1}: ${p.state} ${p.piecesDone}/${p.pieceCount ?? '?'} pieces, ${p.parents} parents`).join('\n')
      throw new Error(`the fan-out took over ${o.timeoutMs / 1000} s:\n${behind}\n--- node 1 log (tail) ---\n${tail(peers[0].output())}`)
    }
    if (Date.now() > nextNote) {
      nextNote = Date.now() + 5000
      const done = progress.filter(p => p.state === 'succeeded').length
      const bytes = progress.reduce((a, p) => a + p.bytesDone, 0)
      o.onProgress?.(`${((Date.now() - t0) / 1000).toFixed(0)} s: ${done}/${o.nodes} done, ${(100 * bytes / (o.size * o.nodes)).toFixed(0)}% of all bytes, origin sent ${((sent - egress0) / o.size).toFixed(2)}×S`)
    }
    await sleep(o.sampleMs)
  }
}

/** One unmeasured fan-out of the file under another URL; throws when it fails */
async function warmUp (cluster: Cluster, peers: Peer[], o: RunOptions): Promise<void> {
  const t0 = Date.now()
  const url = `${cluster.originUrl}?warm-up`
  const ids = await Promise.all(peers.map(async p => (await p.client.post('/tasks', { url })).taskId as string))
  await follow(cluster, peers, ids[0], t0, await cluster.originSent(), { ...o, onProgress: undefined })
  o.onProgress?.(`warm-up: every node fetched the file once in ${((Date.now() - t0) / 1000).toFixed(1)} s (not measured)`)
}

/** Wait until the daemons together use at most SETTLE_CORES_PER_NODE cores each over one window; resolves to the seconds waited */
async function settle (pids: number[]): Promise<number> {
  const started = Date.now()
  const cpu = (): number => pids.reduce((a, pid) => a + (procCpuSeconds(pid) ?? NaN), 0)
  while (Date.now() - started < SETTLE_MAX_MS) {
    const c0 = cpu()
    await sleep(SETTLE_WINDOW_MS)
    if ((cpu() - c0) / (SETTLE_WINDOW_MS / 1000) <= SETTLE_CORES_PER_NODE * pids.length) {
      break
    }
  }
  return (Date.now() - started) / 1000
}

/**
 * One measured fan-out of the file to `o.nodes` fresh daemons
 */
export async function swarmRun (cluster: Cluster, o: RunOptions): Promise<SwarmRun> {
  const peers: Peer[] = []
  let failed = true
  try {
    const joinStarted = Date.now()
    peers.push(...await cluster.startPeers(o.nodes, o.dir, o))
    await waitMembership(peers)
    const membershipS = (Date.now() - joinStarted) / 1000
    const pids = await Promise.all(peers.map(async p => (await getStatus(p)).pid as number))
    if (o.warmUp === true) {
      await warmUp(cluster, peers, o)
    }
    const settleS = await settle(pids)
    const idle0 = pids.map(pid => procCpuSeconds(pid) ?? NaN)
    await sleep(IDLE_WINDOW_MS)
    const idleCores = pids.reduce((a, pid, i) => a + (procCpuSeconds(pid) ?? NaN) - idle0[i], 0) / (IDLE_WINDOW_MS / 1000)

    const status0 = await Promise.all(peers.map(getStatus))
    const attempts0 = trackerAttempts(status0)
    const egress0 = await cluster.originSent()
    const link0 = o.originLinkTx?.()
    const gc0 = (await Promise.all(peers.map(getMetrics))).map(gcPauses)
    const cpu0 = pids.map(pid => procCpuSeconds(pid) ?? NaN)
    const sys0 = pids.map(pid => cpuSplit(pid)[1])
    const helpers = cluster.helperPids()
    const own0 = helpers.map(pid => procCpuSeconds(pid) ?? 0)
    const self0 = process.cpuUsage()
    const machine0 = machineBusySeconds()
    const irq0 = timerInterrupts()
    o.onProgress?.(`the swarm formed in ${membershipS.toFixed(1)} s and settled in ${settleS.toFixed(1)} s; every node asks for the file now`)
    const t0 = Date.now()
    const ids = await Promise.all(peers.map(async p => (await p.client.post('/tasks', { url: cluster.originUrl })).taskId as string))
    if (new Set(ids).size !== 1) {
      throw new Error(`the daemons named the task differently: ${[...new Set(ids)].join(', ')}`)
    }
    const taskId = ids[0]

    const { timeline, last } = await follow(cluster, peers, taskId, t0, egress0, o)

    const seconds = (Date.now() - t0) / 1000
    o.onProgress?.(`all ${o.nodes} copies done in ${seconds.toFixed(1)} s; checking every copy's sha256`)
    const egress = (await cluster.originSent()) - egress0
    const originLinkTx = link0 == null ? undefined : o.originLinkTx!() - link0
    const cpu1 = pids.map(pid => procCpuSeconds(pid) ?? NaN)
    const cpuSysS = pids.map((pid, i) => cpuSplit(pid)[1] - sys0[i])
    const own = helpers.reduce((a, pid, i) => a + (procCpuSeconds(pid) ?? 0) - own0[i], 0)
    const selfUsage = process.cpuUsage(self0)
    const machine = machineBusySeconds() - machine0
    const irq = timerInterrupts() - irq0
    const peakRssKiB = pids.map(pid => procStatusKiB(pid, 'VmHWM') ?? NaN)
    const cpuS = cpu1.map((c, i) => c - cpu0[i])
    const foreignCores = (machine - cpuS.reduce((a, c) => a + c, 0) - own - (selfUsage.user + selfUsage.system) / 1e6) / seconds
    const status = await Promise.all(peers.map(getStatus))
    const metrics = await Promise.all(peers.map(getMetrics))
    const pieceTiming = metrics.map(pieceTimingOf)
    const gc = metrics.map(gcPauses).map((g, i) => ({ allS: g.allS - gc0[i].allS, majorS: g.majorS - gc0[i].majorS, majorCount: g.majorCount - gc0[i].majorCount }))
    const trackerRequests = trackerAttempts(status) - attempts0
    const perNodeS = last.map(p => (p.startedAt + p.elapsedMs - t0) / 1000)

    // every figure checks every copy
    const sha256ok = await Promise.all(peers.map(async (p, i) => {
      const out = path.join(o.dir, `copy-${i + 1}.bin`)
      await p.client.post(`/tasks/${taskId}/export`, { output: out, overwrite: true })
      const ok = (await sha256File(out)) === o.sha256
      await fs.promises.rm(out, { force: true })
      return ok
    }))

    failed = false
    return {
      ok: sha256ok.every(Boolean),
      sha256ok,
      perNodeS,
      lastS: Math.max(...perNodeS),
      p50S: median(perNodeS),
      membershipS,
      settleS,
      idleCores,
      egress,
      originLinkTx,
      fromPeers: last.map(p => p.fromPeers),
      fromOrigin: last.map(p => p.fromOrigin),
      uploaded: status.map(s => s.bytes?.uploaded ?? NaN),
      peakRssKiB,
      cpuS,
      cpuSysS,
      cpuTotalS: cpu1,
      foreignCores,
      machineBusy: machine / seconds / os.availableParallelism(),
      timerIrqPerS: irq / seconds,
      trackerRequestsPerNodeS: trackerRequests / o.nodes / seconds,
      // during this download only: a warm-up's bytes are in the counter too
      peerBytesReceived: status.map((s, i) => (s.transfer?.bytesDownloaded ?? NaN) - (status0[i].transfer?.bytesDownloaded ?? NaN)),
      pieceTiming,
      gc,
      slowPeerMoves: slowPeerMoves(status, taskId, t0),
      finalStatus: status.map(st => ({ peers: st.peers, members: st.members, connections: st.connections, bytes: st.bytes, transfer: st.transfer, downloads: st.downloads, tracker: st.tracker, trackedTasks: st.trackedTasks })),
      originRequests: cluster.originRequests(t0)?.map(r => ({ ...r, t0: r.t0 - t0, t1: r.t1 - t0 })),
      timeline
    }
  } finally {
    await Promise.allSettled(peers.map(async p => p.stop()))
    const logDir = o.logDir ?? (failed ? o.failureLogDir : undefined)
    await saveLogs(peers, logDir)
    if (failed && logDir != null && peers.length > 0) {
      o.onProgress?.(`the daemons' logs are in ${logDir}`)
    }
  }
}

export interface PlainRun {
  ok: boolean
  perPeerS: number[]
  lastS: number
  p50S: number
  /** origin body bytes sent for this run */
  egress: number
}

/**
 * N copies of the file straight from the origin at once, each from its
 * peer's place (its namespace in netns mode), each hashed
 */
export async function plainRun (cluster: Cluster, n: number, sha256: string, size: number, timeoutMs: number): Promise<PlainRun> {
  const egress0 = await cluster.originSent()
  const results = await cluster.plainHttp(n, timeoutMs)
  const egress = (await cluster.originSent()) - egress0
  const perPeerS = results.map(r => r.seconds)

  return {
    ok: results.every(r => r.sha256 === sha256 && r.bytes === size),
    perPeerS,
    lastS: Math.max(...perPeerS),
    p50S: median(perPeerS),
    egress
  }
}
