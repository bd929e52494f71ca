import '../../src/polyfill.ts'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { createDefaultSources } from '../../src/source/index.ts'
import { startNginx } from '../utils/nginx.ts'
import { collect, rejection } from './helpers.ts'
import type { SourceRegistry } from '../../src/source/index.ts'
import type { Nginx } from '../utils/nginx.ts'

// several TCP reads per response, not a multiple of any buffer size
const FILE_SIZE = 3 * 1024 * 1024 + 12_345

describe('source/http against nginx', () => {
  let root: string
  let data: Uint8Array
  let sources: SourceRegistry
  const servers: Nginx[] = []

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'damselfly-source-nginx-'))
    data = randomBytes(FILE_SIZE)
    await writeFile(join(root, 'data.bin'), data)
  })

  beforeEach(() => {
    sources = createDefaultSources()
  })

  afterEach(async () => {
    await sources?.close()
    await Promise.all(servers.splice(0).map(async server => server.stop()))
  })

  after(async () => {
    await rm(root, { recursive: true, force: true })
  })

  async function nginx (maxRanges?: number): Promise<Nginx> {
    const server = await startNginx({ root, maxRanges })
    servers.push(server)
    return server
  }

  it('stat gives the length, nginx\'s ETag and Last-Modified, and proven range support', async () => {
    const server = await nginx()
    const url = `${server.url}/data.bin`
    const stat = await sources.stat(url)

    expect(stat.url).to.equal(url)
    expect(stat.finalUrl).to.equal(url)
    expect(stat.contentLength).to.equal(FILE_SIZE)
    expect(stat.etag).to.match(/^"[0-9a-f]+-[0-9a-f]+"$/)
    expect(stat.lastModified).to.be.a('string')
    expect(stat.acceptRanges).to.equal(true)

    const log = await server.accessLog()
    expect(log[0]).to.match(/^HEAD \/data.bin 200 /)
    expect(log[1]).to.match(/^GET \/data.bin 206 range=bytes=0-0 .* bytes=1 ua=damselfly\//)
  })

  it('readRange returns the exact bytes of several ranges, first and last byte and the whole file included', async () => {
    const server = await nginx()
    const url = `${server.url}/data.bin`
    const stat = await sources.stat(url)
    const ranges: Array<[number, number]> = [
      [0, 1],
      [FILE_SIZE - 1, FILE_SIZE],
      [0, FILE_SIZE],
      [1, 65_537],
      [1_048_576, 2_097_152],
      [FILE_SIZE - 100_000, FILE_SIZE - 3]
    ]

    for (const [start, end] of ranges) {
      const { bytes, error } = await collect(sources.readRange(url, { start, end, validator: stat }))
      expect(error).to.be.undefined()
      expect(bytes.byteLength).to.equal(end - start)
      expect(Buffer.from(bytes).equals(data.subarray(start, end))).to.equal(true, `bytes of [${start}, ${end}) differ`)
    }

    const gets = (await server.accessLog()).filter(line => line.startsWith('GET')).slice(1)
    expect(gets).to.have.lengthOf(ranges.length)

    for (const [i, [start, end]] of ranges.entries()) {
      expect(gets[i]).to.include(`206 range=bytes=${start}-${end - 1} if-range=${stat.etag}`)
    }
  })

  it('with max_ranges 0: acceptRanges is false and readRange still returns the exact bytes', async () => {
    const server = await nginx(0)
    const url = `${server.url}/data.bin`
    const stat = await sources.stat(url)

    expect(stat.contentLength).to.equal(FILE_SIZE)
    expect(stat.acceptRanges).to.equal(false)

    for (const [start, end] of [[0, 10], [2_000_000, 2_100_000], [FILE_SIZE - 5, FILE_SIZE]]) {
      const { bytes, error } = await collect(sources.readRange(url, { start, end, validator: stat }))
      expect(error).to.be.undefined()
      expect(Buffer.from(bytes).equals(data.subarray(start, end))).to.equal(true, `bytes of [${start}, ${end}) differ`)
    }

    const gets = (await server.accessLog()).filter(line => line.startsWith('GET'))
    expect(gets.every(line => line.includes(' 200 '))).to.equal(true)
  })

  it('a file rewritten after stat → SourceChangedError, no bytes of the new version', async () => {
    await writeFile(join(root, 'changing.bin'), data.subarray(0, 100_000))
    const server = await nginx()
    const url = `${server.url}/changing.bin`
    const stat = await sources.stat(url)

    // same size, other bytes, a later mtime: nginx's ETag changes
    await writeFile(join(root, 'changing.bin'), randomBytes(100_000))
    const later = new Date(Date.now() + 60_000)
    await utimes(join(root, 'changing.bin'), later, later)

    const { bytes, error } = await collect(sources.readRange(url, { start: 0, end: 50_000, validator: stat }))
    expect(error?.name).to.equal('SourceChangedError')
    expect(error?.message).to.include(url)
    expect(bytes.byteLength).to.equal(0)
  })

  it('404 → SourceNotFoundError', async () => {
    const server = await nginx()
    const err = await rejection(sources.stat(`${server.url}/missing.bin`))

    expect(err.name).to.equal('SourceNotFoundError')
    expect(err.message).to.include('/missing.bin')

    const { error } = await collect(sources.readRange(`${server.url}/missing.bin`, { start: 0, end: 1 }))
    expect(error?.name).to.equal('SourceNotFoundError')
  })

  it('counts the bytes nginx sent', async () => {
    const server = await nginx()
    const url = `${server.url}/data.bin`
    await collect(sources.readRange(url, { start: 100, end: 200_100 }))

    expect(sources.bytesReceived).to.equal(200_000)
  })
})
