import { setMaxListeners } from 'node:events'
import { NotStartedError, serviceCapabilities, TypedEventEmitter } from '@libp2p/interface'
import { requestPieces } from './client.ts'
import {
  DEFAULT_MAX_INBOUND_STREAMS,
  DEFAULT_MAX_OUTBOUND_STREAMS,
  DEFAULT_PROTOCOL_PREFIX,
  DEFAULT_UPLOAD_SLOTS,
  PROTOCOL_NAME,
  PROTOCOL_VERSION
} from './constants.ts'
import { PartialPieces } from './partial.ts'
import { handlePieceStream } from './server.ts'
import { TokenBucket } from './token-bucket.ts'
import { UploadSlots } from './upload-slots.ts'
import type { FetchOptions, FetchResult, PieceTransfer, PieceTransferComponents, PieceTransferEvents, PieceTransferInit, PieceTransferStats } from './index.ts'
import type { PieceServerContext } from './server.ts'
import type { Connection, Counter, Histogram, Logger, PeerId, Stream } from '@libp2p/interface'

interface TransferMetrics {
  bytesUploaded: Counter
  bytesDownloaded: Counter
  piecesUploaded: Counter
  piecesDownloaded: Counter
  badPieces: Counter
  busyAnswers: Counter
  answerWait: Histogram
  pieceReceive: Histogram
}

/** seconds: from a loopback piece (ms) to one that hits the piece timeout (5 s and more) */
const TIMING_BUCKETS = [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10]

function isConnection (peer: PeerId | Connection): peer is Connection {
  return typeof (peer as Connection).newStream === 'function'
}

export class PieceTransferService extends TypedEventEmitter<PieceTransferEvents> implements PieceTransfer {
  readonly protocol: string
  readonly [Symbol.toStringTag] = '@damselfly/transfer'
  readonly [serviceCapabilities]: string[] = ['@damselfly/transfer']

  private readonly components: PieceTransferComponents
  private readonly init: PieceTransferInit
  private readonly log: Logger
  /** made once: a logger per stream cost a tty check and a debug instance each (CPU profile, 16 nodes) */
  private readonly clientLog: Logger
  private readonly serverLog: Logger
  private readonly slots: UploadSlots
  /** pieces arriving now, which uploads may send on before they are stored (undefined: cut-through off) */
  private readonly partials?: PartialPieces
  private readonly uploadLimiter: TokenBucket
  private readonly downloadLimiter: TokenBucket
  private readonly maxInboundStreams: number
  private readonly maxOutboundStreams: number
  private readonly runOnLimitedConnection: boolean
  private readonly metrics?: TransferMetrics
  private readonly counters: Omit<PieceTransferStats, 'activeUploads'>
  private activeUploads: number
  private shutdownController?: AbortController

  constructor (components: PieceTransferComponents, init: PieceTransferInit) {
    super()
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('damselfly:transfer')
    this.clientLog = this.log.newScope('client')
    this.serverLog = this.log.newScope('server')
    this.protocol = `${init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${init.protocolVersion ?? PROTOCOL_VERSION}`
    this.slots = new UploadSlots(init.uploadSlots ?? DEFAULT_UPLOAD_SLOTS)
    this.partials = init.cutThrough === false ? undefined : new PartialPieces()
    this.uploadLimiter = new TokenBucket({ rateBps: init.uploadRateBps })
    this.downloadLimiter = new TokenBucket({ rateBps: init.downloadRateBps })
    this.maxInboundStreams = init.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS
    this.maxOutboundStreams = init.maxOutboundStreams ?? DEFAULT_MAX_OUTBOUND_STREAMS
    this.runOnLimitedConnection = init.runOnLimitedConnection ?? false
    this.counters = { bytesUploaded: 0, bytesDownloaded: 0, piecesUploaded: 0, piecesDownloaded: 0, badPieces: 0, busyAnswers: 0, piecesForwarded: 0 }
    this.activeUploads = 0

    const metrics = components.metrics

    if (metrics != null) {
      this.metrics = {
        bytesUploaded: metrics.registerCounter('damselfly_transfer_uploaded_bytes_total', { help: 'Piece bytes handed to upload streams' }),
        bytesDownloaded: metrics.registerCounter('damselfly_transfer_downloaded_bytes_total', { help: 'Verified piece bytes downloaded' }),
        piecesUploaded: metrics.registerCounter('damselfly_transfer_pieces_uploaded_total', { help: 'Pieces uploaded' }),
        piecesDownloaded: metrics.registerCounter('damselfly_transfer_pieces_downloaded_total', { help: 'Verified pieces downloaded' }),
        badPieces: metrics.registerCounter('damselfly_transfer_bad_pieces_total', { help: 'Received pieces that failed verification' }),
        busyAnswers: metrics.registerCounter('damselfly_transfer_busy_answers_total', { help: 'Piece requests answered BUSY' }),
        answerWait: metrics.registerHistogram('damselfly_transfer_answer_wait_seconds', {
          help: 'Fetching: from waiting for an answer (the previous one read, or the request sent) to its header. The header arrives in one muxer frame with the first piece bytes (up to the stream window: often the whole piece), so this includes most of the transfer',
          buckets: TIMING_BUCKETS
        }),
        pieceReceive: metrics.registerHistogram('damselfly_transfer_piece_receive_seconds', {
          help: 'Fetching: from a piece header to the last byte of the piece (the bytes that did not come in the header\'s frame)',
          buckets: TIMING_BUCKETS
        })
      }
      metrics.registerMetric('damselfly_transfer_active_uploads', {
        help: 'Pieces being uploaded now (upload slots in use)',
        calculate: () => this.activeUploads
      })
    }

    this.handleStream = this.handleStream.bind(this)
  }

