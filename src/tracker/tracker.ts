import { setMaxListeners } from 'node:events'
import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { repeatingTask } from '@libp2p/utils'
import { DEFAULT_TRACKER_REPLICAS } from '../election/index.ts'
import { TrackerClient } from './client.ts'
import {
  DEFAULT_EXPIRY_INTERVAL_MS,
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  DEFAULT_MAX_INBOUND_STREAMS,
  DEFAULT_MAX_OUTBOUND_STREAMS,
  DEFAULT_PROTOCOL_PREFIX,
  MAX_ADDR_BYTES,
  MAX_ADDRS_PER_PEER,
  PROTOCOL_NAME,
  PROTOCOL_VERSION
} from './constants.ts'
import { answerRequest } from './rpc.ts'
import { handleTrackerStream, RequestGate } from './server.ts'
import { TrackerState } from './state.ts'
import { AnnounceWaiters } from './waiters.ts'
import type { Tracker, TrackerComponents, TrackerInit, TrackerStats } from './index.ts'
import type { RpcContext, TrackerCounter } from './rpc.ts'
import type { TaskSummary } from './state.ts'
import type { TrackerRequest, TrackerResponse } from '../pb/tracker.ts'
import type { Connection, Counter, Logger, Stream } from '@libp2p/interface'
import type { RepeatingTask } from '@libp2p/utils'

const COUNTERS: Record<TrackerCounter, { metric: string, help: string }> = {
  requests: { metric: 'damselfly_tracker_requests_total', help: 'Tracker requests answered (any status)' },
  registrations: { metric: 'damselfly_tracker_registrations_total', help: 'Peers newly registered for a task' },
  redirects: { metric: 'damselfly_tracker_redirects_total', help: 'Requests answered REDIRECT (this node is not elected for the task)' },
  refusals: { metric: 'damselfly_tracker_refusals_total', help: 'Requests answered REFUSED (too many tasks or peers, busy)' },
  errors: { metric: 'damselfly_tracker_errors_total', help: 'Requests answered ERROR (invalid, unknown task, meta conflict, ...)' },
  grants: { metric: 'damselfly_tracker_grants_total', help: 'Announce answers that carried a source grant' },
  badPeerReports: { metric: 'damselfly_tracker_bad_peer_reports_total', help: 'Bad-piece reports counted against a peer' },
  blockedPeers: { metric: 'damselfly_tracker_blocked_peers_total', help: 'Peers blocked for a task after bad-piece reports' },
  digestConflicts: { metric: 'damselfly_tracker_digest_conflicts_total', help: 'Reported piece digests that conflicted with the recorded digest' },
  slowPeersMoved: { metric: 'damselfly_tracker_slow_peers_moved_total', help: 'Peers moved to the end of a pipeline for gaining pieces at under half their upstream\'s rate' }
}

export class TrackerService implements Tracker {
  readonly protocol: string
  readonly client: TrackerClient
  readonly [Symbol.toStringTag] = '@damselfly/tracker'
  readonly [serviceCapabilities]: string[] = ['@damselfly/tracker']
  /** identify fills the peer store with the addresses sent in redirects and the protocol versions named in errors */
  readonly [serviceDependencies]: string[] = ['@libp2p/identify']

  readonly #components: TrackerComponents
  readonly #init: TrackerInit
  readonly #log: Logger
  readonly #state: TrackerState
  readonly #gate: RequestGate
  readonly #self: string
  readonly #rpc: RpcContext
  readonly #expiry: RepeatingTask
  readonly #counters: Record<TrackerCounter, number>
  /** long polls held now; at most half the request gate, so they never crowd out other requests */
  readonly #waiters: AnnounceWaiters
  readonly #metrics?: Record<TrackerCounter, Counter>
  /** made once: a logger per stream cost a tty check and a debug instance each */
  readonly #serverLog: Logger
  #shutdown?: AbortController

