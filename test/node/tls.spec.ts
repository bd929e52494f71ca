import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tls } from '@libp2p/tls'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { expect } from 'aegir/chai'
import { Uint8ArrayList } from 'uint8arraylist'
import { coalescingTls } from '../../src/node/tls.ts'
import type { ConnectionEncrypter, MessageStream, PeerId, SecuredConnection, Upgrader } from '@libp2p/interface'
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
    expect(await recordsForOneFrame(coalescingTls, 1)).to.equal(1)
  })

  it('is needed: the library alone writes one record per buffer', async () => {
    expect(await recordsForOneFrame(tls, 2)).to.equal(2)
  })

  it('keeps large messages and their order intact in both directions', async () => {
    const p = await securedPair(coalescingTls)
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
})
