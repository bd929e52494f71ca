/**
 * @packageDocumentation
 *
 * The piece protocol `/damselfly/piece/1.0.0`: upload server and download
 * client for fixed-size, sha256-verified pieces of a task.
 *
 * A client opens one stream per fetch, writes length-prefixed PieceRequest
 * frames (pipelined, at most 16 indexes unanswered) and half-closes when it
 * has asked for everything. The server answers every index, in order, with a
 * PieceHeader and, for OK, the raw piece bytes; it never goes silent
 * (DONT_HAVE, BUSY, UNKNOWN_TASK, ERROR are explicit). The receiver verifies
 * every piece against the digest from the task's manifest, never against a
 * digest the sender merely claims; where the manifest has no digest yet, a
 * digest the task's source signed (an attestation, relayed in the header)
 * stands in for it (attestation.ts).
 *
 * Flow control: the server sends 1 MiB slices and waits for 'drain' whenever
 * send() returns false; the client reads into its own bounded queue and
 * pauses the stream above 2 MiB. Data already in flight when the client
 * pauses (up to yamux's 16 MiB window) lands in the muxer's read buffer,
 * which resets the stream above 4 MiB by default (notes P15); the client
 * raises `maxReadBufferLength` to 32 MiB on its own piece streams, so nodes
 * work with yamux defaults (setting `streamOptions.maxReadBufferLength` node-wide is fine too).
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ ..., services: { transfer: pieceTransfer({ source }) } })
 * const results = await node.services.transfer.fetch(peerId, taskId, [0, 1, 2], {
 *   expected: (i) => ({ length: manifest.pieceLength(i), digest: manifest.digest(i) }),
 *   onPiece: async (i, bytes) => { await store.put(taskId, i, bytes) }
 * })
 * ```
 */

import { PieceTransferService } from './transfer.ts'
import type { PieceAttestation } from './attestation.ts'
import type { PieceBufferPool } from './buffer-pool.ts'
import type { TokenBucket } from './token-bucket.ts'
import type { AbortOptions, ComponentLogger, Connection, Metrics, PeerId, Startable, StreamHandler, StreamHandlerOptions, TypedEventTarget } from '@libp2p/interface'

export { TokenBucket, type TokenBucketInit } from './token-bucket.ts'
export { UploadSlots, type ReleaseSlot } from './upload-slots.ts'
export { PieceBufferPool, type PieceBufferPoolInit, type PieceBufferPoolStats } from './buffer-pool.ts'
export { handlePieceStream, type PieceServerContext } from './server.ts'
export { requestPieces, defaultPieceTimeoutMs, type RequestPiecesOptions, type BadPieceReason } from './client.ts'
export { PartialPieces, PartialPiece, type PartialProof } from './partial.ts'
export { BadPieceError, FrameTooLargeError, RemotePieceError, UnexpectedEndOfStreamError } from './errors.ts'
export { PieceAttestations, signPieceDigest, verifyPieceDigest, attestationPayload, type PieceAttestation } from './attestation.ts'
export * as constants from './constants.ts'

/** What the upload side needs from the node's piece store */
export interface PieceSource {
  /** Length of piece `index` of `taskId`; undefined when the task is unknown */
  pieceLength(taskId: string, index: number): number | undefined
  /** true when the piece is stored and verified, so it can be served */
  has(taskId: string, index: number): boolean
  /** sha256 of the piece, if known (sent in the header, informational); computed when undefined */
  digest(taskId: string, index: number): Uint8Array | undefined
  /**
   * The source's signature of `digest` (the one the header carries), when
   * this node holds one (it read the piece from the origin, or received it
   * with one): sent in the header so a receiver that does not know the
   * digest yet can verify the piece
   */
  attestation?(taskId: string, index: number, digest: Uint8Array): PieceAttestation | undefined
  /** The piece's bytes (exactly pieceLength bytes) */
  read(taskId: string, index: number, options: AbortOptions): Promise<Uint8Array>
  /**
   * Resolve once the piece is held (then `has` is true), or after
   * `timeoutMs` or an abort. Without it, requests that may wait for a piece
   * (wait_ms) are answered at once.
   */
  waitFor?(taskId: string, index: number, options: AbortOptions & { timeoutMs: number }): Promise<unknown>
}

