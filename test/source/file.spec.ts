import '../../src/polyfill.ts'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { expect } from 'aegir/chai'
import { createDefaultSources } from '../../src/source/index.ts'
import { collect, rejection } from './helpers.ts'
import type { SourceRegistry } from '../../src/source/index.ts'

const FILE_SIZE = 1024 * 1024 + 7

describe('source/file', () => {
  let dir: string
  let data: Uint8Array
  let url: string
  let sources: SourceRegistry

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'damselfly-source-file-'))
    data = randomBytes(FILE_SIZE)
    await writeFile(join(dir, 'data.bin'), data)
    url = pathToFileURL(join(dir, 'data.bin')).href
    sources = createDefaultSources()
  })

  afterEach(async () => {
    await sources?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('stat gives length, an mtime+size ETag and range support', async () => {
    const stat = await sources.stat(url)

    expect(stat.url).to.equal(url)
    expect(stat.finalUrl).to.equal(url)
    expect(stat.contentLength).to.equal(FILE_SIZE)
    expect(stat.etag).to.match(/^"[0-9a-f]+-[0-9a-f]+"$/)
    expect(stat.lastModified).to.be.a('string')
    expect(stat.acceptRanges).to.equal(true)
  })

  it('readRange round trip: ranges and the whole file are byte-exact', async () => {
    const stat = await sources.stat(url)

    for (const [start, end] of [[0, 1], [FILE_SIZE - 1, FILE_SIZE], [0, FILE_SIZE], [65_535, 300_001]]) {
      const { bytes, error } = await collect(sources.readRange(url, { start, end, validator: stat }))
      expect(error).to.be.undefined()
      expect(Buffer.from(bytes).equals(data.subarray(start, end))).to.equal(true, `bytes of [${start}, ${end}) differ`)
    }

    expect(sources.bytesReceived).to.equal(1 + 1 + FILE_SIZE + (300_001 - 65_535))
  })

  it('an empty range yields nothing', async () => {
    const { bytes, error } = await collect(sources.readRange(url, { start: 5, end: 5 }))
    expect(error).to.be.undefined()
    expect(bytes.byteLength).to.equal(0)
  })

  it('ENOENT → SourceNotFoundError', async () => {
    const missing = pathToFileURL(join(dir, 'missing.bin')).href

    const err = await rejection(sources.stat(missing))
    expect(err.name).to.equal('SourceNotFoundError')
    expect(err.message).to.include(missing)

    const { error } = await collect(sources.readRange(missing, { start: 0, end: 1 }))
    expect(error?.name).to.equal('SourceNotFoundError')
  })

  it('a directory → SourceNotFoundError', async () => {
    const err = await rejection(sources.stat(pathToFileURL(dir).href))
    expect(err.name).to.equal('SourceNotFoundError')
  })

  it('a file rewritten after stat → SourceChangedError, no bytes', async () => {
    const stat = await sources.stat(url)
    await writeFile(join(dir, 'data.bin'), randomBytes(FILE_SIZE))
    const later = new Date(Date.now() + 60_000)
    await utimes(join(dir, 'data.bin'), later, later)

    const { bytes, error } = await collect(sources.readRange(url, { start: 0, end: 10, validator: stat }))
    expect(error?.name).to.equal('SourceChangedError')
    expect(bytes.byteLength).to.equal(0)
  })

  it('a range past the end of the file → SourceTruncatedError', async () => {
    const { error } = await collect(sources.readRange(url, { start: FILE_SIZE - 10, end: FILE_SIZE + 10 }))
    expect(error?.name).to.equal('SourceTruncatedError')
  })

  it('a file URL with a remote host → InvalidParametersError', async () => {
    const err = await rejection(sources.stat('file://otherhost/etc/hosts'))
    expect(err.name).to.equal('InvalidParametersError')
  })
})
