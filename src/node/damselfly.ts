import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { DEFAULT_MAX_SOURCE_PEERS } from '../scheduler/constants.ts'
import { createDefaultSources } from '../source/index.ts'
import { DEFAULT_GC_INTERVAL_MS, DEFAULT_STORAGE_QUOTA, DEFAULT_TASK_TTL_MS, FsPieceStore, StoreGc, TaskNotFoundError, listTasks, quotaBytesFor } from '../storage/index.ts'
import { Swarm } from '../swarm/index.ts'
import { normaliseDigest } from '../task/digest.ts'
import { Engine } from '../task/engine.ts'
import { taskId as computeTaskId } from '../task/id.ts'
import { importFile } from '../task/import.ts'
import { metaInfoOf } from '../task/tracker-port.ts'
import { DEFAULT_PIPELINE } from '../tracker/constants.ts'
import { DEFAULT_UPLOAD_SLOTS } from '../transfer/constants.ts'
import { PieceAttestations, TokenBucket, pieceTransfer, signPieceDigest } from '../transfer/index.ts'
import { DAMSELFLY_VERSION, kadProtocol } from '../version.ts'
import { coalesceProtocolMerges } from './protocol-merges.ts'
import { DEFAULT_PROVIDE_QUIET_MS, DeferredProvides } from './provides.ts'
import { TrackerPortAdapter, toMultiaddrs, trackerServiceFor } from './tracker-port.ts'
import type { DeferredProvidesStats } from './provides.ts'
import type { TrackerHandle } from './tracker-port.ts'
import type { CollectOptions, Eviction, StoreGcStats, TaskMetadata } from '../storage/index.ts'
import type { BootstrapAttempt, DialFailureClass, Incompatibility, Member, SwarmPeer } from '../swarm/index.ts'
import type { Download, DownloadProgress } from '../task/download.ts'
import type { EngineStats } from '../task/engine.ts'
import type { ImportRequest } from '../task/import.ts'
import type { LocalTask } from '../tracker/index.ts'
import type { PieceSource, PieceTransfer, PieceTransferStats } from '../transfer/index.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { ComponentLogger, Libp2pEvents, Logger, Metrics, PeerId, PeerStore, PrivateKey, Startable, TypedEventTarget, PeerInfo, ContentRouting } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'

/** peers whose merged addresses addPeerAddrs remembers (a swarm's worth; older ones are merged again) */
const MERGED_ADDRS_MEMORY = 4096

// these two live in light modules (CLI commands import them without loading
// libp2p); exported here as well for code that imports them from this module
export { kadProtocol } from '../version.ts'
export { listTasks } from '../storage/index.ts'

export type SupernodeMode = 'auto' | 'always' | 'never'

/**
 * Options of the Damselfly libp2p service. Every field but dataDir is optional.
 */
