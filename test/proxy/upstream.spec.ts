import { expect } from 'aegir/chai'
import { proxySchema } from '../../src/config/schema.ts'
import { DEFAULT_PROXY_RULES } from '../../src/proxy/constants.ts'
import { UpstreamPolicy, parseRegistryName } from '../../src/proxy/upstream.ts'

function thrown (fn: () => unknown): Error {
  try {
    fn()
  } catch (err: any) {
    return err
  }
  throw new Error('expected an error')
}

describe('proxy: upstream registries', () => {
  it('parses registry names: URLs, host[:port], Docker Hub aliases', () => {
    expect(parseRegistryName('https://GHCR.io/')).to.deep.equal({ scheme: 'https', host: 'ghcr.io' })
    expect(parseRegistryName('http://127.0.0.1:5000')).to.deep.equal({ scheme: 'http', host: '127.0.0.1:5000' })
    expect(parseRegistryName('https://r.example:443')).to.deep.equal({ scheme: 'https', host: 'r.example' })
    expect(parseRegistryName('quay.io')).to.deep.equal({ scheme: undefined, host: 'quay.io' })
    expect(parseRegistryName('localhost:5000')).to.deep.equal({ scheme: undefined, host: 'localhost:5000' })
    expect(parseRegistryName('[::1]:5000')).to.deep.equal({ scheme: undefined, host: '[::1]:5000' })
    for (const hub of ['docker.io', 'index.docker.io', 'https://registry-1.docker.io']) {
      expect(parseRegistryName(hub)).to.deep.equal({ scheme: 'https', host: 'registry-1.docker.io' })
    }
  })

  it('rejects what is not a registry address, saying what is allowed', () => {
    for (const bad of ['ftp://x', 'https://x/v2/', 'https://u:p@x', 'https://x?a=1', 'a b', 'x/y', '', '-x']) {
      const err = thrown(() => parseRegistryName(bad))
      expect(err.name, bad).to.equal('InvalidUpstreamError')
    }
    expect(thrown(() => parseRegistryName('https://x/v2/')).message).to.include('no path')
  })

  it('requests naming no registry go to the mirror; without a mirror that is an error', () => {
    const p = new UpstreamPolicy({ registryMirror: 'http://127.0.0.1:5000' })
    expect(p.resolve({})).to.deep.equal({ origin: 'http://127.0.0.1:5000', host: '127.0.0.1:5000' })
    expect(p.resolve({ header: ' ', ns: '' })).to.deep.equal({ origin: 'http://127.0.0.1:5000', host: '127.0.0.1:5000' })
    const err = thrown(() => new UpstreamPolicy({}).resolve({}))
    expect(err.name).to.equal('NoUpstreamError')
    expect(err.message).to.include('registryMirror').and.include('X-Damselfly-Registry')
  })

  it('a named registry must be the mirror or on the allow-list: never an open proxy', () => {
    const p = new UpstreamPolicy({ registryMirror: 'https://registry-1.docker.io', allowHosts: ['ghcr.io', '*.example.com', 'http://10.0.0.5:5000'] })
    // containerd's ns for Docker Hub is the mirror
    expect(p.resolve({ ns: 'docker.io' })).to.deep.equal({ origin: 'https://registry-1.docker.io', host: 'registry-1.docker.io' })
    expect(p.resolve({ ns: 'ghcr.io' })).to.deep.equal({ origin: 'https://ghcr.io', host: 'ghcr.io' })
    expect(p.resolve({ header: 'https://a.b.example.com' })).to.deep.equal({ origin: 'https://a.b.example.com', host: 'a.b.example.com' })
    // the allow-list entry fixes the scheme of a bare host
    expect(p.resolve({ ns: '10.0.0.5:5000' })).to.deep.equal({ origin: 'http://10.0.0.5:5000', host: '10.0.0.5:5000' })
    // the header wins over ns
    expect(p.resolve({ header: 'ghcr.io', ns: 'docker.io' }).host).to.equal('ghcr.io')

    for (const request of [{ ns: 'evil.com' }, { header: 'https://example.com' }, { ns: 'ghcr.io:444' }, { ns: '10.0.0.5' }, { header: 'http://127.0.0.1:22' }, { ns: 'ghcr.io.evil.com' }]) {
      const err = thrown(() => p.resolve(request))
      expect(err.name, JSON.stringify(request)).to.equal('UpstreamNotAllowedError')
      expect(err.message).to.include('proxy.allowHosts')
    }
  })

  it('bad configuration fails at construction', () => {
    expect(thrown(() => new UpstreamPolicy({ registryMirror: 'https://x/path' })).message).to.include('proxy.registryMirror')
    expect(thrown(() => new UpstreamPolicy({ allowHosts: ['not a host'] })).message).to.include('proxy.allowHosts')
  })

  it('the config schema defaults to the proxy default rules', () => {
    const defaults = proxySchema.parse({})
    expect(defaults.rules).to.deep.equal(DEFAULT_PROXY_RULES)
    expect(defaults.listen).to.equal('127.0.0.1:4782')
    const rule = new RegExp(DEFAULT_PROXY_RULES[0])
    expect(rule.test(`/v2/library/alpine/blobs/sha256:${'a'.repeat(64)}`)).to.equal(true)
    expect(rule.test(`/v2/a/b/c/blobs/sha256:${'0'.repeat(64)}`)).to.equal(true)
    expect(rule.test('/v2/library/alpine/manifests/latest')).to.equal(false)
    expect(rule.test(`/v2/library/alpine/manifests/sha256:${'a'.repeat(64)}`)).to.equal(false)
    expect(rule.test(`/v2/x/blobs/uploads/${'a'.repeat(64)}`)).to.equal(false)
  })
})
