import { createHash, randomBytes } from 'node:crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKey, preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createLibp2p } from 'libp2p'
import { Uint8ArrayList } from 'uint8arraylist'
import { directTls } from '../../src/node/tls.ts'
import { waitFor } from '../utils/nodes.ts'
import type { DirectTlsStats } from '../../src/node/tls.ts'
import type { ConnectionEncrypter, Libp2p, MessageStream, PeerId, SecuredConnection, Stream, Upgrader } from '@libp2p/interface'
import type { TLSComponents } from '@libp2p/tls'

type Make = () => (components: TLSComponents) => ConnectionEncrypter

/** TLS record content type of application data (RFC 8446 5.1) */
const APPLICATION_DATA = 23

interface Side { components: TLSComponents, peerId: PeerId }

async function side (): Promise<Side> {
  const privateKey = await generateKeyPair('Ed25519')
  // no muxer is offered in the handshake: the upgrader's list is empty
  const upgrader = { getStreamMuxers: () => new Map() } as unknown as Upgrader
  return { components: { privateKey, logger: defaultLogger(), upgrader }, peerId: peerIdFromPrivateKey(privateKey) }
}

/**
 * A secured pair over an in-memory connection; `records()` tells how many TLS
 * application-data records crossed the wire from the client since the handshake
 */
async function securedPair (make: Make): Promise<{ client: SecuredConnection, server: SecuredConnection, records(): number, close(): Promise<void> }> {
  const [outbound, inbound] = multiaddrConnectionPair()
  const [a, b] = [await side(), await side()]
  // the raw bytes the server side receives, parsed into TLS records
  const wire = new Uint8ArrayList()
  let counted = 0
  inbound.addEventListener('message', (evt) => {
    wire.append(evt.data)
    while (wire.byteLength >= 5) {
      const length = wire.get(3) * 256 + wire.get(4)
      if (wire.byteLength < 5 + length) {
        break
      }
      if (wire.get(0) === APPLICATION_DATA) {
        counted++
      }
      wire.consume(5 + length)
    }
  })
  const [client, server] = await Promise.all([
    make()(a.components).secureOutbound(outbound, { remotePeer: b.peerId }),
    make()(b.components).secureInbound(inbound)
  ])
  // TLS 1.3 sends its session tickets as application data: let them pass
  await new Promise(resolve => setTimeout(resolve, 50))
  const since = counted
  return {
    client,
    server,
    records: () => counted - since,
    close: async () => { await Promise.all([client.connection.close(), server.connection.close()]) }
  }
}

async function receive (stream: MessageStream, bytes: number): Promise<Uint8Array> {
  const got = new Uint8ArrayList()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`received ${got.byteLength} of ${bytes} bytes`)) }, 20_000)
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      got.append(evt.data)
      if (got.byteLength >= bytes) {
        clearTimeout(timer)
        stream.removeEventListener('message', onMessage)
        resolve(got.subarray())
      }
    }
    stream.addEventListener('message', onMessage)
  })
}

/** A message the way yamux sends a data frame: header and payload as two buffers */
function frame (payload: number, seed: number): Uint8ArrayList {
  const header = Uint8Array.from({ length: 12 }, (_, i) => (seed + i) & 0xff)
  const body = Uint8Array.from({ length: payload }, (_, i) => (seed * 7 + i) & 0xff)
  return new Uint8ArrayList(header, body)
}