  isStarted (): boolean {
    return this.shutdownController != null
  }

  async start (): Promise<void> {
    if (this.shutdownController != null) {
      return
    }

    this.shutdownController = new AbortController()
    // every stream in progress listens to it
    setMaxListeners(Infinity, this.shutdownController.signal)
    await this.components.registrar.handle(this.protocol, this.handleStream, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: this.maxOutboundStreams,
      runOnLimitedConnection: this.runOnLimitedConnection
    })
  }

  async stop (): Promise<void> {
    if (this.shutdownController == null) {
      return
    }

    await this.components.registrar.unhandle(this.protocol)
    this.shutdownController.abort(new Error('The piece transfer service stopped'))
    this.shutdownController = undefined
  }

  stats (): PieceTransferStats {
    return { ...this.counters, activeUploads: this.activeUploads }
  }

  async fetch (peer: PeerId | Connection, taskId: string, indexes: number[], options: FetchOptions): Promise<FetchResult[]> {
    const shutdown = this.shutdownController?.signal

    if (shutdown == null) {
      throw new NotStartedError('The piece transfer service is not started; start the libp2p node first')
    }

    if (indexes.length === 0) {
      return []
    }

    const signal = options.signal == null ? shutdown : AbortSignal.any([options.signal, shutdown])
    const connection = isConnection(peer) ? peer : await this.components.connectionManager.openConnection(peer, { signal })
    const remote = connection.remotePeer
    const stream = await connection.newStream(this.protocol, {
      signal,
      maxOutboundStreams: this.maxOutboundStreams,
      runOnLimitedConnection: this.runOnLimitedConnection
    })
    const metrics = this.metrics
    const rateLimits = [this.downloadLimiter, options.rateLimit].filter((b): b is TokenBucket => b != null && !b.unlimited)

    return requestPieces(stream, taskId, indexes, {
      signal,
      expected: options.expected,
      onPiece: options.onPiece,
      onAnswer: options.onAnswer,
      pool: options.pool,
      partials: this.partials,
      waitMs: options.waitMs,
      rateLimits,
      maxOutstanding: this.init.maxOutstanding,
      pieceTimeoutMs: this.init.pieceTimeoutMs,
      log: this.clientLog,
      onBadPiece: (index, reason) => {
        this.counters.badPieces++
        this.metrics?.badPieces.increment()
        this.log('%p sent a bad piece %d of task %s (%s)', remote, index, taskId, reason)
        this.safeDispatchEvent('transfer:bad-piece', { detail: { peer: remote, taskId, index, reason } })
      },
      onTiming: metrics == null
        ? undefined
        : (index, headerMs, bodyMs) => {
            metrics.answerWait.observe(headerMs / 1000)
            if (bodyMs != null) {
              metrics.pieceReceive.observe(bodyMs / 1000)
            }
          },
      onDownloaded: (index, bytes) => {
        this.counters.piecesDownloaded++
        this.counters.bytesDownloaded += bytes
        this.metrics?.piecesDownloaded.increment()
        this.metrics?.bytesDownloaded.increment(bytes)
        this.safeDispatchEvent('transfer:piece-downloaded', { detail: { peer: remote, taskId, index, bytes } })
      }
    })
  }

  private async handleStream (stream: Stream, connection: Connection): Promise<void> {
    const shutdown = this.shutdownController?.signal

    if (shutdown == null) {
      stream.abort(new NotStartedError('The piece transfer service is stopping'))
      return
    }

    const peer = connection.remotePeer
    const ctx: PieceServerContext = {
      source: this.init.source,
      slots: this.slots,
      uploadLimiter: this.uploadLimiter.unlimited ? undefined : this.uploadLimiter,
      partials: this.partials,
      slotWaitMs: this.init.uploadSlotWaitMs,
      idleTimeoutMs: this.init.streamIdleTimeoutMs,
      sendStallTimeoutMs: this.init.sendStallTimeoutMs,
      maxOutstanding: this.init.maxOutstanding,
      signal: shutdown,
      log: this.serverLog,
      onUploaded: (taskId, index, bytes) => {
        this.counters.piecesUploaded++
        this.counters.bytesUploaded += bytes
        this.metrics?.piecesUploaded.increment()
        this.metrics?.bytesUploaded.increment(bytes)
        this.safeDispatchEvent('transfer:piece-uploaded', { detail: { peer, taskId, index, bytes } })
      },
      onForwarded: () => {
        this.counters.piecesForwarded++
      },
      onBusy: () => {
        this.counters.busyAnswers++
        this.metrics?.busyAnswers.increment()
      },
      onActiveUploads: (delta) => {
        this.activeUploads += delta
      }
    }

    await handlePieceStream(stream, peer, ctx)
  }
}
