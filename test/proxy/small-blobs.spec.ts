/**
 * Small blobs (the image config) that a manifest passed on by the mirror
 * named are fetched from the registry directly, digest checked, and still
 * end up in the swarm; a wrong body is never served as a complete 200.
 */
import '../../src/polyfill.ts'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { RegistryMirror } from '../../src/proxy/index.ts'
import { taskId } from '../../src/task/id.ts'
import { TestSwarm, waitFor } from '../utils/nodes.ts'
import { MiB, buildOciImage, httpRequest, layoutBlobDigests, pullImage, pushImage, sha256, startFakeRegistry, startRegistry } from './registry.ts'
import type { FakeRegistry, OciImage, TestRegistry } from './registry.ts'
import type { DamselflyNode } from '../../src/node/index.ts'

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json'

describe('registry mirror: small blobs straight from the registry', function () {
  this.timeout(120_000)

  const swarm = new TestSwarm()
  const mirrors: RegistryMirror[] = []
  let registry: TestRegistry
  let tampering: FakeRegistry
  let node: DamselflyNode
  let image: OciImage
  let bad: OciImage
  let root: string

  before(async () => {
    root = await swarm.tempDir('damselfly-proxy-small-')
    registry = await startRegistry(path.join(root, 'registry'))
    image = await buildOciImage(path.join(root, 'img'), [2 * MiB + 3])
    bad = await buildOciImage(path.join(root, 'bad'), [MiB + 1], 'v2')
    await pushImage(image, registry.host, 'test/img')
    await pushImage(bad, registry.host, 'test/bad')
    tampering = await startFakeRegistry(registry.url, { tamperDigests: [bad.config.digest] })
    node = await swarm.start()
  })

  after(async () => {
    await Promise.allSettled(mirrors.map(async m => m.stop()))
    await tampering?.close()
    await registry?.stop()
    await swarm.stopAll()
  })

  const mirror = async (upstream: string, init: { directBlobMaxBytes?: number } = {}): Promise<RegistryMirror> => {
    const m = new RegistryMirror(node.service, { listen: '127.0.0.1:0', registryMirror: upstream, ...init })
    await m.start()
    mirrors.push(m)
    return m
  }

  it('a registry serving a tampered config: the client never gets a complete 200 with the wrong bytes', async () => {
    const m = await mirror(tampering.url)
    const manifest = await httpRequest(`http://${m.address}/v2/test/bad/manifests/${bad.tag}`, { headers: { accept: MANIFEST_ACCEPT } })
    expect(manifest.status).to.equal(200)
    const res = await httpRequest(`http://${m.address}/v2/test/bad/blobs/${bad.config.digest}`)
    const wrongBytesServed = res.status === 200 && res.complete && sha256(res.body) !== bad.config.digest
    expect(wrongBytesServed, `status ${res.status}, complete ${res.complete}`).to.equal(false)
    expect(res.status === 200 && res.complete, 'a complete 200 from a registry that tampers').to.equal(false)
  })

  it('skopeo through the mirror: the config comes from the registry directly, the layer through the swarm; every digest verifies; the config then joins the swarm', async () => {
    const m = await mirror(registry.url)
    const out = path.join(root, 'pulled')
    const r = await pullImage(m.address!, 'test/img', image.tag, out)
    expect(r.code, r.stderr).to.equal(0)
    const blobs = await layoutBlobDigests(out)
    for (const b of blobs) {
      expect(b.actual).to.equal(b.name)
    }
    expect(blobs.map(b => b.name)).to.include(image.config.digest)
    const stats = m.stats()
    // /v2/, the manifest and the config
    expect(stats.requests.forwarded).to.be.at.least(3)
    expect(stats.requests.swarm).to.equal(image.layers.length)
    expect(stats.bytes.upstream).to.be.at.least(image.config.size)
    expect(node.service.store.getTask(taskId({ digest: image.layers[0].digest }))?.state).to.equal('complete')
    // fetched for the swarm after the client was served
    await waitFor(() => node.service.store.getTask(taskId({ digest: image.config.digest }))?.state === 'complete', 30_000, 'the config to be in the store')
  })

  it('a config already in the store is served from it; directBlobMaxBytes 0 sends it through the swarm', async () => {
    const m = await mirror(registry.url, { directBlobMaxBytes: 0 })
    await httpRequest(`http://${m.address}/v2/test/img/manifests/${image.tag}`, { headers: { accept: MANIFEST_ACCEPT } })
    const res = await httpRequest(`http://${m.address}/v2/test/img/blobs/${image.config.digest}`)
    expect(res.status).to.equal(200)
    expect(sha256(res.body)).to.equal(image.config.digest)
    expect(m.stats().requests.swarm).to.equal(1)

    const direct = await mirror(registry.url)
    await httpRequest(`http://${direct.address}/v2/test/img/manifests/${image.tag}`, { headers: { accept: MANIFEST_ACCEPT } })
    const again = await httpRequest(`http://${direct.address}/v2/test/img/blobs/${image.config.digest}`)
    expect(sha256(again.body)).to.equal(image.config.digest)
    expect(direct.stats().requests.swarm, 'served from the store, not the registry').to.equal(1)
  })
})
