import fs from 'node:fs/promises'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { parseConfig } from '../config/index.ts'
import { ConfigError } from '../errors.ts'
import { DAMSELFLY_VERSION } from '../version.ts'
import { damselfly, kadProtocol } from './damselfly.ts'
import { gossipFastMsgId } from './gossip-id.ts'
import { loadOrCreateIdentity, readSwarmKey } from './identity.ts'
import { YAMUX_STREAM_OPTIONS } from './muxer.ts'
import { directTls } from './tls.ts'
import type { Damselfly, DamselflyInit, NodeStatus } from './damselfly.ts'
import type { NodeConfig, NodeConfigInput } from '../config/index.ts'
import type { SwarmPeer } from '../swarm/index.ts'
import type { ComponentLogger, PeerId } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { Registry } from 'prom-client'

/**
 * QUIC is optional and not installed by default: its native module is not
 * published for every platform, which breaks `npm ci` lock files elsewhere
 */
const QUIC_PACKAGE = '@chainsafe/libp2p-quic'

/** How often libp2p pings each connection (its default, 10 s, cost an idle swarm much of its CPU) */
export const CONNECTION_PING_INTERVAL_MS = 60_000

async function loadQuic (): Promise<any> {
  try {
    const mod: any = await import(QUIC_PACKAGE)
    return mod.quic()
  } catch (err: any) {
    throw new ConfigError(`quic: true needs the ${QUIC_PACKAGE} package (${err.code ?? err.message}); install it with \`npm install ${QUIC_PACKAGE}@^2.1.1\` or turn QUIC off`)
  }
}

export interface CreateDamselflyOptions {
  /** node configuration (see config/default.yaml); validated */
  config?: NodeConfigInput | NodeConfig
  /** start the node right away (default true) */
  start?: boolean
  /** collect libp2p and Damselfly metrics into this prom-client registry */
  metricsRegistry?: Registry
  logger?: ComponentLogger
  /** extra service options (tests) */
  service?: Partial<DamselflyInit>
}

export interface DamselflyServices {
  damselfly: Damselfly
  [key: string]: unknown
}

/**
 * A running Damselfly node: a libp2p host with our services
 */
export interface DamselflyNode {
  readonly libp2p: Libp2p<DamselflyServices & Record<string, any>>
  readonly config: NodeConfig
  readonly peerId: PeerId
  readonly service: Damselfly
  start(): Promise<void>
  stop(): Promise<void>
  status(): NodeStatus
  peers(): SwarmPeer[]
}

/**
 * Build (and by default start) a Damselfly node: TCP + Noise + yamux,
 * identify, the swarm's own kad-dht, gossipsub membership, optional mDNS,
 * QUIC and private swarm.
 */
export async function createDamselfly (options: CreateDamselflyOptions = {}): Promise<DamselflyNode> {
  const config = parseConfig(options.config ?? {})
  await fs.mkdir(config.dataDir, { recursive: true })
  const privateKey = await loadOrCreateIdentity(config.dataDir)
  const psk = config.swarm.keyFile != null ? await readSwarmKey(config.swarm.keyFile) : undefined

  const transports: any[] = [tcp()]
  const listen = [...config.listen]
  if (config.quic) {
    transports.push(await loadQuic())
    for (const addr of config.listen) {
      const m = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)$/.exec(addr)
      if (m != null) {
        listen.push(`/${m[1]}/${m[2]}/udp/${m[3]}/quic-v1`)
      }
    }
  }

  const libp2p = await createLibp2p({
    start: false,
    privateKey,
    logger: options.logger,
    nodeInfo: { name: 'damselfly', version: DAMSELFLY_VERSION, userAgent: `damselfly/${DAMSELFLY_VERSION}` },
    addresses: { listen, announce: config.announce },
    transports,
    // TLS first: it halves the receiver's CPU per byte and moved our pieces
    // faster in every bench run (bench/transfer); Noise stays for peers
    // that only speak it
    connectionEncrypters: [directTls(), noise()],
    streamMuxers: [yamux({ streamOptions: { ...YAMUX_STREAM_OPTIONS } })],
    connectionProtector: psk != null ? preSharedKey({ psk }) : undefined,
    connectionManager: {
      maxConnections: config.connections.max,
      maxIncomingPendingConnections: config.connections.maxPendingInbound,
      inboundConnectionThreshold: config.connections.inboundPerSecondPerHost,
      dialTimeout: config.connections.dialTimeout,
      inboundUpgradeTimeout: 10_000
    },
    // libp2p pings every connection every 10 s and by default aborts it when
    // a ping takes over 5 s. On a saturated link the ping queues behind
    // megabytes of piece data, so busy connections were torn down with every
    // transfer on them (bench/fanout netns at 25 Mbit/s: peer counts fell from
    // 14 to 3, trackers timed out). Pings still measure RTT; dead peers are
    // found by per-piece timeouts, the trackers' TTLs and TCP itself. Every
    // ping is a new stream on each end (protocol negotiation, a peer-store
    // write): every 10 s on every connection of a full mesh it was a large
    // part of an idle swarm's CPU, for an RTT nothing reads. Once a minute
    // still keeps idle connections' NAT mappings warm.
    connectionMonitor: { abortConnectionOnPingFailure: false, pingInterval: CONNECTION_PING_INTERVAL_MS },
    peerDiscovery: config.swarm.mdns ? [mdns({ interval: 10_000 })] : [],
    metrics: options.metricsRegistry != null ? prometheusMetrics({ registry: options.metricsRegistry, collectDefaultMetrics: false }) : undefined,
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: kadProtocol(config.swarm.name),
        clientMode: false,
        // keep LAN and loopback addresses: the default mapper drops them (notes/libp2p-v3.md P4)
        peerInfoMapper: passthroughMapper
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // gossipsub scores down peers that share one IP address; with more than
        // 10 of them (nodes on one host, behind one NAT, in one pod network)
        // they sank below the graylist threshold and no heartbeat got through:
        // 16 loopback daemons never saw a member. Our topic carries only signed,
        // validated heartbeats, so the penalty protects nothing here.
        scoreParams: { IPColocationFactorWeight: 0 },
        // drop forwarded copies before their signature is checked again (gossip-id.ts)
        fastMsgIdFn: gossipFastMsgId
      }),
      damselfly: damselfly({
        dataDir: config.dataDir,
        swarm: config.swarm.name,
        bootstrap: config.swarm.bootstrap,
        privateSwarm: psk != null,
        heartbeatInterval: config.swarm.heartbeatInterval,
        maxRejoinInterval: config.swarm.maxRejoinInterval,
        dialTimeout: config.connections.dialTimeout,
        supernode: config.supernode,
        pipeline: config.pipeline,
        sourcePeers: config.sourcePeers,
        dialDiscovered: config.swarm.mdns,
        uploadSlots: config.transfer.uploadSlots,
        uploadRate: config.transfer.uploadRate,
        downloadRate: config.transfer.downloadRate,
        storageQuota: config.storage.quota,
        taskTtl: config.storage.taskTtl,
        gcInterval: config.storage.gcInterval,
        ...options.service
      })
    }
  })

  const service = libp2p.services.damselfly
  const node: DamselflyNode = {
    libp2p: libp2p as any,
    config,
    peerId: libp2p.peerId,
    service,
    start: async () => { await libp2p.start() },
    stop: async () => { await libp2p.stop() },
    status: () => service.status(),
    peers: () => service.peers()
  }
  if (options.start !== false) {
    await node.start()
  }
  return node
}
