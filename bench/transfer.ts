/**
 * Piece transfer benchmark: one parent → one child over loopback, each a
 * separate process (workers/transfer-peer.ts), 1 GiB by default.
 *
 * Rows, all measured in the same run and interleaved run by run:
 * - a: raw TCP (node:net, 1 MiB writes with backpressure), child sha256s the stream
 * - a0: the same, child only counts bytes: the socket ceiling without verification
 * - b: bare libp2p stream, TCP + Noise + yamux, 1 MiB send() with onDrain, child sha256s
 * - c: the same with TLS (@libp2p/tls) instead of Noise
 * - d: our piece protocol: parent serves a task from an FsPieceStore, the child
 * fetches every piece (pipelined) into its own FsPieceStore (verified,
 * durable); with Noise and with TLS
 * - e: our piece protocol, child verifies but does not store; Noise and TLS
 *
 * plus two bounds measured in this process in each run: sha256 on one core
 * and sequential disk writes.
 *
 * The child's clock runs from its first request (connection already up) to
 * the last byte in hand (row d: the last piece durable). CPU seconds come
 * from process.cpuUsage() in each process, peak RSS from VmHWM.
 */
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { YAMUX_MAX_STREAM_WINDOW } from '../src/node/muxer.ts'
import { FsPieceStore } from '../src/storage/index.ts'
import { taskIdFromDigest } from '../src/task/id.ts'
import { choosePieceSize } from '../src/task/piece-size.ts'
import { floatFlag, intFlag, listFlag, sizeFlag, UsageError } from './lib/args.ts'
import { print, printTable, progress, writeResults } from './lib/output.ts'
import { workerPath } from './lib/paths.ts'
import { machineBusySeconds, procCpuSeconds, cpuSecondsSince } from './lib/proc.ts'
import { fmt, fmtBytes, fmtRange, fmtRatio, GiB, MiB, summarize } from './lib/stats.ts'
import type { Args } from './lib/args.ts'
import type { Bench } from './lib/bench.ts'
import type { Resources } from './lib/proc.ts'
import type { Summary } from './lib/stats.ts'
import type { ChildDone, Kind, WorkerInit, WorkerReport } from './workers/transfer-peer.ts'
import type { ChildProcess } from 'node:child_process'

/** Goals from the issue, printed beside the figures */
const GOAL_MB_PER_S = 500
const GOAL_RSS_MIB = 150

interface RowDef {
  id: string
  label: string
  kind: Kind
  encrypter?: 'noise' | 'tls'
  hash?: boolean
  disk?: boolean
}

const ROWS: RowDef[] = [
  { id: 'a', label: 'raw TCP, node:net (child sha256s)', kind: 'tcp', hash: true },
  { id: 'a0', label: 'raw TCP, child only counts (unverified)', kind: 'tcp', hash: false },
  { id: 'b', label: 'libp2p stream TCP+Noise+yamux (child sha256s)', kind: 'stream', encrypter: 'noise', hash: true },
  { id: 'c', label: 'libp2p stream TCP+TLS+yamux (child sha256s)', kind: 'stream', encrypter: 'tls', hash: true },
  { id: 'd-noise', label: 'OUR piece protocol → FsPieceStore, Noise', kind: 'piece', encrypter: 'noise', disk: true },
  { id: 'd-tls', label: 'OUR piece protocol → FsPieceStore, TLS', kind: 'piece', encrypter: 'tls', disk: true },
  { id: 'e-noise', label: 'OUR piece protocol, verify only (no disk), Noise', kind: 'piece', encrypter: 'noise', disk: false },
  { id: 'e-tls', label: 'OUR piece protocol, verify only (no disk), TLS', kind: 'piece', encrypter: 'tls', disk: false }
]

interface TransferOptions {
  runs: number
  size: number
  chunk: number
  pieceSize: number
  streams: number
  outstanding: number
  batch: number
  /** child of rows d–e receives into a PieceBufferPool */
  pool: boolean
  /** yamux maxStreamWindowSize of the libp2p rows, bytes; undefined = yamux default (16 MiB) */
  streamWindow?: number
  drain: 'event' | 'onDrain'
  rows: RowDef[]
  bounds: boolean
  /** a run is noisy when other processes used more than this many cores on average during it */
  maxForeign: number
  /** times a noisy run is repeated */
  retries: number
}

interface Source {
  dir: string
  file: string
  sha256: string
  pieceDigests: string[]
  taskId: string
  parentStore: string
}

