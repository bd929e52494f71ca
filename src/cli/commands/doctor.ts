import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { classifyDialError, refineDialFailure } from '../../swarm/dial-errors.ts'
import { findIncompatibilities } from '../../swarm/versions.ts'
import { kadProtocol } from '../../version.ts'
import { controlClient, nodeConfig, print, printJson, withNodeOptions } from '../common.ts'
import { EXIT } from '../exit-codes.ts'
import type { DamselflyNode } from '../../node/index.ts'
import type { Args } from '../common.ts'
import type { IdentifyResult } from '@libp2p/interface'
import type { CommandModule } from 'yargs'

export type CheckLevel = 'ok' | 'warn' | 'fail'

export interface Check {
  level: CheckLevel
  check: string
  message: string
  fix?: string
}

const PROBE_DIAL_TIMEOUT_MS = 5000
const IDENTIFY_WAIT_MS = 3000

export const doctorCommand: CommandModule<object, Args> = {
  command: 'doctor',
  describe: 'Find out why the node has no peers (or what else is wrong): one line per check',
  builder: (y) => withNodeOptions(y)
    .option('json', { type: 'boolean', describe: 'Print the checks as JSON' })
    .example('$0 doctor', 'diagnose the daemon of the default data dir')
    .example('$0 doctor --data-dir /var/lib/damselfly --swarm-key /etc/damselfly/swarm.key', 'diagnose another daemon') as any,
  handler: async (argv) => {
    const checks = await runDoctor(argv)
    if (argv.json === true) {
      printJson(checks)
    } else {
      for (const c of checks) {
        print(`${c.level.padEnd(4)} ${c.check}: ${c.message}${c.fix != null ? ` — fix: ${c.fix}` : ''}`)
      }
    }
    if (checks.some(c => c.level === 'fail')) {
      process.exitCode = EXIT.FAILURE
    }
  }
}

/** What the daemon said of itself; undefined fields when no daemon answered */
interface DaemonView {
  status?: any
  peers: any[]
}

/**
 * Run every check; never throws for a failed check (it becomes a line)
 */
export async function runDoctor (argv: Args): Promise<Check[]> {
  const config = await nodeConfig(argv)
  const client = await controlClient(argv)
  const checks: Check[] = []
  const daemon: DaemonView = { peers: [] }
  try {
    daemon.status = await client.get('/status', { signal: AbortSignal.timeout(10_000) })
    daemon.peers = await client.get('/peers', { signal: AbortSignal.timeout(10_000) })
    checks.push({ level: 'ok', check: 'daemon', message: `running (pid ${daemon.status.pid}, peer id ${daemon.status.peerId}, swarm ${daemon.status.swarm})` })
  } catch (err: any) {
    checks.push({ level: 'fail', check: 'daemon', message: `no daemon answers on ${client.describe()}`, fix: 'start it with `damselfly daemon` (same --data-dir), or point doctor at it with --data-dir or --control' })
  }
  const status = daemon.status
  const swarm: SwarmView = {
    name: status?.swarm ?? config.swarm.name,
    keyFile: config.swarm.keyFile ?? status?.swarmKeyFile ?? null,
    bootstrap: status?.bootstrap?.configured ?? config.swarm.bootstrap
  }
  checks.push(...await probeChecks(swarm, status))
  if (status != null) {
    checks.push(...lastDialChecks(status, checks))
    checks.push(...stateChecks(daemon, swarm.name))
    checks.push(...await downloadChecks(client))
    checks.push(...trackerChecks(status))
    checks.push(...storeChecks(status))
    checks.push(peerCountCheck(status, checks))
  }
  return checks
}

/** The swarm the daemon is in (or the configuration names, when none answered) */
interface SwarmView {
  name: string
  keyFile: string | null
  bootstrap: string[]
}

/**
 * Dial the daemon's listen addresses and the bootstrap addresses from a
 * fresh node of a swarm of its own, with the same swarm key
 */
