import '../../src/polyfill.ts'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { expect } from 'aegir/chai'
import { createDefaultSources } from '../../src/source/index.ts'
import { TEST_CERT, TEST_KEY } from './fixtures/tls.ts'
import { collect, rejection } from './helpers.ts'
import { startOrigin } from './origin-server.ts'
import type { Origin } from './origin-server.ts'
import type { SourceRegistry } from '../../src/source/index.ts'
import type { Server, Socket } from 'node:net'

const FILE_SIZE = 200_000

describe('source/http against a Node.js origin (fault cases)', () => {
  let origin: Origin
  let sources: SourceRegistry
  let data: Uint8Array
  let fileUrl: string

  beforeEach(async () => {
    origin = await startOrigin()
    data = randomBytes(FILE_SIZE)
    origin.files.set('/data.bin', { data, etag: '"v1"', lastModified: new Date('2024-01-01T00:00:00Z').toUTCString() })
    fileUrl = `${origin.url}/data.bin`
    // short backoff keeps the suite fast; the retry decisions are the same
    sources = createDefaultSources({ retry: { baseDelayMs: 20, maxDelayMs: 100 } })
  })

  afterEach(async () => {
    await sources?.close()
    await origin?.stop()
  })

  function gets (): number {
    return origin.requests.filter(r => r.method === 'GET').length
  }

  it('stat: length, validators, range support and the final URL', async () => {
    const stat = await sources.stat(fileUrl)

    expect(stat).to.deep.equal({
      url: fileUrl,
      finalUrl: fileUrl,
      contentLength: FILE_SIZE,
      etag: '"v1"',
      lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT',
      acceptRanges: true
    })
    expect(origin.requests.map(r => `${r.method} ${r.headers.range ?? ''}`)).to.deep.equal(['HEAD ', 'GET bytes=0-0'])
  })

  it('stat: falls back to the range probe when HEAD is not allowed', async () => {
    origin.hook = (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(405).end()
        return true
      }
    }

    const stat = await sources.stat(fileUrl)
    expect(stat.contentLength).to.equal(FILE_SIZE)
    expect(stat.acceptRanges).to.equal(true)
    expect(stat.etag).to.equal('"v1"')
  })

  it('stat: acceptRanges is false when the server answers the probe with 200, even if it claims Accept-Ranges', async () => {
    origin.hook = (req, res) => {
      const file = origin.files.get('/data.bin')
      res.writeHead(200, { 'accept-ranges': 'bytes', 'content-length': String(FILE_SIZE), etag: file?.etag })
      res.end(req.method === 'HEAD' ? undefined : file?.data)
      return true
    }

    const stat = await sources.stat(fileUrl)
    expect(stat.contentLength).to.equal(FILE_SIZE)
    expect(stat.acceptRanges).to.equal(false)
  })

  it('stat: no Content-Length anywhere → LengthRequiredError', async () => {
    origin.serveOptions = { ignoreRange: true, noContentLength: true }

    const err = await rejection(sources.stat(fileUrl))
    expect(err.name).to.equal('LengthRequiredError')
    expect(err.message).to.include(fileUrl)
  })

  it('readRange: 500 twice, then success - three requests, exact bytes', async () => {
    let failures = 0
    origin.hook = (req, res) => {
      if (req.method === 'GET' && failures < 2) {
        failures++
        res.writeHead(500).end('boom')
        return true
      }
    }

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 1000, end: 150_000 }))

    expect(error).to.be.undefined()
    expect(gets()).to.equal(3)
    expect(bytes).to.deep.equal(data.subarray(1000, 150_000))
  })

  it('readRange: 429 with Retry-After: 1 waits about a second, then succeeds', async () => {
    let limited = false
    origin.hook = (req, res) => {
      if (!limited) {
        limited = true
        res.writeHead(429, { 'retry-after': '1' }).end()
        return true
      }
    }

    const started = Date.now()
    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 0, end: 10 }))
    const elapsed = Date.now() - started

    expect(error).to.be.undefined()
    expect(bytes).to.deep.equal(data.subarray(0, 10))
    expect(gets()).to.equal(2)
    expect(elapsed).to.be.at.least(900)
  })

  it('readRange: a 5xx that persists fails with SourceHttpError after the configured attempts', async () => {
    await sources.close()
    sources = createDefaultSources({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 } })
    origin.hook = (_req, res) => {
      res.writeHead(503).end()
      return true
    }

    const { error } = await collect(sources.readRange(fileUrl, { start: 0, end: 10 }))
    expect(error?.name).to.equal('SourceHttpError')
    expect(error?.status).to.equal(503)
    expect(gets()).to.equal(3)
  })

  it('readRange: the file changed between stat and read → SourceChangedError, no bytes of the new version', async () => {
    const stat = await sources.stat(fileUrl)
    const v2 = randomBytes(FILE_SIZE)
    origin.files.set('/data.bin', { data: v2, etag: '"v2"' })

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 0, end: 1000, validator: stat }))

    expect(error?.name).to.equal('SourceChangedError')
    expect(error?.message).to.include('"v1" → "v2"')
    expect(error?.message).to.include(fileUrl)
    expect(bytes.byteLength).to.equal(0)
    // If-Range carried the version from stat
    expect(origin.requests.at(-1)?.headers['if-range']).to.equal('"v1"')
  })

  it('readRange: a server that ignores If-Range but answers Range with another ETag → SourceChangedError', async () => {
    const stat = await sources.stat(fileUrl)
    origin.files.set('/data.bin', { data: randomBytes(FILE_SIZE), etag: '"v2"' })
    origin.serveOptions = { ignoreIfRange: true }

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 10, end: 1000, validator: stat }))

    expect(error?.name).to.equal('SourceChangedError')
    expect(bytes.byteLength).to.equal(0)
  })

  it('readRange: a change during a resumed read → SourceChangedError, only old-version bytes yielded', async () => {
    let dropped = false
    origin.hook = (req, res, o) => {
      if (req.method === 'GET' && !dropped) {
        dropped = true
        // the first response breaks off after 5000 bytes, then the file is replaced
        o.serve(req, res, { dropAfter: 5000 })
        o.files.set('/data.bin', { data: randomBytes(FILE_SIZE), etag: '"v2"' })
        return true
      }
    }

    // no validator given: the first response's ETag is pinned for the resume
    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 0, end: 100_000 }))

    expect(error?.name).to.equal('SourceChangedError')
    expect(bytes.byteLength).to.be.at.most(5000)
    expect(bytes).to.deep.equal(data.subarray(0, bytes.byteLength))
  })

  it('readRange: a connection dropped mid-body is resumed from the bytes already yielded', async () => {
    let dropped = false
    origin.hook = (req, res, o) => {
      if (req.method === 'GET' && !dropped) {
        dropped = true
        o.serve(req, res, { dropAfter: 30_000 })
        return true
      }
    }

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 100, end: 180_100 }))

    expect(error).to.be.undefined()
    expect(bytes).to.deep.equal(data.subarray(100, 180_100))

    const ranges = origin.requests.filter(r => r.method === 'GET').map(r => r.headers.range)
    expect(ranges).to.have.lengthOf(2)
    expect(ranges[0]).to.equal('bytes=100-180099')
    // resumed where the first response stopped (at most 30 000 bytes in), not from the start
    const resumedAt = Number(/^bytes=(\d+)-180099$/.exec(ranges[1] ?? '')?.[1])
    expect(resumedAt).to.be.within(101, 30_100)
  })

  it('readRange: a server that ignores Range still gives the exact bytes', async () => {
    origin.serveOptions = { ignoreRange: true }

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 70_000, end: 90_000 }))

    expect(error).to.be.undefined()
    expect(bytes).to.deep.equal(data.subarray(70_000, 90_000))
  })

  it('readRange: a Content-Range for other bytes than asked → SourceInvalidResponseError', async () => {
    origin.hook = (_req, res) => {
      res.writeHead(206, { 'content-range': `bytes 0-9/${FILE_SIZE}`, 'content-length': '10' }).end(data.subarray(0, 10))
      return true
    }

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 50, end: 60 }))
    expect(error?.name).to.equal('SourceInvalidResponseError')
    expect(bytes.byteLength).to.equal(0)
  })

  it('follows a 302 redirect to another path', async () => {
    origin.hook = (req, res) => {
      if (req.url === '/old.bin') {
        res.writeHead(302, { location: '/data.bin' }).end()
        return true
      }
    }

    const oldUrl = `${origin.url}/old.bin`
    const stat = await sources.stat(oldUrl)
    expect(stat.url).to.equal(oldUrl)
    expect(stat.finalUrl).to.equal(fileUrl)
    expect(stat.contentLength).to.equal(FILE_SIZE)

    const { bytes, error } = await collect(sources.readRange(oldUrl, { start: 5, end: 5005, validator: stat }))
    expect(error).to.be.undefined()
    expect(bytes).to.deep.equal(data.subarray(5, 5005))
  })

  it('a redirect loop → SourceHttpError naming the loop', async () => {
    origin.hook = (req, res) => {
      res.writeHead(302, { location: req.url === '/a' ? '/b' : '/a' }).end()
      return true
    }

    const err = await rejection(sources.stat(`${origin.url}/a`))
    expect(err.name).to.equal('SourceHttpError')
    expect(err.message).to.include('loop')
  })

  it('more than 5 redirects → SourceHttpError', async () => {
    origin.hook = (req, res) => {
      const n = Number(req.url?.slice(1))
      res.writeHead(302, { location: `/${n + 1}` }).end()
      return true
    }

    const { error } = await collect(sources.readRange(`${origin.url}/0`, { start: 0, end: 1 }))
    expect(error?.name).to.equal('SourceHttpError')
    expect(error?.status).to.equal(302)
    // the first request and 5 redirects
    expect(origin.requests).to.have.lengthOf(6)
  })

  it('readRange: a response that ends early is retried from where it ended', async () => {
    let short = false
    origin.hook = (req, res) => {
      if (!short) {
        short = true
        // chunked, so the client cannot tell from the framing that bytes are missing
        res.writeHead(206, { 'content-range': `bytes 0-999/${FILE_SIZE}`, etag: '"v1"' })
        res.end(data.subarray(0, 400))
        return true
      }
    }

    const { bytes, error } = await collect(sources.readRange(fileUrl, { start: 0, end: 1000 }))
    expect(error).to.be.undefined()
    expect(bytes).to.deep.equal(data.subarray(0, 1000))
    expect(origin.requests.map(r => r.headers.range)).to.deep.equal(['bytes=0-999', 'bytes=400-999'])
    expect(origin.requests[1].headers['if-range']).to.equal('"v1"')
  })

  it('sends custom headers and the damselfly User-Agent on every request, redirects included', async () => {
    origin.hook = (req, res) => {
      if (req.url === '/old.bin') {
        res.writeHead(302, { location: '/data.bin' }).end()
        return true
      }
    }

    const headers = { 'X-Custom': 'yes', Range: 'bytes=0-', 'If-Range': '"forged"' }
    await sources.stat(`${origin.url}/old.bin`, { headers })
    await collect(sources.readRange(`${origin.url}/old.bin`, { start: 0, end: 100, headers }))

    expect(origin.requests.length).to.equal(6)

    for (const request of origin.requests) {
      expect(request.headers['x-custom']).to.equal('yes')
      expect(request.headers['user-agent']).to.match(/^damselfly\/\d+\.\d+\.\d+/)
      // the client owns Range and If-Range
      expect(request.headers['if-range']).to.not.equal('"forged"')
    }
  })

  it('403 → SourceForbiddenError without retries', async () => {
    origin.hook = (_req, res) => {
      res.writeHead(403).end()
      return true
    }

    const { error } = await collect(sources.readRange(fileUrl, { start: 0, end: 10 }))
    expect(error?.name).to.equal('SourceForbiddenError')
    expect(error?.message).to.include(fileUrl)
    expect(gets()).to.equal(1)

    const statError = await rejection(sources.stat(fileUrl))
    expect(statError.name).to.equal('SourceForbiddenError')
  })

  it('404 → SourceNotFoundError without retries', async () => {
    const err = await rejection(sources.stat(`${origin.url}/missing.bin`))
    expect(err.name).to.equal('SourceNotFoundError')
    expect(origin.requests).to.have.lengthOf(1)
  })

  it('counts the body bytes received from the origin', async () => {
    const counted: number[] = []
    await sources.close()
    sources = createDefaultSources({ onBytes: n => counted.push(n) })

    await sources.stat(fileUrl)
    await collect(sources.readRange(fileUrl, { start: 0, end: 12_345 }))

    // the range probe's one byte, then the range
    expect(sources.bytesReceived).to.equal(1 + 12_345)
    expect(counted.reduce((a, b) => a + b, 0)).to.equal(sources.bytesReceived)
  })

  it('an abort during a retry wait ends the read with AbortError', async () => {
    origin.hook = (_req, res) => {
      res.writeHead(503, { 'retry-after': '30' }).end()
      return true
    }

    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 200)
    const started = Date.now()
    const { error } = await collect(sources.readRange(fileUrl, { start: 0, end: 10, signal: controller.signal }))

    expect(error?.name).to.equal('AbortError')
    expect(Date.now() - started).to.be.below(10_000)
  })

  it('rejects an invalid range with InvalidParametersError', async () => {
    const { error } = await collect(sources.readRange(fileUrl, { start: 10, end: 5 }))
    expect(error?.name).to.equal('InvalidParametersError')
  })
})

