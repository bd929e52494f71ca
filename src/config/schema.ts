import { z } from 'zod'
import { DEFAULT_DIRECT_BLOB_MAX_BYTES } from '../proxy/constants.ts'
import { DEFAULT_MAX_SOURCE_PEERS, MAX_SOURCE_PEERS } from '../scheduler/constants.ts'
import { DEFAULT_GC_INTERVAL_MS, DEFAULT_STORAGE_QUOTA, DEFAULT_TASK_TTL_MS, QUOTA_FORMS, quotaPercent } from '../storage/gc.ts'
import { DEFAULT_PIPELINE } from '../tracker/constants.ts'
import { DEFAULT_UPLOAD_SLOTS } from '../transfer/constants.ts'

/**
 * Fixed, documented default ports. All can be overridden.
 */
export const DEFAULT_P2P_PORT = 4780
export const DEFAULT_CONTROL_PORT = 4781
export const DEFAULT_PROXY_PORT = 4782

const multiaddrString = z.string().regex(/^\/(ip4|ip6|dns|dns4|dns6|dnsaddr|unix|memory)\//, 'must be a multiaddr such as /ip4/1.2.3.4/tcp/4780/p2p/12D3Koo…')
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT such as 127.0.0.1:4781')
  .refine((s) => { const p = Number(s.slice(s.lastIndexOf(':') + 1)); return p >= 0 && p <= 65535 }, 'port must be 0-65535')

/**
 * A byte count or rate: a non-negative number, or a string with a unit:
 * `512KiB`, `20MB`, `1.5GiB`, `100M` (binary when the unit ends in `i` or is
 * a bare letter). 0 means "no limit" where a limit is meant.
 */
export const byteSize = z.union([
  z.number().int().nonnegative(),
  z.string().transform((s, ctx) => {
    const n = parseByteSize(s)
    if (n == null) {
      ctx.addIssue({ code: 'custom', message: `"${s}" is not a size; use a number of bytes or e.g. 512KiB, 20MB, 1GiB` })
      return z.NEVER
    }
    return n
  })
])

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4
}

export function parseByteSize (s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)(?:\/s)?\s*$/.exec(s)
  if (m == null) {
    return undefined
  }
  const unit = UNITS[m[2].toLowerCase()]
  if (unit == null) {
    return undefined
  }
  return Math.round(Number(m[1]) * unit)
}

/**
 * The store's quota: a byte count (a number or e.g. 50GiB), or a share of the
 * data directory's file system written `NN%`
 */
