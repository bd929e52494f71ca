/**
 * The TLS connection encrypter, writing each message as one TLS record.
 *
 * `@libp2p/tls` 3.x hands every buffer of an outgoing message to its TLSSocket
 * on its own. yamux sends each data frame as two buffers (12-byte header, then
 * the payload), so every frame became two TLS records, two OpenSSL writes and
 * two trips through Node's JS stream socket down to TCP - and the small
 * messages that make up gossip and tracker calls paid that per-record cost
 * twice. Noise (libp2p-noise) already encrypts a message whole. Here the
 * secured connection joins a message's buffers before the TLSSocket sees them
 * (a copy only when there is more than one buffer).
 *
 * Measured side by side in bench/fanout netns N=16 64 MiB @ 25 Mbit/s, where
 * 2 cores are the bottleneck (two pairs of runs): the daemons' CPU 121.5 ->
 * 108.6 s and 103.5 -> 96.6 s, the last copy 63.7 -> 58.1 s and 54.2 -> 50.5 s.
 * At 100 Mbit/s with 8 nodes, where pieces move in large frames, no change.
 *
 * The secured connection's `sendData` and `socket` are internals of
 * `@libp2p/tls`; when a release changes them the connection is left as the
 * library built it (the test in test/node/tls.spec.ts then fails, so an
 * upgrade cannot drop the fix unnoticed).
 */
import { tls } from '@libp2p/tls'
import type { ConnectionEncrypter, SecuredConnection } from '@libp2p/interface'
import type { TLSComponents } from '@libp2p/tls'
import type { Uint8ArrayList } from 'uint8arraylist'

interface SendResult {
  sentBytes: number
  canSendMore: boolean
}

interface TlsMessageStream {
  socket?: { write?(buf: Uint8Array): boolean }
  sendData?(data: Uint8ArrayList): SendResult
}

/**
 * Make the secured connection write each message as one buffer (left as it
 * is when the library's layout is not the one we know)
 */
function coalesceWrites (secured: SecuredConnection<unknown>): void {
  const conn = secured.connection as unknown as TlsMessageStream
  const socket = conn.socket
  if (typeof conn.sendData !== 'function' || socket == null || typeof socket.write !== 'function') {
    return
  }
  conn.sendData = (data: Uint8ArrayList): SendResult => {
    // one buffer is returned as it is; several are copied into one
    const buf = data.subarray()
    return { sentBytes: buf.byteLength, canSendMore: socket.write!(buf) }
  }
}

/**
 * tls() from `@libp2p/tls` whose connections write each message as one record
 */
export function coalescingTls (): (components: TLSComponents) => ConnectionEncrypter {
  const make = tls()
  return (components) => {
    const encrypter = make(components)
    for (const side of ['secureInbound', 'secureOutbound'] as const) {
      const secure = encrypter[side].bind(encrypter)
      encrypter[side] = async (connection, options) => {
        const secured = await secure(connection, options)
        coalesceWrites(secured)
        return secured
      }
    }
    return encrypter
  }
}
