import { expect } from 'aegir/chai'
import { manifestBlobs, SmallBlobs } from '../../src/proxy/manifest.ts'

const d = (c: string): string => `sha256:${c.repeat(64)}`

describe('proxy: blob sizes from image manifests', () => {
  const oci = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 596 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 67_000_000 }, { digest: d('c'), size: 100 }]
  }
  const body = (doc: unknown): Uint8Array => Buffer.from(JSON.stringify(doc))

  it('OCI and Docker v2 image manifests: config and layers with their sizes', () => {
    const want = [{ digest: d('a'), size: 596 }, { digest: d('b'), size: 67_000_000 }, { digest: d('c'), size: 100 }]
    expect(manifestBlobs(body(oci), 'application/vnd.oci.image.manifest.v1+json')).to.deep.equal(want)
    expect(manifestBlobs(body(oci), 'application/vnd.docker.distribution.manifest.v2+json; charset=utf-8')).to.deep.equal(want)
  })

  it('indexes, other types, malformed JSON and bad entries give nothing', () => {
    expect(manifestBlobs(body({ manifests: [{ digest: d('a'), size: 5 }] }), 'application/vnd.oci.image.index.v1+json')).to.deep.equal([])
    expect(manifestBlobs(body(oci), 'application/json')).to.deep.equal([])
    expect(manifestBlobs(body(oci), undefined)).to.deep.equal([])
    expect(manifestBlobs(Buffer.from('{"config":'), 'application/vnd.oci.image.manifest.v1+json')).to.deep.equal([])
    const bad = { config: { digest: 'sha256:xyz', size: 5 }, layers: [{ digest: d('e'), size: -1 }, { digest: d('f'), size: 1.5 }, { digest: d('0'), size: '7' }, null, { digest: d('1'), size: 7 }] }
    expect(manifestBlobs(body(bad), 'application/vnd.oci.image.manifest.v1+json')).to.deep.equal([{ digest: d('1'), size: 7 }])
  })

  it('SmallBlobs keeps only blobs up to its size limit, and forgets the oldest beyond its capacity', () => {
    const small = new SmallBlobs(1000, 2)
    small.learn(manifestBlobs(body(oci), 'application/vnd.oci.image.manifest.v1+json'))
    expect(small.size(d('a'))).to.equal(596)
    expect(small.size(d('b'))).to.equal(undefined)
    expect(small.size(d('c'))).to.equal(100)
    small.learn([{ digest: d('e'), size: 1 }])
    expect(small.size(d('a'))).to.equal(undefined)
    expect(small.size(d('c'))).to.equal(100)
    expect(small.size(d('e'))).to.equal(1)
    expect(new SmallBlobs(0, 10).size(d('a'))).to.equal(undefined)
  })
})
