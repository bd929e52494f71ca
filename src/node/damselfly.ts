import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { Swarm } from '../swarm/index.ts'
import { DAMSELFLY_VERSION, PROTOCOL_VERSIONS } from '../version.ts'
import type { BootstrapAttempt, DialFailureClass, Incompatibility, Member, SwarmPeer } from '../swarm/index.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { ComponentLogger, Libp2pEvents, Logger, Metrics, PeerId, Startable, TypedEventTarget, PeerInfo } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'

export type SupernodeMode = 'auto' | 'always' | 'never'

/**
 * Options of the Damselfly libp2p service. Every field is optional.
 */
export interface DamselflyInit {
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
   * Dial peers found by any discovery mechanism (mDNS does not dial by itself)
   *
   * @default false
   */
  dialDiscovered?: boolean
  /**
   * Upload slots announced to the swarm
   *
   * @default 16
   */
  uploadSlots?: number
  /**
   * Override protocol versions (tests of version mismatch only)
   */
  protocolVersions?: Partial<Record<'piece' | 'tracker', string>>
}

export interface DamselflyComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  metrics?: Metrics
  connectionManager: ConnectionManager
  addressManager: AddressManager
  registrar: Registrar
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
  dht: { enabled: boolean, routingTable: number }
  gossip: { topic: string, meshPeers: number, topicPeers: number, published: number, rejected: number }
  incompatible: Incompatibility[]
  dialFailures: Record<DialFailureClass, number>
  bootstrap: { configured: string[], attempts: BootstrapAttempt[], rounds: number }
}

export interface DamselflyEvents {
  'swarm:peer-count': CustomEvent<number>
  'swarm:incompatible-peer': CustomEvent<Incompatibility>
  'swarm:member-joined': CustomEvent<Member>
  'swarm:member-left': CustomEvent<Member>
}

/**
 * The Damselfly service: swarm membership and peer count (and, as they land,
 * the piece store, piece transfer, tracker and downloads) on any libp2p node
 * that also has identify and gossipsub (as `pubsub`) and, ideally, a kad-dht
 * (as `dht`).
 */
export class Damselfly extends TypedEventEmitter<DamselflyEvents> implements Startable {
  public readonly [Symbol.toStringTag] = '@damselfly/node'
  public readonly [serviceCapabilities]: string[] = ['@damselfly/node']
  public readonly [serviceDependencies]: string[] = ['@libp2p/identify', '@libp2p/pubsub']

  public readonly swarm: Swarm
  public readonly swarmName: string
  private readonly components: DamselflyComponents
  private readonly init: Required<Omit<DamselflyInit, 'protocolVersions'>>
  private readonly log: Logger
  private readonly protocolIds: { piece: string, tracker: string, kad: string }
  private startedAt = 0
  private started = false

  constructor (components: DamselflyComponents, init: DamselflyInit = {}) {
    super()
    this.components = components
    this.init = {
      swarm: init.swarm ?? 'default',
      bootstrap: init.bootstrap ?? [],
      privateSwarm: init.privateSwarm ?? false,
      heartbeatInterval: init.heartbeatInterval ?? 5000,
      maxRejoinInterval: init.maxRejoinInterval ?? 30_000,
      dialTimeout: init.dialTimeout ?? 10_000,
      supernode: init.supernode ?? 'auto',
      dialDiscovered: init.dialDiscovered ?? false,
      uploadSlots: init.uploadSlots ?? 16
    }
    this.swarmName = this.init.swarm
    this.log = components.logger.forComponent('damselfly:node')
    this.protocolIds = {
      piece: `/damselfly/piece/${init.protocolVersions?.piece ?? PROTOCOL_VERSIONS.piece}`,
      tracker: `/damselfly/tracker/${init.protocolVersions?.tracker ?? PROTOCOL_VERSIONS.tracker}`,
      kad: kadProtocol(this.init.swarm)
    }

    this.swarm = new Swarm(components, {
      name: this.init.swarm,
      version: DAMSELFLY_VERSION,
      bootstrap: this.init.bootstrap,
      privateSwarm: this.init.privateSwarm,
      heartbeatIntervalMs: this.init.heartbeatInterval,
      maxRejoinIntervalMs: this.init.maxRejoinInterval,
      dialTimeoutMs: this.init.dialTimeout,
      kadProtocol: this.protocolIds.kad,
      protocols: () => this.protocols(),
      self: () => ({
        addrs: this.addresses(),
        trackerEligible: this.isTrackerEligible(),
        load: 0,
        capacity: this.init.uploadSlots,
        protocols: this.protocols(),
        tasks: 0
      })
    })
    for (const name of ['swarm:peer-count', 'swarm:incompatible-peer', 'swarm:member-joined', 'swarm:member-left'] as const) {
      this.swarm.addEventListener(name, (evt: any) => { this.safeDispatchEvent(name, { detail: evt.detail }) })
    }
  }

  /**
   * The Damselfly protocols this node speaks, with versions
   */
  protocols (): string[] {
    return [this.protocolIds.piece, this.protocolIds.tracker]
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) {
      return
    }
    this.startedAt = Date.now()
    // the piece and tracker handlers land with their services; until then we
    // register the ids so identify announces our versions
    for (const protocol of this.protocols()) {
      await this.components.registrar.handle(protocol, (stream) => { stream.abort(new Error('not served yet')) }, { maxInboundStreams: 1, maxOutboundStreams: 1 })
    }
    this.started = true
  }

  afterStart (): void {
    this.swarm.start()
    if (this.init.dialDiscovered) {
      this.components.events.addEventListener('peer:discovery', this.onDiscovery)
    }
  }

  beforeStop (): void {
    this.components.events.removeEventListener('peer:discovery', this.onDiscovery)
    this.swarm.stop()
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    for (const protocol of this.protocols()) {
      await this.components.registrar.unhandle(protocol)
    }
    this.started = false
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
    return this.addresses().length > 0
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

  status (): NodeStatus {
    const gossip = this.swarm.membership.stats()
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
      dht: { enabled: this.components.dht != null, routingTable: (this.components.dht as any)?.routingTable?.size ?? 0 },
      gossip: { topic: this.swarm.membership.topic, ...gossip },
      incompatible: this.swarm.incompatiblePeers(),
      dialFailures: this.swarm.dialFailureCounts(),
      bootstrap: { configured: this.init.bootstrap, attempts: this.swarm.bootstrapAttempts(), rounds: this.swarm.joiner.rounds }
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

export function kadProtocol (swarm: string): string {
  return `/damselfly/${swarm}/kad/${PROTOCOL_VERSIONS.kad}`
}

/**
 * The Damselfly service factory, for any libp2p node:
 *
 * ```ts
 * services: { identify: identify(), pubsub: gossipsub(), dht: kadDHT({...}), damselfly: damselfly({ swarm: 'x' }) }
 * ```
 */
export function damselfly (init: DamselflyInit = {}): (components: DamselflyComponents) => Damselfly {
  return (components) => new Damselfly(components, init)
}
