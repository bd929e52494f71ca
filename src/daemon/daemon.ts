import { once } from 'node:events'
import net from 'node:net'
import { defaultLogger } from '@libp2p/logger'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { createDamselfly } from '../node/index.ts'
import { RegistryMirror } from '../proxy/index.ts'
import { ControlApi, HttpError, readJson } from './control-api.ts'
import { socketPath } from './socket.ts'
import type { NodeConfig } from '../config/index.ts'
import type { DamselflyNode } from '../node/index.ts'
import type { Download } from '../task/download.ts'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type http from 'node:http'

/** Progress events of one download are sent at most this often */
const EVENT_INTERVAL_MS = 200

/**
 * Another daemon already serves this data directory
 */
export class DaemonRunningError extends Error {
  static name = 'DaemonRunningError'

  constructor (message = 'A daemon already runs with this data directory') {
    super(message)
    this.name = 'DaemonRunningError'
  }
}

export interface DaemonInit {
  config: NodeConfig
  logger?: ComponentLogger
}

/**
 * A running daemon: the node, its control API (unix socket + loopback
 * HTTP) and the metrics registry. Process concerns (signals, exit codes)
 * belong to the CLI.
 */
export class Daemon {
  public readonly node: DamselflyNode
  public readonly registry: Registry
  public readonly api: ControlApi
  /** the registry mirror; listening unless proxy.listen is '' or its address was taken (see proxyError) */
  public readonly proxy: RegistryMirror
  public controlAddress?: string
  /** why the registry mirror is not listening, when it could not */
  public proxyError?: string
  public readonly socket?: string
  private readonly log: Logger
  private stopping?: Promise<void>

  private constructor (node: DamselflyNode, registry: Registry, api: ControlApi, proxy: RegistryMirror, log: Logger, socket?: string) {
    this.node = node
    this.registry = registry
    this.api = api
    this.proxy = proxy
    this.log = log
    this.socket = socket
  }

  static async start (init: DaemonInit): Promise<Daemon> {
    const { config } = init
    const logger = init.logger ?? defaultLogger()
    const log = logger.forComponent('damselfly:daemon')
    const sock = config.control.socket ? socketPath(config.dataDir) : undefined
    if (sock != null && await socketAnswers(sock)) {
      throw new DaemonRunningError(`a daemon already runs with data dir ${config.dataDir} (its control socket ${sock} answers); stop it first or use another --data-dir`)
    }

    const registry = new Registry()
    // the process's own figures beside ours: CPU, RSS, heap, event-loop lag, and
    // GC pauses by kind (nodejs_gc_duration_seconds), which show a daemon whose
    // heap is collected too often. The lag monitor samples every 100 ms, not
    // every 10 (its default), so an idle daemon is not woken 100 times a second.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 })
    const node = await createDamselfly({ config, metricsRegistry: registry, logger })
    const api = new ControlApi(log)
    let proxy: RegistryMirror
    try {
      proxy = new RegistryMirror(node.service, { ...config.proxy, logger, metrics: node.libp2p.metrics })
    } catch (err) {
      await node.stop()
      throw err
    }
    const daemon = new Daemon(node, registry, api, proxy, log, sock)
    daemon.addRoutes()
    try {
      // a taken mirror port does not stop the node: it still serves the swarm and the control API
      await proxy.start().catch((err: Error) => {
        daemon.proxyError = err.message
        log.error('the registry mirror is off: %s', err.message)
      })
      if (config.control.listen !== '') {
        daemon.controlAddress = await api.listenTcp(config.control.listen)
        if (!/^(127\.|\[::1\]|localhost)/.test(daemon.controlAddress)) {
          log.error('the control API listens on %s, which is not loopback: anyone who can reach it controls this node', daemon.controlAddress)
        }
      }
      if (sock != null) {
        await api.listenSocket(sock)
      }
    } catch (err) {
      await proxy.stop()
      await api.close()
      await node.stop()
      throw err
    }
    return daemon
  }

