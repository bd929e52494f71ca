import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startDaemon } from '../utils/cli.ts'
import type { DaemonProcess } from '../utils/cli.ts'

export const MiB = 1024 * 1024

/**
 * Write `size` random bytes to `file`; resolves to their sha256 (hex)
 */
export async function writeRandomFile (file: string, size: number): Promise<string> {
  const hash = createHash('sha256')
  const fh = await fs.promises.open(file, 'w')
  try {
    for (let off = 0; off < size; off += 4 * MiB) {
      const chunk = randomBytes(Math.min(4 * MiB, size - off))
      hash.update(chunk)
      await fh.write(chunk)
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

export async function sha256File (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of fs.createReadStream(file, { highWaterMark: MiB })) {
    hash.update(chunk)
  }
  return hash.digest('hex')
}

export async function tempRoot (prefix: string): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), prefix))
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * Poll `fn` until it returns a value other than undefined/false; throws
 * naming `what` after `ms`. Errors thrown by `fn` count as "not yet".
 */
export async function until<T> (fn: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + ms
  let lastError: any
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) {
        return v
      }
    } catch (err) {
      lastError = err
    }
    await sleep(intervalMs)
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${lastError != null ? ` (last error: ${lastError.message})` : ''}`)
}

/**
 * The control API of a daemon
 */
export async function getJson (d: DaemonProcess, p: string): Promise<any> {
  const res = await fetch(`http://${d.control}${p}`)
  const body = await res.json()
  if (!res.ok) {
    throw new Error(`GET ${p} on ${d.peerId}: ${res.status} ${body.message}`)
  }
  return body
}

export async function postJson (d: DaemonProcess, p: string, body: unknown): Promise<any> {
  const res = await fetch(`http://${d.control}${p}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  const out = await res.json()
  if (!res.ok) {
    throw new Error(`POST ${p} on ${d.peerId}: ${res.status} ${out.message}`)
  }
  return out
}

/**
 * The value of an unlabelled prometheus metric in `GET /metrics` (0 when absent)
 */
export async function metricOf (d: DaemonProcess, name: string): Promise<number> {
  const text = await fetch(`http://${d.control}/metrics`).then(async r => r.text())
  const m = new RegExp(`^${name}(?:\\{\\})? ([0-9.e+-]+)$`, 'm').exec(text)
  return m == null ? 0 : Number(m[1])
}

/**
 * The environment of test daemons: failure logs on, or what E2E_DEBUG names
 * (e.g. `damselfly:*` to see why a test failed)
 */
export function daemonEnv (): Record<string, string> {
  return { DEBUG: process.env.E2E_DEBUG ?? 'damselfly:*:error' }
}

/**
 * Start daemons on 127.0.0.1 (heartbeat 500 ms): the first alone, the rest
 * bootstrapping from it, all at once. Failure logs are enabled.
 */
export async function startSwarmDaemons (root: string, n: number, args: string[] = [], into: DaemonProcess[] = []): Promise<DaemonProcess[]> {
  const env = daemonEnv()
  const first = await startDaemon(args, { dataDir: path.join(root, 'node-0'), env })
  into.push(first)
  // allSettled: every daemon that did start is in `into` before this returns or throws
  const results = await Promise.allSettled(Array.from({ length: n - 1 }, async (_, i) => {
    const d = await startDaemon([...args, '--bootstrap', first.addrs[0]], { dataDir: path.join(root, `node-${i + 1}`), env })
    into.push(d)
    return d
  }))
  const failed = results.find(r => r.status === 'rejected')
  if (failed != null) {
    throw failed.reason
  }
  return [first, ...results.map(r => (r as PromiseFulfilledResult<DaemonProcess>).value)]
}

/**
 * Wait until every daemon counts the others as live members
 */
export async function waitForMembers (daemons: DaemonProcess[], ms = 60_000): Promise<void> {
  await until(async () => {
    const members = await Promise.all(daemons.map(async d => (await getJson(d, '/status')).members as number))
    return members.every(m => m === daemons.length - 1)
  }, ms, `${daemons.length} daemons to see each other as members`, 200)
}

/**
 * Wait until a download on `d` ends; throws at once when it failed or was
 * cancelled
 */
export async function waitForDownload (d: DaemonProcess, taskId: string, ms: number): Promise<any> {
  const deadline = Date.now() + ms
  let last: any
  while (Date.now() < deadline) {
    last = await getJson(d, `/tasks/${taskId}`)
    if (last.state === 'failed' || last.state === 'cancelled') {
      throw new Error(`the download of ${taskId} on ${d.peerId} ${last.state}: ${last.error?.name} ${last.error?.message}`)
    }
    if (last.state === 'succeeded') {
      return last
    }
    await sleep(200)
  }
  throw new Error(`timed out after ${ms} ms waiting for the download of ${taskId} on ${d.peerId}; last progress ${JSON.stringify(last)}`)
}

/**
 * Stop daemons (SIGKILL: nothing to flush in a test) and wait for them to exit
 */
export async function killAll (daemons: DaemonProcess[]): Promise<void> {
  const list = daemons.splice(0)
  await Promise.allSettled(list.map(async d => d.stop('SIGKILL')))
  // E2E_LOG_DIR keeps each daemon's output for a look after the run
  const logDir = process.env.E2E_LOG_DIR
  if (logDir != null && logDir !== '') {
    await fs.promises.mkdir(logDir, { recursive: true })
    await Promise.allSettled(list.map(async (d, i) => fs.promises.writeFile(path.join(logDir, `${Date.now()}-${i}-${d.peerId}.log`), d.output())))
  }
}