export interface DamselflyInit {
  /**
   * Where the piece store keeps its tasks (`<dataDir>/tasks/<id>`)
   */
  dataDir: string
  /**
   * Swarm name: nodes with different names ignore each other's membership
   *
   * @default 'default'
   */
  swarm?: string
  /**
   * Multiaddrs (with /p2p/) dialled while the node has no swarm peer
   *
   * @default []
   */
  bootstrap?: string[]
  /**
   * The host runs with a pre-shared swarm key (used to explain failed dials)
   *
   * @default false
   */
  privateSwarm?: boolean
  /**
   * Membership heartbeat interval in ms
   *
   * @default 5000
   */
  heartbeatInterval?: number
  /**
   * Longest wait between two rounds of bootstrap dials, in ms
   *
   * @default 30000
   */
  maxRejoinInterval?: number
  /**
   * Time allowed for one bootstrap dial, in ms
   *
   * @default 10000
   */
  dialTimeout?: number
  /**
   * Whether this node may be elected tracker
   *
   * @default 'auto'
   */
  supernode?: SupernodeMode
  /**
   * As a task's tracker, name each peer's upstream (the peer that joined
   * before it) so the task's peers stream pieces along a pipeline; off, every
   * peer pulls rarest-first from several parents (the mesh)
   *
   * @default true
   */
  pipeline?: boolean
  /**
   * As a task's tracker, how many peers may read the task from the origin at
   * once, each its own stripes of 32 pieces. One (the head of the pipeline)
   * reads it as one range, so each piece leaves the origin once; more spread
   * the reads when the head's link is slower than the origin's
   *
   * @default 1
   */
  sourcePeers?: number
  /**
   * Dial peers found by any discovery mechanism (mDNS does not dial by itself)
   *
   * @default false
   */
  dialDiscovered?: boolean
  /**
   * Pieces uploaded at once
   *
   * @default 16
   */
  uploadSlots?: number
  /**
   * Node-wide upload limit in bytes/s; 0 = unlimited
   *
   * @default 0
   */
  uploadRate?: number
  /**
   * Node-wide download limit in bytes/s; 0 = unlimited
   *
   * @default 0
   */
  downloadRate?: number
  /**
   * A finished download's DHT provider record is sent once the node has moved
   * no piece bytes and run no download for this long, ms (at the latest 5 min
   * after it finished)
   *
   * @default 30000
   */
  provideQuietMs?: number
  /**
   * Most bytes the piece store's tasks may hold: a byte count, or a share of
   * the data directory's file system such as '80%'; 0: no quota. Above it,
   * GC removes the least recently used tasks not in use until they hold 75 %
   * of it. Only the store's own bytes count.
   *
   * @default '80%'
   */
  storageQuota?: number | string
  /**
   * A task not written, read or exported for this long is removed, ms; 0: never
   *
   * @default 30 days
   */
  taskTtl?: number
  /**
   * How often GC of the piece store runs, ms (also soon after each download); 0: never
   *
   * @default 900000
   */
  gcInterval?: number
  /**
   * Override protocol versions (tests of version mismatch only)
   */
  protocolVersions?: Partial<Record<'piece' | 'tracker', string>>
}

export interface DamselflyComponents {
  peerId: PeerId
  /** signs the digests of pieces this node reads from the origin (without it, peers take them on the tracker's digests only) */
  privateKey?: PrivateKey
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  metrics?: Metrics
  connectionManager: ConnectionManager
  addressManager: AddressManager
  registrar: Registrar
  peerStore: PeerStore
  contentRouting: ContentRouting
  pubsub: GossipSub
  dht?: unknown
}

export interface NodeStatus {
  peerId: string
  version: string
  swarm: string
  private: boolean
  addresses: string[]
  /** connected peers of this swarm */
  peers: number
  /** live members: heartbeats heard within 3 intervals */
  members: number
  connections: number
  uptimeMs: number
  supernode: { mode: SupernodeMode, eligible: boolean }
  protocols: string[]
  /** provides: finished downloads' provider records sent, failed, and waiting for the node to be quiet */
  dht: { enabled: boolean, routingTable: number, provides: DeferredProvidesStats }
  gossip: { topic: string, meshPeers: number, topicPeers: number, published: number, rejected: number }
  incompatible: Incompatibility[]
  dialFailures: Record<DialFailureClass, number>
  bootstrap: { configured: string[], attempts: BootstrapAttempt[], rounds: number }
  /** bytes moved by this node since it started */
  bytes: { fromPeers: number, fromOrigin: number, uploaded: number }
  /** pieces this node served and fetched, and how often it answered BUSY (all upload slots taken) */
  transfer: PieceTransferStats
  downloads: EngineStats['downloads']
  tracker: ReturnType<TrackerHandle['stats']>
  /** tasks this node holds the tracker role for */
  trackedTasks: ReturnType<TrackerHandle['tasks']>
  /** the store's tasks and bytes, and what its GC removed (none before the node started) */
  store: { tasks: number, bytesStored: number, gc?: StoreGcStats }
}

/** What an on-demand GC run removed (or would, dry) */
export interface GcReport {
  dryRun: boolean
  removed: Eviction[]
  /** the store afterwards */
  store: { tasks: number, bytesStored: number }
  /** GC's counters; `lastError` names a removal of this run that failed */
  gc: StoreGcStats
}

interface GcInit {
  quota: number | string
  ttlMs: number
  intervalMs: number
}

type ResolvedInit = Required<Omit<DamselflyInit, 'protocolVersions' | 'storageQuota' | 'taskTtl' | 'gcInterval'>> & { gc: GcInit }

