/**
 * A small Node.js HTTP origin for fault-injection tests: serves files from
 * memory with single-range support and If-Range, records every request, and
 * lets a test take over any request through `origin.hook`.
 */

import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface OriginFile {
  data: Uint8Array
  etag?: string
  lastModified?: string
}

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
}

export interface ServeOptions {
  /** Answer Range even when If-Range does not match (a broken server) */
  ignoreIfRange?: boolean
  /** Answer every request with the whole file (a server without Range support) */
  ignoreRange?: boolean
  /** Send this many body bytes, then cut the connection */
  dropAfter?: number
  /** Send this many body bytes, then go silent (keep the connection open) */
  stallAfter?: number
  /** Do not send Content-Length (chunked encoding) */
  noContentLength?: boolean
}

/**
 * Returns `true` when it answered the request itself
 */
export type Hook = (req: IncomingMessage, res: ServerResponse, origin: Origin) => boolean | undefined

export interface OriginOptions {
  /** Serve https with this certificate and key */
  tls?: { cert: string, key: string }
}

export interface Origin {
  /** `http(s)://127.0.0.1:<port>` */
  url: string
  /** TCP connections accepted */
  connections: number
  files: Map<string, OriginFile>
  requests: RecordedRequest[]
  /** Default behaviour for every request not taken by the hook */
  serveOptions: ServeOptions
  hook?: Hook
  serve(req: IncomingMessage, res: ServerResponse, options?: ServeOptions): void
  stop(): Promise<void>
}

export async function startOrigin (options: OriginOptions = {}): Promise<Origin> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    origin.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers })

    if (origin.hook?.(req, res, origin) === true) {
      return
    }

    origin.serve(req, res)
  }
  const server = options.tls != null ? createHttpsServer(options.tls, handler) : createServer(handler)
  server.on('connection', () => { origin.connections++ })

  const origin: Origin = {
    url: '',
    connections: 0,
    files: new Map(),
    requests: [],
    serveOptions: {},
    serve (req, res, options = origin.serveOptions) {
      serveFile(origin.files, req, res, options)
    },
    async stop () {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }

  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  origin.url = `${options.tls != null ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`

  return origin
}

function serveFile (files: Map<string, OriginFile>, req: IncomingMessage, res: ServerResponse, options: ServeOptions): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname
  const file = files.get(path)

  if (file == null) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    return
  }

  const length = file.data.byteLength
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' }

  if (file.etag != null) {
    headers.etag = file.etag
  }

  if (file.lastModified != null) {
    headers['last-modified'] = file.lastModified
  }

  let status = 200
  let body = file.data
  const range = options.ignoreRange === true ? undefined : parseRange(req.headers.range, length)
  const ifRange = req.headers['if-range']
  const ifRangeMatches = ifRange == null || options.ignoreIfRange === true || ifRange === file.etag || ifRange === file.lastModified

  if (options.ignoreRange !== true) {
    headers['accept-ranges'] = 'bytes'
  }

  if (range === 'unsatisfiable' && ifRangeMatches) {
    res.writeHead(416, { 'content-range': `bytes */${length}` }).end()
    return
  }

  if (range != null && range !== 'unsatisfiable' && ifRangeMatches) {
    status = 206
    body = file.data.subarray(range.start, range.last + 1)
    headers['content-range'] = `bytes ${range.start}-${range.last}/${length}`
  }

  if (options.noContentLength !== true) {
    headers['content-length'] = String(body.byteLength)
  }

  res.writeHead(status, headers)

  if (req.method === 'HEAD') {
    res.end()
    return
  }

  if (options.dropAfter != null) {
    res.write(body.subarray(0, options.dropAfter), () => {
      res.socket?.destroy()
    })
    return
  }

  if (options.stallAfter != null) {
    res.write(body.subarray(0, options.stallAfter))
    return
  }

  res.end(body)
}

function parseRange (value: string | undefined, length: number): { start: number, last: number } | 'unsatisfiable' | undefined {
  if (value == null) {
    return undefined
  }

  const match = /^bytes=(\d+)-(\d*)$/.exec(value)

  if (match == null) {
    return undefined
  }

  const start = Number(match[1])
  const last = match[2] === '' ? length - 1 : Math.min(Number(match[2]), length - 1)

  if (start >= length || last < start) {
    return 'unsatisfiable'
  }

  return { start, last }
}
