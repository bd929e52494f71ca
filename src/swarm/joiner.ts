import { multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_REJOIN_BASE_MS } from './constants.ts'
import { classifyDialError, refineDialFailure } from './dial-errors.ts'
import type { DialFailure } from './dial-errors.ts'
import type { ComponentLogger, Connection, Logger, AbortOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface BootstrapAttempt {
  addr: string
  at: number
  ok: boolean
  failure?: DialFailure
  error?: string
}

export interface JoinerInit {
  bootstrap: string[]
  selfPeerId: string
  privateSwarm: boolean
  maxIntervalMs: number
  dialTimeoutMs: number
  logger: ComponentLogger
  /** connected swarm peers right now */
  peerCount(): number
  dial(addr: Multiaddr, options: AbortOptions): Promise<Connection>
  onFailure?(attempt: BootstrapAttempt): void
  baseIntervalMs?: number
  random?(): number
}

/**
 * Keeps the node in the swarm: while it has no swarm peer it dials every
 * bootstrap address, round after round, waiting longer after each failed
 * round (exponential backoff with full jitter, bounded by maxIntervalMs).
 * It never gives up, and it wakes up again as soon as the last peer leaves.
 * Every failure is logged with its class (refused, timeout, swarm key, ...).
 */
export class Joiner {
  private readonly init: JoinerInit
  private readonly log: Logger
  private readonly addrs: Multiaddr[]
  private running = false
  private timer?: ReturnType<typeof setTimeout>
  private controller?: AbortController
  private round = 0
  private roundInProgress = false
  public readonly last = new Map<string, BootstrapAttempt>()
  public rounds = 0

  constructor (init: JoinerInit) {
    this.init = init
    this.log = init.logger.forComponent('damselfly:swarm:joiner')
    this.addrs = init.bootstrap
      .map(a => multiaddr(a))
      .filter(a => a.getComponents().find(c => c.name === 'p2p')?.value !== init.selfPeerId)
  }

  start (): void {
    if (this.running) {
      return
    }
    this.running = true
    this.controller = new AbortController()
    this.schedule(0)
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    this.controller?.abort()
  }

  /**
   * Call when the peer count may have dropped to zero
   */
  poke (): void {
    if (!this.running || this.roundInProgress || this.addrs.length === 0) {
      return
    }
    if (this.init.peerCount() === 0) {
      this.round = 0
      this.schedule(0)
    }
  }

  private schedule (ms: number): void {
    clearTimeout(this.timer)
    if (!this.running || this.addrs.length === 0) {
      return
    }
    this.timer = setTimeout(() => { void this.tick() }, ms)
  }

  private nextDelay (): number {
    const base = this.init.baseIntervalMs ?? DEFAULT_REJOIN_BASE_MS
    const cap = Math.min(this.init.maxIntervalMs, base * 2 ** Math.min(this.round, 20))
    const random = this.init.random ?? Math.random
    // full jitter, but never below the base so a down bootstrap is not hammered
    return Math.max(base, Math.floor(random() * cap))
  }

  private async tick (): Promise<void> {
    if (!this.running) {
      return
    }
    if (this.init.peerCount() > 0) {
      // joined: sleep until poke() says we lost every peer; check now and then anyway
      this.round = 0
      this.schedule(this.init.maxIntervalMs)
      return
    }
    this.roundInProgress = true
    this.rounds++
    try {
      await Promise.all(this.addrs.map(async addr => this.dialOne(addr)))
    } finally {
      this.roundInProgress = false
    }
    if (this.init.peerCount() > 0) {
      this.round = 0
      this.schedule(this.init.maxIntervalMs)
    } else {
      this.round++
      const delay = this.nextDelay()
      this.log('no swarm peer after bootstrap round %d; next round in %d ms', this.rounds, delay)
      this.schedule(delay)
    }
  }

  private async dialOne (addr: Multiaddr): Promise<void> {
    const signal = AbortSignal.any([this.controller!.signal, AbortSignal.timeout(this.init.dialTimeoutMs)])
    const key = addr.toString()
    try {
      await this.init.dial(addr, { signal })
      this.last.set(key, { addr: key, at: Date.now(), ok: true })
      this.log('connected to bootstrap %a', addr)
    } catch (err: any) {
      if (!this.running) {
        return
      }
      const failure = await refineDialFailure(key, classifyDialError(err, { privateSwarm: this.init.privateSwarm }), { privateSwarm: this.init.privateSwarm })
      if (!this.running) {
        return
      }
      const attempt: BootstrapAttempt = { addr: key, at: Date.now(), ok: false, failure, error: String(err?.message ?? err) }
      this.last.set(key, attempt)
      this.log.error('could not join through bootstrap %a [%s]: %s - %s', addr, failure.class, failure.cause, attempt.error)
      this.init.onFailure?.(attempt)
    }
  }
}
