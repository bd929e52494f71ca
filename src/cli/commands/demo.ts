import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseByteSize } from '../../config/index.ts'
import { UsageError } from '../../errors.ts'
import { formatBytes, print, printJson } from '../common.ts'
import { spawnDaemon } from '../demo/daemons.ts'
import { startOrigin } from '../demo/origin.ts'
import type { DownloadProgress } from '../../task/download.ts'
import type { Args } from '../common.ts'
import type { SpawnedDaemon } from '../demo/daemons.ts'
import type { DemoOrigin } from '../demo/origin.ts'
import type { CommandModule } from 'yargs'

const POLL_MS = 250

export interface DemoResult {
  nodes: number
  size: number
  sha256: string
  perNode: Array<{ peerId: string, seconds: number, fromPeers: number, fromOrigin: number, sha256ok: boolean }>
  originEgress: number
  originEgressRatio: number
  fromPeersShare: number
  slowestSeconds: number
  plainHttpSeconds: number
  plainHttpEgressRatio: number
}

export const demoCommand: CommandModule<object, Args> = {
  command: 'demo',
  describe: 'See it work: a local origin and N nodes fetch one file; each piece leaves the origin about once',
  builder: (y) => y
    .option('nodes', { type: 'number', default: 8, describe: 'Node processes to start (2-32)' })
    .option('size', { type: 'string', default: '64MiB', describe: 'Size of the generated file' })
    .option('origin-rate', { type: 'string', default: '0', describe: 'Cap the origin\'s upload, all requests together, at this many bytes a second (e.g. 32MiB), as behind one uplink; 0 = none' })
    .option('json', { type: 'boolean', describe: 'Print the summary as JSON' })
    .option('keep', { type: 'boolean', describe: 'Keep the temp directory (data dirs, outputs) for a look' }) as any,
  handler: async (argv) => {
    const { n, size, originRate } = demoArgs(argv)
    const json = argv.json === true
    const log = json ? () => {} : print
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'damselfly-demo-'))
    const daemons: SpawnedDaemon[] = []
    let origin: DemoOrigin | undefined
    const onSignal = (): void => { void cleanup().then(() => process.exit(130)) }
    const cleanup = async (): Promise<void> => {
      await Promise.allSettled(daemons.map(async d => d.stop()))
      await origin?.close().catch(() => {})
      if (argv.keep !== true) {
        await fs.promises.rm(dir, { recursive: true, force: true })
      }
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      log(`Damselfly demo: ${n} nodes on 127.0.0.1 fetch one ${formatBytes(size)} file from a local HTTP origin${originRate > 0 ? ` whose upload is capped at ${formatBytes(originRate)}/s` : ''}.`)
      const file = path.join(dir, 'origin.bin')
      const sha256 = await writeRandomFile(file, size)
      origin = await startOrigin(file, { rateBps: originRate })
      log(`origin  ${origin.url} (sha256 ${sha256.slice(0, 16)}…)`)

      const first = await spawnDaemon(path.join(dir, 'node-1'), ['--heartbeat-interval', '1000'], { DEBUG: '' })
      daemons.push(first)
      const rest = await Promise.all(Array.from({ length: n - 1 }, async (_, i) => spawnDaemon(path.join(dir, `node-${i + 2}`), ['--heartbeat-interval', '1000', '--bootstrap', first.addrs[0]], { DEBUG: '' })))
      daemons.push(...rest)
      log(`nodes   ${n} daemons started; waiting until every node sees the other ${n - 1}…`)
      await waitUntil(async () => (await Promise.all(daemons.map(async d => (await getJson(d, '/status')).members))).every(m => m === n - 1), 60_000, 'the swarm to form')

      const started = Date.now()
      const egressBefore = origin.bytesSent()
      const tasks = await Promise.all(daemons.map(async d => (await postJson(d, '/tasks', { url: origin!.url })).taskId as string))
      const taskId = tasks[0]
      const doneAt = new Map<number, number>()
      let last: DownloadProgress[] = []
      const live = process.stdout.isTTY === true && !json
      let drawn = 0
      while (doneAt.size < n) {
        last = await Promise.all(daemons.map(async d => getJson(d, `/tasks/${taskId}`)))
        last.forEach((p, i) => {
          if (p.state === 'failed' || p.state === 'cancelled') {
            throw new Error(`node ${i + 1}: the download ${p.state}: ${p.error?.message ?? ''}`)
          }
          if (p.state === 'succeeded' && !doneAt.has(i)) {
            doneAt.set(i, Date.now())
          }
        })
        if (live) {
          if (drawn > 0) {
            process.stdout.write(`\x1b[${drawn}A`)
          }
          for (const [i, p] of last.entries()) {
            process.stdout.write(`\x1b[2K${progressLine(i, p, size)}\n`)
          }
          drawn = last.length
        }
        if (Date.now() - started > 10 * 60_000) {
          throw new Error('the demo took over 10 minutes; see the nodes\' logs with --keep')
        }
        await new Promise(resolve => setTimeout(resolve, POLL_MS))
      }
      const egress = origin.bytesSent() - egressBefore

      const perNode = await Promise.all(daemons.map(async (d, i) => {
        const out = path.join(d.dataDir, 'downloaded.bin')
        await postJson(d, `/tasks/${taskId}/export`, { output: out })
        const ok = (await sha256Of(out)) === sha256
        return { peerId: d.peerId, seconds: (doneAt.get(i)! - started) / 1000, fromPeers: last[i].fromPeers, fromOrigin: last[i].fromOrigin, sha256ok: ok }
      }))

      log(`plain   now the same file fetched ${n} times straight from the origin, for comparison…`)
      const httpBefore = origin.bytesSent()
      const httpStarted = Date.now()
      await Promise.all(daemons.map(async () => {
        const res = await fetch(origin!.url)
        // read and drop the body
        for await (const chunk of res.body!) {
          void chunk
        }
      }))
      const plainHttpSeconds = (Date.now() - httpStarted) / 1000
      const plainEgress = origin.bytesSent() - httpBefore

      const totalPeers = perNode.reduce((a, p) => a + p.fromPeers, 0)
      const totalOrigin = perNode.reduce((a, p) => a + p.fromOrigin, 0)
      const result: DemoResult = {
        nodes: n,
        size,
        sha256,
        perNode,
        originEgress: egress,
        originEgressRatio: egress / size,
        fromPeersShare: totalPeers / Math.max(1, totalPeers + totalOrigin),
        slowestSeconds: Math.max(...perNode.map(p => p.seconds)),
        plainHttpSeconds,
        plainHttpEgressRatio: plainEgress / size
      }
      if (json) {
        printJson(result)
      } else {
        print('')
        print('node  time     from peers   from origin  sha256')
        perNode.forEach((p, i) => {
          print(`${String(i + 1).padStart(4)}  ${p.seconds.toFixed(2).padStart(6)}s  ${formatBytes(p.fromPeers).padStart(10)}  ${formatBytes(p.fromOrigin).padStart(11)}  ${p.sha256ok ? 'ok' : 'MISMATCH'}`)
        })
        print('')
        print(`Damselfly:  ${n} copies in ${result.slowestSeconds.toFixed(2)}s; the origin sent ${formatBytes(egress)} (${result.originEgressRatio.toFixed(2)}x the file)`)
        print(`Plain HTTP: ${n} copies in ${plainHttpSeconds.toFixed(2)}s; the origin sent ${formatBytes(plainEgress)} (${result.plainHttpEgressRatio.toFixed(2)}x the file)`)
        if (originRate === 0) {
          print(`(Plain HTTP is quick here: this origin's upload has no limit. Behind an uplink of R bytes/s it needs ${n} × ${formatBytes(size)} ÷ R; try --origin-rate 32MiB.)`)
        }
        print('')
        print(`origin egress: ${result.originEgressRatio.toFixed(2)}x of file size; from peers: ${(100 * result.fromPeersShare).toFixed(1)}%; slowest node: ${result.slowestSeconds.toFixed(2)}s`)
      }
      if (perNode.some(p => !p.sha256ok)) {
        throw new Error('a copy does not match the origin file')
      }
      if (argv.keep === true) {
        log(`kept ${dir}`)
      }
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await cleanup()
    }
  }
}