interface RowRun {
  row: string
  run: number
  bytes: number
  seconds: number
  mbPerS: number
  childCpuS: number
  parentCpuS: number
  /** kernel share of the CPU seconds */
  childSysS: number
  parentSysS: number
  childHwmKiB?: number
  parentHwmKiB?: number
  /** CPU used by other processes on the machine during the timed window, core-seconds */
  foreignCpuS: number
  /** the child's copy matched the source (whole-file sha256, or every piece verified against the source's digests) */
  verified: boolean
  check: string
  busyAnswers?: number
  /** child, during the clock: major GCs, GC pause ms (main thread), minor page faults */
  childGcMajor?: number
  childGcMs?: number
  childMinorFaults?: number
  /** child, during the clock: peak V8 heap used and ArrayBuffer memory (process.memoryUsage() every 20 ms), MiB */
  childPeakHeapMiB?: number
  childPeakArrayBuffersMiB?: number
  /** child of row d: seconds it waited for a pending put to finish before taking the next piece */
  childWriteWaitS?: number
  /** other processes used more than maxForeign cores on average during the timed window */
  noisy?: boolean
  attempts?: number
}

/** a worker process with its IPC messages */
class Worker {
  readonly proc: ChildProcess
  private readonly inbox: any[] = []
  private readonly waiters = new Set<() => void>()
  private stderr = ''

  constructor (res: Resources) {
    // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the workers (Node 20 refuses --cpu-prof in NODE_OPTIONS)
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
    // BENCH_WORKER_STDOUT=1 shows the workers' stdout (e.g. BENCH_NODE_ARGS=--trace-gc)
    const stdout = process.env.BENCH_WORKER_STDOUT === '1' ? 'inherit' : 'ignore'
    this.proc = res.spawn(process.execPath, [...nodeArgs, workerPath('transfer-peer')], { stdio: ['ignore', stdout, 'pipe', 'ipc'] })
    this.proc.stderr?.on('data', (d) => { this.stderr = (this.stderr + String(d)).slice(-20_000) })
    this.proc.on('message', (msg) => {
      this.inbox.push(msg)
      this.wake()
    })
    this.proc.on('exit', () => { this.wake() })
  }

  private wake (): void {
    for (const w of this.waiters) {
      w()
    }
  }

  send (msg: unknown): void {
    this.proc.send(msg as any)
  }