async function probeChecks (swarm: SwarmView, status: any): Promise<Check[]> {
  const checks: Check[] = []
  const privateSwarm = swarm.keyFile != null
  let probe: DamselflyNode | undefined
  const probeDir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-doctor-'))
  try {
    try {
      // libp2p loads for the probe only, not with every command
      const { createDamselfly } = await import('../../node/create.ts')
      probe = await createDamselfly({
        config: {
          dataDir: probeDir,
          listen: [],
          control: { listen: '', socket: false },
          // a swarm of its own, so the probe never shows up as a member of the real one
          swarm: { name: `doctor-${process.pid}`, keyFile: swarm.keyFile, bootstrap: [] },
          connections: { dialTimeout: PROBE_DIAL_TIMEOUT_MS }
        }
      })
    } catch (err: any) {
      checks.push({ level: 'fail', check: 'swarm key', message: err.message, fix: 'fix the swarm key file path or contents' })
    }
    if (probe != null && status != null) {
      checks.push(...await listenChecks(probe, status, privateSwarm, swarm.name))
    }
    if (swarm.bootstrap.length === 0) {
      checks.push({
        level: status != null && status.peers > 0 ? 'ok' : 'warn',
        check: 'bootstrap',
        message: 'no bootstrap address configured; this node only finds peers that dial it (or by mDNS)',
        fix: 'give it --bootstrap /ip4/<ip>/tcp/4780/p2p/<peer id> of a running node (see its `damselfly status`)'
      })
    }
    if (probe != null) {
      for (const b of swarm.bootstrap) {
        checks.push(bootstrapCheck(b, await probeDial(probe, b, privateSwarm, swarm.name), swarm.name))
      }
    }
  } finally {
    await probe?.stop().catch(() => {})
    await fs.rm(probeDir, { recursive: true, force: true })
  }
  return checks
}

async function listenChecks (probe: DamselflyNode, status: any, privateSwarm: boolean, swarmName: string): Promise<Check[]> {
  const addrs: string[] = status.addresses
  if (addrs.length === 0) {
    return [{ level: 'fail', check: 'listen', message: 'the daemon has no listen address', fix: 'give it one with --listen /ip4/0.0.0.0/tcp/4780' }]
  }
  const checks: Check[] = []
  for (const a of addrs) {
    const r = await probeDial(probe, a.includes('/p2p/') ? a : `${a}/p2p/${status.peerId}`, privateSwarm, swarmName)
    checks.push(r.ok
      ? { level: 'ok', check: `listen ${a}`, message: 'reachable: a fresh node dialled it and completed the handshake' }
      : { level: 'fail', check: `listen ${a}`, message: `not reachable by a fresh node: ${r.cause}`, fix: r.fix })
  }
  return checks
}

function bootstrapCheck (addr: string, r: ProbeResult, swarmName: string): Check {
  const check = `bootstrap ${addr}`
  if (!r.ok) {
    return { level: 'fail', check, message: `[${r.class}] ${r.cause}`, fix: r.fix }
  }
  if (r.incompatible.length > 0) {
    const i = r.incompatible[0]
    return { level: 'fail', check, message: `[version] reachable, but it speaks /damselfly/${i.protocol}/${i.theirs} and this node /damselfly/${i.protocol}/${i.ours}`, fix: 'run the same major version of Damselfly on both' }
  }
  if (!r.sameSwarm) {
    return { level: 'fail', check, message: `reachable, but it is not in swarm "${swarmName}" (it does not speak ${kadProtocol(swarmName)})`, fix: 'use the same --swarm name on both nodes' }
  }
  return { level: 'ok', check, message: 'reachable, same swarm and swarm key, compatible versions' }
}

/** The daemon's own failed bootstrap dials that the probe did not already report as failing */
function lastDialChecks (status: any, before: Check[]): Check[] {
  const attempts: any[] = status.bootstrap?.attempts ?? []
  return attempts
    .filter(a => a.ok === false && a.failure != null)
    .filter(a => !before.some(c => c.check === `bootstrap ${a.addr}` && c.level === 'fail'))
    .map((a): Check => ({ level: 'warn', check: `daemon's last dial of ${a.addr}`, message: `[${a.failure.class}] ${a.failure.cause}`, fix: a.failure.fix }))
}