/** The demo's flags, checked */
function demoArgs (argv: Args): { n: number, size: number, originRate: number } {
  const n = Number(argv.nodes)
  const size = parseByteSize(String(argv.size))
  if (!Number.isInteger(n) || n < 2 || n > 32) {
    throw new UsageError('--nodes must be 2 to 32')
  }
  if (size == null || size < 1 || size > 4 * 1024 ** 3) {
    throw new UsageError('--size must be 1 byte to 4GiB, e.g. 64MiB')
  }
  const originRate = parseByteSize(String(argv['origin-rate']))
  if (originRate == null || originRate < 0) {
    throw new UsageError(`--origin-rate "${String(argv['origin-rate'])}" is not a rate: give bytes a second, e.g. 32MiB, or 0 for none`)
  }
  return { n, size, originRate }
}

function progressLine (i: number, p: DownloadProgress, size: number): string {
  const width = 30
  const done = Math.min(width, Math.round(width * p.bytesDone / Math.max(1, size)))
  return `node ${String(i + 1).padStart(2)} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${String(Math.round(100 * p.bytesDone / Math.max(1, size))).padStart(3)}%  peers ${formatBytes(p.fromPeers).padStart(9)}  origin ${formatBytes(p.fromOrigin).padStart(9)}  ${p.state}`
}

async function writeRandomFile (file: string, size: number): Promise<string> {
  const hash = createHash('sha256')
  const fh = await fs.promises.open(file, 'w')
  try {
    for (let off = 0; off < size; off += 4 * 1024 * 1024) {
      const chunk = randomBytes(Math.min(4 * 1024 * 1024, size - off))
      hash.update(chunk)
      await fh.write(chunk)
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

async function sha256Of (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk)
  }
  return hash.digest('hex')
}

async function getJson (d: SpawnedDaemon, p: string): Promise<any> {
  const res = await fetch(`http://${d.control}${p}`)
  const body = await res.json()
  if (!res.ok) {
    throw new Error(`${p} on ${d.peerId}: ${body.message}`)
  }
  return body
}

async function postJson (d: SpawnedDaemon, p: string, body: unknown): Promise<any> {
  const res = await fetch(`http://${d.control}${p}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  const out = await res.json()
  if (!res.ok) {
    throw new Error(`${p} on ${d.peerId}: ${out.message}`)
  }
  return out
}

async function waitUntil (fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) {
      return
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`timed out waiting for ${what}`)
}