  constructor (components: TrackerComponents, init: TrackerInit) {
    this.#components = components
    this.#init = init
    this.#log = components.logger.forComponent('damselfly:tracker')
    this.#serverLog = this.#log.newScope('server')
    this.#self = components.peerId.toString()
    this.protocol = `${init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${init.protocolVersion ?? PROTOCOL_VERSION}`
    this.#state = new TrackerState(init)
    this.#gate = new RequestGate(init.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS)
    this.#waiters = new AnnounceWaiters(Math.floor((init.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS) / 2))
    this.#counters = Object.fromEntries(Object.keys(COUNTERS).map(k => [k, 0])) as Record<TrackerCounter, number>

    const metrics = components.metrics
    if (metrics != null) {
      this.#metrics = Object.fromEntries(Object.entries(COUNTERS).map(([k, { metric, help }]) => [k, metrics.registerCounter(metric, { help })])) as Record<TrackerCounter, Counter>
      metrics.registerMetric('damselfly_tracker_tasks', { help: 'Tasks this node tracks', calculate: () => this.#state.counts().tasks })
      metrics.registerMetric('damselfly_tracker_peers', { help: 'Peer registrations over all tracked tasks', calculate: () => this.#state.counts().peers })
    }

    this.#rpc = {
      state: this.#state,
      self: this.#self,
      eligiblePeers: () => init.eligiblePeers(),
      replicas: init.replicas ?? DEFAULT_TRACKER_REPLICAS,
      serve: init.serve ?? true,
      now: () => Date.now(),
      addressesOf: async (peerId) => this.#addressesOf(peerId),
      localTask: init.localTask,
      count: (counter, n = 1) => {
        this.#counters[counter] += n
        this.#metrics?.[counter].increment(n)
      },
      waiters: this.#waiters,
      log: this.#serverLog
    }

    this.client = new TrackerClient(components, {
      ...init.client,
      protocolPrefix: init.protocolPrefix,
      replicas: init.replicas,
      local: { peerId: this.#self, answer: async (request) => this.answer(this.#self, request) }
    })

    this.#expiry = repeatingTask(() => {
      const { peersDropped, tasksForgotten } = this.#state.expire(Date.now())
      if (peersDropped > 0 || tasksForgotten > 0) {
        this.#log.trace('expired %d peers and %d tasks', peersDropped, tasksForgotten)
      }
    }, init.expiryIntervalMs ?? DEFAULT_EXPIRY_INTERVAL_MS)

    this.handleStream = this.handleStream.bind(this)
  }

  isStarted (): boolean {
    return this.#shutdown != null
  }

  async start (): Promise<void> {
    if (this.#shutdown != null) {
      return
    }
    this.#shutdown = new AbortController()
    // every stream in progress listens to it
    setMaxListeners(Infinity, this.#shutdown.signal)
    await this.#components.registrar.handle(this.protocol, this.handleStream, {
      maxInboundStreams: this.#init.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS,
      maxOutboundStreams: this.#init.maxOutboundStreams ?? DEFAULT_MAX_OUTBOUND_STREAMS,
      // announces are tiny, but a relayed peer is not a useful parent either, and
      // limited connections are for hole punching, not for steady traffic
      runOnLimitedConnection: false
    })
    this.#expiry.start()
  }

  async stop (): Promise<void> {
    if (this.#shutdown == null) {
      return
    }
    this.#expiry.stop()
    await this.#components.registrar.unhandle(this.protocol)
    this.#waiters.close()
    this.#shutdown.abort(new Error('The tracker service stopped'))
    this.#shutdown = undefined
  }

  /** Answer a request as if it came from `from` (used for this node's own requests) */
  async answer (from: string, request: TrackerRequest): Promise<TrackerResponse> {
    return answerRequest(from, request, this.#rpc)
  }

  stats (): TrackerStats {
    return { ...this.#state.counts(), ...this.#counters, inFlight: this.#gate.active, client: this.client.stats() }
  }

  tasks (): TaskSummary[] {
    return this.#state.tasks()
  }

  private async handleStream (stream: Stream, connection: Connection): Promise<void> {
    const shutdown = this.#shutdown?.signal
    if (shutdown == null) {
      stream.abort(new Error('The tracker service is stopping'))
      return
    }
    await handleTrackerStream(stream, connection.remotePeer.toString(), {
      answer: async (from, request) => this.answer(from, request),
      gate: this.#gate,
      timeoutMs: this.#init.requestTimeoutMs,
      signal: shutdown,
      onBusy: () => {
        this.#rpc.count?.('requests')
        this.#rpc.count?.('refusals')
      },
      log: this.#serverLog
    })
  }

  async #addressesOf (peerId: string): Promise<Uint8Array[]> {
    const peerStore = this.#components.peerStore
    if (peerStore == null) {
      return []
    }
    const peer = await peerStore.get(peerIdFromString(peerId))
    return peer.addresses
      .map(a => a.multiaddr.bytes)
      .filter(b => b.byteLength <= MAX_ADDR_BYTES)
      .slice(0, MAX_ADDRS_PER_PEER)
  }
}
