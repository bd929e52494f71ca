/**
 * The registry mirror inside `damselfly daemon` processes: flags, /status,
 * /metrics, a pull through two daemons, and a taken or disabled proxy port.
 */
import '../../src/polyfill.ts'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { startDaemon, stopAll } from '../utils/cli.ts'
import { TestSwarm, waitFor } from '../utils/nodes.ts'
import { MiB, buildOciImage, httpRequest, layoutBlobDigests, pullImage, pushImage, startRegistry } from './registry.ts'
import type { OciImage, TestRegistry } from './registry.ts'
import type { DaemonProcess } from '../utils/cli.ts'

async function status (d: DaemonProcess): Promise<any> {
  return (await fetch(`http://${d.control}/status`)).json()
}

describe('registry mirror in the daemon', function () {
  this.timeout(120_000)

  const files = new TestSwarm()
  const daemons: DaemonProcess[] = []
  let root: string
  let registry: TestRegistry
  let image: OciImage

  before(async () => {
    root = await files.tempDir('damselfly-proxy-daemon-')
    registry = await startRegistry(path.join(root, 'registry'))
    image = await buildOciImage(path.join(root, 'img'), [3 * MiB, MiB + 99])
    await pushImage(image, registry.host, 'test/img')
  })

  after(async () => {
    await stopAll(daemons)
    await registry?.stop()
    await files.stopAll()
  })

  it('--proxy and --registry-mirror: skopeo pulls through two daemons, the second from the first; /status and /metrics count it', async () => {
    const args = ['--proxy', '127.0.0.1:0', '--registry-mirror', registry.url]
    const a = await startDaemon(args)
    daemons.push(a)
    const b = await startDaemon([...args, '--bootstrap', a.addrs[0]])
    daemons.push(b)
    await waitFor(async () => (await status(a)).members === 1 && (await status(b)).members === 1, 30_000, 'the daemons to see each other')

    for (const [i, d] of [a, b].entries()) {
      const proxy = (await status(d)).proxy
      expect(proxy.address).to.match(/^127\.0\.0\.1:\d+$/)
      expect(proxy.registryMirror).to.equal(registry.url)
      const out = path.join(root, `pulled-${i}`)
      const r = await pullImage(proxy.address, 'test/img', image.tag, out)
      expect(r.code, r.stderr).to.equal(0)
      for (const blob of await layoutBlobDigests(out)) {
        expect(blob.actual).to.equal(blob.name)
      }
    }

    const sa = await status(a)
    const sb = await status(b)
    expect(sa.proxy.requests.swarm).to.be.at.least(image.layers.length)
    expect(sb.proxy.requests.swarm).to.be.at.least(image.layers.length)
    // b's layers came from a (the config, a few hundred bytes, b's mirror
    // fetched from the registry itself, then for the swarm from a or the registry)
    const layerBytes = image.layers.reduce((n, l) => n + l.size, 0)
    expect(sb.bytes.fromPeers).to.be.at.least(layerBytes)
    expect(sb.bytes.fromOrigin).to.be.at.most(image.config.size)
    const metrics = await (await fetch(`http://${b.control}/metrics`)).text()
    expect(metrics).to.match(/^damselfly_proxy_requests_total\{outcome="swarm"\} [1-9]/m)
    expect(metrics).to.match(/^damselfly_proxy_bytes_total\{source="swarm"\} [1-9]/m)
  })

  it('a taken proxy port leaves the node running with the reason in /status; --proxy "" turns the mirror off', async () => {
    const taken = (await status(daemons[0])).proxy.address
    const c = await startDaemon(['--proxy', taken])
    daemons.push(c)
    const sc = await status(c)
    expect(sc.proxy.address).to.equal(undefined)
    expect(sc.proxy.error).to.include('cannot listen on').and.include('--proxy')

    const d = await startDaemon(['--proxy', ''])
    daemons.push(d)
    const sd = await status(d)
    expect(sd.proxy.address).to.equal(undefined)
    expect(sd.proxy.error).to.equal(undefined)
    // the taken address still answers as the first daemon's mirror
    expect((await httpRequest(`http://${taken}/v2/`)).status).to.equal(200)
  })
})
