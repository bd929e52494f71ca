/**
 * The TLS connection encrypter: `@libp2p/tls`'s handshake, certificates and
 * wire format, with two changes on the data path.
 *
 * Over TCP, the TLSSocket is built on the TCP socket itself. `@libp2p/tls`
 * 3.x always wraps the connection in a JS Duplex, which Node then wraps in a
 * JSStreamSocket: every chunk of ciphertext crossed some ten JS layers each
 * way (socket 'data', the connection's message event, the Duplex, the JS
 * stream socket, and back again on writes). On the socket's own handle
 * OpenSSL reads and writes the kernel socket from C++, and JS sees only
 * plaintext. The bytes on the wire are the same, so peers running the library
 * interoperate. Other connections (a private swarm's pre-shared key layer,
 * in-memory pairs in tests) take the library's path. Side by side in
 * bench/fanout netns N=16 64 MiB @ 25 Mbit/s (two pairs of runs): the daemons'
 * CPU 105.2 -> 89.5 s and 106.4 -> 85.9 s, the last copy 55.1 -> 47.4 s and
 * 55.3 -> 45.8 s.
 *
 * One certificate serves every connection of the node, as in go-libp2p: the
 * library makes a new one per handshake (an ECDSA key, a signature by the
 * node's key, an X.509 encoding), which a CPU profile of 16 daemons at 25
 * Mbit/s found in 1.2 % of the samples, all while the swarm formed. The
 * certificate's key only signs handshakes; each session's keys still come
 * from its own ephemeral key exchange. A remote certificate seen before is
 * not parsed and verified again (its bytes decide the outcome; its dates and
 * the expected peer are still checked, and OpenSSL still checks in every
 * handshake that the remote holds its key). A dial, handshake and hang-up
 * between two nodes costs 15.2 ms of CPU (both ends) against 37.8 ms with
 * the library (`npm run bench -- connect`); 33-35 ms before these two caches.
 *
 * Each message is written as one TLS record. The library hands every buffer
 * of a message to its TLSSocket on its own; yamux sends a data frame as two
 * buffers (12-byte header, then the payload), so every frame became two
 * records and two OpenSSL writes. Noise already encrypts a message whole.
 * Measured in bench/fanout netns N=16 64 MiB @ 25 Mbit/s (two pairs of runs):
 * the daemons' CPU 121.5 -> 108.6 s and 103.5 -> 96.6 s.
 *
 * The secured connection's `sendData` and `socket`, and the TCP connection's
 * `socket`, are internals of `@libp2p/tls` and `@libp2p/tcp`; when a release
 * changes them, connections take the library's path unchanged (the tests in
 * test/node/tls.spec.ts then fail, so an upgrade cannot drop either change
 * unnoticed).
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import { TLSSocket, connect } from 'node:tls'
import { InvalidCryptoExchangeError, TimeoutError, UnexpectedPeerError } from '@libp2p/interface'
import { tls } from '@libp2p/tls'
import { generateCertificate, toMessageStream, verifyPeerCertificate } from '@libp2p/tls/utils'
import type { ConnectionEncrypter, Logger, MultiaddrConnection, PeerId, SecureConnectionOptions, SecuredConnection, StreamMuxerFactory } from '@libp2p/interface'
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

/** How connections were secured since the encrypter was made */
export interface DirectTlsStats {
  /** TLS on the TCP socket's own handle */
  onSocket: number
  /** the library's path: TLS over a JS stream wrapped around the connection */
  wrapped: number
  /** certificates made for connections on the socket (one, unless making one failed) */
  certificates: number
  /** remote certificates parsed and verified in full (once per distinct certificate) */
  verifications: number
}

interface Certificate { cert: string, key: string }

/** A remote certificate that passed verifyPeerCertificate */
interface VerifiedCertificate { peer: PeerId, validFrom: number, validTo: number }

/** Remote certificates kept verified, most recently used last */
const MAX_VERIFIED_CERTIFICATES = 1024

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
 * The TCP socket under a connection, when TLS can take it over: an open
 * socket with a kernel handle, of which nothing has been read ahead (bytes
 * buffered above the socket would be lost to the TLSSocket). `_handle` is
 * Node's own test for this (a socket without one gets a JS stream wrapper,
 * which would read the socket a second time beside the connection).
 */
function tcpSocketOf (connection: MultiaddrConnection): net.Socket | undefined {
  const socket = (connection as unknown as { socket?: unknown }).socket
  if (!(socket instanceof net.Socket) || socket instanceof TLSSocket) {
    return undefined
  }
  const handle = (socket as unknown as { _handle?: unknown })._handle
  if (handle == null || socket.readyState !== 'open' || socket.readableLength > 0 || connection.readBufferLength > 0) {
    return undefined
  }
  return socket
}

class DirectTls implements ConnectionEncrypter {
  readonly protocol: string
  readonly stats: DirectTlsStats = { onSocket: 0, wrapped: 0, certificates: 0, verifications: 0 }
  readonly [Symbol.toStringTag] = 'damselfly-tls'
  private readonly components: TLSComponents
  private readonly library: ConnectionEncrypter
  private readonly log: Logger
  private certificate?: Promise<Certificate>
  private readonly verified = new Map<string, VerifiedCertificate>()

  constructor (components: TLSComponents) {
    this.components = components
    this.library = tls()(components)
    this.protocol = this.library.protocol
    this.log = components.logger.forComponent('damselfly:tls')
  }

  async secureInbound (connection: MultiaddrConnection, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.secure(connection, true, options)
  }

  async secureOutbound (connection: MultiaddrConnection, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.secure(connection, false, options)
  }

