import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import cliProgress from 'cli-progress'
import { parseByteSize } from '../../config/index.ts'
import { UsageError } from '../../errors.ts'
import { OutputExistsError } from '../../storage/index.ts'
import { normaliseDigest } from '../../task/digest.ts'
import { controlClient, formatBytes, nodeConfig, parseDuration, print, printJson, withNodeOptions } from '../common.ts'
import type { GetRequest } from '../../node/damselfly.ts'
import type { DownloadProgress } from '../../task/download.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

/** With a bootstrap list, an embedded node waits this long for the swarm before it starts */
const EMBEDDED_JOIN_WAIT_MS = 5000

/** …and after it heard the first member, this long for the members to hear of it */
const EMBEDDED_SETTLE_MS = 1000

/**
 * The download timed out (--timeout)
 */
export class DownloadTimeoutError extends Error {
  static name = 'DownloadTimeoutError'

  constructor (message = 'The download did not finish in time') {
    super(message)
    this.name = 'DownloadTimeoutError'
  }
}

/**
 * A daemon answers its socket but not in time
 */
class DaemonBusyError extends Error {
  static name = 'DaemonBusyError'

  constructor (message = 'The daemon did not answer in time') {
    super(message)
    this.name = 'DaemonBusyError'
  }
}

/**
 * A download that failed in the daemon, with the error's name from there
 */
class RemoteDownloadError extends Error {
  constructor (name: string, message: string) {
    super(message)
    this.name = name
  }
}

export const getCommand: CommandModule<object, Args> = {
  command: 'get <url>',
  describe: 'Download a file through the swarm (like dfget): each piece comes from peers, or once from the origin',
  builder: (y) => withNodeOptions(y)
    .positional('url', { type: 'string', describe: 'http(s):// or file:// URL of the file; or sha256:<hex> for content only peers hold' })
    .option('output', { alias: 'O', type: 'string', describe: 'Where to write the file; - writes it to stdout once it is complete and verified', demandOption: true })
    .option('digest', { type: 'string', describe: 'Expected sha256:<hex> of the whole file; the task id then comes from it' })
    .option('header', { alias: 'H', type: 'string', array: true, describe: 'Header sent to the origin, "Name: value" (repeatable)' })
    .option('filtered-query-param', { type: 'string', array: true, describe: 'Query parameter left out of the task id, e.g. a signature (repeatable)' })
    .option('tag', { type: 'string', describe: 'Tag: the same URL with another tag is another task' })
    .option('application', { type: 'string', describe: 'Application name, part of the task id' })
    .option('limit', { type: 'string', describe: 'Download rate limit for this file, e.g. 20MiB' })
    .option('timeout', { type: 'string', describe: 'Give up after this long, e.g. 90s, 10m (default: none)' })
    .option('disable-back-to-source', { type: 'boolean', describe: 'Never fetch from the origin; only peers' })
    .option('overwrite', { type: 'boolean', describe: 'Replace the output file if it exists' })
    .option('progress', { type: 'boolean', default: true, describe: 'Show a progress bar on a terminal (--no-progress hides it)' })
    .option('json', { type: 'boolean', describe: 'Print the result as JSON' })
    .example('$0 get https://example.com/model.bin -O model.bin', 'through the running daemon, or an embedded node')
    .example('$0 get https://registry/v2/x/blobs/sha256:ab… --digest sha256:ab… -O layer.tar', 'checked against its digest')
    .example('$0 get https://example.com/data.tar -O - | tar -x', 'to stdout; progress and the summary go to stderr') as any,
  handler: async (argv) => {
    const request = parseGetArgs(argv)
    const output = await outputOf(argv)
    const toStdout = output === STDOUT
    const timeoutMs = argv.timeout != null ? parseDuration(String(argv.timeout), '--timeout') : undefined
    const showProgress = argv.progress !== false && argv.json !== true && process.stderr.isTTY === true
    const started = Date.now()

    const client = await controlClient(argv)
    let result: DownloadProgress
    let via: 'daemon' | 'embedded'
    try {
      await client.get('/healthz', { signal: AbortSignal.timeout(2000) })
      via = 'daemon'
    } catch (err: any) {
      if (err.name === 'TimeoutError' || err.name === 'AbortError') {
        // a daemon is there but slow: a second node on its data dir would share its store and identity
        throw new DaemonBusyError(`the daemon on ${client.describe()} did not answer within 2 s; retry, or stop it to download without it`)
      }
      if (err.name !== 'DaemonNotRunningError') {
        throw err
      }
      via = 'embedded'
    }

    const bar = showProgress ? new ProgressBar() : undefined
    try {
      if (via === 'daemon') {
        result = await viaDaemon(client, request, output, argv.overwrite === true, timeoutMs, bar)
      } else {
        result = await embedded(argv, request, output, argv.overwrite === true, timeoutMs, bar)
      }
    } finally {
      bar?.stop()
    }

    const seconds = (Date.now() - started) / 1000
    const total = result.fromPeers + result.fromOrigin
    if (argv.json === true) {
      printJson({ ...result, output, via, seconds })
      return
    }
    // with -O - stdout carries the file
    const say = toStdout ? (line: string) => { process.stderr.write(`${line}\n`) } : print
    say(`${toStdout ? 'stdout' : output}: ${formatBytes(result.contentLength ?? 0)} in ${seconds.toFixed(1)}s (task ${result.taskId}, via ${via})`)
    say(`from peers ${formatBytes(result.fromPeers)} (${total > 0 ? Math.round(100 * result.fromPeers / total) : 0}%), from origin ${formatBytes(result.fromOrigin)}${total === 0 ? ', already in the local store' : ''}`)
  }
}