  private addRoutes (): void {
    const node = this.node
    this.api
      .route('GET', '/healthz', () => ({ ok: true, peerId: node.peerId.toString(), peers: node.status().peers }))
      .route('GET', '/status', () => ({ ...node.status(), control: this.controlAddress, socket: this.socket, proxy: { ...this.proxy.stats(), error: this.proxyError }, swarmKeyFile: node.config.swarm.keyFile, dataDir: node.config.dataDir, pid: process.pid }))
      .route('GET', '/peers', () => node.peers())
      .route('GET', '/members', () => node.service.members())
      .route('GET', '/metrics', async (_req, res) => {
        const text = await this.registry.metrics()
        res.writeHead(200, { 'content-type': this.registry.contentType })
        res.end(text)
      })
      .route('GET', '/tasks', () => node.service.tasks())
      .route('POST', '/tasks', async (req) => {
        const body = await readJson(req)
        if (typeof body.url !== 'string' && typeof body.digest !== 'string') {
          throw new HttpError(400, 'give "url" (and/or "digest": "sha256:<hex>")')
        }
        const d = node.service.get({
          url: body.url,
          digest: body.digest,
          headers: body.headers,
          tag: body.tag,
          application: body.application,
          filteredQueryParams: body.filteredQueryParams,
          backToSource: body.backToSource,
          rateBps: body.rateBps
        })
        return { taskId: d.request.taskId, state: d.state }
      })
      .route('GET', '/tasks/:id', (_req, _res, params) => this.download(params.id).progress())
      .route('DELETE', '/tasks/:id', (_req, _res, params) => {
        const cancelled = node.service.engine.cancel(params.id)
        return { taskId: params.id, cancelled }
      })
      .route('DELETE', '/tasks/:id/data', async (_req, _res, params) => node.service.removeTask(params.id))
      .route('GET', '/tasks/:id/data', async (_req, res, params) => { await this.sendTaskData(res, params.id) })
      .route('GET', '/tasks/:id/events', (req, res, params) => { this.streamEvents(req, res, params.id) })
      .route('POST', '/tasks/:id/export', async (req, _res, params) => {
        const body = await readJson(req)
        if (typeof body.output !== 'string' || body.output === '') {
          throw new HttpError(400, 'give "output": the absolute path to write the file to')
        }
        await node.service.export(params.id, body.output, { overwrite: body.overwrite === true })
        return { taskId: params.id, output: body.output }
      })
      .route('POST', '/gc', async (req) => {
        const body = await readJson(req)
        const older = body.olderThanMs
        if (older != null && (!Number.isSafeInteger(older) || older <= 0)) {
          throw new HttpError(400, '"olderThanMs" must be a whole number of ms above 0')
        }
        return node.service.collectGarbage({ olderThanMs: older, dryRun: body.dryRun === true })
      })
      .route('POST', '/import', async (req) => {
        const body = await readJson(req)
        if (typeof body.path !== 'string') {
          throw new HttpError(400, 'give "path": the absolute path of the file to import')
        }
        return node.service.import(body.path, { url: body.url, digest: body.digest, tag: body.tag, application: body.application })
      })
  }

  private download (taskId: string): Download {
    const d = this.node.service.engine.get(taskId)
    if (d == null) {
      throw new HttpError(404, `no download of task ${taskId} on this node; list them with GET /tasks`)
    }
    return d
  }

  /**
   * A complete task's bytes, each piece checked against its digest on the
   * way out (`damselfly get -O -`). A failure after the headers cuts the
   * response short of its content-length, so no client takes it as whole.
   */
  private async sendTaskData (res: http.ServerResponse, taskId: string): Promise<void> {
    const meta = this.node.service.store.getTask(taskId)
    if (meta == null) {
      throw new HttpError(404, `task ${taskId} is not in the store; list the tasks with GET /tasks`)
    }
    if (meta.state !== 'complete') {
      throw new HttpError(409, `task ${taskId} is ${meta.state}, not complete; download it first`)
    }
    const gone = new AbortController()
    res.once('close', () => { gone.abort() })
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(meta.contentLength) })
    try {
      for await (const piece of this.node.service.store.stream(taskId, { signal: gone.signal })) {
        if (!res.write(piece)) {
          await once(res, 'drain', { signal: gone.signal })
        }
      }
      res.end()
    } catch (err) {
      if (!gone.signal.aborted) {
        // the client is still there: the dispatcher logs it and cuts the response
        throw err
      }
    }
  }

  /**
   * Server-sent events: the download's progress until it ends
   */
  private streamEvents (req: http.IncomingMessage, res: http.ServerResponse, taskId: string): void {
    const d = this.download(taskId)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    let last = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    const send = (): void => {
      timer = undefined
      last = Date.now()
      const p = d.progress()
      res.write(`event: progress\ndata: ${JSON.stringify(p)}\n\n`)
      if (p.state !== 'running' && p.state !== 'pending') {
        cleanup()
        res.end()
      }
    }
    const onUpdate = (): void => {
      if (timer != null) {
        return
      }
      timer = setTimeout(send, Math.max(0, EVENT_INTERVAL_MS - (Date.now() - last)))
    }
    const onState = (): void => {
      clearTimeout(timer)
      send()
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      d.removeEventListener('progress', onUpdate)
      d.removeEventListener('state', onState)
    }
    d.addEventListener('progress', onUpdate)
    d.addEventListener('state', onState)
    req.on('close', cleanup)
    send()
  }

  /**
   * Stop in reverse start order; safe to call twice
   */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      this.log('stopping')
      await this.proxy.stop()
      await this.api.close()
      await this.node.stop()
      this.log('stopped')
    })()
    await this.stopping
  }
}

async function socketAnswers (file: string): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect(file)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}
