import { createHash } from 'node:crypto'
import http from 'node:http'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { defaultLogger } from '@libp2p/logger'
import { Agent, interceptors, request as undiciRequest } from 'undici'
import { taskId as computeTaskId } from '../task/id.ts'
import { readRange, waitForMetadata } from './blob.ts'
import {
  DEFAULT_DIRECT_BLOB_MAX_BYTES,
  DEFAULT_METADATA_POLL_MS,
  DEFAULT_METADATA_TIMEOUT_MS,
  DEFAULT_PIECE_POLL_MS,
  DEFAULT_PROXY_RULES,
  DEFAULT_UPSTREAM_BODY_TIMEOUT_MS,
  DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS,
  MAX_MANIFEST_BYTES,
  MAX_REMEMBERED_SMALL_BLOBS,
  NS_PARAM,
  REGISTRY_HEADER
} from './constants.ts'
import { InvalidUpstreamError } from './errors.ts'
import { forward } from './forward.ts'
import { manifestBlobs, SmallBlobs } from './manifest.ts'
import { contentRange, ifRangeAllows, parseRange } from './range.ts'
import { UpstreamPolicy } from './upstream.ts'
import type { BlobStore } from './blob.ts'
import type { ForwardOptions } from './forward.ts'
import type { Upstream } from './upstream.ts'
import type { GetRequest } from '../node/damselfly.ts'
import type { TaskMetadata } from '../storage/index.ts'
import type { Download } from '../task/download.ts'
import type { ComponentLogger, Logger, Metrics, Startable } from '@libp2p/interface'
import type { AddressInfo } from 'node:net'

/**
 * What the proxy needs of a node: start or join a download, and read the
 * store. `Damselfly` (node.service) is one.
 */
export interface MirrorNode {
  get(request: GetRequest): Download
  readonly store: BlobStore
}

export interface RegistryMirrorInit {
  /**
   * HOST:PORT to listen on; '' does not listen (start() does nothing)
   *
   * @default '127.0.0.1:4782'
   */
  listen?: string
  /**
   * The registry requests go to when they name none, e.g.
   * `https://registry-1.docker.io` or `http://10.0.0.5:5000`
   */
  registryMirror?: string | null
  /**
   * More registries a request may name by the X-Damselfly-Registry header or
   * `?ns=`: `host[:port]` (https), `*.domain`, or `http://host:port`
   *
   * @default []
   */
  allowHosts?: string[]
  /**
   * Regular expressions over the request path: GETs and HEADs that match
   * are served through the swarm, everything else goes to the upstream
   *
   * @default DEFAULT_PROXY_RULES
   */
  rules?: string[]
  logger?: ComponentLogger
  /** registers damselfly_proxy_* metrics when given */
  metrics?: Metrics
  /** @default DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS */
  upstreamHeadersTimeoutMs?: number
  /** @default DEFAULT_UPSTREAM_BODY_TIMEOUT_MS */
  upstreamBodyTimeoutMs?: number
  /** @default DEFAULT_METADATA_TIMEOUT_MS */
  metadataTimeoutMs?: number
  /** @default DEFAULT_PIECE_POLL_MS */
  piecePollMs?: number
  /**
   * Blobs up to this many bytes that a manifest passed on by this mirror
   * named are fetched from the registry directly, digest checked; 0 sends
   * every blob through the swarm
   *
   * @default DEFAULT_DIRECT_BLOB_MAX_BYTES
   */
  directBlobMaxBytes?: number
}

/**
 * How a request ended:
 * - swarm: a blob answered from a task (200, 206, or a HEAD from task metadata)
 * - forwarded: passed to the upstream and its answer passed back (any status), or a small blob taken from the upstream directly (digest checked)
 * - denied: the request named a registry that is not allowed (403)
 * - invalid: not a /v2/ path, no or bad upstream, an unsatisfiable range (400, 404, 416)
 * - upstream-error: the upstream gave no answer (502, 504)
 * - blob-failed: the blob's download failed before any byte was sent (502)
 * - aborted: the blob's download failed or did not verify after the headers were sent; the response was cut
 * - client-closed: the client went away first
 */