export function parseGetArgs (argv: Args): GetRequest {
  let url = argv.url != null ? String(argv.url) : undefined
  let digest = argv.digest != null ? normaliseDigest(String(argv.digest)) : undefined
  if (url != null && /^sha256:[0-9a-fA-F]{64}$/.test(url)) {
    digest = digest ?? normaliseDigest(url)
    url = undefined
  }
  if (url != null) {
    try {
      const u = new URL(url)
      if (!['http:', 'https:', 'file:'].includes(u.protocol)) {
        throw new UsageError(`unsupported URL scheme "${u.protocol}" in ${url}; use http://, https:// or file://`)
      }
    } catch (err: any) {
      if (err.name === 'UsageError') {
        throw err
      }
      throw new UsageError(`"${url}" is not a URL; give an absolute URL such as https://host/path/file`)
    }
  }
  const headers: Record<string, string> = {}
  for (const h of (argv.header as string[] | undefined) ?? []) {
    const i = h.indexOf(':')
    if (i <= 0) {
      throw new UsageError(`header "${h}" must be "Name: value"`)
    }
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim()
  }
  let rateBps: number | undefined
  if (argv.limit != null) {
    rateBps = parseByteSize(String(argv.limit))
    if (rateBps == null) {
      throw new UsageError(`--limit "${String(argv.limit)}" is not a rate; use bytes/s or e.g. 20MiB`)
    }
  }
  return {
    url,
    digest,
    headers,
    tag: argv.tag as string | undefined,
    application: argv.application as string | undefined,
    filteredQueryParams: argv['filtered-query-param'] as string[] | undefined,
    backToSource: argv['disable-back-to-source'] !== true,
    rateBps
  }
}

function timeoutError (ms: number): DownloadTimeoutError {
  return new DownloadTimeoutError(`the download did not finish within ${ms / 1000}s (--timeout); the partial task stays in the store and a new get resumes it`)
}

async function viaDaemon (client: Awaited<ReturnType<typeof controlClient>>, request: GetRequest, output: string, overwrite: boolean, timeoutMs: number | undefined, bar?: ProgressBar): Promise<DownloadProgress> {
  const { taskId } = await client.post('/tasks', request)
  const signal = timeoutMs != null ? AbortSignal.timeout(timeoutMs) : undefined
  let last: DownloadProgress | undefined
  try {
    for await (const p of client.events(`/tasks/${taskId}/events`, { signal })) {
      last = p
      bar?.update(p)
    }
  } catch (err: any) {
    if (signal?.aborted === true) {
      await client.delete(`/tasks/${taskId}`).catch(() => {})
      throw timeoutError(timeoutMs!)
    }
    throw err
  }
  if (last == null || last.state !== 'succeeded') {
    if (last?.error != null) {
      throw new RemoteDownloadError(last.error.name, last.error.message)
    }
    if (last?.state === 'running' || last?.state === 'pending' || last == null) {
      throw new RemoteDownloadError('DownloadCancelledError', 'the daemon closed the progress stream before the download ended (was it stopped?); run the same get again to resume it')
    }
    throw new RemoteDownloadError('DownloadCancelledError', `the download was ${last.state} in the daemon; run the same get again to resume it`)
  }
  if (output === STDOUT) {
    const { length, chunks } = await client.body(`/tasks/${taskId}/data`)
    await writeStdout(wholeBody(chunks, length))
  } else {
    await client.post(`/tasks/${taskId}/export`, { output, overwrite })
  }
  return last
}

/**
 * The daemon's bytes of a task, failing with a clear error when they stop
 * short of `length`: the daemon cuts the response when a piece fails its
 * check, which the HTTP client reports as an abort, or as nothing at all
 */
export async function * wholeBody (chunks: AsyncIterable<Uint8Array>, length: number | undefined): AsyncGenerator<Uint8Array> {
  let received = 0
  const short = (why: string): Error => new RemoteDownloadError('TransferError', `the daemon sent ${received} of the file's ${length ?? '?'} bytes and stopped (${why}; see its log); stdout holds a partial file - run the same get again`)
  try {
    for await (const chunk of chunks) {
      received += chunk.byteLength
      yield chunk
    }
  } catch (err: any) {
    throw short(err.message)
  }
  if (length != null && received !== length) {
    throw short('the response ended')
  }
}