  async next<T> (type: string, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const err = this.inbox.findIndex(m => m?.type === 'error')
        if (err !== -1) {
          done()
          reject(new Error(`worker ${this.proc.pid} failed: ${this.inbox[err].message}`))
          return
        }
        const i = this.inbox.findIndex(m => m?.type === type)
        if (i !== -1) {
          done()
          resolve(this.inbox.splice(i, 1)[0])
        } else if (this.proc.exitCode != null || this.proc.signalCode != null) {
          done()
          reject(new Error(`worker ${this.proc.pid} exited (${this.proc.exitCode ?? this.proc.signalCode}) before sending "${type}":\n${this.stderr}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`worker ${this.proc.pid} sent no "${type}" within ${ms} ms:\n${this.stderr}`))
      }, ms)
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }
}

/**
 * The test file: random bytes written in 1 MiB chunks, with its sha256 and
 * the sha256 of every piece; then imported into the parent's FsPieceStore.
 */
async function makeSource (res: Resources, o: TransferOptions): Promise<Source> {
  const dir = await res.tempDir('damselfly-bench-transfer-')
  const file = path.join(dir, 'source.bin')
  const fh = await fs.open(file, 'w')
  const whole = createHash('sha256')
  const pieceDigests: string[] = []
  let piece = createHash('sha256')
  let inPiece = 0
  try {
    for (let pos = 0; pos < o.size;) {
      const n = Math.min(MiB, o.size - pos, o.pieceSize - inPiece)
      const buf = randomBytes(n)
      await fh.write(buf, 0, n, pos)
      whole.update(buf)
      piece.update(buf)
      pos += n
      inPiece += n
      if (inPiece === o.pieceSize || pos === o.size) {
        pieceDigests.push(piece.digest('hex'))
        piece = createHash('sha256')
        inPiece = 0
      }
    }
  } finally {
    await fh.close()
  }
  const sha256 = whole.digest('hex')
  const taskId = taskIdFromDigest(`sha256:${sha256}`)
  const parentStore = path.join(dir, 'parent-store')

  if (o.rows.some(r => r.kind === 'piece')) {
    const store = new FsPieceStore({ dir: parentStore })
    await store.open()
    try {
      const task = await store.import(file, { taskId, digest: `sha256:${sha256}`, pieceSize: o.pieceSize })
      if (task.pieceDigests.some((d, i) => d !== pieceDigests[i])) {
        throw new Error('The parent store computed other piece digests than the bench - the import is broken')
      }
    } finally {
      await store.close()
    }
  }

  return { dir, file, sha256, pieceDigests, taskId, parentStore }
}

async function runRow (res: Resources, o: TransferOptions, src: Source, row: RowDef, run: number): Promise<RowRun> {
  const parent = new Worker(res)
  const child = new Worker(res)
  let childStore: string | undefined
  const base = { size: o.size, encrypter: row.encrypter, kind: row.kind, outstanding: o.outstanding, streamWindow: o.streamWindow }
  const transferTimeoutMs = 120_000 + o.size / (5 * 1e6) * 1000

  try {
    const parentInit: WorkerInit = { type: 'init', role: 'parent', ...base, file: src.file, chunk: o.chunk, drain: o.drain, storeDir: src.parentStore, taskId: src.taskId }
    parent.send(parentInit)
    const { addr } = await parent.next<{ addr: string }>('ready', 60_000)

    if (row.disk === true) {
      childStore = await res.tempDir('damselfly-bench-child-store-')
    }
    const childInit: WorkerInit = {
      type: 'init',
      role: 'child',
      ...base,
      addr,
      hash: row.hash,
      disk: row.disk,
      storeDir: childStore,
      taskId: src.taskId,
      pieceSize: o.pieceSize,
      pieceDigests: src.pieceDigests,
      fileSha256: src.sha256,
      streams: o.streams,
      batch: o.batch,
      pool: o.pool
    }
    child.send(childInit)
    await child.next('start', 60_000)
    const self0 = process.cpuUsage()
    const machine0 = machineBusySeconds()
    const p0 = procCpuSeconds(parent.proc.pid!) ?? 0
    const c0 = procCpuSeconds(child.proc.pid!) ?? 0
    await child.next('stopped', transferTimeoutMs)
    const foreignCpuS = (machineBusySeconds() - machine0) -
      ((procCpuSeconds(parent.proc.pid!) ?? p0) - p0) -
      ((procCpuSeconds(child.proc.pid!) ?? c0) - c0) -
      cpuSecondsSince(self0)
    const done = await child.next<ChildDone>('done', transferTimeoutMs)

    parent.send({ type: 'report' })
    const prep = await parent.next<WorkerReport>('report', 30_000)
    child.send({ type: 'report' })
    const crep = await child.next<WorkerReport>('report', 30_000)

    let verified: boolean
    let check: string
    if (done.sha256 != null) {
      verified = done.sha256 === src.sha256
      check = row.kind === 'piece' ? 'stored copy sha256 = source' : 'received sha256 = source'
    } else if (row.kind === 'piece') {
      verified = done.piecesOk === src.pieceDigests.length && done.bytes === o.size
      check = 'every piece verified against the source\'s piece sha256s'
    } else {
      verified = done.bytes === o.size
      check = 'byte count only'
    }
    if (!verified) {
      throw new Error(`Row ${row.id}, run ${run + 1}: the child's copy does not match the source (${check}: got ${done.sha256 ?? `${done.piecesOk} pieces`}, ${done.bytes} bytes)`)
    }

    parent.send({ type: 'stop' })
    child.send({ type: 'stop' })
    // let them exit by themselves (a --cpu-prof is written at exit); SIGTERM below otherwise
    await Promise.all([res.exited(parent.proc, 10_000), res.exited(child.proc, 10_000)])

    return {
      row: row.id,
      run,
      bytes: done.bytes,
      seconds: done.seconds,
      mbPerS: done.bytes / done.seconds / 1e6,
      childCpuS: crep.cpuSeconds,
      parentCpuS: prep.cpuSeconds,
      childSysS: crep.sysSeconds,
      parentSysS: prep.sysSeconds,
      childHwmKiB: crep.hwmKiB,
      parentHwmKiB: prep.hwmKiB,
      foreignCpuS,
      verified,
      check,
      busyAnswers: done.busyAnswers,
      childGcMajor: done.gcMajor,
      childGcMs: done.gcMs,
      childMinorFaults: done.minorFaults,
      childPeakHeapMiB: done.peakHeapMiB,
      childPeakArrayBuffersMiB: done.peakArrayBuffersMiB,
      childWriteWaitS: done.writeWaitMs == null ? undefined : done.writeWaitMs / 1000
    }
  } finally {
    await Promise.allSettled([res.stop(parent.proc, 'SIGTERM', 5000), res.stop(child.proc, 'SIGTERM', 5000)])
    if (childStore != null) {
      await res.removeDir(childStore)
    }
  }
}

interface BoundsRun {
  /** sha256 of `size` bytes on one core, MB/s */
  sha256MbPerS: number
  /** sequential 1 MiB writes of `size` bytes + one fdatasync, MB/s */
  diskMbPerS: number
}

async function measureBounds (o: TransferOptions, dir: string): Promise<BoundsRun> {
  const buf = randomBytes(MiB)
  let t = performance.now()
  const h = createHash('sha256')
  for (let pos = 0; pos < o.size; pos += MiB) {
    h.update(pos + MiB <= o.size ? buf : buf.subarray(0, o.size - pos))
  }
  h.digest()
  const sha256MbPerS = o.size / ((performance.now() - t) / 1000) / 1e6

  const file = path.join(dir, 'disk-bound.bin')
  const fh = await fs.open(file, 'w')
  try {
    t = performance.now()
    for (let pos = 0; pos < o.size; pos += MiB) {
      await fh.write(buf, 0, Math.min(MiB, o.size - pos), pos)
    }
    await fh.datasync()
  } finally {
    await fh.close()
  }
  const diskMbPerS = o.size / ((performance.now() - t) / 1000) / 1e6
  await fs.rm(file, { force: true })

  return { sha256MbPerS, diskMbPerS }
}

function parseOptions (args: Args): TransferOptions {
  const size = sizeFlag(args, 'size', GiB)
  const ids = listFlag(args, 'rows', ROWS.map(r => r.id))
  const rows = ids.map(id => {
    const row = ROWS.find(r => r.id === id)
    if (row == null) {
      throw new UsageError(`--rows: unknown row "${id}" - choose from ${ROWS.map(r => r.id).join(', ')}`)
    }
    return row
  })
  const pieceSize = sizeFlag(args, 'piece-size', choosePieceSize(size))
  return {
    runs: intFlag(args, 'runs', 3),
    size,
    chunk: sizeFlag(args, 'chunk', MiB),
    pieceSize,
    streams: intFlag(args, 'streams', 1),
    outstanding: intFlag(args, 'outstanding', 16),
    batch: intFlag(args, 'batch', 64),
    pool: !args.flags.has('no-pool'),
    streamWindow: args.flags.has('stream-window') ? sizeFlag(args, 'stream-window', 16 * MiB) : undefined,
    drain: args.flags.has('on-drain') ? 'onDrain' : 'event',
    rows,
    bounds: !args.flags.has('no-bounds'),
    maxForeign: floatFlag(args, 'max-foreign', 0.2),
    retries: intFlag(args, 'retries', 1, 0)
  }
}

async function run (args: Args, res: Resources): Promise<string> {
  const o = parseOptions(args)
  print(`transfer: ${fmtBytes(o.size)} parent → child over 127.0.0.1, separate processes, ${o.runs} runs, rows interleaved; median (min–max)`)
  print(`  writes ${fmtBytes(o.chunk)} (b, c wait for ${o.drain === 'event' ? 'the \'drain\' event' : 'stream.onDrain()'} when send() returns false); pieces ${fmtBytes(o.pieceSize)}; piece fetch: ${o.streams} stream(s), ${o.outstanding} indexes in flight per stream, ${o.batch} indexes per fetch, ${o.pool ? 'pooled piece buffers' : 'a fresh buffer per piece'}; yamux window ${fmtBytes(o.streamWindow ?? YAMUX_MAX_STREAM_WINDOW)}`)

  progress(`writing ${fmtBytes(o.size)} of random data to ${os.tmpdir()} and importing it into the parent's store`)
  const src = await makeSource(res, o)
  const runs: RowRun[] = []
  const bounds: BoundsRun[] = []

  for (let r = 0; r < o.runs; r++) {
    for (const row of o.rows) {
      let rr: RowRun | undefined
      for (let attempt = 0; attempt <= o.retries; attempt++) {
        progress(`run ${r + 1}/${o.runs}: ${row.id} ${row.label}${attempt > 0 ? ` (again: noisy, attempt ${attempt + 1})` : ''}`)
        rr = await runRow(res, o, src, row, r)
        rr.attempts = attempt + 1
        rr.noisy = rr.foreignCpuS / rr.seconds > o.maxForeign
        progress(`  ${fmt(rr.mbPerS)} MB/s, CPU child ${fmt(rr.childCpuS, 2)} s / parent ${fmt(rr.parentCpuS, 2)} s, foreign ${fmt(rr.foreignCpuS, 2)} core-s${rr.noisy ? ' - noisy' : ''}`)
        if (!rr.noisy) {
          break
        }
      }
      runs.push(rr!)
    }
    if (o.bounds) {
      progress(`run ${r + 1}/${o.runs}: bounds (sha256 on one core, disk writes)`)
      bounds.push(await measureBounds(o, src.dir))
    }
  }

  const gib = o.size / GiB
  const of = (id: string): RowRun[] => runs.filter(x => x.row === id)
  /** per-run ratio of a row's MB/s to another row's MB/s in the same run */
  const ratio = (id: string, base: string): Summary => summarize(of(id).map(x => {
    const b = runs.find(y => y.row === base && y.run === x.run)
    return b == null ? NaN : x.mbPerS / b.mbPerS
  }))
  const mib = (k: number | undefined): number => k == null ? NaN : k / 1024

  const rows = o.rows.map(row => {
    const rr = of(row.id)
    const mbps = summarize(rr.map(x => x.mbPerS))
    const childHwm = summarize(rr.map(x => mib(x.childHwmKiB)))
    const parentHwm = summarize(rr.map(x => mib(x.parentHwmKiB)))
    const peak = Math.max(childHwm.max, parentHwm.max)
    return [
      row.id,
      row.label,
      fmtRange(mbps),
      fmtRatio(ratio(row.id, 'a').median),
      fmtRatio(ratio(row.id, 'b').median),
      fmt(summarize(rr.map(x => x.childCpuS / gib)).median, 2),
      fmt(summarize(rr.map(x => x.parentCpuS / gib)).median, 2),
      fmt(childHwm.median),
      fmt(parentHwm.median),
      mbps.median >= GOAL_MB_PER_S ? 'yes' : 'no',
      peak <= GOAL_RSS_MIB ? 'yes' : `no (${fmt(peak)})`,
      rr.every(x => x.verified) ? 'ok' : 'FAIL'
    ]
  })
  printTable(`Transfer of ${fmtBytes(o.size)}, one connection, loopback; ratios are per run (same run) then median`,
    ['row', 'path', 'MB/s', '÷ raw TCP (a)', '÷ Noise stream (b)', 'child CPU s/GiB', 'parent CPU s/GiB', 'child peak RSS MiB', 'parent peak RSS MiB', `goal ≥ ${GOAL_MB_PER_S} MB/s`, `goal RSS ≤ ${GOAL_RSS_MIB} MiB`, 'copy'],
    rows,
    [
      'MB = 10^6 bytes. Clock: child\'s first request → last byte in hand (d: last piece verified and durable). CPU: process.cpuUsage() of each process.',
      'Peak RSS: VmHWM of the child when its clock stopped (before row d reads its copy back), of the parent at the end. copy: a, b, c, d = sha256 of the child\'s copy equals the source\'s; e = every piece verified against the source\'s piece digests; a0 = byte count.'
    ])

  if (o.bounds && bounds.length > 0) {
    const sha = summarize(bounds.map(b => b.sha256MbPerS))
    const disk = summarize(bounds.map(b => b.diskMbPerS))
    const perRun = (id: string, f: (b: BoundsRun) => number): Summary => summarize(of(id).map(x => bounds[x.run] == null ? NaN : x.mbPerS / f(bounds[x.run])))
    const boundRows: string[][] = [
      ['sha256 of the data on one core (in this process)', fmtRange(sha)],
      ['disk: sequential 1 MiB writes + one fdatasync', fmtRange(disk)]
    ]
    printTable('Physical bounds, measured in each run between the rows', ['bound', 'MB/s'], boundRows,
      o.rows.filter(r => r.kind === 'piece').map(r => `${r.id}: ${fmtRatio(perRun(r.id, r.disk === true ? b => b.diskMbPerS : b => b.sha256MbPerS).median)} of the ${r.disk === true ? 'disk write' : 'sha256'} bound`))
  }

  printTable('Raw numbers, every run', ['row', 'run', 'MB/s', 'seconds', 'child CPU s (sys)', 'parent CPU s (sys)', 'foreign core-s', 'child VmHWM MiB', 'parent VmHWM MiB', 'busy answers', 'child major GCs (pause ms)', 'child minor faults', 'child peak heap / ArrayBuffers MiB', 'child s waiting for a put', 'attempts'],
    runs.map(x => [x.row, `${x.run + 1}${x.noisy === true ? '*' : ''}`, fmt(x.mbPerS), fmt(x.seconds, 2), `${fmt(x.childCpuS, 2)} (${fmt(x.childSysS, 2)})`, `${fmt(x.parentCpuS, 2)} (${fmt(x.parentSysS, 2)})`, fmt(x.foreignCpuS, 2), fmt(mib(x.childHwmKiB)), fmt(mib(x.parentHwmKiB)), x.busyAnswers == null ? '–' : String(x.busyAnswers), `${x.childGcMajor ?? '–'} (${fmt(x.childGcMs)})`, x.childMinorFaults == null ? '–' : String(x.childMinorFaults), `${fmt(x.childPeakHeapMiB)} / ${fmt(x.childPeakArrayBuffersMiB)}`, x.childWriteWaitS == null ? '–' : fmt(x.childWriteWaitS, 2), String(x.attempts ?? 1)]),
    [`foreign core-s: CPU used on this machine by other processes during the timed window (from /proc/stat). Runs where that averaged over ${o.maxForeign} cores were repeated up to ${o.retries} times; * = still noisy, kept.`])

  for (const kind of ['d', 'e']) {
    const noise = summarize(of(`${kind}-noise`).map(x => x.mbPerS)).median
    const tlsMb = summarize(of(`${kind}-tls`).map(x => x.mbPerS)).median
    if (Number.isFinite(noise) && Number.isFinite(tlsMb)) {
      const winner = tlsMb > noise ? 'TLS' : 'Noise'
      print(`  our protocol (${kind === 'd' ? 'to disk' : 'no disk'}): Noise ${fmt(noise)} MB/s, TLS ${fmt(tlsMb)} MB/s → ${winner} is faster (${fmtRatio(Math.max(noise, tlsMb) / Math.min(noise, tlsMb))})`)
    }
  }

  const file = await writeResults('transfer', {
    bench: 'transfer',
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    options: { ...o, rows: o.rows.map(r => r.id) },
    source: { sha256: src.sha256, taskId: src.taskId, pieces: src.pieceDigests.length },
    goals: { mbPerS: GOAL_MB_PER_S, rssMiB: GOAL_RSS_MIB },
    runs,
    bounds
  })
  await res.removeDir(src.dir)
  return file
}

export const transferBench: Bench = {
  name: 'transfer',
  describe: 'one parent → one child: raw TCP, bare libp2p (Noise, TLS) and the piece protocol into an FsPieceStore',
  flags: [
    { name: 'size', describe: 'transfer: bytes to move, e.g. 1GiB, 256MiB (1GiB)' },
    { name: 'rows', describe: `transfer: rows to run, comma-separated (${ROWS.map(r => r.id).join(',')})` },
    { name: 'chunk', describe: 'transfer: write()/send() size of rows a–c (1MiB)' },
    { name: 'piece-size', describe: 'transfer: piece size of rows d–e (choosePieceSize(size): 1MiB up to 1 GiB)' },
    { name: 'streams', describe: 'transfer: concurrent piece fetches (one stream each) in rows d–e (1)' },
    { name: 'outstanding', describe: 'transfer: requested-but-unanswered pieces per stream in rows d–e (16)' },
    { name: 'batch', describe: 'transfer: indexes per fetch() call (64)' },
    { name: 'stream-window', describe: 'transfer: yamux maxStreamWindowSize of both nodes in rows b–e, e.g. 16MiB (the node\'s: 4 MiB, src/node/muxer.ts): bounds what arrives after the child pauses' },
    { name: 'no-pool', describe: 'transfer: rows d–e receive every piece into a fresh buffer instead of a PieceBufferPool (the engine\'s behaviour before it passes a pool)', boolean: true },
    { name: 'on-drain', describe: 'transfer: rows b–c wait with stream.onDrain() instead of the \'drain\' event (shows the @libp2p/utils 7.4.1 bug: unbounded send queue)', boolean: true },
    { name: 'max-foreign', describe: 'transfer: a run is noisy when other processes used more than this many cores on average during it (0.2)' },
    { name: 'retries', describe: 'transfer: times a noisy run is repeated before it is kept, marked * (1)' },
    { name: 'no-bounds', describe: 'transfer: skip the sha256 and disk-write bounds', boolean: true }
  ],
  run
}