export type ProxyOutcome = 'swarm' | 'forwarded' | 'denied' | 'invalid' | 'upstream-error' | 'blob-failed' | 'aborted' | 'client-closed'

export const PROXY_OUTCOMES: readonly ProxyOutcome[] = Object.freeze(['swarm', 'forwarded', 'denied', 'invalid', 'upstream-error', 'blob-failed', 'aborted', 'client-closed'])

export interface ProxyStats {
  /** HOST:PORT while listening */
  address?: string
  /** the configured registry mirror (`https://host`), if any */
  registryMirror?: string
  /** requests being answered now */
  active: number
  /** finished requests by outcome */
  requests: Record<ProxyOutcome, number>
  /** body bytes sent to clients: from swarm tasks, and passed through from upstream registries */
  bytes: { swarm: number, upstream: number }
}

/** Source errors that mean the registry itself answered "no": its own answer is passed to the client */
const REGISTRY_REFUSALS = new Set(['SourceNotFoundError', 'SourceForbiddenError'])

const DIGEST_IN_PATH = /\/blobs\/(sha256:[0-9a-f]{64})$/
const MANIFEST_PATH = /\/manifests\/[^/]+$/

/** Redirects a direct small-blob fetch follows (registries send blobs to storage) */
const MAX_BLOB_REDIRECTS = 5

/**
 * One request's timing, for the log: when it arrived, when its first body
 * byte went out, how many body bytes went out
 */
class RequestTiming {
  public readonly startedAt = Date.now()
  public firstByteAt?: number
  public bytes = 0

  sent (n: number): void {
    if (n > 0) {
      this.firstByteAt ??= Date.now()
      this.bytes += n
    }
  }
}

class RequestDone extends Error {
  constructor (public readonly outcome: ProxyOutcome) {
    super(outcome)
  }
}

/**
 * A pull-through registry mirror (OCI distribution API) in front of the
 * swarm: blob GETs and HEADs become tasks keyed by their digest and are
 * streamed to the client piece by piece as they arrive; manifests, tags,
 * the /v2/ ping and token flows go to the upstream registry unchanged.
 * A request reaches only the configured mirror or an allowed registry.
 */
export class RegistryMirror implements Startable {
  public readonly [Symbol.toStringTag] = '@damselfly/proxy'
  private readonly node: MirrorNode
  private readonly log: Logger
  private readonly policy: UpstreamPolicy
  private readonly rules: RegExp[]
  private readonly listen: string
  private readonly opts: { headersTimeoutMs: number, bodyTimeoutMs: number, metadataTimeoutMs: number, piecePollMs: number }
  private readonly counts: Record<ProxyOutcome, number>
  private readonly bytes = { swarm: 0, upstream: 0 }
  private readonly smallBlobs: SmallBlobs
  private active = 0
  private server?: http.Server
  private dispatcher?: Agent
  private blobDispatcher?: ReturnType<Agent['compose']>
  private boundAddress?: string