/** Incompatible peers, versions, DHT, provider records, gossip and members as the daemon sees them */
function stateChecks ({ status, peers }: DaemonView, swarmName: string): Check[] {
  const checks: Check[] = []
  const incompatible: any[] = status.incompatible ?? []
  for (const i of incompatible) {
    checks.push({ level: 'fail', check: `peer ${i.peerId}`, message: `incompatible: it speaks /damselfly/${i.protocol}/${i.theirs}, this node /damselfly/${i.protocol}/${i.ours}`, fix: 'upgrade the older node; nodes need the same major protocol version' })
  }
  const versions = new Map<string, number>()
  for (const p of peers) {
    const v = p.version ?? p.agent ?? 'unknown'
    versions.set(v, (versions.get(v) ?? 0) + 1)
  }
  if (peers.length > 0) {
    checks.push({ level: 'ok', check: 'peers by version', message: [...versions].map(([v, n]) => `${v}: ${n}`).join(', ') })
  }
  const unlessPeers: CheckLevel = status.peers > 0 ? 'warn' : 'fail'
  checks.push(status.dht.routingTable > 0
    ? { level: 'ok', check: 'dht', message: `${status.dht.routingTable} peers in the routing table of ${kadProtocol(swarmName)}` }
    : { level: unlessPeers, check: 'dht', message: 'the DHT routing table is empty: provider lookups will find nothing', fix: 'connect the node to a swarm peer (bootstrap); peers must speak the same swarm DHT protocol' })
  const provides = status.dht.provides
  if (provides != null && provides.failed > 0) {
    checks.push({ level: 'warn', check: 'dht provides', message: `${provides.failed} of ${provides.failed + provides.provided} provider records could not be sent: without a tracker, other nodes will not find those tasks here`, fix: 'the DHT needs peers of the same swarm; the daemon log says why each provide failed (DEBUG=damselfly:node)' })
  }
  checks.push(status.gossip.meshPeers > 0
    ? { level: 'ok', check: 'gossip', message: `${status.gossip.meshPeers} mesh peers on ${status.gossip.topic}` }
    : { level: unlessPeers, check: 'gossip', message: `no gossip mesh peer on ${status.gossip.topic}`, fix: 'membership needs a connected swarm peer; the mesh forms about a second after connecting' })
  checks.push(status.members > 0
    ? { level: 'ok', check: 'members', message: `${status.members} live members heard` }
    : { level: unlessPeers, check: 'members', message: 'no member heartbeat heard', fix: 'wait a few heartbeats after joining; check that peers use the same --swarm name' })
  return checks
}

/** The piece store against its quota, and GC's last failure */
export function storeChecks (status: { store?: { bytesStored: number, gc?: { quotaBytes: number, overQuota: boolean, lastError?: string } } }): Check[] {
  const gc = status.store?.gc
  if (gc == null) {
    return []
  }
  const checks: Check[] = []
  if (gc.overQuota) {
    checks.push({ level: 'warn', check: 'store', message: `holds ${status.store!.bytesStored} bytes, over its quota of ${gc.quotaBytes}: the rest is being downloaded or was used in the last 5 minutes`, fix: 'raise --storage-quota (config storage.quota), or wait: GC runs again every --gc-interval' })
  }
  if (gc.lastError != null) {
    checks.push({ level: 'warn', check: 'store GC', message: gc.lastError, fix: 'check the data directory\'s permissions and disk; the daemon log has the error (DEBUG=damselfly:storage:gc)' })
  }
  return checks
}

/** The peer count, and with none, the likeliest cause among the checks before */
function peerCountCheck (status: any, before: Check[]): Check {
  if (status.peers > 0) {
    return { level: 'ok', check: 'peer count', message: `${status.peers} connected swarm peers` }
  }
  const cause = before.find(c => c.level === 'fail' && c.check.startsWith('bootstrap')) ?? before.find(c => c.level !== 'ok' && c.check.startsWith('bootstrap'))
  return {
    level: 'fail',
    check: 'peer count',
    message: `0 swarm peers${cause != null ? `: ${cause.message}` : ''}`,
    fix: cause?.fix ?? 'give the node a reachable --bootstrap address of a running node'
  }
}

/** Fewest tracker requests before their failure share means anything */
const MIN_TRACKER_ATTEMPTS = 20
/** Share of tracker requests that may time out before doctor warns */
const MAX_TRACKER_TIMEOUT_SHARE = 0.2

/**
 * How the node's requests to trackers fared since it started: timeouts mean
 * answers wait behind piece data on saturated links (or a tracker is
 * overloaded), which makes downloads work from stale parent lists.
 */