/** `-O -`: the file goes to stdout */
const STDOUT = '-'

/** Where the file goes: STDOUT, or an absolute path that is free (or --overwrite) */
async function outputOf (argv: Args): Promise<string> {
  if (String(argv.output) === STDOUT) {
    if (argv.json === true) {
      throw new UsageError('--json prints to stdout, where -O - writes the file: use one of them')
    }
    return STDOUT
  }
  const output = path.resolve(String(argv.output))
  if (argv.overwrite !== true && await fs.stat(output).then(() => true, () => false)) {
    throw new OutputExistsError(`${output} exists; pass --overwrite to replace it`)
  }
  return output
}

/**
 * Copy the chunks to stdout as fast as it takes them. A reader that goes
 * away (a closed pipe, as with `| head`) is not an error, as for other Unix
 * tools: stderr says how far it got
 */
async function writeStdout (chunks: AsyncIterable<Uint8Array>): Promise<void> {
  let written = 0
  const counted = async function * (): AsyncGenerator<Uint8Array> {
    for await (const chunk of chunks) {
      written += chunk.byteLength
      yield chunk
    }
  }
  try {
    // stdout stays open (end: false): Node does not let a program close it
    await pipeline(counted, process.stdout, { end: false })
  } catch (err: any) {
    if (err.code !== 'EPIPE') {
      throw err
    }
    // `written` counts what was handed to stdout, some of it unread
    process.stderr.write(`the reader closed stdout after at most ${formatBytes(written)}; the rest was not written\n`)
  }
}

async function embedded (argv: Args, request: GetRequest, output: string, overwrite: boolean, timeoutMs: number | undefined, bar?: ProgressBar): Promise<DownloadProgress> {
  const config = await nodeConfig(argv)
  // an embedded node must not take the daemon's fixed port
  config.listen = config.listen.map(a => a.replace(/\/tcp\/\d+/, '/tcp/0').replace(/\/udp\/\d+/, '/udp/0'))
  // libp2p loads only for an embedded node: through a daemon `get` starts without it
  const { createDamselfly } = await import('../../node/create.ts')
  const node = await createDamselfly({ config })
  try {
    if (config.swarm.bootstrap.length > 0) {
      const deadline = Date.now() + EMBEDDED_JOIN_WAIT_MS
      while (Date.now() < deadline && (node.status().peers === 0 || node.status().members === 0)) {
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      if (node.status().members > 0) {
        // let the members hear of us too: seeds re-register with trackers we now share
        await new Promise(resolve => setTimeout(resolve, EMBEDDED_SETTLE_MS))
      }
    }
    const d = node.service.get(request)
    const onProgress = (): void => { bar?.update(d.progress()) }
    d.addEventListener('progress', onProgress)
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<never>((_resolve, reject) => {
      if (timeoutMs != null) {
        timer = setTimeout(() => { d.cancel(); reject(timeoutError(timeoutMs)) }, timeoutMs)
      }
    })
    try {
      await Promise.race([d.done, timedOut])
    } finally {
      clearTimeout(timer)
      d.removeEventListener('progress', onProgress)
    }
    if (output === STDOUT) {
      await writeStdout(node.service.store.stream(d.request.taskId))
    } else {
      await node.service.export(d.request.taskId, output, { overwrite })
    }
    return d.progress()
  } finally {
    await node.stop()
  }
}

class ProgressBar {
  private readonly bar: cliProgress.SingleBar
  private started = false
  private readonly samples: Array<[number, number]> = []

  constructor () {
    this.bar = new cliProgress.SingleBar({
      format: ' {bar} {percentage}% | {done}/{size} | {rate}/s | ETA {etaText} | peers {peers} origin {origin}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false
    }, cliProgress.Presets.shades_classic)
  }

  update (p: DownloadProgress): void {
    const total = p.contentLength ?? 0
    const now = Date.now()
    this.samples.push([now, p.bytesDone])
    while (this.samples.length > 2 && now - this.samples[0][0] > 3000) {
      this.samples.shift()
    }
    const [t0, b0] = this.samples[0]
    const rate = now > t0 ? (p.bytesDone - b0) / ((now - t0) / 1000) : 0
    const payload = {
      done: formatBytes(p.bytesDone),
      size: formatBytes(total),
      rate: formatBytes(Math.round(rate)),
      etaText: rate > 0 ? `${Math.ceil((total - p.bytesDone) / rate)}s` : '-',
      peers: formatBytes(p.fromPeers),
      origin: formatBytes(p.fromOrigin)
    }
    if (!this.started) {
      this.bar.start(Math.max(total, 1), p.bytesDone, payload)
      this.started = true
    } else {
      this.bar.setTotal(Math.max(total, 1))
      this.bar.update(p.bytesDone, payload)
    }
  }

  stop (): void {
    if (this.started) {
      this.bar.stop()
    }
  }
}