describe('node/tls', () => {
  /** Send one two-buffer message; the records it took on the wire */
  async function recordsForOneFrame (make: Make, seed: number): Promise<number> {
    const p = await securedPair(make)
    try {
      const msg = frame(1000, seed)
      const arrived = receive(p.server.connection, msg.byteLength)
      p.client.connection.send(msg)
      expect(await arrived).to.deep.equal(msg.subarray())
      return p.records()
    } finally {
      await p.close()
    }
  }

  it('writes a message of several buffers as one TLS record', async () => {
    expect(await recordsForOneFrame(directTls, 1)).to.equal(1)
  })

  it('is needed: the library alone writes one record per buffer', async () => {
    expect(await recordsForOneFrame(tls, 2)).to.equal(2)
  })

  it('keeps large messages and their order intact in both directions', async () => {
    const p = await securedPair(directTls)
    try {
      const sent = [frame(1 << 20, 3), frame(10, 4), frame(300_000, 5)]
      const total = sent.reduce((n, m) => n + m.byteLength, 0)
      const toServer = receive(p.server.connection, total)
      const toClient = receive(p.client.connection, total)
      for (const m of sent) {
        p.client.connection.send(m)
        p.server.connection.send(m)
      }
      const expected = new Uint8ArrayList(...sent).subarray()
      expect(await toServer).to.deep.equal(expected)
      expect(await toClient).to.deep.equal(expected)
    } finally {
      await p.close()
    }
  })

  it('takes the library\'s path over a connection that is not a TCP socket', async () => {
    let stats: DirectTlsStats | undefined
    const make: Make = () => (components) => {
      const e = directTls()(components)
      stats ??= e.stats
      return e
    }
    expect(await recordsForOneFrame(make, 6)).to.equal(1)
    expect(stats).to.deep.equal({ onSocket: 0, wrapped: 1, certificates: 0, verifications: 0 })
  })

  describe('over TCP', function () {
    this.timeout(60_000)
    const ECHO = '/damselfly-test/echo/1.0.0'
    const nodes: Libp2p[] = []

    /** A libp2p node on 127.0.0.1 with one encrypter; `stats` when it is ours */
    async function node (encrypter: 'direct' | 'library', inactivityMs?: number, psk?: Uint8Array): Promise<{ node: Libp2p, stats?: DirectTlsStats }> {
      let stats: DirectTlsStats | undefined
      const n = await createLibp2p({
        connectionProtector: psk == null ? undefined : preSharedKey({ psk }),
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp({ inboundSocketInactivityTimeout: inactivityMs, outboundSocketInactivityTimeout: inactivityMs })],
        connectionEncrypters: [encrypter === 'direct'
          ? (components: TLSComponents) => {
              const e = directTls()(components)
              stats = e.stats
              return e
            }
          : tls()],
        streamMuxers: [yamux()]
      })
      await n.handle(ECHO, (stream: Stream) => {
        stream.addEventListener('message', (evt) => { stream.send(evt.data) })
        stream.addEventListener('remoteCloseWrite', () => { void stream.close() })
      })
      nodes.push(n)
      return { node: n, stats }
    }

    /** Send `bytes` random bytes through an echo stream; the sha256 both ways */
    async function echo (from: Libp2p, to: Libp2p, bytes: number, chunk = 64 * 1024, pauseMs = 0): Promise<{ sent: string, back: string }> {
      const stream = await from.dialProtocol(to.getMultiaddrs()[0], ECHO)
      const data = randomBytes(bytes)
      const back = createHash('sha256')
      let got = 0
      const done = new Promise<void>((resolve, reject) => {
        stream.addEventListener('message', (evt) => {
          const buf = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
          back.update(buf)
          got += buf.byteLength
          if (got >= bytes) {
            resolve()
          }
        })
        stream.addEventListener('close', (evt) => { if (got < bytes) { reject(evt.error ?? new Error(`stream closed after ${got} of ${bytes} bytes`)) } })
      })
      for (let at = 0; at < bytes; at += chunk) {
        if (!stream.send(data.subarray(at, at + chunk))) {
          await stream.onDrain()
        }
        if (pauseMs > 0) {
          await new Promise(resolve => setTimeout(resolve, pauseMs))
        }
      }
      await done
      await stream.close()
      return { sent: createHash('sha256').update(data).digest('hex'), back: back.digest('hex') }
    }

    afterEach(async () => {
      await Promise.all(nodes.splice(0).map(async n => n.stop()))
    })

    it('runs TLS on the TCP socket and moves data intact both ways', async () => {
      const a = await node('direct')
      const b = await node('direct')
      const ab = await echo(a.node, b.node, 8 << 20)
      expect(ab.back).to.equal(ab.sent)
      const ba = await echo(b.node, a.node, 3 << 20, 1000)
      expect(ba.back).to.equal(ba.sent)
      expect(a.stats).to.deep.equal({ onSocket: 1, wrapped: 0, certificates: 1, verifications: 1 })
      expect(b.stats).to.deep.equal({ onSocket: 1, wrapped: 0, certificates: 1, verifications: 1 })
    })

    it('speaks to the library\'s TLS as client and as server', async () => {
      const ours = await node('direct')
      const theirs = await node('library')
      const out = await echo(ours.node, theirs.node, 2 << 20)
      expect(out.back).to.equal(out.sent)
      await ours.node.hangUp(theirs.node.peerId)
      await waitFor(() => theirs.node.getConnections().length === 0, 10_000, 'the library\'s end to close')
      const back = await echo(theirs.node, ours.node, 2 << 20)
      expect(back.back).to.equal(back.sent)
      // one certificate served both connections, and the library accepted it both times
      expect(ours.stats).to.deep.equal({ onSocket: 2, wrapped: 0, certificates: 1, verifications: 2 })
    })

    it('makes one certificate for all of a node\'s connections and verifies a remote one once', async () => {
      const [a, b, c] = await Promise.all([node('direct'), node('direct'), node('direct')])
      const ab = await echo(a.node, b.node, 1 << 20)
      const ca = await echo(c.node, a.node, 1 << 20)
      expect(ab.back).to.equal(ab.sent)
      expect(ca.back).to.equal(ca.sent)
      expect(a.stats).to.deep.equal({ onSocket: 2, wrapped: 0, certificates: 1, verifications: 2 })
      // b's certificate again: known, not parsed again, and the connection works
      await a.node.hangUp(b.node.peerId)
      const again = await echo(a.node, b.node, 1 << 20)
      expect(again.back).to.equal(again.sent)
      expect(a.stats).to.deep.equal({ onSocket: 3, wrapped: 0, certificates: 1, verifications: 2 })
    })

    it('refuses a known certificate from a peer other than the one dialled', async () => {
      const [a, b, c] = await Promise.all([node('direct'), node('direct'), node('direct')])
      await a.node.dial(b.node.getMultiaddrs()[0])
      await a.node.hangUp(b.node.peerId)
      // b's address, c's peer id: b answers with the certificate a already verified
      const wrong = multiaddr(`${b.node.getMultiaddrs()[0].decapsulateCode(421).toString()}/p2p/${c.node.peerId}`)
      const err = await a.node.dial(wrong).then(() => undefined, (e: Error) => e)
      expect(err, 'the dial to the wrong peer succeeded').to.be.an('error')
      expect(a.node.getConnections(b.node.peerId)).to.have.length(0)
      expect(a.stats?.verifications).to.equal(1)
    })

    it('stays under a private swarm\'s pre-shared key layer (the library\'s path)', async () => {
      const psk = new Uint8Array(95)
      generateKey(psk)
      const a = await node('direct', undefined, psk)
      const b = await node('direct', undefined, psk)
      const ab = await echo(a.node, b.node, 2 << 20)
      expect(ab.back).to.equal(ab.sent)
      expect(a.stats).to.deep.equal({ onSocket: 0, wrapped: 1, certificates: 0, verifications: 0 })
      expect(b.stats).to.deep.equal({ onSocket: 0, wrapped: 1, certificates: 0, verifications: 0 })
    })

    it('keeps a busy connection past the inactivity timeout and closes an idle one', async () => {
      // 600 ms of inactivity closes a socket; the echo keeps bytes flowing for ~2.5 s
      const a = await node('direct', 600)
      const b = await node('direct', 600)
      const busy = await echo(a.node, b.node, 50 * 4096, 4096, 50)
      expect(busy.back).to.equal(busy.sent)
      expect(a.node.getConnections(b.node.peerId)).to.have.length(1)
      await waitFor(() => a.node.getConnections(b.node.peerId).length === 0, 10_000, 'the idle connection to close')
    })

    it('closes both ends when one node hangs up', async () => {
      const a = await node('direct')
      const b = await node('direct')
      await echo(a.node, b.node, 1 << 20)
      await a.node.hangUp(b.node.peerId)
      await waitFor(() => b.node.getConnections(a.node.peerId).length === 0, 10_000, 'the remote end to close')
    })
  })
})