  /**
   * @throws {InvalidUpstreamError} for a bad registryMirror, allowHosts entry or rule
   */
  constructor (node: MirrorNode, init: RegistryMirrorInit = {}) {
    this.node = node
    this.log = (init.logger ?? defaultLogger()).forComponent('damselfly:proxy')
    this.listen = init.listen ?? '127.0.0.1:4782'
    this.policy = new UpstreamPolicy({ registryMirror: init.registryMirror, allowHosts: init.allowHosts })
    this.rules = (init.rules ?? DEFAULT_PROXY_RULES).map(rule => {
      try {
        return new RegExp(rule)
      } catch (err: any) {
        throw new InvalidUpstreamError(`proxy.rules entry ${JSON.stringify(rule)} is not a valid regular expression (${err.message})`)
      }
    })
    this.opts = {
      headersTimeoutMs: init.upstreamHeadersTimeoutMs ?? DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS,
      bodyTimeoutMs: init.upstreamBodyTimeoutMs ?? DEFAULT_UPSTREAM_BODY_TIMEOUT_MS,
      metadataTimeoutMs: init.metadataTimeoutMs ?? DEFAULT_METADATA_TIMEOUT_MS,
      piecePollMs: init.piecePollMs ?? DEFAULT_PIECE_POLL_MS
    }
    this.counts = Object.fromEntries(PROXY_OUTCOMES.map(o => [o, 0])) as Record<ProxyOutcome, number>
    this.smallBlobs = new SmallBlobs(init.directBlobMaxBytes ?? DEFAULT_DIRECT_BLOB_MAX_BYTES, MAX_REMEMBERED_SMALL_BLOBS)

    const metrics = init.metrics
    if (metrics != null) {
      metrics.registerCounterGroup('damselfly_proxy_requests_total', {
        label: 'outcome',
        help: 'Registry mirror requests by outcome (swarm, forwarded, denied, invalid, upstream-error, blob-failed, aborted, client-closed)',
        calculate: () => ({ ...this.counts })
      })
      metrics.registerCounterGroup('damselfly_proxy_bytes_total', {
        label: 'source',
        help: 'Body bytes the registry mirror sent to clients: from swarm tasks, or passed through from upstream registries',
        calculate: () => ({ ...this.bytes })
      })
    }
  }

  /** HOST:PORT while listening */
  get address (): string | undefined {
    return this.boundAddress
  }

  isStarted (): boolean {
    return this.server != null
  }

