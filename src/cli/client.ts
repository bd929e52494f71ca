import http from 'node:http'
import { DaemonNotRunningError } from '../errors.ts'

export interface ControlTarget {
  socketPath?: string
  /** HOST:PORT */
  address?: string
}

/**
 * An error answer of the control API
 */
export class ControlApiError extends Error {
  static name = 'ControlApiError'
  public readonly status: number
  public readonly remoteName: string

  constructor (status: number, remoteName: string, message: string) {
    super(message)
    this.name = 'ControlApiError'
    this.status = status
    this.remoteName = remoteName
  }
}

/**
 * Talks to a running daemon over its unix socket or loopback HTTP
 */
export class ControlClient {
  public readonly targets: ControlTarget[]
  private chosen?: ControlTarget

  constructor (targets: ControlTarget[]) {
    this.targets = targets
  }

  describe (): string {
    return this.targets.map(t => t.socketPath ?? `http://${t.address}`).join(' or ')
  }

  async get<T = any> (path: string, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('GET', path, undefined, options)
  }

  async post<T = any> (path: string, body: unknown, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('POST', path, body, options)
  }

  async delete<T = any> (path: string, options: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('DELETE', path, undefined, options)
  }

  /**
   * A response body as it arrives (a task's bytes), with its length when
   * the daemon sent one
   */
  async body (path: string, options: { signal?: AbortSignal } = {}): Promise<{ length?: number, chunks: AsyncIterable<Uint8Array> }> {
    const res = await this.open('GET', path, undefined, options)
    if (res.statusCode !== 200) {
      throw await toError(res)
    }
    const length = Number(res.headers['content-length'])
    return { length: Number.isSafeInteger(length) ? length : undefined, chunks: res }
  }

  /**
   * Open a response stream (server-sent events); yields each event's data parsed as JSON
   */
  async * events (path: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<any> {
    const res = await this.open('GET', path, undefined, options)
    if (res.statusCode !== 200) {
      throw await toError(res)
    }
    res.setEncoding('utf8')
    let buf = ''
    for await (const chunk of res) {
      buf += chunk
      let i: number
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const data = event.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).trim()).join('\n')
        if (data !== '') {
          yield JSON.parse(data)
        }
      }
    }
  }

  private async request<T> (method: string, path: string, body: unknown, options: { signal?: AbortSignal }): Promise<T> {
    const res = await this.open(method, path, body, options)
    if ((res.statusCode ?? 500) >= 400) {
      throw await toError(res)
    }
    const text = await readAll(res)
    const type = String(res.headers['content-type'] ?? '')
    return (type.includes('json') ? JSON.parse(text) : text) as T
  }

  private async open (method: string, path: string, body: unknown, options: { signal?: AbortSignal }): Promise<http.IncomingMessage> {
    const candidates = this.chosen != null ? [this.chosen] : this.targets
    let lastError: any
    for (const target of candidates) {
      try {
        const res = await send(target, method, path, body, options)
        this.chosen = target
        return res
      } catch (err: any) {
        if (err.name === 'AbortError') {
          throw err
        }
        lastError = err
      }
    }
    throw new DaemonNotRunningError(`no Damselfly daemon answers on ${this.describe()} (${lastError?.code ?? lastError?.message}); start one with \`damselfly daemon\`, or point at it with --data-dir or --control`)
  }
}

async function send (target: ControlTarget, method: string, path: string, body: unknown, options: { signal?: AbortSignal }): Promise<http.IncomingMessage> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const base: http.RequestOptions = target.socketPath != null
    ? { socketPath: target.socketPath }
    : { host: target.address!.slice(0, target.address!.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(target.address!.slice(target.address!.lastIndexOf(':') + 1)) }
  return new Promise((resolve, reject) => {
    const req = http.request({
      ...base,
      method,
      path,
      // a fresh connection per request: Node 20's global agent keeps sockets
      // alive, and a request sent on one just as the daemon's keep-alive
      // timer closed it failed with ECONNRESET (seen polling busy daemons
      // in bench/fanout); a local connect costs well under a millisecond
      agent: false,
      signal: options.signal,
      headers: payload != null ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}
    }, resolve)
    req.once('error', reject)
    req.end(payload)
  })
}

async function readAll (res: http.IncomingMessage): Promise<string> {
  res.setEncoding('utf8')
  let text = ''
  for await (const chunk of res) {
    text += chunk
  }
  return text
}

async function toError (res: http.IncomingMessage): Promise<ControlApiError> {
  const text = await readAll(res)
  try {
    const body = JSON.parse(text)
    return new ControlApiError(res.statusCode ?? 500, body.error ?? 'Error', body.message ?? text)
  } catch {
    return new ControlApiError(res.statusCode ?? 500, 'Error', text)
  }
}
