import { repeatingTask } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { Heartbeat } from '../pb/members.ts'
import { FORGET_HEARTBEATS, FULL_RATE_SWARM_SIZE, HEARTBEAT_DEBOUNCE_MS, LIVE_HEARTBEATS, MAX_HEARTBEAT_INTERVAL_MS, SAME_RUN_TOLERANCE_MS, MAX_ADDR_BYTES, MAX_HEARTBEAT_ADDRS, MAX_HEARTBEAT_BYTES, MAX_HEARTBEAT_PROTOCOLS, MAX_PROTOCOL_LENGTH } from './constants.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import type { RepeatingTask } from '@libp2p/utils'

/**
 * What we know of one swarm member, from its last heartbeat
 */
export interface Member {
  peerId: string
  addrs: string[]
  trackerEligible: boolean
  load: number
  capacity: number
  protocols: string[]
  version: string
  uptimeMs: number
  intervalMs: number
  tasks: number
  /** when we last heard it (ms since epoch) */
  lastHeard: number
  live: boolean
}

export interface SelfInfo {
  addrs: string[]
  trackerEligible: boolean
  load: number
  capacity: number
  protocols: string[]
  tasks: number
}

export interface MembershipEvents {
  'member:joined': CustomEvent<Member>
  'member:left': CustomEvent<Member>
  'member:updated': CustomEvent<Member>
}

export interface MembershipInit {
  pubsub: GossipSub
  peerId: PeerId
  logger: ComponentLogger
  swarm: string
  version: string
  intervalMs: number
  self(): SelfInfo
  now?(): number
}

/** gossipsub's TopicValidatorResult values, without importing its enum at runtime */
const ACCEPT = 'accept' as any
const REJECT = 'reject' as any
const IGNORE = 'ignore' as any

interface Entry {
  hb: Heartbeat
  lastHeard: number
  live: boolean
}

/**
 * Signed membership heartbeats on `damselfly/<swarm>/members/1` and the live
 * member table built from them.
 */
export class Membership extends TypedEventEmitter<MembershipEvents> {
  public readonly topic: string
  private readonly init: MembershipInit
  private readonly log: Logger
  private readonly entries = new Map<string, Entry>()
  private readonly startedAt: number
  private readonly now: () => number
  private seq = 0n
  private readonly sweeper: RepeatingTask
  private next?: ReturnType<typeof setTimeout>
  /** The interval the last heartbeat announced: the next one is due within it */
  private lastIntervalMs: number
  private soon?: ReturnType<typeof setTimeout>
  private running = false
  private published = 0
  private rejected = 0

  constructor (init: MembershipInit) {
    super()
    this.init = init
    this.topic = membersTopic(init.swarm)
    this.log = init.logger.forComponent('damselfly:swarm:membership')
    this.now = init.now ?? Date.now
    this.startedAt = this.now()
    this.lastIntervalMs = init.intervalMs
    this.sweeper = repeatingTask(() => { this.sweep() }, Math.max(100, Math.floor(init.intervalMs / 2)))
  }

  start (): void {
    if (this.running) {
      return
    }
    this.running = true
    const ps = this.init.pubsub
    ps.topicValidators.set(this.topic, (peer, msg) => this.validate(peer, msg))
    ps.addEventListener('message', this.onMessage)
    ps.addEventListener('subscription-change', this.onSubscriptionChange)
    ps.subscribe(this.topic)
    this.sweeper.start()
    queueMicrotask(() => { void this.tick() })
  }

  stop (): void {
    if (!this.running) {
      return
    }
    this.running = false
    clearTimeout(this.soon)
    clearTimeout(this.next)
    this.sweeper.stop()
    const ps = this.init.pubsub
    ps.removeEventListener('message', this.onMessage)
    ps.removeEventListener('subscription-change', this.onSubscriptionChange)
    ps.topicValidators.delete(this.topic)
    try {
      ps.unsubscribe(this.topic)
    } catch {
      // pubsub already stopped with the node
    }
  }

  /**
   * Members heard recently, live or not (we are not in the list)
   */
  members (): Member[] {
    return [...this.entries.entries()].map(([id, e]) => toMember(id, e, this.fresh(e)))
  }

  liveMembers (): Member[] {
    return this.members().filter(m => m.live)
  }

