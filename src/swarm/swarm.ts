import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { DIAL_FAILURE_CLASSES } from './dial-errors.ts'
import { Joiner } from './joiner.ts'
import { Membership } from './membership.ts'
import { findIncompatibilities } from './versions.ts'
import type { DialFailureClass } from './dial-errors.ts'
import type { BootstrapAttempt } from './joiner.ts'
import type { Member, SelfInfo } from './membership.ts'
import type { Incompatibility } from './versions.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { ComponentLogger, Connection, CounterGroup, IdentifyResult, Libp2pEvents, Logger, Metrics, PeerId, TypedEventTarget, AbortOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface SwarmComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  metrics?: Metrics
  connectionManager: {
    getConnections(peerId?: PeerId): Connection[]
    openConnection(peer: PeerId | Multiaddr | Multiaddr[], options?: AbortOptions): Promise<Connection>
  }
  pubsub: GossipSub
  dht?: unknown
}

export interface SwarmInit {
  name: string
  version: string
  bootstrap: string[]
  privateSwarm: boolean
  heartbeatIntervalMs: number
  maxRejoinIntervalMs: number
  dialTimeoutMs: number
  /** the protocols (with versions) we speak; used to judge remotes */
  protocols(): string[]
  /** what our heartbeats say about us */
  self(): SelfInfo
  /** the DHT protocol of this swarm: a remote that speaks it is in the swarm */
  kadProtocol: string
}

export interface SwarmPeer {
  peerId: string
  addrs: string[]
  direction: 'inbound' | 'outbound'
  member: boolean
  version?: string
  agent?: string
  trackerEligible?: boolean
  incompatible?: Incompatibility[]
}

export interface SwarmEvents {
  'swarm:peer-count': CustomEvent<number>
  'swarm:incompatible-peer': CustomEvent<Incompatibility>
  'swarm:member-joined': CustomEvent<Member>
  'swarm:member-left': CustomEvent<Member>
}

/**
 * Who is in our swarm: the connected swarm peers, the live members heard
 * through gossip, peers whose protocol versions do not match ours, and the
 * joiner that keeps us connected.
 */
export class Swarm extends TypedEventEmitter<SwarmEvents> {
  public readonly membership: Membership
  public readonly joiner: Joiner
  private readonly components: SwarmComponents
  private readonly init: SwarmInit
  private readonly log: Logger
  /** peers whose identify showed this swarm's DHT protocol, with their agent */
  private readonly identified = new Map<string, { agent?: string, protocols: string[] }>()
  private readonly incompatible = new Map<string, Incompatibility[]>()
  private readonly dialFailures: Record<DialFailureClass, number>
  private dialFailureCounter?: CounterGroup
  private lastCount = 0
  private running = false

  constructor (components: SwarmComponents, init: SwarmInit) {
    super()
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('damselfly:swarm')
    this.dialFailures = Object.fromEntries(DIAL_FAILURE_CLASSES.map(c => [c, 0])) as Record<DialFailureClass, number>
    this.membership = new Membership({
      pubsub: components.pubsub,
      peerId: components.peerId,
      logger: components.logger,
      swarm: init.name,
      version: init.version,
      intervalMs: init.heartbeatIntervalMs,
      self: init.self
    })
    this.joiner = new Joiner({
      bootstrap: init.bootstrap,
      selfPeerId: components.peerId.toString(),
      privateSwarm: init.privateSwarm,
      maxIntervalMs: init.maxRejoinIntervalMs,
      dialTimeoutMs: init.dialTimeoutMs,
      logger: components.logger,
      peerCount: () => this.peerCount(),
      dial: async (addr, options) => components.connectionManager.openConnection(addr, options),
      onFailure: (attempt) => { this.countDialFailure(attempt) }
    })

    const metrics = components.metrics
    if (metrics != null) {
      metrics.registerMetric('damselfly_swarm_peers', { help: 'Connected peers of this swarm', calculate: () => this.peerCount() })
      metrics.registerMetric('damselfly_swarm_members', { help: 'Live swarm members (heartbeat heard within 3 intervals)', calculate: () => this.membership.liveCount() })
      metrics.registerMetric('damselfly_swarm_incompatible_peers', { help: 'Peers that speak our protocols only in incompatible versions', calculate: () => this.incompatible.size })
      metrics.registerCounter('damselfly_swarm_bootstrap_rounds_total', { help: 'Rounds of bootstrap dials made while the node had no peer', calculate: () => this.joiner.rounds })
      this.dialFailureCounter = metrics.registerCounterGroup('damselfly_swarm_dial_failures_total', { label: 'class', help: 'Failed bootstrap dials by class' })
    }
  }

