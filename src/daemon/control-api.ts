import fs from 'node:fs/promises'
import http from 'node:http'
import type { Logger } from '@libp2p/interface'
import type { AddressInfo } from 'node:net'

/**
 * A route handler of the control API. It writes the response itself or
 * returns a value that is sent as JSON.
 */
export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, params: Record<string, string>, url: URL) => Promise<unknown> | unknown

interface Route {
  method: string
  pattern: RegExp
  keys: string[]
  handler: RouteHandler
}

/**
 * An error a route throws to answer with a status code and a message
 */
export class HttpError extends Error {
  static name = 'HttpError'
  public readonly status: number

  constructor (status: number, message: string) {
    super(message)
    this.name = 'HttpError'
    this.status = status
  }
}

/**
 * The control API: one request router served on loopback HTTP and on a unix
 * socket in the data directory. Not authenticated: keep it local.
 */
export class ControlApi {
  private readonly routes: Route[] = []
  private readonly servers: http.Server[] = []
  private readonly log: Logger
  private socketPath?: string

  constructor (log: Logger) {
    this.log = log
  }

  route (method: string, path: string, handler: RouteHandler): this {
    const keys: string[] = []
    const pattern = new RegExp('^' + path.replace(/:([a-zA-Z]+)/g, (_, k: string) => { keys.push(k); return '([^/]+)' }) + '/?$')
    this.routes.push({ method, pattern, keys, handler })
    return this
  }

  /**
   * Listen on HOST:PORT; resolves to the bound address ("127.0.0.1:4781")
   */
  async listenTcp (hostPort: string): Promise<string> {
    const i = hostPort.lastIndexOf(':')
    const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '')
    const port = Number(hostPort.slice(i + 1))
    const server = this.createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: any) => {
        reject(Object.assign(new Error(`cannot listen on ${hostPort} for the control API (${err.code}); another daemon may be running, or choose another address with --control`), { code: err.code }))
      })
      server.listen(port, host, () => { resolve() })
    })
    const addr = server.address() as AddressInfo
    return `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
  }

  async listenSocket (socketPath: string): Promise<void> {
    await fs.rm(socketPath, { force: true })
    const server = this.createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(socketPath, () => { resolve() })
    })
    await fs.chmod(socketPath, 0o600)
    this.socketPath = socketPath
  }

  async close (): Promise<void> {
    await Promise.all(this.servers.splice(0).map(async s => {
      s.closeAllConnections()
      await new Promise<void>(resolve => { s.close(() => { resolve() }) })
    }))
    if (this.socketPath != null) {
      await fs.rm(this.socketPath, { force: true })
    }
  }

  private createServer (): http.Server {
    const server = http.createServer((req, res) => {
      this.dispatch(req, res).catch((err) => {
        // never let one request take the daemon down
        this.log.error('control API request failed - %e', err)
        if (!res.headersSent) {
          sendJson(res, 400, { error: 'BadRequest', message: 'the request could not be parsed; check the path and its escaping' })
        } else {
          res.destroy()
        }
      })
    })
    server.requestTimeout = 0
    server.headersTimeout = 10_000
    this.servers.push(server)
    return server
  }

  private async dispatch (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://control')
    } catch {
      sendJson(res, 400, { error: 'BadRequest', message: `"${String(req.url).slice(0, 100)}" is not a valid request path` })
      return
    }
    let allowed = false
    for (const r of this.routes) {
      const m = r.pattern.exec(url.pathname)
      if (m == null) {
        continue
      }
      allowed = true
      if (r.method !== req.method && !(r.method === 'GET' && req.method === 'HEAD')) {
        continue
      }
      let params: Record<string, string>
      try {
        params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]))
      } catch {
        sendJson(res, 400, { error: 'BadRequest', message: `${url.pathname} has a bad %-escape` })
        return
      }
      try {
        const result = await r.handler(req, res, params, url)
        if (!res.headersSent && result !== undefined) {
          sendJson(res, 200, result)
        }
      } catch (err: any) {
        const status = err instanceof HttpError ? err.status : statusFor(err)
        if (status === 500) {
          this.log.error('control API %s %s failed - %e', req.method, url.pathname, err)
        }
        if (!res.headersSent) {
          sendJson(res, status, { error: err.name ?? 'Error', message: err.message })
        } else {
          res.destroy()
        }
      }
      return
    }
    sendJson(res, allowed ? 405 : 404, { error: allowed ? 'MethodNotAllowed' : 'NotFound', message: `${req.method} ${url.pathname} is not a control API route` })
  }
}

const STATUS_BY_NAME: Record<string, number> = {
  InvalidDigestError: 400,
  InvalidUrlError: 400,
  InvalidParametersError: 400,
  TaskNotFoundError: 404,
  PieceNotFoundError: 404,
  OutputExistsError: 409,
  TaskIncompleteError: 409,
  TaskConflictError: 409,
  InsufficientSpaceError: 507,
  StorageFullError: 507
}

function statusFor (err: any): number {
  return STATUS_BY_NAME[err?.name] ?? 500
}

export function sendJson (res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => typeof v === 'bigint' ? Number(v) : v)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * Read a JSON request body of at most `max` bytes
 */
export async function readJson (req: http.IncomingMessage, max = 64 * 1024): Promise<any> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > max) {
      throw new HttpError(413, `request body larger than ${max} bytes`)
    }
    chunks.push(chunk)
  }
  if (size === 0) {
    return {}
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new HttpError(400, 'request body is not valid JSON')
  }
}