/** What the caller knows about a piece from the task's manifest */
export interface ExpectedPiece {
  /** exact length in bytes */
  length: number
  /**
   * sha256, 32 bytes; empty when the manifest has no digest for the piece
   * yet: then the piece is accepted only with a valid attestation by one of
   * `attestors`
   */
  digest: Uint8Array
  /** the task's source peers (string form), whose signed digest stands in for a missing `digest` */
  attestors?: ReadonlySet<string>
}

/** How a piece handed to onPiece was verified */
export interface PieceProof {
  /** the sha256 the bytes matched */
  digest: Uint8Array
  /**
   * the source's signature of `digest` the sender relayed, verified: keep it
   * to send the piece on with it (set only when it was checked)
   */
  attestation?: PieceAttestation
}

export type FetchStatus = 'ok' | 'dont-have' | 'busy' | 'unknown-task' | 'bad-digest' | 'unverifiable' | 'timeout' | 'error'

export interface FetchResult {
  index: number
  /**
   * - ok: verified and accepted by onPiece
   * - dont-have / busy / unknown-task: the peer said so; ask again later or elsewhere
   * - bad-digest: the peer sent a piece that fails verification (or announced a wrong length, or a forged attestation); a `transfer:bad-piece` event was emitted
   * - unverifiable: no digest was expected and the peer sent none attested by an expected attestor; the bytes were dropped, ask again once the digest is known
   * - timeout: the per-piece timeout fired on this or an earlier index; the stream was aborted
   * - error: the stream failed, the peer answered ERROR, or onPiece threw (see `error`)
   */
  status: FetchStatus
  /** number of piece bytes received (set for 'ok', and for 'error' when onPiece threw) */
  bytes?: number
  error?: Error
}

export interface FetchOptions extends AbortOptions {
  /** Length and sha256 of each piece, from the task's manifest (never from the peer) */
  expected(index: number): ExpectedPiece
  /**
   * Receives each verified piece in request order; the next one waits until
   * this resolves (and the stream is paused meanwhile, so memory stays bounded)
   */
  onPiece(index: number, bytes: Uint8Array, proof: PieceProof): Promise<void> | void
  /**
   * Receive pieces into buffers leased from this pool (one per task, sized
   * to its piece size) instead of allocating each piece. onPiece then owns
   * the buffer and must `pool.release(bytes)` exactly once when nothing reads
   * it anymore, e.g. `store.put(...).finally(() => pool.release(bytes))`.
   * Saves a major GC every few pieces when pieces are held while stored.
   */
  pool?: PieceBufferPool
  /** Optional per-task download limit, applied on top of the node-wide one */
  rateLimit?: TokenBucket
  /**
   * Each answer as soon as it is read (see RequestPiecesOptions.onAnswer);
   * the returned results hold them all again
   */
  onAnswer?(result: FetchResult): void
  /** Let the peer hold each index it does not have yet this long (ms) before answering DONT_HAVE (RequestPiecesOptions.waitMs) */
  waitMs?: number
}

export interface BadPieceEvent {
  peer: PeerId
  taskId: string
  index: number
  reason: 'bad-digest' | 'bad-length'
}

export interface PieceMovedEvent {
  peer: PeerId
  taskId: string
  index: number
  bytes: number
}

export interface PieceTransferEvents {
  /** a peer sent a piece that failed verification; block or report it */
  'transfer:bad-piece': CustomEvent<BadPieceEvent>
  /** a piece was fully handed to an uploading stream */
  'transfer:piece-uploaded': CustomEvent<PieceMovedEvent>
  /** a piece was downloaded, verified and accepted by onPiece */
  'transfer:piece-downloaded': CustomEvent<PieceMovedEvent>
}

export interface PieceTransferStats {
  bytesUploaded: number
  bytesDownloaded: number
  piecesUploaded: number
  piecesDownloaded: number
  badPieces: number
  busyAnswers: number
  /** pieces of piecesUploaded sent on while they were still arriving here (cut-through) */
  piecesForwarded: number
  /** pieces being uploaded right now (upload slots in use) */
  activeUploads: number
}