  /**
   * Ids of the live members that say they may serve as trackers: what every
   * tracker request elects over, so it builds no Member objects (their
   * addresses decoded) as members() does
   */
  liveEligibleIds (): string[] {
    const out: string[] = []
    for (const [id, e] of this.entries) {
      if (e.hb.trackerEligible && this.fresh(e)) {
        out.push(id)
      }
    }
    return out
  }

  liveCount (): number {
    let n = 0
    for (const e of this.entries.values()) {
      if (this.fresh(e)) {
        n++
      }
    }
    return n
  }

  isLive (peerId: string): boolean {
    const e = this.entries.get(peerId)
    return e != null && this.fresh(e)
  }

  private fresh (e: Entry): boolean {
    return this.now() - e.lastHeard <= LIVE_HEARTBEATS * e.hb.intervalMs
  }

  get (peerId: string): Member | undefined {
    const e = this.entries.get(peerId)
    return e == null ? undefined : toMember(peerId, e, this.fresh(e))
  }

  stats (): { published: number, rejected: number, meshPeers: number, topicPeers: number } {
    const ps = this.init.pubsub as any
    const mesh = typeof ps.getMeshPeers === 'function' ? ps.getMeshPeers(this.topic).length : 0
    return { published: this.published, rejected: this.rejected, meshPeers: mesh, topicPeers: this.init.pubsub.getSubscribers(this.topic).length }
  }

  /**
   * The interval this node heartbeats at now: the configured one, longer in a
   * swarm of more than FULL_RATE_SWARM_SIZE nodes
   */
  private intervalMs (): number {
    return heartbeatInterval(this.init.intervalMs, this.liveCount() + 1)
  }

  /** Publish, then again one (current) interval later */
  private async tick (): Promise<void> {
    if (!this.running) {
      return
    }
    try {
      await this.publish()
    } catch (err: any) {
      this.log.error('could not build a heartbeat - %e', err)
    } finally {
      if (this.running) {
        clearTimeout(this.next)
        this.next = setTimeout(() => { void this.tick() }, this.lastIntervalMs)
      }
    }
  }

  /**
   * Publish a heartbeat now (it also runs every interval)
   */
  async publish (): Promise<void> {
    if (!this.running) {
      return
    }
    const self = this.init.self()
    const hb: Heartbeat = {
      swarm: this.init.swarm,
      version: this.init.version,
      addrs: self.addrs.slice(0, MAX_HEARTBEAT_ADDRS).map(a => multiaddr(a).bytes).filter(b => b.byteLength <= MAX_ADDR_BYTES),
      trackerEligible: self.trackerEligible,
      load: self.load,
      capacity: self.capacity,
      protocols: self.protocols.slice(0, MAX_HEARTBEAT_PROTOCOLS).filter(p => p.length <= MAX_PROTOCOL_LENGTH),
      uptimeMs: BigInt(this.now() - this.startedAt),
      intervalMs: this.intervalMs(),
      seq: ++this.seq,
      tasks: self.tasks
    }
    this.lastIntervalMs = hb.intervalMs
    try {
      await this.init.pubsub.publish(this.topic, Heartbeat.encode(hb))
      this.published++
    } catch (err: any) {
      // no subscribed peer yet is normal while joining
      this.log.trace('could not publish heartbeat - %e', err)
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some(s => s.topic === this.topic && s.subscribe)) {
      // a peer joined the topic: tell it about us now rather than up to one interval later
      clearTimeout(this.soon)
      this.soon = setTimeout(() => { void this.publish() }, HEARTBEAT_DEBOUNCE_MS)
    }
  }

  private decode (data: Uint8Array): Heartbeat | undefined {
    if (data.byteLength > MAX_HEARTBEAT_BYTES) {
      return undefined
    }
    let hb: Heartbeat
    try {
      hb = Heartbeat.decode(data, { limits: { addrs: MAX_HEARTBEAT_ADDRS, protocols: MAX_HEARTBEAT_PROTOCOLS } })
    } catch {
      return undefined
    }
    if (hb.swarm !== this.init.swarm || hb.version.length > 32 || hb.intervalMs < 100 || hb.intervalMs > MAX_HEARTBEAT_INTERVAL_MS) {
      return undefined
    }
    if (hb.addrs.some(a => a.byteLength > MAX_ADDR_BYTES) || hb.protocols.some(p => p.length > MAX_PROTOCOL_LENGTH)) {
      return undefined
    }
    try {
      hb.addrs.forEach(a => multiaddr(a))
    } catch {
      return undefined
    }
    return hb
  }