/** The service's settings: what `init` gives, defaults for the rest */
function withDefaults (init: DamselflyInit, dataDir: string): ResolvedInit {
  return {
    dataDir,
    swarm: init.swarm ?? 'default',
    bootstrap: init.bootstrap ?? [],
    privateSwarm: init.privateSwarm ?? false,
    heartbeatInterval: init.heartbeatInterval ?? 5000,
    maxRejoinInterval: init.maxRejoinInterval ?? 30_000,
    dialTimeout: init.dialTimeout ?? 10_000,
    supernode: init.supernode ?? 'auto',
    pipeline: init.pipeline ?? DEFAULT_PIPELINE,
    sourcePeers: init.sourcePeers ?? DEFAULT_MAX_SOURCE_PEERS,
    dialDiscovered: init.dialDiscovered ?? false,
    uploadSlots: init.uploadSlots ?? DEFAULT_UPLOAD_SLOTS,
    uploadRate: init.uploadRate ?? 0,
    downloadRate: init.downloadRate ?? 0,
    provideQuietMs: init.provideQuietMs ?? DEFAULT_PROVIDE_QUIET_MS,
    gc: gcInit(init)
  }
}

function gcInit (init: DamselflyInit): GcInit {
  return {
    quota: init.storageQuota ?? DEFAULT_STORAGE_QUOTA,
    ttlMs: init.taskTtl ?? DEFAULT_TASK_TTL_MS,
    intervalMs: init.gcInterval ?? DEFAULT_GC_INTERVAL_MS
  }
}

export interface GetRequest {
  /** origin URL; optional when a digest names the content */
  url?: string
  /** whole-file digest `sha256:<hex>`: the task id then comes from it alone */
  digest?: string
  headers?: Record<string, string>
  tag?: string
  application?: string
  filteredQueryParams?: string[]
  /**
   * fetch from the origin when no peer can give a piece
   *
   * @default true
   */
  backToSource?: boolean
  /** per-task download limit in bytes/s */
  rateBps?: number
}

export interface DamselflyEvents {
  'swarm:peer-count': CustomEvent<number>
  'swarm:incompatible-peer': CustomEvent<Incompatibility>
  'swarm:member-joined': CustomEvent<Member>
  'swarm:member-left': CustomEvent<Member>
}

/**
 * The Damselfly service: swarm membership and peer count, the piece store,
 * the piece protocol, the tracker role and the download engine, on any
 * libp2p node that also has identify and gossipsub (as `pubsub`) and,
 * ideally, a kad-dht (as `dht`).
 */
export class Damselfly extends TypedEventEmitter<DamselflyEvents> implements Startable {
  public readonly [Symbol.toStringTag] = '@damselfly/node'
  public readonly [serviceCapabilities]: string[] = ['@damselfly/node']
  public readonly [serviceDependencies]: string[] = ['@libp2p/identify', '@libp2p/pubsub']

  public readonly swarm: Swarm
  public readonly swarmName: string
  public readonly store: FsPieceStore
  public readonly transfer: PieceTransfer
  public readonly tracker: TrackerHandle
  public readonly engine: Engine
  private readonly provides: DeferredProvides
  private readonly components: DamselflyComponents
  /** signed digests of the pieces this node serves (its own from the origin, and relayed ones) */
  private readonly attestations = new PieceAttestations()
  private readonly init: ResolvedInit
  private readonly log: Logger
  private readonly kadProtocolId: string
  private startedAt = 0
  /** peer → the addresses last merged into the peer store for it (addPeerAddrs) */
  private readonly mergedAddrs = new Map<string, string>()
  private started = false
  /** removes unused tasks from the store (created at start, when the quota can be resolved against the disk) */
  private gc?: StoreGc
  /** puts back the peer store's own merge (see coalesceProtocolMerges) */
  private restoreMerge?: () => void