  start (): void {
    if (this.running) {
      return
    }
    this.running = true
    const events = this.components.events
    events.addEventListener('peer:identify', this.onIdentify)
    events.addEventListener('peer:disconnect', this.onDisconnect)
    events.addEventListener('peer:connect', this.onConnect)
    this.membership.addEventListener('member:joined', this.onMemberJoined)
    this.membership.addEventListener('member:left', this.onMemberLeft)
    this.membership.start()
    this.joiner.start()
  }

  stop (): void {
    if (!this.running) {
      return
    }
    this.running = false
    const events = this.components.events
    events.removeEventListener('peer:identify', this.onIdentify)
    events.removeEventListener('peer:disconnect', this.onDisconnect)
    events.removeEventListener('peer:connect', this.onConnect)
    this.membership.removeEventListener('member:joined', this.onMemberJoined)
    this.membership.removeEventListener('member:left', this.onMemberLeft)
    this.joiner.stop()
    this.membership.stop()
  }

  /**
   * Connected peers that are in this swarm: they speak its DHT protocol, are
   * subscribed to its members topic, or are live members.
   */
  swarmPeerIds (): string[] {
    const subscribers = new Set(this.components.pubsub.getSubscribers(this.membership.topic).map(p => p.toString()))
    const out = new Set<string>()
    for (const conn of this.components.connectionManager.getConnections()) {
      if (conn.status !== 'open') {
        continue
      }
      const id = conn.remotePeer.toString()
      if (this.identified.has(id) || subscribers.has(id) || this.membership.isLive(id)) {
        out.add(id)
      }
    }
    return [...out]
  }

  peerCount (): number {
    return this.swarmPeerIds().length
  }

  peers (): SwarmPeer[] {
    return this.swarmPeerIds().map(id => {
      const conns = this.components.connectionManager.getConnections(peerIdFromString(id))
      const member = this.membership.get(id)
      return {
        peerId: id,
        addrs: [...new Set(conns.map(c => c.remoteAddr.toString()))],
        direction: conns[0]?.direction ?? 'outbound',
        member: member?.live === true,
        version: member?.version,
        agent: this.identified.get(id)?.agent,
        trackerEligible: member?.trackerEligible,
        incompatible: this.incompatible.get(id)
      }
    })
  }

  incompatiblePeers (): Incompatibility[] {
    return [...this.incompatible.values()].flat()
  }

  dialFailureCounts (): Record<DialFailureClass, number> {
    return { ...this.dialFailures }
  }

  bootstrapAttempts (): BootstrapAttempt[] {
    return [...this.joiner.last.values()]
  }

  private countDialFailure (attempt: BootstrapAttempt): void {
    const cls = attempt.failure?.class ?? 'other'
    this.dialFailures[cls]++
    this.dialFailureCounter?.increment({ [cls]: true })
  }

  private checkCount (): void {
    const n = this.peerCount()
    if (n !== this.lastCount) {
      this.lastCount = n
      this.safeDispatchEvent('swarm:peer-count', { detail: n })
      if (n === 0) {
        this.log('lost every swarm peer; rejoining through the bootstrap list')
        this.joiner.poke()
      }
    }
  }

  private judge (peerId: string, protocols: string[]): void {
    const found = findIncompatibilities(peerId, this.init.protocols(), protocols)
    if (found.length === 0) {
      this.incompatible.delete(peerId)
      return
    }
    const known = this.incompatible.get(peerId)
    this.incompatible.set(peerId, found)
    if (known == null) {
      for (const inc of found) {
        this.log.error('peer %s speaks /damselfly/%s/%s but we speak %s; it cannot exchange %s with us - run the same major version of Damselfly on both', peerId, inc.protocol, inc.theirs, inc.ours, inc.protocol)
        this.safeDispatchEvent('swarm:incompatible-peer', { detail: inc })
      }
    }
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const { peerId, protocols, agentVersion } = evt.detail
    const id = peerId.toString()
    this.judge(id, protocols)
    if (protocols.includes(this.init.kadProtocol) || protocols.some(p => p.startsWith('/damselfly/'))) {
      this.identified.set(id, { agent: agentVersion, protocols })
    }
    this.checkCount()
  }

  private readonly onConnect = (): void => {
    this.checkCount()
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.identified.delete(evt.detail.toString())
    this.incompatible.delete(evt.detail.toString())
    this.checkCount()
  }

  private readonly onMemberJoined = (evt: CustomEvent<Member>): void => {
    this.judge(evt.detail.peerId, evt.detail.protocols)
    this.safeDispatchEvent('swarm:member-joined', { detail: evt.detail })
    this.checkCount()
  }

  private readonly onMemberLeft = (evt: CustomEvent<Member>): void => {
    this.safeDispatchEvent('swarm:member-left', { detail: evt.detail })
    this.checkCount()
  }
}