  private validate (_peer: PeerId, msg: Message): any {
    if (msg.type !== 'signed') {
      this.rejected++
      return REJECT
    }
    if (msg.from.equals(this.init.peerId)) {
      return IGNORE
    }
    if (this.decode(msg.data) == null) {
      this.rejected++
      this.log('rejected a malformed heartbeat from %p', msg.from)
      return REJECT
    }
    return ACCEPT
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.topic !== this.topic || msg.type !== 'signed' || msg.from.equals(this.init.peerId)) {
      return
    }
    const hb = this.decode(msg.data)
    if (hb == null) {
      return
    }
    const id = msg.from.toString()
    const prev = this.entries.get(id)
    const now = this.now()
    if (prev != null && !supersedes(prev, hb, now)) {
      // a duplicate, or an older heartbeat delivered late
      return
    }
    const entry: Entry = { hb, lastHeard: now, live: true }
    this.entries.set(id, entry)
    const member = toMember(id, entry, true)
    if (prev == null || !prev.live) {
      this.log('member %s joined (%s, eligible=%s)', id, hb.version, hb.trackerEligible)
      this.safeDispatchEvent('member:joined', { detail: member })
    } else {
      if (prev.hb.trackerEligible !== hb.trackerEligible) {
        this.log('member %s is %s tracker-eligible (%d addresses)', id, hb.trackerEligible ? 'now' : 'no longer', hb.addrs.length)
      }
      this.safeDispatchEvent('member:updated', { detail: member })
    }
  }

  private sweep (): void {
    const now = this.now()
    for (const [id, e] of this.entries) {
      const age = now - e.lastHeard
      if (e.live && age > LIVE_HEARTBEATS * e.hb.intervalMs) {
        e.live = false
        this.log('member %s left (not heard for %d ms)', id, age)
        this.safeDispatchEvent('member:left', { detail: toMember(id, e, false) })
      }
      if (age > FORGET_HEARTBEATS * e.hb.intervalMs) {
        this.entries.delete(id)
      }
    }
  }
}

/**
 * The heartbeat interval for a swarm of `swarmSize` nodes (this one included):
 * `baseMs` up to FULL_RATE_SWARM_SIZE nodes, then in proportion to the swarm,
 * at most MAX_HEARTBEAT_INTERVAL_MS
 */
export function heartbeatInterval (baseMs: number, swarmSize: number): number {
  const scaled = Math.round(baseMs * Math.max(1, swarmSize / FULL_RATE_SWARM_SIZE))
  return Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(baseMs, scaled))
}

/**
 * Whether heartbeat `hb`, arriving at `now`, replaces what we hold of its
 * member (`prev`, heard at `prev.lastHeard`). Within one run of the member a
 * higher seq wins. Across runs (a restart resets seq and uptime) the later
 * run wins. Before, a late copy of a member's first heartbeat - sent before
 * it listened, so with no address and not tracker-eligible - replaced newer
 * ones for up to an interval, and nodes elected different trackers.
 */
export function supersedes (prev: { hb: Pick<Heartbeat, 'seq' | 'uptimeMs' | 'intervalMs'>, lastHeard: number }, hb: Pick<Heartbeat, 'seq' | 'uptimeMs'>, now: number): boolean {
  const prevStart = prev.lastHeard - Number(prev.hb.uptimeMs)
  const start = now - Number(hb.uptimeMs)
  if (Math.abs(start - prevStart) < Math.max(SAME_RUN_TOLERANCE_MS, prev.hb.intervalMs)) {
    return hb.seq > prev.hb.seq
  }
  return start > prevStart
}

export function membersTopic (swarm: string): string {
  return `damselfly/${swarm}/members/1`
}

function toMember (peerId: string, e: Entry, live: boolean): Member {
  return {
    peerId,
    addrs: e.hb.addrs.map(a => multiaddr(a).toString()),
    trackerEligible: e.hb.trackerEligible,
    load: e.hb.load,
    capacity: e.hb.capacity,
    protocols: e.hb.protocols,
    version: e.hb.version,
    uptimeMs: Number(e.hb.uptimeMs),
    intervalMs: e.hb.intervalMs,
    tasks: e.hb.tasks,
    lastHeard: e.lastHeard,
    live
  }
}
