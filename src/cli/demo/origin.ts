import { createHash } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import http from 'node:http'
import { TokenBucket } from '../../transfer/token-bucket.ts'
import type { AddressInfo } from 'node:net'

/** One answered request: when (epoch ms), which byte range, body bytes sent, who asked */
export interface ServedRequest {
  t0: number
  t1: number
  start: number
  end: number
  sent: number
  remote?: string
}

export interface OriginOptions {
  /** @default 'file.bin' */
  name?: string
  /** @default '127.0.0.1' */
  host?: string
  /** @default 0 (any free port) */
  port?: number
  /** called as each body request ends (the bench logs how peers read the origin) */
  onServed?(record: ServedRequest): void
  /**
   * Cap on the bytes per second all responses together send, as an origin
   * behind one uplink has (0: none)
   *
   * @default 0
   */
  rateBps?: number
}

export interface DemoOrigin {
  url: string
  /** body bytes sent so far */
  bytesSent(): number
  requests(): number
  close(): Promise<void>
}

/**
 * A small HTTP origin for the demo: serves one file with ETag and Range
 * support, and counts the body bytes it sends (the origin egress).
 */
export async function startOrigin (file: string, options: OriginOptions = {}): Promise<DemoOrigin> {
  const { name = 'file.bin', host = '127.0.0.1', port: wantPort = 0, onServed } = options
  const uplink = new TokenBucket({ rateBps: options.rateBps ?? 0 })
  const size = (await fs.promises.stat(file)).size
  const etag = `"${createHash('sha256').update(`${file}:${size}`).digest('hex').slice(0, 16)}"`
  let sent = 0
  let requests = 0
  const server = http.createServer((req, res) => {
    requests++
    const t0 = Date.now()
    // the query is ignored: one file may be fetched as several tasks (URLs)
    if (req.url?.split('?')[0] !== `/${name}`) {
      res.writeHead(404).end()
      return
    }
    let start = 0
    let end = size - 1
    let status = 200
    const range = req.headers.range
    const ifRange = req.headers['if-range']
    if (range != null && (ifRange == null || ifRange === etag)) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range)
      if (m != null) {
        if (m[1] === '') {
          start = Math.max(0, size - Number(m[2]))
        } else {
          start = Number(m[1])
          end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
        }
        if (start > end || start >= size) {
          res.writeHead(416, { 'content-range': `bytes */${size}` }).end()
          return
        }
        status = 206
      }
    }
    const headers: http.OutgoingHttpHeaders = { 'content-length': end - start + 1, etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' }
    if (status === 206) {
      headers['content-range'] = `bytes ${start}-${end}/${size}`
    }
    res.writeHead(status, headers)
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    const stream = fs.createReadStream(file, { start, end, highWaterMark: uplink.unlimited ? 1024 * 1024 : 64 * 1024 })
    let body = 0
    const gone = new AbortController()
    res.on('close', () => {
      gone.abort()
      stream.destroy()
      onServed?.({ t0, t1: Date.now(), start, end, sent: body, remote: req.socket.remoteAddress })
    })
    // one loop whether capped or not: an unlimited bucket never waits
    void (async () => {
      for await (const chunk of stream) {
        await uplink.take(chunk.length, { signal: gone.signal })
        sent += chunk.length
        body += chunk.length
        if (!res.write(chunk)) {
          await once(res, 'drain', { signal: gone.signal })
        }
      }
      res.end()
    })().catch(() => { res.destroy() })
  })
  await new Promise<void>(resolve => server.listen(wantPort, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host}:${port}/${name}`,
    bytesSent: () => sent,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}