  constructor (components: DamselflyComponents, init: DamselflyInit) {
    super()
    if (init?.dataDir == null || init.dataDir === '') {
      throw new Error('the damselfly service needs a dataDir for its piece store')
    }
    this.components = components
    this.init = withDefaults(init, init.dataDir)
    this.swarmName = this.init.swarm
    this.log = components.logger.forComponent('damselfly:node')
    this.kadProtocolId = kadProtocol(this.init.swarm)

    this.store = new FsPieceStore({
      dir: this.init.dataDir,
      logger: components.logger,
      // a new task that does not fit on the disk, or a write that finds it full: old tasks make room
      makeRoom: async (bytes, forTaskId) => this.gc?.makeRoom(bytes, forTaskId) ?? 0
    })
    this.transfer = pieceTransfer({
      source: storeAsPieceSource(this.store, this.attestations),
      uploadSlots: this.init.uploadSlots,
      uploadRateBps: this.init.uploadRate,
      downloadRateBps: this.init.downloadRate,
      protocolVersion: init.protocolVersions?.piece
    })(components)

    this.swarm = new Swarm(components, {
      name: this.init.swarm,
      version: DAMSELFLY_VERSION,
      bootstrap: this.init.bootstrap,
      privateSwarm: this.init.privateSwarm,
      heartbeatIntervalMs: this.init.heartbeatInterval,
      maxRejoinIntervalMs: this.init.maxRejoinInterval,
      dialTimeoutMs: this.init.dialTimeout,
      kadProtocol: this.kadProtocolId,
      protocols: () => this.protocols(),
      self: () => ({
        addrs: this.addresses(),
        trackerEligible: this.isTrackerEligible(),
        load: this.transfer.stats().activeUploads,
        capacity: this.init.uploadSlots,
        protocols: this.protocols(),
        tasks: this.store.listTasks().filter(t => t.state === 'complete').length
      })
    })

    this.tracker = trackerServiceFor(components, {
      eligiblePeers: () => this.eligiblePeers(),
      protocolVersion: init.protocolVersions?.tracker,
      localTask: (taskId) => this.localTask(taskId),
      pipeline: this.init.pipeline,
      sourceGrants: { maxSourcePeers: this.init.sourcePeers }
    })

    const port = new TrackerPortAdapter({
      tracker: this.tracker,
      eligiblePeers: () => this.eligiblePeers(),
      selfAddrs: () => this.addresses(),
      uploadSlots: () => this.init.uploadSlots,
      freeUploadSlots: () => Math.max(0, this.init.uploadSlots - this.transfer.stats().activeUploads)
    })

    this.provides = new DeferredProvides({
      provide: async (taskId) => {
        await this.components.contentRouting.provide(taskCid(taskId), { signal: AbortSignal.timeout(30_000) })
      },
      bytesMoved: () => {
        const e = this.engine.stats()
        return e.bytesFromPeers + e.bytesFromOrigin + this.transfer.stats().bytesUploaded
      },
      running: () => this.engine.stats().downloads.running,
      log: this.log,
      quietMs: this.init.provideQuietMs
    })

    this.engine = new Engine({
      store: this.store,
      sources: createDefaultSources({ logger: components.logger }),
      tracker: port,
      selfPeerId: components.peerId.toString(),
      logger: components.logger,
      attest: components.privateKey == null
        ? undefined
        : async (taskId, index, digest) => {
          this.attestations.set(taskId, index, digest, await signPieceDigest(components.privateKey!, components.peerId.toString(), taskId, index, digest))
        },
      keepAttestation: (taskId, index, digest, attestation) => { this.attestations.set(taskId, index, digest, attestation) },
      fetchPieces: async (peerId, addrs, taskId, indexes, options) => {
        await this.addPeerAddrs(peerId, addrs)
        return this.transfer.fetch(peerIdFromString(peerId), taskId, indexes, options)
      },
      provide: async (taskId) => {
        this.provides.add(taskId)
        // the store grew: over its quota, make room now rather than at the next interval
        this.gc?.soon()
      },
      findProviders: async (taskId, options) => {
        const found: string[] = []
        try {
          for await (const p of this.components.contentRouting.findProviders(taskCid(taskId), { signal: options.signal })) {
            const id = p.id.toString()
            if (id !== this.components.peerId.toString() && !found.includes(id)) {
              found.push(id)
              await this.addPeerAddrs(id, p.multiaddrs.map(a => a.toString()))
            }
            if (found.length >= options.limit) {
              break
            }
          }
        } catch (err: any) {
          if (found.length === 0 && err.name !== 'AbortError' && err.name !== 'TimeoutError') {
            this.log('provider lookup for %s failed - %s', taskId, err.message)
          }
        }
        return found
      }
    })

    this.transfer.addEventListener('transfer:bad-piece', (evt) => {
      this.log.error('peer %p sent a bad piece %d of task %s (%s)', evt.detail.peer, evt.detail.index, evt.detail.taskId, evt.detail.reason)
    })

    // members' addresses come from their heartbeats: keep them in the peer
    // store so trackers and parents that are not connected yet can be dialled
    this.swarm.addEventListener('swarm:member-joined', (evt) => {
      this.addPeerAddrs(evt.detail.peerId, evt.detail.addrs).catch(() => {})
      // the newcomer may be a task's tracker now: tell it what we seed
      if (evt.detail.trackerEligible) {
        this.engine.reannounceSeeds()
      }
    })

    for (const name of ['swarm:peer-count', 'swarm:incompatible-peer', 'swarm:member-joined', 'swarm:member-left'] as const) {
      this.swarm.addEventListener(name, (evt: any) => { this.safeDispatchEvent(name, { detail: evt.detail }) })
    }

    const metrics = components.metrics
    if (metrics != null) {
      metrics.registerCounterGroup('damselfly_bytes_total', {
        label: 'source',
        help: 'Bytes moved by this node: received from peers, received from origins, uploaded to peers',
        calculate: () => {
          const e = this.engine.stats()
          return { peers: e.bytesFromPeers, origin: e.bytesFromOrigin, uploaded: this.transfer.stats().bytesUploaded }
        }
      })
      metrics.registerMetricGroup('damselfly_downloads', {
        label: 'state',
        help: 'Downloads of this node by state',
        calculate: () => ({ ...this.engine.stats().downloads })
      })
      metrics.registerMetric('damselfly_store_tasks', { help: 'Tasks in the piece store', calculate: () => this.store.stats().tasks })
      metrics.registerMetric('damselfly_store_bytes', { help: 'Bytes of verified pieces in the piece store', calculate: () => this.store.stats().bytesStored })
    }
  }