export interface PieceTransfer extends TypedEventTarget<PieceTransferEvents>, Startable {
  /** the protocol id, e.g. `/damselfly/piece/1.0.0` */
  readonly protocol: string

  isStarted(): boolean

  /**
   * Fetch `indexes` of `taskId` from `peer` over one new stream (dialling the
   * peer if given a PeerId). Resolves with one result per index, in the
   * order given; per-piece failures are results, not throws. Throws if the
   * stream cannot be opened (DialError, UnsupportedProtocolError, ...), on
   * invalid arguments, or with the signal's reason when aborted.
   */
  fetch(peer: PeerId | Connection, taskId: string, indexes: number[], options: FetchOptions): Promise<FetchResult[]>

  stats(): PieceTransferStats
}

export interface PieceTransferInit {
  /** the node's pieces, for uploads */
  source: PieceSource

  /**
   * Protocol id prefix; the id is `${protocolPrefix}/piece/1.0.0`
   *
   * @default '/damselfly'
   */
  protocolPrefix?: string

  /**
   * Protocol version in the id; only tests of version mismatch change it
   *
   * @default '1.0.0'
   */
  protocolVersion?: string

  /**
   * Pieces uploaded at the same time by this node, over all peers
   *
   * @default 4
   */
  uploadSlots?: number

  /**
   * How long a request waits for a free upload slot before it is answered BUSY (ms)
   *
   * @default 500
   */
  uploadSlotWaitMs?: number

  /**
   * Node-wide upload limit in bytes per second, 0 = unlimited
   *
   * @default 0
   */
  uploadRateBps?: number

  /**
   * Node-wide download limit in bytes per second, 0 = unlimited
   *
   * @default 0
   */
  downloadRateBps?: number

  /**
   * Inbound piece streams per connection. One fetch uses one stream and
   * pipelines within it, so 16 parallel fetches from one peer is plenty
   * (reliability.md §e: pieces 16).
   *
   * @default 16
   */
  maxInboundStreams?: number

  /**
   * Outbound piece streams per connection (see maxInboundStreams)
   *
   * @default 16
   */
  maxOutboundStreams?: number

  /**
   * Serve and fetch over relayed/limited connections. Off: those carry a few
   * KiB to MiB at most, less than one piece.
   *
   * @default false
   */
  runOnLimitedConnection?: boolean

  /**
   * Send a piece on to a peer that asks for it while it is still arriving
   * here, its last bytes once it is verified (partial.ts). Off: only stored
   * pieces are uploaded, so each hop of a pipeline adds a piece's transfer time.
   *
   * @default true
   */
  cutThrough?: boolean

  /**
   * Requested-but-unanswered indexes per stream; more are answered BUSY
   *
   * @default 16
   */
  maxOutstanding?: number

  /**
   * Server: abort a stream with no request and nothing to answer for this long (ms)
   *
   * @default 30000
   */
  streamIdleTimeoutMs?: number

  /**
   * Server: abort a stream whose reader does not drain a send for this long (ms)
   *
   * @default 30000
   */
  sendStallTimeoutMs?: number

  /**
   * Client: time a peer gets to deliver a piece of `length` bytes (ms)
   *
   * @default max(5 s, 4 s per MiB)
   */
  pieceTimeoutMs?(length: number): number
}

/** Only what the service uses (STYLE rule 4); a libp2p node's components fit */
export interface PieceTransferComponents {
  registrar: {
    handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
    unhandle(protocol: string, options?: AbortOptions): Promise<void>
  }
  connectionManager: {
    openConnection(peer: PeerId, options?: AbortOptions): Promise<Connection>
  }
  logger: ComponentLogger
  metrics?: Metrics
}

/** The piece protocol as a libp2p service: `services: { transfer: pieceTransfer({ source }) }` */
export function pieceTransfer (init: PieceTransferInit): (components: PieceTransferComponents) => PieceTransfer {
  return (components) => new PieceTransferService(components, init)
}
