import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { SourceRegistry, createDefaultSources } from '../../src/source/index.ts'
import { collect } from './helpers.ts'
import type { ReadRangeOptions, SourceClient, SourceStat } from '../../src/source/index.ts'

/** A client that serves zeros and reports them through the registry's counter */
class ZeroSource implements SourceClient {
  readonly schemes = ['zero']

  constructor (private readonly onBytes: (n: number) => void) {}

  async stat (url: string): Promise<SourceStat> {
    return { url, finalUrl: url, contentLength: 100, acceptRanges: true }
  }

  async * readRange (_url: string, options: ReadRangeOptions): AsyncGenerator<Uint8Array> {
    this.onBytes(options.end - options.start)
    yield new Uint8Array(options.end - options.start)
  }
}

describe('source/registry', () => {
  it('createDefaultSources handles http, https and file', async () => {
    const sources = createDefaultSources()
    expect(sources.schemes.sort()).to.deep.equal(['file', 'http', 'https'])
    expect(sources.forUrl('HTTPS://example.com/x').schemes).to.include('https')
    await sources.close()
  })

  it('an unknown scheme → UnsupportedSchemeError naming the supported ones', async () => {
    const sources = createDefaultSources()

    expect(() => sources.forUrl('ftp://example.com/file')).to.throw().with.property('name', 'UnsupportedSchemeError')
    expect(() => sources.forUrl('ftp://example.com/file')).to.throw(/http, https, file/)

    const { error } = await collect(sources.readRange('s3://bucket/key', { start: 0, end: 1 }))
    expect(error?.name).to.equal('UnsupportedSchemeError')

    await sources.close()
  })

  it('a string that is not a URL → InvalidParametersError', async () => {
    const sources = new SourceRegistry()
    expect(() => sources.forUrl('not a url')).to.throw().with.property('name', 'InvalidParametersError')
  })

  it('routes to registered clients and sums their bytes', async () => {
    const seen: number[] = []
    const sources = new SourceRegistry({ onBytes: n => seen.push(n) })
    sources.register(new ZeroSource(sources.countBytes))

    const stat = await sources.stat('zero://anything')
    expect(stat.contentLength).to.equal(100)

    const { bytes } = await collect(sources.readRange('zero://anything', { start: 10, end: 40 }))
    expect(bytes.byteLength).to.equal(30)
    expect(sources.bytesReceived).to.equal(30)
    expect(seen).to.deep.equal([30])
  })
})
