/**
 * A private network for the fan-out benchmark: one namespace per host (the
 * origin and every peer) on a bridge of our own, each host's veth capped with
 * `tc tbf` at B in both directions - egress of the namespace-side end is the
 * host's upload, egress of the bridge-side end its download.
 *
 * Addresses come from 10.77.0.0/24 and exist only inside our namespaces; the
 * bridge has no address, so nothing we start can reach or be reached from
 * outside. Every name starts with a per-process prefix (namespaces
 * `dfly-<pid>-…`, links `df<pid>…` - interface names have at most 15
 * characters), and destroy() removes them all.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'

/** The subnet of the lab; the origin is .1, peer i (0-based) is .(10 + i) */
const SUBNET_PREFIX = '10.77.0.'
const SUBNET_BITS = 24
const ORIGIN_HOST = 1
const FIRST_PEER_HOST = 10

/**
 * tbf queue: packets wait at most this long before they are dropped. 50 ms
 * is about a switch port buffer; longer only adds latency to a saturated link.
 */
const TBF_LATENCY_MS = 50

/**
 * The largest packet TCP hands a veth at once: a GSO packet of up to 64 KiB of
 * payload (a NIC with TSO takes the same and cuts it in hardware).
 */
const GSO_MAX_BYTES = 64 * 1024

/**
 * tbf bucket: at least this many bytes. tbf cuts a packet larger than its
 * bucket into MTU-sized ones and arms a timer for each, and in a VM every timer
 * is an interrupt: with a 32 KiB bucket the lab cost the shared cores a quarter
 * to a third of their time (README, Benchmarks). Three GSO packets (their
 * segments' headers included) pass whole; the rate over a second stays B.
 */
const TBF_MIN_BURST_BYTES = 3 * GSO_MAX_BYTES

/** Ethernet's; the largest a veth takes is 65535 */
export const DEFAULT_MTU = 1500
export const MIN_MTU = 576
export const MAX_MTU = 65535

/** What differs from the plain lab */
export interface LabOptions {
  /** `key=value` settings applied in every namespace (default: BENCH_NETNS_SYSCTL, comma-separated) */
  sysctls?: string[]
  /** one peer (its index into `peers`) capped at a lower rate (Mbit/s), both ways */
  slow?: { peer: number, rateMbit: number }
  /**
   * MTU of every link (default 1500). A backlogged tbf queue sends one packet
   * per timer; TCP's GSO packets carry up to 64 KiB whatever the MTU, so the
   * MTU matters where they are cut (one timer per segment), as they were with
   * the bucket smaller than one (see README, Benchmarks).
   */
  mtu?: number
}

export interface LabHost {
  /** network namespace name */
  ns: string
  /** IPv4 address inside the namespace */
  ip: string
  /** veth end on the bridge (root namespace) */
  hostIf: string
  /** veth end inside the namespace */
  nsIf: string
}

function run (cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err: any) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`)
  }
}

function tryRun (cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * Why netns mode cannot run here, or undefined when it can
 */
export function netnsUnavailable (): string | undefined {
  if (process.platform !== 'linux') {
    return 'netns mode needs Linux network namespaces'
  }
  if (process.getuid?.() !== 0) {
    return 'netns mode needs root (it creates network namespaces, veth pairs, a bridge and tc qdiscs) - run the bench as root, e.g. sudo npm run bench -- fanout'
  }
  if (!tryRun('ip', ['-V'])) {
    return 'netns mode needs the `ip` command (iproute2) - install iproute2'
  }
  if (!tryRun('tc', ['-V'])) {
    return 'netns mode needs the `tc` command (iproute2) - install iproute2'
  }
  const probe = `dfly-${process.pid}-probe`
  try {
    run('ip', ['netns', 'add', probe])
  } catch (err: any) {
    return `cannot create a network namespace here (${err.message}) - run on a host or a privileged container`
  } finally {
    tryRun('ip', ['netns', 'del', probe])
  }
  return undefined
}

function pidAlive (pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`)
}

/**
 * Remove namespaces and links left by an earlier benchmark process that died
 * without cleaning up (killed with SIGKILL): only names with our prefixes
 * whose process no longer exists. Returns what was removed.
 */
export function removeStale (): string[] {
  const removed: string[] = []
  const namespaces = run('ip', ['netns', 'list']).split('\n').map(l => l.split(' ')[0]).filter(Boolean)

  for (const ns of namespaces) {
    const m = /^dfly-(\d+)-/.exec(ns)
    if (m != null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      tryRun('ip', ['netns', 'del', ns])
      removed.push(ns)
    }
  }

  const links = run('ip', ['-o', 'link', 'show']).split('\n')
    .map(l => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n != null)

  for (const link of links) {
    const m = /^df(\d+)(br|h\d+)$/.exec(link)
    if (m != null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      tryRun('ip', ['link', 'del', link])
      removed.push(link)
    }
  }

  return removed
}

/**
 * The namespaces, veths and bridge of one scenario
 */
export class NetnsLab {
  public readonly origin: LabHost
  public readonly peers: LabHost[]
  public readonly rateMbit: number
  private readonly bridge: string
  private readonly created: { namespaces: string[], bridge: boolean } = { namespaces: [], bridge: false }

  /** `key=value` settings applied in every namespace */
  private readonly sysctls: string[]

  /** MTU of every link */
  public readonly mtu: number

  /** one peer (index into `peers`) capped at a lower rate, both ways */
  public readonly slow?: { peer: number, rateMbit: number }