  private async secure (connection: MultiaddrConnection, isServer: boolean, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const socket = tcpSocketOf(connection)
    let secured: SecuredConnection
    if (socket == null) {
      secured = isServer ? await this.library.secureInbound(connection, options) : await this.library.secureOutbound(connection, options)
      this.stats.wrapped++
    } else {
      secured = await this.secureSocket(connection, socket, isServer, options)
      this.stats.onSocket++
    }
    coalesceWrites(secured)
    return secured
  }

  /** The node's certificate, made on first use; a failure is not kept */
  private async ownCertificate (options?: SecureConnectionOptions): Promise<Certificate> {
    if (this.certificate == null) {
      this.stats.certificates++
      // made without the handshake's signal: one aborted dial must not spoil it for the next
      const made = generateCertificate(this.components.privateKey)
      this.certificate = made
      made.catch(() => {
        if (this.certificate === made) {
          this.certificate = undefined
        }
      })
    }
    const certificate = await this.certificate
    options?.signal?.throwIfAborted()
    return certificate
  }

  /**
   * The remote peer of a handshake: verifyPeerCertificate for a certificate
   * not seen before, else the dates and the expected peer of the one we know
   */
  private async remotePeerOf (socket: TLSSocket, expected: PeerId | undefined, log: Logger): Promise<PeerId> {
    const cert = socket.getPeerCertificate()
    const key = createHash('sha256').update(cert.raw).digest('hex')
    let known = this.verified.get(key)
    if (known == null) {
      this.stats.verifications++
      const peer = await verifyPeerCertificate(cert.raw, expected, log)
      known = { peer, validFrom: Date.parse(cert.valid_from), validTo: Date.parse(cert.valid_to) }
      if (Number.isNaN(known.validFrom) || Number.isNaN(known.validTo)) {
        return peer
      }
    } else {
      const now = Date.now()
      if (now < known.validFrom || now > known.validTo) {
        this.verified.delete(key)
        throw new InvalidCryptoExchangeError('the remote certificate is not valid at this time')
      }
      if (expected != null && !expected.equals(known.peer)) {
        throw new UnexpectedPeerError(`the remote is ${known.peer}, not the expected ${expected}`)
      }
    }
    this.verified.delete(key)
    this.verified.set(key, known)
    if (this.verified.size > MAX_VERIFIED_CERTIFICATES) {
      this.verified.delete(this.verified.keys().next().value as string)
    }
    return known.peer
  }

  /** The library's handshake (TLS 1.3, libp2p certificates, muxer by ALPN) on the socket's own handle */
  private async secureSocket (connection: MultiaddrConnection, raw: net.Socket, isServer: boolean, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const log = connection.log?.newScope('tls') ?? this.log
    // the muxers offered in the handshake (none when the caller negotiates one later)
    const muxers = options?.skipStreamMuxerNegotiation === true ? new Map<string, StreamMuxerFactory>() : this.components.upgrader.getStreamMuxers()
    let streamMuxer: StreamMuxerFactory | undefined
    const opts = {
      ...await this.ownCertificate(options),
      isServer,
      minVersion: 'TLSv1.3' as const,
      maxVersion: 'TLSv1.3' as const,
      // libp2p certificates are self-signed: verifyPeerCertificate checks them
      rejectUnauthorized: false,
      ALPNProtocols: [...muxers.keys(), 'libp2p'],
      ALPNCallback: ({ protocols }: { protocols: string[] }): string | undefined => {
        let chosen: string | undefined
        for (const protocol of protocols) {
          if (protocol === 'libp2p') {
            chosen = 'libp2p'
          }
          const muxer = muxers.get(protocol)
          if (muxer != null) {
            streamMuxer = muxer
            return protocol
          }
        }
        return chosen
      }
    }

    // the raw socket's inactivity timer stays: Node refreshes it from the
    // TLSSocket's reads and writes (net.Socket._unrefTimer walks to _parent)
    const socket = isServer ? new TLSSocket(raw, { ...opts, requestCert: true }) : connect({ socket: raw, ...opts })

    return new Promise<SecuredConnection>((resolve, reject) => {
      let settled = false
      const onAbort = (): void => { fail(new TimeoutError('the TLS handshake took too long')) }
      const fail = (err: Error): void => {
        options?.signal?.removeEventListener('abort', onAbort)
        log.error('%s TLS connection failed%s - %e', connection.direction, settled ? '' : ' in the handshake', err)
        socket.destroy()
        connection.abort(err)
        settled = true
        reject(err)
      }
      options?.signal?.addEventListener('abort', onAbort, { once: true })
      socket.on('error', fail)
      socket.once('secure', () => {
        options?.signal?.removeEventListener('abort', onAbort)
        this.remotePeerOf(socket, options?.remotePeer, log)
          .then((remotePeer: PeerId) => {
            if (!isServer && typeof socket.alpnProtocol === 'string' && socket.alpnProtocol !== 'libp2p' && options?.skipStreamMuxerNegotiation !== true) {
              streamMuxer = muxers.get(socket.alpnProtocol)
              if (streamMuxer == null) {
                throw new InvalidCryptoExchangeError(`the remote chose muxer ${socket.alpnProtocol}, which this node does not have`)
              }
            }
            log('remote certificate ok, remote peer %p, TLS on the TCP socket', remotePeer)
            settled = true
            resolve({ remotePeer, connection: toMessageStream(connection, socket), streamMuxer })
          })
          .catch(fail)
      })
    })
  }
}

/**
 * TLS for libp2p nodes: interoperates with `@libp2p/tls`; over TCP it runs on
 * the socket itself, and it writes each message as one record
 */
export function directTls (): (components: TLSComponents) => ConnectionEncrypter & { stats: DirectTlsStats } {
  return (components) => new DirectTls(components)
}
