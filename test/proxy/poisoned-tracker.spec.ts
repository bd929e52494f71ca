/**
 * Regression test (task/tracker, found through the registry mirror): a
 * download whose whole-file digest did not match must not leave its piece
 * digests at the tracker, or the next download of the same digest-keyed task
 * fails against an honest origin until the tracker forgets the task. Seen
 * through the mirror: a registry or CDN that once sent a corrupted layer made
 * every node's pull of that layer fail for a minute after it was fixed.
 * Fixed in dd4c8e9 (the tracker forgets piece digests once no registered peer
 * holds a piece; a failed download waits for its LEAVE).
 */
import '../../src/polyfill.ts'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { expect } from 'aegir/chai'
import { TestSwarm, dialAddr, waitFor } from '../utils/nodes.ts'
import type { AddressInfo } from 'node:net'

describe('a tampered download does not poison the tracker', function () {
  this.timeout(60_000)

  const swarm = new TestSwarm()
  let server: http.Server

  after(async () => {
    server?.closeAllConnections()
    await new Promise<void>(resolve => server != null ? server.close(() => { resolve() }) : resolve())
    await swarm.stopAll()
  })

  it('a second download of the same digest from the honest origin succeeds', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 5)
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`
    let tamper = true
    // an origin with Range support that sends one wrong byte while `tamper` is on (same length, same ETag)
    server = http.createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      const start = m != null ? Number(m[1]) : 0
      const end = m != null && m[2] !== '' ? Number(m[2]) + 1 : content.byteLength
      const body = Buffer.from(content.subarray(start, end))
      if (tamper && start === 0 && body.byteLength > 0) {
        body[0] ^= 0xff
      }
      const headers: Record<string, string> = { 'content-length': String(body.byteLength), etag: '"v1"', 'accept-ranges': 'bytes' }
      if (m != null) {
        headers['content-range'] = `bytes ${start}-${end - 1}/${content.byteLength}`
      }
      res.writeHead(m != null ? 206 : 200, headers)
      res.end(req.method === 'HEAD' ? undefined : body)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`

    const a = await swarm.start()
    const b = await swarm.start({ config: { swarm: { bootstrap: [dialAddr(a)] } } })
    await waitFor(() => a.status().members === 1 && b.status().members === 1, 30_000, 'the nodes to see each other')

    const first = a.service.get({ url, digest })
    const err = await first.done.then(() => undefined, (e: Error) => e)
    expect(err?.name, 'the tampered download fails').to.equal('DigestMismatchError')

    tamper = false
    const second = b.service.get({ url, digest })
    const result = await second.done.then(() => 'succeeded', (e: Error) => `${e.name}: ${e.message}`)
    expect(result).to.equal('succeeded')
  })
})