  /**
   * @param peers - peer hosts besides the origin
   * @param rateMbit - tbf rate of every link in each direction, Mbit/s
   * @param tag - distinguishes labs of one process (e.g. the scenario number)
   * @param options - what differs from the plain lab
   */
  constructor (peers: number, rateMbit: number, tag: number, options: LabOptions = {}) {
    const pid = process.pid
    this.rateMbit = rateMbit
    this.slow = options.slow
    this.sysctls = options.sysctls ?? (process.env.BENCH_NETNS_SYSCTL ?? '').split(',').filter(s => s !== '')
    this.mtu = options.mtu ?? DEFAULT_MTU
    if (!Number.isInteger(this.mtu) || this.mtu < MIN_MTU || this.mtu > MAX_MTU) {
      throw new Error(`MTU ${this.mtu} is out of range: use a whole number of bytes from ${MIN_MTU} to ${MAX_MTU}`)
    }
    this.bridge = `df${pid}br`
    const host = (i: number, name: string, ip: number): LabHost => ({
      ns: `dfly-${pid}-${tag}-${name}`,
      ip: `${SUBNET_PREFIX}${ip}`,
      hostIf: `df${pid}h${i}`,
      nsIf: `df${pid}p${i}`
    })
    this.origin = host(0, 'origin', ORIGIN_HOST)
    this.peers = Array.from({ length: peers }, (_, i) => host(i + 1, `peer${i + 1}`, FIRST_PEER_HOST + i))
  }

  /** every name this lab uses, for messages */
  names (): string[] {
    return [this.bridge, ...[this.origin, ...this.peers].map(h => h.ns)]
  }

  /**
   * Create the bridge, the namespaces and the capped veths. On failure what
   * was created is removed again.
   */
  create (): void {
    try {
      run('ip', ['link', 'add', this.bridge, 'type', 'bridge'])
      this.created.bridge = true
      run('ip', ['link', 'set', this.bridge, 'up'])

      for (const h of [this.origin, ...this.peers]) {
        const rate = this.slow != null && h === this.peers[this.slow.peer] ? this.slow.rateMbit : this.rateMbit
        run('ip', ['netns', 'add', h.ns])
        this.created.namespaces.push(h.ns)
        run('ip', ['link', 'add', h.hostIf, 'type', 'veth', 'peer', 'name', h.nsIf, 'netns', h.ns])
        run('ip', ['link', 'set', h.hostIf, 'mtu', String(this.mtu), 'master', this.bridge, 'up'])
        run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/${SUBNET_BITS}`, 'dev', h.nsIf])
        run('ip', ['-n', h.ns, 'link', 'set', h.nsIf, 'mtu', String(this.mtu), 'up'])
        run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up'])
        for (const setting of this.sysctls) {
          run('ip', ['netns', 'exec', h.ns, 'sysctl', '-q', '-w', setting])
        }
        // download: what the bridge sends into the namespace
        run('tc', ['qdisc', 'replace', 'dev', h.hostIf, 'root', ...this.tbf(rate)])
        // upload: what the namespace sends out
        run('tc', ['-n', h.ns, 'qdisc', 'replace', 'dev', h.nsIf, 'root', ...this.tbf(rate)])
      }
    } catch (err) {
      this.destroy()
      throw err
    }
  }

  private tbf (rateMbit: number): string[] {
    const bytesPerS = rateMbit * 1e6 / 8
    // at least one timer tick (1 ms at HZ=1000, 4 ms at HZ=250) of tokens, or
    // the rate cannot be reached; the minimum already holds two packets of the
    // largest MTU (tbf drops a larger packet, or cuts a larger GSO packet up)
    const burst = Math.max(TBF_MIN_BURST_BYTES, Math.ceil(bytesPerS * 0.004))

    return ['tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', `${TBF_LATENCY_MS}ms`]
  }

  /** The qdisc lines of one host's two veth ends, to show what is configured */
  describeCaps (h: LabHost): string[] {
    return [
      run('tc', ['qdisc', 'show', 'dev', h.hostIf]).trim(),
      run('tc', ['-n', h.ns, 'qdisc', 'show', 'dev', h.nsIf]).trim()
    ]
  }

  /** bytes the namespace sent out of its veth (link level: headers included) */
  txBytes (h: LabHost): number {
    return hostEndCounter(h, 'rx_bytes')
  }

  /** bytes the namespace received through its veth (link level: headers and resent segments included) */
  rxBytes (h: LabHost): number {
    return hostEndCounter(h, 'tx_bytes')
  }

  /**
   * Remove every namespace and the bridge (the veths go with their
   * namespaces). Synchronous, so it also works from an 'exit' handler; kill
   * the processes inside first, or their namespaces outlive the names.
   */
  destroy (): void {
    for (const ns of this.created.namespaces.splice(0)) {
      tryRun('ip', ['netns', 'del', ns])
    }
    if (this.created.bridge) {
      tryRun('ip', ['link', 'del', this.bridge])
      this.created.bridge = false
    }
    // a veth whose namespace is still held by a process survives `netns del`
    for (const h of [this.origin, ...this.peers]) {
      if (fs.existsSync(`/sys/class/net/${h.hostIf}`)) {
        tryRun('ip', ['link', 'del', h.hostIf])
      }
    }
  }
}

/** `ip netns exec <ns> <command> <args…>` as argv for spawn */
export function inNamespace (ns: string, command: string, args: string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, command, ...args]]
}

/**
 * A counter of the host's end of a namespace's veth, read from outside the
 * namespace: that end receives what the namespace sends and sends what it
 * receives, so its rx counts the namespace's tx and the other way round
 */
function hostEndCounter (h: LabHost, counter: 'rx_bytes' | 'tx_bytes'): number {
  return Number(fs.readFileSync(`/sys/class/net/${h.hostIf}/statistics/${counter}`, 'utf8'))
}