describe('source/http over TLS', () => {
  let origin: Origin
  let sources: SourceRegistry | undefined
  const data = randomBytes(1000)

  beforeEach(async () => {
    origin = await startOrigin({ tls: { cert: TEST_CERT, key: TEST_KEY } })
    origin.files.set('/data.bin', { data, etag: '"tls"' })
  })

  afterEach(async () => {
    await sources?.close()
    await origin?.stop()
  })

  it('a self-signed certificate → SourceUnreachableError, not retried', async () => {
    sources = createDefaultSources({ retry: { baseDelayMs: 10, maxDelayMs: 20 } })

    const err = await rejection(sources.stat(`${origin.url}/data.bin`))
    expect(err.name).to.equal('SourceUnreachableError')
    expect(err.message).to.include('insecureTls')
    // one connection: a certificate error is not retried
    expect(origin.connections).to.equal(1)
  })

  it('insecureTls accepts it', async () => {
    sources = createDefaultSources({ insecureTls: true })
    const url = `${origin.url}/data.bin`

    const stat = await sources.stat(url)
    expect(stat.contentLength).to.equal(1000)
    expect(stat.acceptRanges).to.equal(true)

    const { bytes, error } = await collect(sources.readRange(url, { start: 10, end: 990, validator: stat }))
    expect(error).to.be.undefined()
    expect(bytes).to.deep.equal(data.subarray(10, 990))
  })
})