export function trackerChecks (status: { tracker?: { client?: { attempts?: number, failures?: Record<string, number> } } }): Check[] {
  const client = status.tracker?.client
  const attempts = client?.attempts ?? 0
  if (attempts < MIN_TRACKER_ATTEMPTS) {
    return []
  }
  const failures = client?.failures ?? {}
  const timeouts = failures.timeout ?? 0
  const failed = Object.values(failures).reduce((a, n) => a + n, 0)
  if (timeouts / attempts > MAX_TRACKER_TIMEOUT_SHARE) {
    return [{
      level: 'warn',
      check: 'tracker requests',
      message: `${timeouts} of ${attempts} requests to trackers timed out: the links are saturated or a tracker is overloaded, so downloads work from stale parent lists`,
      fix: 'cap uploads a little below the link rate (--upload-rate, e.g. 90 % of it) so small messages are not queued behind piece data; check the trackers\' load with `damselfly status` on them'
    }]
  }
  return [{ level: 'ok', check: 'tracker requests', message: `${attempts - failed} of ${attempts} answered` }]
}

/**
 * Running downloads that reach no tracker, and how much of what came in was from peers
 */
async function downloadChecks (client: Awaited<ReturnType<typeof controlClient>>): Promise<Check[]> {
  const checks: Check[] = []
  let tasks: any[] = []
  try {
    tasks = await client.get('/tasks', { signal: AbortSignal.timeout(10_000) })
  } catch {
    return checks
  }
  for (const t of tasks) {
    const d = t.download
    if (d == null) {
      continue
    }
    if ((d.state === 'running' || d.state === 'pending') && d.trackerError != null) {
      checks.push({ level: 'fail', check: `task ${String(t.taskId).slice(0, 16)}`, message: `no tracker reachable: ${String(d.trackerError)}`, fix: 'check the peer count and members (trackers are elected among live, tracker-eligible members); the download goes on from the origin meanwhile' })
    }
    if (d.state === 'succeeded' && d.fromPeers === 0 && d.fromOrigin > 0) {
      checks.push({ level: 'warn', check: `task ${String(t.taskId).slice(0, 16)}`, message: 'came wholly from the origin: no peer had it yet, or none was reachable', fix: 'normal for the first node of a swarm; otherwise run doctor while a download runs' })
    }
  }
  return checks
}

interface ProbeResult {
  ok: boolean
  class?: string
  cause?: string
  fix?: string
  incompatible: ReturnType<typeof findIncompatibilities>
  sameSwarm: boolean
}

async function probeDial (probe: DamselflyNode, addr: string, privateSwarm: boolean, swarmName: string): Promise<ProbeResult> {
  let ma
  try {
    const { multiaddr } = await import('@multiformats/multiaddr')
    ma = multiaddr(addr)
  } catch (err: any) {
    return { ok: false, class: 'other', cause: `"${addr}" is not a multiaddr (${err.message})`, fix: 'write it like /ip4/10.0.0.1/tcp/4780/p2p/12D3KooW…', incompatible: [], sameSwarm: false }
  }
  const target = ma.getComponents().find(c => c.name === 'p2p')?.value
  const identified = new Promise<IdentifyResult | undefined>(resolve => {
    const timer = setTimeout(() => { probe.libp2p.removeEventListener('peer:identify', on); resolve(undefined) }, PROBE_DIAL_TIMEOUT_MS + IDENTIFY_WAIT_MS)
    const on = (evt: CustomEvent<IdentifyResult>): void => {
      if (target == null || evt.detail.peerId.toString() === target) {
        clearTimeout(timer)
        probe.libp2p.removeEventListener('peer:identify', on)
        resolve(evt.detail)
      }
    }
    probe.libp2p.addEventListener('peer:identify', on)
  })
  try {
    const conn = await probe.libp2p.dial(ma, { signal: AbortSignal.timeout(PROBE_DIAL_TIMEOUT_MS) })
    const id = await identified
    const protocols = id?.protocols ?? []
    const result: ProbeResult = {
      ok: true,
      incompatible: findIncompatibilities(conn.remotePeer.toString(), probe.service.protocols(), protocols),
      sameSwarm: protocols.includes(kadProtocol(swarmName))
    }
    await conn.close().catch(() => {})
    return result
  } catch (err) {
    const f = await refineDialFailure(addr, classifyDialError(err, { privateSwarm }), { privateSwarm })
    return { ok: false, class: f.class, cause: f.cause, fix: f.fix, incompatible: [], sameSwarm: false }
  }
}
