/**
 * Pass one request through to the upstream registry and its answer back to
 * the client unchanged: status, headers (WWW-Authenticate,
 * Docker-Content-Digest, Location, …) and the body, streamed both ways.
 */
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { request } from 'undici'
import { HOP_BY_HOP_HEADERS } from './constants.ts'
import { UpstreamUnavailableError } from './errors.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'

export interface ForwardOptions extends AbortOptions {
  dispatcher: Dispatcher
  headersTimeoutMs: number
  bodyTimeoutMs: number
  /** called with the size of each body chunk sent to the client */
  onBytes?(n: number): void
  /** keep a copy of the body when it is at most this many bytes (for manifests) */
  keepBody?: number
}

export interface ForwardResult {
  status: number
  /** the upstream's content-type */
  contentType?: string
  /** the whole body, when `keepBody` was given and the body was no longer */
  body?: Buffer
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT'])

/** Request headers not forwarded besides the hop-by-hop ones: undici sets its own framing */
const REQUEST_ONLY = new Set(['content-length', 'expect'])

/**
 * Headers with the hop-by-hop ones removed, including any the Connection
 * header lists
 */
export function endToEndHeaders (headers: IncomingHttpHeaders, drop: ReadonlySet<string> = new Set()): Record<string, string | string[]> {
  const listed = new Set(String(headers.connection ?? '').split(',').map(s => s.trim().toLowerCase()).filter(s => s !== ''))
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase()
    if (value == null || HOP_BY_HOP_HEADERS.includes(key) || listed.has(key) || drop.has(key)) {
      continue
    }
    out[key] = value
  }
  return out
}

function hasBody (req: IncomingMessage): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') {
    return false
  }
  return req.headers['transfer-encoding'] != null || Number(req.headers['content-length'] ?? 0) > 0
}

/**
 * Send `req` to `target` and stream the answer into `res`. Resolves when the
 * answer was sent in full.
 *
 * @throws {UpstreamUnavailableError} when the upstream gave no answer (nothing was written to `res` then)
 * @throws {Error} when the answer broke off midway (`res` is destroyed then)
 */
export async function forward (req: IncomingMessage, res: ServerResponse, target: URL, options: ForwardOptions): Promise<ForwardResult> {
  const headers = endToEndHeaders(req.headers, REQUEST_ONLY)
  const withBody = hasBody(req)
  if (withBody && req.headers['content-length'] != null) {
    headers['content-length'] = req.headers['content-length']
  }
  let up: Dispatcher.ResponseData
  try {
    up = await request(target, {
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: withBody ? req : undefined,
      dispatcher: options.dispatcher,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      signal: options.signal
    })
  } catch (err: any) {
    if (options.signal?.aborted === true) {
      throw err
    }
    const code = err.code ?? err.cause?.code ?? err.name
    const timeout = TIMEOUT_CODES.has(code)
    throw new UpstreamUnavailableError(`the upstream registry ${target.origin} ${timeout ? 'did not answer in time' : 'could not be reached'} (${code}: ${err.message}); check that it is up and reachable from this node`, timeout, { cause: err })
  }

  res.writeHead(up.statusCode, endToEndHeaders(up.headers as IncomingHttpHeaders) as OutgoingHttpHeaders)
  const keep = options.keepBody ?? -1
  let kept: Buffer[] | undefined = keep >= 0 ? [] : undefined
  let keptBytes = 0
  const count = new Transform({
    transform (chunk: Buffer, _enc, callback) {
      options.onBytes?.(chunk.byteLength)
      if (kept != null) {
        keptBytes += chunk.byteLength
        if (keptBytes > keep) {
          kept = undefined
        } else {
          kept.push(chunk)
        }
      }
      callback(null, chunk)
    }
  })
  await pipeline(up.body, count, res)
  const type = up.headers['content-type']
  return { status: up.statusCode, contentType: Array.isArray(type) ? type[0] : type, body: kept == null ? undefined : Buffer.concat(kept) }
}