describe('source/http network failures', () => {
  let sources: SourceRegistry
  let server: Server | undefined
  const sockets = new Set<Socket>()

  beforeEach(() => {
    sources = createDefaultSources({ retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } })
  })

  afterEach(async () => {
    await sources?.close()

    for (const socket of sockets) {
      socket.destroy()
    }

    sockets.clear()

    if (server != null) {
      await new Promise(resolve => server?.close(resolve))
      server = undefined
    }
  })

  async function listen (onConnection: (socket: Socket) => void): Promise<number> {
    const s = createServer(socket => {
      sockets.add(socket)
      socket.on('error', () => {})
      onConnection(socket)
    })
    server = s
    await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
    const address = s.address()
    return typeof address === 'object' && address != null ? address.port : 0
  }

  it('a closed port → SourceUnreachableError with the cause', async () => {
    const port = await listen(() => {})
    await new Promise(resolve => server?.close(resolve))
    server = undefined

    const err = await rejection(sources.stat(`http://127.0.0.1:${port}/file.bin`))
    expect(err.name).to.equal('SourceUnreachableError')
    expect(err.message).to.include('ECONNREFUSED')
    expect(err.cause).to.be.an('error')
  })

  it('a server that never answers → SourceTimeoutError', async () => {
    const port = await listen(() => { /* read the request, never answer */ })

    const started = Date.now()
    const err = await rejection(sources.stat(`http://127.0.0.1:${port}/file.bin`, { timeoutMs: 300 }))
    expect(err.name).to.equal('SourceTimeoutError')
    expect(Date.now() - started).to.be.below(10_000)
  })

  it('an abort while waiting for the origin ends the call with AbortError at once', async () => {
    const port = await listen(() => { /* never answer */ })
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 200)

    const started = Date.now()
    const err = await rejection(sources.stat(`http://127.0.0.1:${port}/file.bin`, { signal: controller.signal }))
    expect(err.name).to.equal('AbortError')
    // long before the 30 s default headers timeout
    expect(Date.now() - started).to.be.below(10_000)
  })

  it('a body that stalls → SourceTimeoutError', async () => {
    const port = await listen(socket => {
      socket.once('data', request => {
        const [, first, last] = /range: bytes=(\d+)-(\d+)/i.exec(request.toString()) ?? []
        const length = Number(last) - Number(first) + 1
        socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${first}-${last}/1000\r\nContent-Length: ${length}\r\n\r\n`)
        socket.write(Buffer.alloc(10))
      })
    })

    const { bytes, error } = await collect(sources.readRange(`http://127.0.0.1:${port}/file.bin`, { start: 0, end: 1000, timeoutMs: 300 }))
    expect(error?.name).to.equal('SourceTimeoutError')
    // the second attempt resumed after the first 10 bytes and stalled again
    expect(bytes.byteLength).to.equal(20)
  })
})