  /**
   * The Damselfly protocols this node speaks, with versions
   */
  protocols (): string[] {
    return [this.transfer.protocol, this.tracker.protocol]
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) {
      return
    }
    this.startedAt = Date.now()
    await this.store.open()
    this.gc = await this.createGc()
    await this.transfer.start()
    await this.tracker.start()
    // a stream per piece request and tracker call: skip libp2p's per-stream peer store merge when it changes nothing
    this.restoreMerge = coalesceProtocolMerges({ peerStore: this.components.peerStore, events: this.components.events })
    this.started = true
  }

  afterStart (): void {
    this.swarm.start()
    this.gc?.start()
    if (this.init.dialDiscovered) {
      this.components.events.addEventListener('peer:discovery', this.onDiscovery)
    }
    // complete tasks in the store are offered to their trackers again
    for (const task of this.store.listTasks()) {
      if (task.state === 'complete') {
        this.engine.seed(task.taskId)
      }
    }
  }

  async beforeStop (): Promise<void> {
    this.components.events.removeEventListener('peer:discovery', this.onDiscovery)
    this.provides.stop()
    this.gc?.stop()
    await this.engine.stop()
    this.swarm.stop()
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    this.restoreMerge?.()
    this.restoreMerge = undefined
    await this.tracker.stop()
    await this.transfer.stop()
    await this.store.close()
  }

  addresses (): string[] {
    return this.components.addressManager.getAddresses().map(a => a.toString())
  }

  isTrackerEligible (): boolean {
    if (this.init.supernode === 'never') {
      return false
    }
    if (this.init.supernode === 'always') {
      return true
    }
    return this.components.addressManager.getAddresses().length > 0
  }

  /**
   * The live eligible set the election runs over: live members that say they
   * are eligible, and this node when it is
   */
  eligiblePeers (): string[] {
    const out = this.swarm.membership.liveEligibleIds()
    if (this.isTrackerEligible()) {
      out.push(this.components.peerId.toString())
    }
    return out
  }

  peerCount (): number {
    return this.swarm.peerCount()
  }

  peers (): SwarmPeer[] {
    return this.swarm.peers()
  }

  members (): Member[] {
    return this.swarm.membership.members()
  }

  /**
   * Start (or join) the download of a file; `await download.done` for the result
   */
  get (request: GetRequest): Download {
    const digest = request.digest != null ? normaliseDigest(request.digest) : undefined
    const id = computeTaskId({ url: request.url, digest, tag: request.tag, application: request.application, filteredQueryParams: request.filteredQueryParams })
    return this.engine.download({
      taskId: id,
      url: request.url,
      digest,
      headers: request.headers,
      backToSource: request.backToSource ?? true,
      rateLimit: request.rateBps != null && request.rateBps > 0 ? new TokenBucket({ rateBps: request.rateBps, burstBytes: Math.max(request.rateBps, 1024 * 1024) }) : undefined
    })
  }

  /**
   * Add a local file to the store as a complete task and offer it to the swarm
   */
  async import (path: string, request: ImportRequest = {}): Promise<TaskMetadata> {
    const meta = await importFile(this.store, path, request)
    this.engine.seed(meta.taskId)
    return meta
  }

  async export (taskId: string, dest: string, options: { overwrite?: boolean } = {}): Promise<void> {
    await this.store.export(taskId, dest, options)
  }

  /**
   * Remove a task from the store, cancelling its download if one runs, and
   * stop offering it; resolves to the bytes freed
   */
  async removeTask (taskId: string): Promise<{ taskId: string, bytes: number }> {
    const d = this.engine.active(taskId)
    if (this.store.getTask(taskId) == null && d == null) {
      throw new TaskNotFoundError(`Task ${taskId} is not in the store - \`damselfly tasks\` lists the tasks`)
    }
    if (d != null) {
      d.cancel()
      await d.done.catch(() => {})
    }
    const bytes = this.store.usage().find(t => t.taskId === taskId)?.bytes ?? 0
    await this.dropTask(taskId)
    return { taskId, bytes }
  }

  /**
   * Collect the store now (`damselfly gc`): what GC's policy removes, and
   * with `olderThanMs` every idle task unused for that long too
   */
  async collectGarbage (options: CollectOptions = {}): Promise<GcReport> {
    if (this.gc == null) {
      throw new Error('the node has not started: its store GC runs once it has')
    }
    const removed = await this.gc.run(options)
    return { dryRun: options.dryRun === true, removed, store: this.store.stats(), gc: this.gc.stats() }
  }

  /** Stop offering the task and delete it from the store */
  private async dropTask (taskId: string): Promise<void> {
    this.engine.forget(taskId)
    await this.store.delete(taskId)
  }

  /** The store's tasks, when each was last used (what GC goes by), and the download of each, if any */
  tasks (): Array<TaskMetadata & { lastUsedAt?: number, download?: DownloadProgress }> {
    return listTasks(this.store).map(t => ({ ...t, download: this.engine.get(t.taskId)?.progress() }))
  }

  transferStats (): PieceTransferStats {
    return this.transfer.stats()
  }

  status (): NodeStatus {
    const gossip = this.swarm.membership.stats()
    const engine = this.engine.stats()
    return {
      peerId: this.components.peerId.toString(),
      version: DAMSELFLY_VERSION,
      swarm: this.init.swarm,
      private: this.init.privateSwarm,
      addresses: this.addresses(),
      peers: this.swarm.peerCount(),
      members: this.swarm.membership.liveCount(),
      connections: this.components.connectionManager.getConnections().length,
      uptimeMs: this.started ? Date.now() - this.startedAt : 0,
      supernode: { mode: this.init.supernode, eligible: this.isTrackerEligible() },
      protocols: this.protocols(),
      dht: { enabled: this.components.dht != null, routingTable: (this.components.dht as any)?.routingTable?.size ?? 0, provides: this.provides.stats() },
      gossip: { topic: this.swarm.membership.topic, ...gossip },
      incompatible: this.swarm.incompatiblePeers(),
      dialFailures: this.swarm.dialFailureCounts(),
      bootstrap: { configured: this.init.bootstrap, attempts: this.swarm.bootstrapAttempts(), rounds: this.swarm.joiner.rounds },
      bytes: { fromPeers: engine.bytesFromPeers, fromOrigin: engine.bytesFromOrigin, uploaded: this.transfer.stats().bytesUploaded },
      transfer: this.transfer.stats(),
      downloads: engine.downloads,
      tracker: this.tracker.stats(),
      trackedTasks: this.tracker.tasks(),
      store: { ...this.store.stats(), gc: this.gc?.stats() }
    }
  }

  private async createGc (): Promise<StoreGc> {
    return new StoreGc({
      usage: () => this.store.usage(),
      downloading: (taskId) => this.engine.active(taskId) != null,
      remove: async (taskId) => { await this.dropTask(taskId) },
      policy: { quotaBytes: await quotaBytesFor(this.init.gc.quota, this.init.dataDir), ttlMs: this.init.gc.ttlMs },
      intervalMs: this.init.gc.intervalMs,
      logger: this.components.logger
    })
  }

  /**
   * A complete task of the store, for nodes that found us as its DHT provider
   */
  private localTask (taskId: string): LocalTask | undefined {
    const meta = this.store.getTask(taskId)
    if (meta == null || meta.state !== 'complete') {
      return undefined
    }
    return {
      meta: metaInfoOf(meta),
      pieceDigests: meta.pieceDigests.map(d => d != null ? Buffer.from(d, 'hex') : undefined),
      have: this.store.have(taskId),
      addrs: this.components.addressManager.getAddresses().map(a => a.bytes),
      freeUploadSlots: Math.max(0, this.init.uploadSlots - this.transfer.stats().activeUploads)
    }
  }

  /**
   * Keep a parent's or member's addresses in the peer store so it can be
   * dialled. Called for every piece fetch, so it skips the work when nothing
   * is new: a peer store merge (lock, protobuf round trip) per fetch was 3 %
   * of a busy daemon's CPU profile in the 8-node fan-out.
   */
  private async addPeerAddrs (peerId: string, addrs: string[]): Promise<void> {
    if (addrs.length === 0) {
      return
    }
    const key = addrs.join(' ')
    if (this.mergedAddrs.get(peerId) === key) {
      return
    }
    // oldest first: forget the least recently added peer
    this.mergedAddrs.delete(peerId)
    this.mergedAddrs.set(peerId, key)
    if (this.mergedAddrs.size > MERGED_ADDRS_MEMORY) {
      this.mergedAddrs.delete(this.mergedAddrs.keys().next().value!)
    }
    try {
      await this.components.peerStore.merge(peerIdFromString(peerId), { multiaddrs: toMultiaddrs(addrs) })
    } catch (err) {
      this.mergedAddrs.delete(peerId)
      throw err
    }
  }

  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    const peer = evt.detail
    if (peer.id.equals(this.components.peerId) || this.components.connectionManager.getConnections(peer.id).length > 0) {
      return
    }
    this.components.connectionManager.openConnection(peer.id, { signal: AbortSignal.timeout(this.init.dialTimeout) })
      .catch((err) => { this.log('could not dial discovered peer %p - %e', peer.id, err) })
  }
}