  async start (): Promise<void> {
    if (this.server != null || this.listen === '') {
      return
    }
    const i = this.listen.lastIndexOf(':')
    const host = this.listen.slice(0, i).replace(/^\[|\]$/g, '')
    const port = Number(this.listen.slice(i + 1))
    const server = http.createServer((req, res) => { void this.handle(req, res) })
    // the TLS hello of a client trying https first (skopeo, docker) is answered 400 and closed by default
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: any) => {
        reject(Object.assign(new Error(`cannot listen on ${this.listen} for the registry mirror (${err.code}); another daemon may be running, or choose another address with --proxy ("" turns the proxy off)`), { code: err.code }))
      })
      server.listen(port, host, () => { resolve() })
    })
    const addr = server.address() as AddressInfo
    this.boundAddress = `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
    this.dispatcher = new Agent({ headersTimeout: this.opts.headersTimeoutMs, bodyTimeout: this.opts.bodyTimeoutMs })
    this.blobDispatcher = this.dispatcher.compose(interceptors.redirect({ maxRedirections: MAX_BLOB_REDIRECTS }))
    this.server = server
    if (!/^(127\.|\[::1\]|localhost)/.test(this.boundAddress)) {
      this.log.error('the registry mirror listens on %s, which is not loopback: anyone who can reach it can pull through this node (it only contacts allowed registries)', this.boundAddress)
    }
    this.log('registry mirror on http://%s (upstream %s)', this.boundAddress, this.policy.mirror?.origin ?? 'named per request')
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) {
      return
    }
    this.server = undefined
    this.boundAddress = undefined
    const closed = new Promise<void>(resolve => server.close(() => { resolve() }))
    server.closeAllConnections()
    await closed
    await this.dispatcher?.destroy()
    this.dispatcher = undefined
    this.blobDispatcher = undefined
  }

  stats (): ProxyStats {
    return {
      address: this.boundAddress,
      registryMirror: this.policy.mirror?.origin,
      active: this.active,
      requests: { ...this.counts },
      bytes: { ...this.bytes }
    }
  }

  private async handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.active++
    const timing = new RequestTiming()
    const controller = new AbortController()
    res.once('close', () => {
      if (!res.writableFinished) {
        controller.abort(new Error('the client closed the connection'))
      }
    })
    let outcome: ProxyOutcome = 'invalid'
    try {
      outcome = await this.route(req, res, controller.signal, timing)
    } catch (err: any) {
      if (err instanceof RequestDone) {
        outcome = err.outcome
      } else if (controller.signal.aborted) {
        outcome = 'client-closed'
      } else {
        outcome = 'aborted'
        this.log.error('%s %s failed - %e', req.method, req.url, err)
      }
      if (!res.headersSent && !res.destroyed) {
        sendError(res, 502, 'UNAVAILABLE', `the registry mirror could not answer: ${err.message}`)
      } else {
        res.destroy()
      }
    } finally {
      this.active--
      this.counts[outcome]++
      const ended = Date.now()
      this.log('%s %s → %d %s; %d body bytes, first after %s ms, total %d ms (arrived %d)', req.method, req.url, res.statusCode, outcome, timing.bytes, timing.firstByteAt == null ? '-' : timing.firstByteAt - timing.startedAt, ended - timing.startedAt, timing.startedAt)
    }
  }

  private async route (req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal, timing: RequestTiming): Promise<ProxyOutcome> {
    // only the path and query are used: an absolute-form request target
    // (`GET http://elsewhere/…`) cannot choose the upstream
    const url = new URL(req.url ?? '/', 'http://mirror.invalid')
    if (url.pathname !== '/v2' && !url.pathname.startsWith('/v2/')) {
      sendError(res, 404, 'NOT_FOUND', `this is a registry mirror: only the registry API under /v2/ is served, not ${url.pathname}`)
      return 'invalid'
    }
    let upstream: Upstream
    try {
      upstream = this.policy.resolve({ header: firstHeader(req.headers[REGISTRY_HEADER]), ns: url.searchParams.get(NS_PARAM) ?? undefined })
    } catch (err: any) {
      if (err.name === 'UpstreamNotAllowedError') {
        sendError(res, 403, 'DENIED', err.message)
        return 'denied'
      }
      sendError(res, 400, 'UNSUPPORTED', err.message)
      return 'invalid'
    }
    url.searchParams.delete(NS_PARAM)
    const target = new URL(url.pathname + url.search, upstream.origin)

    if ((req.method === 'GET' || req.method === 'HEAD') && this.rules.some(r => r.test(url.pathname))) {
      return this.serveBlob(req, res, target, DIGEST_IN_PATH.exec(url.pathname)?.[1], signal, timing)
    }
    return this.forward(req, res, target, signal, timing)
  }

  private async forward (req: http.IncomingMessage, res: http.ServerResponse, target: URL, signal: AbortSignal, timing: RequestTiming): Promise<ProxyOutcome> {
    try {
      const manifest = req.method === 'GET' && MANIFEST_PATH.test(target.pathname)
      const result = await forward(req, res, target, { ...this.forwardOptions(signal, timing), keepBody: manifest ? MAX_MANIFEST_BYTES : undefined })
      if (manifest && result.status === 200 && result.body != null) {
        this.smallBlobs.learn(manifestBlobs(result.body, result.contentType))
      }
      return 'forwarded'
    } catch (err: any) {
      if (err.name === 'UpstreamUnavailableError' && !res.headersSent) {
        this.log.error('%s %s: %s', req.method, target.href, err.message)
        sendError(res, err.timeout === true ? 504 : 502, 'UNAVAILABLE', err.message)
        return 'upstream-error'
      }
      throw err
    }
  }

  private forwardOptions (signal: AbortSignal, timing: RequestTiming): ForwardOptions {
    return {
      dispatcher: this.dispatcher!,
      headersTimeoutMs: this.opts.headersTimeoutMs,
      bodyTimeoutMs: this.opts.bodyTimeoutMs,
      signal,
      onBytes: (n) => {
        this.bytes.upstream += n
        timing.sent(n)
      }
    }
  }

  /**
   * GET or HEAD of a path the rules send through the swarm
   */
  private async serveBlob (req: http.IncomingMessage, res: http.ServerResponse, target: URL, digest: string | undefined, signal: AbortSignal, timing: RequestTiming): Promise<ProxyOutcome> {
    const headers: Record<string, string> = {}
    const authorization = firstHeader(req.headers.authorization)
    if (authorization != null) {
      headers.authorization = authorization
    }
    const request: GetRequest = { url: target.href, digest, headers }
    if (req.method === 'HEAD') {
      return this.serveHead(req, res, target, request, signal, timing)
    }
    // a small blob this node holds is served from its store; one it does not, from the registry
    const small = digest != null && req.headers.range == null && this.node.store.getTask(computeTaskId({ digest }))?.state !== 'complete'
      ? this.smallBlobs.size(digest)
      : undefined
    if (small != null && await this.serveSmallBlob(res, target, headers, digest!, small, signal, timing)) {
      // and into the swarm behind the client's back, so it is served from there once the registry is gone
      this.node.get(request)
      return 'forwarded'
    }
    return this.serveGet(req, res, target, request, signal, timing)
  }

  /**
   * GET of a blob a manifest named as at most directBlobMaxBytes: fetched
   * from the registry whole and sent only when its length and digest match.
   * False when that did not work out (another status, a wrong body, no
   * answer): the swarm path then serves it, or passes the registry's refusal on.
   */
  private async serveSmallBlob (res: http.ServerResponse, target: URL, headers: Record<string, string>, digest: string, size: number, signal: AbortSignal, timing: RequestTiming): Promise<boolean> {
    try {
      const up = await undiciRequest(target, {
        method: 'GET',
        headers,
        dispatcher: this.blobDispatcher!,
        headersTimeout: this.opts.headersTimeoutMs,
        bodyTimeout: this.opts.bodyTimeoutMs,
        signal
      })
      const chunks: Buffer[] = []
      let received = 0
      for await (const chunk of up.body as AsyncIterable<Buffer>) {
        received += chunk.byteLength
        if (up.statusCode !== 200 || received > size) {
          break
        }
        chunks.push(chunk)
      }
      up.body.destroy()
      const body = Buffer.concat(chunks)
      if (up.statusCode !== 200 || received !== size || `sha256:${createHash('sha256').update(body).digest('hex')}` !== digest) {
        this.log('%s: the registry answered %d with %d bytes for a %d-byte blob (or other bytes); serving it through the swarm', target.href, up.statusCode, received, size)
        return false
      }
      res.writeHead(200, blobHeaders(size, digest))
      res.end(body)
      this.bytes.upstream += size
      timing.sent(size)
      return true
    } catch (err: any) {
      signal.throwIfAborted()
      this.log('%s: no answer from the registry for a small blob (%s); serving it through the swarm', target.href, err.message)
      return false
    }
  }

  /**
   * HEAD: the length from the task's metadata when this node knows the task,
   * else the registry's answer; with the registry unreachable, the swarm's
   * metadata (this starts the blob's download here, which the client's GET
   * will use)
   */
  private async serveHead (req: http.IncomingMessage, res: http.ServerResponse, target: URL, request: GetRequest, signal: AbortSignal, timing: RequestTiming): Promise<ProxyOutcome> {
    const digest = request.digest
    const known = digest != null ? this.node.store.getTask(computeTaskId({ digest })) : undefined
    if (known != null && known.state !== 'failed') {
      res.writeHead(200, blobHeaders(known.contentLength, digest))
      res.end()
      return 'swarm'
    }
    try {
      await forward(req, res, target, this.forwardOptions(signal, timing))
      return 'forwarded'
    } catch (err: any) {
      if (err.name !== 'UpstreamUnavailableError' || res.headersSent || digest == null) {
        throw err
      }
      try {
        const meta = await waitForMetadata(this.node.get(request), this.node.store, { signal, pollMs: Math.min(this.opts.piecePollMs, DEFAULT_METADATA_POLL_MS), timeoutMs: this.opts.metadataTimeoutMs })
        res.writeHead(200, blobHeaders(meta.contentLength, digest))
        res.end()
        return 'swarm'
      } catch {
        signal.throwIfAborted()
        sendError(res, err.timeout === true ? 504 : 502, 'UNAVAILABLE', `${err.message}; no node of the swarm knows ${digest} either`)
        return 'upstream-error'
      }
    }
  }

  /**
   * GET: the blob's task, streamed piece by piece in order as the pieces
   * arrive, whole or one range of it; the last bytes only once the digest
   * matched
   */
  private async serveGet (req: http.IncomingMessage, res: http.ServerResponse, target: URL, request: GetRequest, signal: AbortSignal, timing: RequestTiming): Promise<ProxyOutcome> {
    const digest = request.digest
    const download = this.node.get(request)
    let meta: TaskMetadata
    try {
      meta = await waitForMetadata(download, this.node.store, { signal, pollMs: Math.min(this.opts.piecePollMs, DEFAULT_METADATA_POLL_MS), timeoutMs: this.opts.metadataTimeoutMs })
    } catch (err: any) {
      signal.throwIfAborted()
      if (isRegistryRefusal(err)) {
        // the registry said no (401 with WWW-Authenticate, 404 BLOB_UNKNOWN…): pass its own answer on
        this.log('%s: the registry refused the blob (%s); passing its answer on', target.href, err.message)
        return this.forward(req, res, target, signal, timing)
      }
      this.log.error('%s: the blob could not be fetched - %e', target.href, err)
      sendError(res, 502, 'UNAVAILABLE', `the registry mirror could not fetch ${target.href} through the swarm: ${err.message}`)
      return 'blob-failed'
    }

    this.log('%s %s: task metadata after %d ms', req.method, req.url, Date.now() - timing.startedAt)
    const length = meta.contentLength
    const range = digest == null || ifRangeAllows(firstHeader(req.headers['if-range']), `"${digest}"`)
      ? parseRange(firstHeader(req.headers.range), length)
      : { kind: 'full' as const }
    if (range.kind === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${length}`, 'content-length': '0', 'docker-distribution-api-version': 'registry/2.0' })
      res.end()
      return 'invalid'
    }
    const { start, end } = range.kind === 'partial' ? range : { start: 0, end: length }
    const head = blobHeaders(end - start, digest)
    if (range.kind === 'partial') {
      head['content-range'] = contentRange(start, end, length)
    }
    res.writeHead(range.kind === 'partial' ? 206 : 200, head)

    let sent = 0
    const count = new Transform({
      transform: (chunk: Buffer, _enc, callback) => {
        sent += chunk.byteLength
        this.bytes.swarm += chunk.byteLength
        timing.sent(chunk.byteLength)
        callback(null, chunk)
      }
    })
    try {
      await pipeline(Readable.from(readRange(download, this.node.store, meta, start, end, { signal, pollMs: this.opts.piecePollMs })), count, res)
    } catch (err: any) {
      // Content-Length promised more: the client sees a truncated body, never a complete 200
      res.destroy()
      if (signal.aborted) {
        throw new RequestDone('client-closed')
      }
      this.log.error('%s: response cut after %d of %d bytes - %e', target.href, sent, end - start, err)
      throw new RequestDone('aborted')
    }
    return 'swarm'
  }
}

function isRegistryRefusal (err: any): boolean {
  return REGISTRY_REFUSALS.has(err?.name) || (err?.name === 'SourceHttpError' && err.status >= 400 && err.status < 500)
}

function firstHeader (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/**
 * The headers a registry sends with a blob (distribution/distribution's set)
 */
function blobHeaders (length: number, digest?: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(length),
    'accept-ranges': 'bytes',
    'docker-distribution-api-version': 'registry/2.0'
  }
  if (digest != null) {
    headers['docker-content-digest'] = digest
    headers.etag = `"${digest}"`
    headers['cache-control'] = 'max-age=31536000'
  }
  return headers
}

/**
 * An error in the registry API's format: `{"errors":[{"code","message"}]}`
 */
function sendError (res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message }] })
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'docker-distribution-api-version': 'registry/2.0' })
  res.end(body)
}

/**
 * The registry mirror for a node
 */
export function registryMirror (node: MirrorNode, init: RegistryMirrorInit = {}): RegistryMirror {
  return new RegistryMirror(node, init)
}