const quota = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    return v
  }
  const pct = quotaPercent(v)
  if (pct != null) {
    return `${pct}%`
  }
  const n = parseByteSize(v)
  if (n == null) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a quota; use ${QUOTA_FORMS}` })
    return z.NEVER
  }
  return n
})

export const storageSchema = z.strictObject({
  /** Most bytes the store's tasks may hold (a size, or a share of the data directory's disk such as 80%); above it GC removes the least recently used tasks not in use until they hold 75 % of it; 0 = no quota. Default: '80%' */
  quota: quota.default(DEFAULT_STORAGE_QUOTA),
  /** A task not written, read or exported for this long is removed, in ms; 0 = never. Default: 2592000000 (30 days) */
  taskTtl: z.number().int().min(0).default(DEFAULT_TASK_TTL_MS),
  /** How often GC of the store runs, in ms (and soon after each download); 0 = never. Default: 900000 */
  gcInterval: z.number().int().min(0).default(DEFAULT_GC_INTERVAL_MS)
})

export const swarmSchema = z.strictObject({
  /** Swarm name: part of the DHT protocol id and the gossip topics. Default: 'default' */
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be 1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit').default('default'),
  /** Pre-shared key file of a private swarm (libp2p pnet). Default: null (public swarm) */
  keyFile: z.string().min(1).nullable().default(null),
  /** Multiaddrs (with /p2p/<peer id>) dialled to join the swarm. Default: [] */
  bootstrap: z.array(multiaddrString).default([]),
  /** Find peers on the local network by multicast DNS and dial them. Default: false */
  mdns: z.boolean().default(false),
  /** Interval of membership heartbeats, in ms, in a swarm of up to 8 nodes (beyond, it grows in proportion to the swarm). A member is live while heard within 3 of its intervals. Default: 5000 */
  heartbeatInterval: z.number().int().min(100).max(600_000).default(5000),
  /** Longest wait between two rounds of bootstrap dials while the node has no peer, in ms. Default: 30000 */
  maxRejoinInterval: z.number().int().min(100).max(3_600_000).default(30_000)
})

export const controlSchema = z.strictObject({
  /** Loopback HTTP address of the control API; empty string disables it. Default: '127.0.0.1:4781' */
  listen: z.union([hostPort, z.literal('')]).default(`127.0.0.1:${DEFAULT_CONTROL_PORT}`),
  /** Also serve the control API on the unix socket `<dataDir>/damselfly.sock`. Default: true */
  socket: z.boolean().default(true)
})

export const connectionsSchema = z.strictObject({
  /** Most open connections. Default: 200 */
  max: z.number().int().min(1).max(100_000).default(200),
  /** Most inbound connections still in their handshake. Default: 10 */
  maxPendingInbound: z.number().int().min(1).max(10_000).default(10),
  /**
   * Inbound connections accepted per second from one host. libp2p's 5/s
   * refuses a handful of nodes behind one address that join at once; 20
   * still stops a dial flood. Default: 20
   */
  inboundPerSecondPerHost: z.number().int().min(1).max(100_000).default(20),
  /** Time allowed to dial and upgrade one connection, in ms. Default: 10000 */
  dialTimeout: z.number().int().min(100).max(600_000).default(10_000)
})

export const transferSchema = z.strictObject({
  /** Pieces sent at once by this node. Default: 4 */
  uploadSlots: z.number().int().min(1).max(1024).default(DEFAULT_UPLOAD_SLOTS),
  /** Upload limit of the node in bytes/s (e.g. 100MiB); 0 = unlimited. Default: 0 */
  uploadRate: byteSize.default(0),
  /** Download limit of the node in bytes/s; 0 = unlimited. Default: 0 */
  downloadRate: byteSize.default(0)
})

const regexString = z.string().min(1).refine((s) => {
  try {
    RegExp(s)
    return true
  } catch {
    return false
  }
}, 'must be a valid regular expression')

export const proxySchema = z.strictObject({
  /** HOST:PORT of the registry mirror (OCI distribution API); empty string disables it. Default: '127.0.0.1:4782' */
  listen: z.union([hostPort, z.literal('')]).default(`127.0.0.1:${DEFAULT_PROXY_PORT}`),
  /** The registry pulls go to when a request names none, e.g. https://registry-1.docker.io. Default: null */
  registryMirror: z.string().transform(s => s.trim() === '' ? null : s.trim()).pipe(
    z.string().regex(/^https?:\/\/[^/?#\s]+\/?$/, 'must be http(s)://host[:port] with no path, e.g. https://registry-1.docker.io').nullable()
  ).nullable().default(null),
  /** More registries a request may name (X-Damselfly-Registry header, containerd ?ns=): host[:port], *.domain or http://host:port. Default: [] */
  allowHosts: z.array(z.string().regex(/^(https?:\/\/)?(\*\.)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?\/?$/, 'must be host[:port], *.domain or http(s)://host[:port]')).default([]),
  /** Regular expressions over the request path; matching GETs/HEADs go through the swarm. Default: ['/v2/.+/blobs/sha256:[0-9a-f]{64}$'] */
  rules: z.array(regexString).default(['/v2/.+/blobs/sha256:[0-9a-f]{64}$']),
  /** Blobs a manifest names as at most this many bytes are fetched from the registry directly (digest checked); 0 sends every blob through the swarm. Default: 64KiB */
  directBlobMaxBytes: byteSize.default(DEFAULT_DIRECT_BLOB_MAX_BYTES)
})

export const configSchema = z.strictObject({
  /** Where the identity, the swarm key, the piece store and the control socket live. Default: '~/.damselfly' */
  dataDir: z.string().min(1).default('~/.damselfly'),
  /** libp2p listen multiaddrs. Default: ['/ip4/0.0.0.0/tcp/4780'] */
  listen: z.array(multiaddrString).default([`/ip4/0.0.0.0/tcp/${DEFAULT_P2P_PORT}`]),
  /** Addresses to announce instead of the listen addresses (NAT, containers). Default: [] */
  announce: z.array(multiaddrString).default([]),
  /** Also listen on QUIC (UDP, same port numbers as TCP). Default: false */
  quic: z.boolean().default(false),
  /** Whether this node may hold the tracker role: auto (when dialable and not overloaded), always, never. Default: 'auto' */
  supernode: z.enum(['auto', 'always', 'never']).default('auto'),
  /** As a task's tracker, order its peers in a pipeline (each streams from the one before it). Default: true */
  pipeline: z.boolean().default(DEFAULT_PIPELINE),
  /** As a task's tracker, how many peers may read the task from the origin at once (each a stripe). Default: 1 */
  sourcePeers: z.number().int().min(1).max(MAX_SOURCE_PEERS).default(DEFAULT_MAX_SOURCE_PEERS),
  swarm: swarmSchema.default(swarmSchema.parse({})),
  control: controlSchema.default(controlSchema.parse({})),
  connections: connectionsSchema.default(connectionsSchema.parse({})),
  transfer: transferSchema.default(transferSchema.parse({})),
  storage: storageSchema.default(storageSchema.parse({})),
  proxy: proxySchema.default(proxySchema.parse({}))
})

/**
 * The validated configuration of one node
 */
export type NodeConfig = z.output<typeof configSchema>

/**
 * A partial configuration as written in a file, env or flags
 */
export type NodeConfigInput = z.input<typeof configSchema>