/**
 * The store seen by the upload side of the piece protocol
 */
function storeAsPieceSource (store: FsPieceStore, attestations: PieceAttestations): PieceSource {
  return {
    // per piece: none of these copies the task's metadata
    pieceLength: (taskId, index) => store.pieceLength(taskId, index),
    has: (taskId, index) => store.hasTask(taskId) && store.has(taskId, index),
    digest: (taskId, index) => {
      const hex = store.pieceDigest(taskId, index)
      return hex != null ? Buffer.from(hex, 'hex') : undefined
    },
    attestation: (taskId, index, digest) => attestations.get(taskId, index, digest),
    read: async (taskId, index, options) => store.read(taskId, index, options),
    waitFor: async (taskId, index, options) => store.hasTask(taskId) && store.whenPresent(taskId, index, options)
  }
}

/**
 * The DHT key of a task: a raw CID over its id (the id is a sha256 already)
 */
export function taskCid (taskId: string): CID {
  return CID.createV1(0x55, createDigest(0x12, Buffer.from(taskId, 'hex')))
}

/**
 * The Damselfly service factory, for any libp2p node:
 *
 * ```ts
 * services: { identify: identify(), pubsub: gossipsub(), dht: kadDHT({...}), damselfly: damselfly({ dataDir: '/var/lib/damselfly' }) }
 * ```
 */
export function damselfly (init: DamselflyInit): (components: DamselflyComponents) => Damselfly {
  return (components) => new Damselfly(components, init)
}
