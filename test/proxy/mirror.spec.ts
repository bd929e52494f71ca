/**
 * Issue 6 acceptance with real components: Debian's docker-registry on
 * 127.0.0.1 holding images pushed by skopeo from OCI layouts built here, 4
 * in-process Damselfly nodes each with its registry mirror, and skopeo
 * pulling through the mirrors.
 */
import '../../src/polyfill.ts'
import net from 'node:net'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { RegistryMirror } from '../../src/proxy/index.ts'
import { taskId } from '../../src/task/id.ts'
import { TestSwarm, dialAddr, waitFor } from '../utils/nodes.ts'
import { MiB, buildOciImage, httpRequest, layoutBlobDigests, pullImage, pushImage, sha256, startFakeRegistry, startRegistry } from './registry.ts'
import type { FakeRegistry, OciImage, TestRegistry } from './registry.ts'
import type { DamselflyNode } from '../../src/node/index.ts'

const N = 4

describe('registry mirror: docker-registry, skopeo and 4 nodes', function () {
  this.timeout(240_000)

  const swarm = new TestSwarm()
  const mirrors: RegistryMirror[] = []
  const fakes: FakeRegistry[] = []
  let root: string
  let registry: TestRegistry
  let nodes: DamselflyNode[]
  /** 3 layers, pulled by skopeo through every mirror */
  let image: OciImage
  /** 1 layer, for the registry-down test */
  let other: OciImage
  /** 2 layers (multi-piece and small), served tampered by a fake registry */
  let bad: OciImage
  /** forwards to the registry, tampering with the layers of `bad` */
  let tampering: FakeRegistry
  /** forwards to the registry, demanding a bearer token */
  let authed: FakeRegistry

  const mirrorUrl = (i: number): string => `http://${mirrors[i].address}`

  before(async () => {
    root = await swarm.tempDir('damselfly-proxy-')
    registry = await startRegistry(path.join(root, 'registry'))
    image = await buildOciImage(path.join(root, 'img'), [8 * MiB, 12 * MiB + 12345, 4 * MiB + 7])
    other = await buildOciImage(path.join(root, 'other'), [1.5 * MiB])
    bad = await buildOciImage(path.join(root, 'bad'), [3 * MiB + 5, 100_000])
    await pushImage(image, registry.host, 'test/img')
    await pushImage(other, registry.host, 'test/other')
    await pushImage(bad, registry.host, 'test/bad')
    tampering = await startFakeRegistry(registry.url, { tamperDigests: bad.layers.map(l => l.digest) })
    fakes.push(tampering)
    authed = await startFakeRegistry(registry.url, { token: 'sekrit' })
    fakes.push(authed)

    const first = await swarm.start()
    const rest = await Promise.all(Array.from({ length: N - 1 }, async () => swarm.start({ config: { swarm: { bootstrap: [dialAddr(first)] } } })))
    nodes = [first, ...rest]
    await waitFor(() => nodes.every(node => node.status().members === N - 1), 60_000, `${N} nodes to see each other as members`)
    for (const node of nodes) {
      const mirror = new RegistryMirror(node.service, { listen: '127.0.0.1:0', registryMirror: registry.url, allowHosts: [tampering.url, authed.url] })
      await mirror.start()
      mirrors.push(mirror)
    }
  })

  after(async () => {
    await Promise.allSettled(mirrors.splice(0).map(async m => m.stop()))
    await Promise.allSettled(fakes.splice(0).map(async f => f.close()))
    await registry?.stop()
    await swarm.stopAll()
  })

  it('skopeo pulls a 3-layer image through 4 mirrors at once; every digest verifies; the registry serves each blob about once', async () => {
    const results = await Promise.all(mirrors.map(async (m, i) => pullImage(m.address!, 'test/img', image.tag, path.join(root, `pulled-${i}`))))
    for (const [i, r] of results.entries()) {
      expect(r.code, `skopeo through mirror ${i}: ${r.stderr}`).to.equal(0)
      const blobs = await layoutBlobDigests(path.join(root, `pulled-${i}`))
      for (const b of blobs) {
        expect(b.actual, `blob ${b.name} pulled through mirror ${i}`).to.equal(b.name)
      }
      const names = blobs.map(b => b.name)
      for (const layer of [...image.layers, image.config]) {
        expect(names, `mirror ${i} pulled ${layer.digest}`).to.include(layer.digest)
      }
    }

    // the registry's access log: each layer left it about once in total for
    // the 4 pulls (4 without the swarm). Measured: 1.0 for the 12 MiB layer,
    // 1.125 for 8 MiB, 1.5 for 4 MiB: with 4 nodes starting at once, a small
    // task's first origin run overlaps stripes the tracker hands to others
    const counts = registry.blobCounts()
    let served = 0
    let size = 0
    for (const layer of image.layers) {
      const c = counts.get(layer.digest)
      expect(c, `registry GETs of ${layer.digest}`).to.not.equal(undefined)
      expect(c!.bytes / layer.size, `registry bytes of the ${layer.size}-byte layer ${layer.digest} (${c!.gets} GETs) ÷ its size`).to.be.within(1, 1.6)
      served += c!.bytes
      size += layer.size
    }
    expect(served / size, 'registry bytes of all layers ÷ their size').to.be.within(1, 1.25)
    // every node holds every layer as one complete task keyed by its digest
    for (const [i, node] of nodes.entries()) {
      for (const layer of image.layers) {
        expect(node.service.store.getTask(taskId({ digest: layer.digest }))?.state, `layer ${layer.digest} on node ${i}`).to.equal('complete')
      }
    }
    const stats = mirrors.map(m => m.stats())
    const layerBytes = image.layers.reduce((n, l) => n + l.size, 0)
    for (const [i, s] of stats.entries()) {
      expect(s.requests.swarm, `blob requests mirror ${i} served from the swarm`).to.be.at.least(image.layers.length)
      expect(s.bytes.swarm, `bytes mirror ${i} served from the swarm`).to.be.at.least(layerBytes)
      expect(s.requests.aborted + s.requests['blob-failed'], `failed blob requests on mirror ${i}`).to.equal(0)
      expect(s.active).to.equal(0)
    }
  })

  it('HEAD and Range requests through a mirror answer like the registry', async () => {
    const layer = image.layers[1]
    const blobPath = `/v2/test/img/blobs/${layer.digest}`
    const same = ['content-length', 'content-type', 'docker-content-digest', 'etag', 'accept-ranges', 'content-range', 'docker-distribution-api-version']

    const compare = async (method: string, headers: Record<string, string>, p = blobPath, mirror = 2): Promise<void> => {
      const want = await httpRequest(`${registry.url}${p}`, { method, headers })
      const got = await httpRequest(`${mirrorUrl(mirror)}${p}`, { method, headers })
      const what = `${method} ${p} ${JSON.stringify(headers)}`
      expect(got.status, what).to.equal(want.status)
      expect(got.complete, what).to.equal(true)
      for (const h of same) {
        expect(got.headers[h], `${what}: ${h}`).to.equal(want.headers[h])
      }
      expect(sha256(got.body), `${what}: body`).to.equal(sha256(want.body))
    }

    await compare('HEAD', {})
    await compare('GET', {})
    for (const range of ['bytes=0-0', 'bytes=10-19', 'bytes=-5', 'bytes=100-', `bytes=${MiB - 3}-${MiB + 3}`, `bytes=${2 * MiB}-${4 * MiB + 17}`, `bytes=0-${layer.size + 1000}`]) {
      await compare('GET', { range })
    }
    // a HEAD of a blob this node does not hold is passed to the registry
    await compare('HEAD', {}, `/v2/test/other/blobs/${other.layers[0].digest}`, 3)
    // manifests pass through unchanged
    await compare('GET', { accept: 'application/vnd.oci.image.manifest.v1+json' }, `/v2/test/img/manifests/${image.tag}`)
    await compare('GET', {}, '/v2/')

    // past the end: 416 with the length (distribution itself answers this with a broken body)
    const unsatisfiable = await httpRequest(`${mirrorUrl(2)}${blobPath}`, { headers: { range: `bytes=${layer.size}-` } })
    expect(unsatisfiable.status).to.equal(416)
    expect(unsatisfiable.headers['content-range']).to.equal(`bytes */${layer.size}`)
    // If-Range with another entity tag: the whole blob
    const ifRange = await httpRequest(`${mirrorUrl(2)}${blobPath}`, { headers: { range: 'bytes=0-9', 'if-range': '"sha256:other"' } })
    expect(ifRange.status).to.equal(200)
    expect(ifRange.body.byteLength).to.equal(layer.size)
  })

  it('never an open proxy: other registries are refused with 403, other paths with 404', async () => {
    const denied = await httpRequest(`${mirrorUrl(0)}/v2/`, { headers: { 'x-damselfly-registry': 'http://127.0.0.1:1' } })
    expect(denied.status).to.equal(403)
    const body = JSON.parse(denied.body.toString())
    expect(body.errors[0].code).to.equal('DENIED')
    expect(body.errors[0].message).to.include('127.0.0.1:1').and.include('proxy.allowHosts')
    expect((await httpRequest(`${mirrorUrl(0)}/v2/x/manifests/latest?ns=evil.example`)).status).to.equal(403)
    expect((await httpRequest(`${mirrorUrl(0)}/v2/x/blobs/${image.layers[0].digest}?ns=evil.example`)).status).to.equal(403)
    expect((await httpRequest(`${mirrorUrl(0)}/etc/passwd`)).status).to.equal(404)

    // an absolute-form request target does not choose the upstream either
    const raw = await new Promise<string>((resolve, reject) => {
      const [host, port] = mirrors[0].address!.split(':')
      const s = net.connect(Number(port), host, () => { s.write('GET http://127.0.0.1:1/v2/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n') })
      let out = ''
      s.on('data', (d) => { out += String(d) })
      s.on('end', () => { resolve(out) })
      s.on('error', reject)
    })
    expect(raw).to.match(/^HTTP\/1\.1 200/)
    expect(raw).to.include('docker-distribution-api-version: registry/2.0')
    expect(mirrors[0].stats().requests.denied).to.be.at.least(3)
  })

  it('bearer token flows pass through: skopeo pulls from a registry that demands a token, blobs still go through the swarm', async () => {
    // a blob without the token: the registry's own 401 and challenge reach the client
    const layer = image.layers[0]
    const challenge = await httpRequest(`${mirrorUrl(1)}/v2/test/img/blobs/${other.layers[0].digest}`, { headers: { 'x-damselfly-registry': authed.url } })
    expect(challenge.status).to.equal(401)
    expect(challenge.headers['www-authenticate']).to.include(`realm="${authed.url}/token"`)

    // skopeo against a mirror whose upstream is the token registry
    const mirror = new RegistryMirror(nodes[1].service, { listen: '127.0.0.1:0', registryMirror: authed.url })
    await mirror.start()
    mirrors.push(mirror)
    const out = path.join(root, 'pulled-authed')
    const r = await pullImage(mirror.address!, 'test/img', image.tag, out)
    expect(r.code, r.stderr).to.equal(0)
    for (const b of await layoutBlobDigests(out)) {
      expect(b.actual).to.equal(b.name)
    }
    expect(authed.requests.some(line => line.startsWith('GET /token'))).to.equal(true)
    expect(mirror.stats().requests.swarm).to.be.at.least(image.layers.length)
    // the layers were already in the swarm: the token registry was not asked for them
    expect(authed.requests.filter(line => line.includes(`/blobs/${layer.digest}`))).to.deep.equal([])
  })

  it('a registry serving a tampered blob: the client gets an error, never a 200 with the wrong bytes, and no node serves the task afterwards', async () => {
    const [big, small] = bad.layers
    for (const [i, layer] of [[0, big], [1, small]] as const) {
      const res = await httpRequest(`${mirrorUrl(i)}/v2/test/bad/blobs/${layer.digest}`, { headers: { 'x-damselfly-registry': tampering.url } })
      const servedInFull = res.status === 200 && res.complete && res.body.byteLength === layer.size
      expect(servedInFull, `tampered ${layer.size}-byte blob through mirror ${i}: status ${res.status}, ${res.body.byteLength} bytes, complete ${res.complete}`).to.equal(false)
      if (res.status === 200) {
        expect(res.body.byteLength, 'bytes sent before the cut').to.be.below(layer.size)
      }
    }

    // a real client through a mirror whose upstream tampers
    const mirror = new RegistryMirror(nodes[2].service, { listen: '127.0.0.1:0', registryMirror: tampering.url })
    await mirror.start()
    mirrors.push(mirror)
    const r = await pullImage(mirror.address!, 'test/bad', bad.tag, path.join(root, 'pulled-bad'))
    expect(r.code, 'skopeo pulling a tampered image').to.not.equal(0)

    // no node keeps the task, and no mirror serves it from the swarm
    for (const layer of [big, small]) {
      const id = taskId({ digest: layer.digest })
      for (const [i, node] of nodes.entries()) {
        await waitFor(() => node.service.engine.get(id)?.state !== 'running', 30_000, `the download on node ${i} to end`)
        expect(node.service.store.getTask(id), `task of tampered ${layer.digest} on node ${i}`).to.equal(undefined)
        expect(node.service.engine.get(id)?.state, `download on node ${i}`).to.be.oneOf([undefined, 'failed'])
      }
    }
    const again = await httpRequest(`${mirrorUrl(3)}/v2/test/bad/blobs/${big.digest}`, { headers: { 'x-damselfly-registry': tampering.url } })
    expect(again.status === 200 && again.complete).to.equal(false)
    const failed = [...mirrors.map(m => m.stats())].reduce((n, s) => n + s.requests.aborted + s.requests['blob-failed'], 0)
    expect(failed).to.be.at.least(3)
  })

  it('once the registry is honest again, the blob that failed is served through the swarm', async () => {
    for (const [i, layer] of bad.layers.entries()) {
      const res = await httpRequest(`${mirrorUrl(3 - i)}/v2/test/bad/blobs/${layer.digest}`)
      expect(res.status, `${layer.digest}: ${res.body.toString().slice(0, 300)}`).to.equal(200)
      expect(res.complete).to.equal(true)
      expect(sha256(res.body)).to.equal(layer.digest)
    }
  })

  it('the registry down: manifests fail with a clear 502, blobs already in the swarm are still served', async () => {
    const layer = other.layers[0]
    const blobPath = `/v2/test/other/blobs/${layer.digest}`
    const warm = await httpRequest(`${mirrorUrl(0)}${blobPath}`)
    expect(warm.status).to.equal(200)
    expect(sha256(warm.body)).to.equal(layer.digest)

    await registry.stop()

    const manifest = await httpRequest(`${mirrorUrl(1)}/v2/test/other/manifests/${other.tag}`)
    expect(manifest.status).to.equal(502)
    const err = JSON.parse(manifest.body.toString()).errors[0]
    expect(err.code).to.equal('UNAVAILABLE')
    expect(err.message).to.include(registry.url).and.include('could not be reached')

    // node 1 never had the blob: it comes from node 0 through the swarm
    expect(nodes[1].service.store.getTask(taskId({ digest: layer.digest }))).to.equal(undefined)
    const blob = await httpRequest(`${mirrorUrl(1)}${blobPath}`)
    expect(blob.status).to.equal(200)
    expect(blob.complete).to.equal(true)
    expect(sha256(blob.body)).to.equal(layer.digest)
    expect(blob.headers['docker-content-digest']).to.equal(layer.digest)

    // a HEAD on a node without the blob finds its length in the swarm
    const head = await httpRequest(`${mirrorUrl(3)}${blobPath}`, { method: 'HEAD' })
    expect(head.status).to.equal(200)
    expect(head.headers['content-length']).to.equal(String(layer.size))

    // a blob nobody has: a clear 502
    const missing = await httpRequest(`${mirrorUrl(2)}/v2/test/img/blobs/sha256:${'0'.repeat(64)}`)
    expect(missing.status).to.equal(502)
    expect(JSON.parse(missing.body.toString()).errors[0].message).to.include('could not fetch')
  })
})
