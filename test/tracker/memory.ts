import '../../src/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { UnsupportedProtocolError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { TrackerClient } from '../../src/tracker/client.ts'
import { answerRequest } from '../../src/tracker/rpc.ts'
import { handleTrackerStream, RequestGate } from '../../src/tracker/server.ts'
import { TrackerState } from '../../src/tracker/state.ts'
import { AnnounceWaiters } from '../../src/tracker/waiters.ts'
import type { TrackerClientInit } from '../../src/tracker/client.ts'
import type { RpcContext, TrackerCounter } from '../../src/tracker/rpc.ts'
import type { TrackerServerContext } from '../../src/tracker/server.ts'
import type { TrackerStateInit } from '../../src/tracker/state.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export async function newPeerId (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

export interface MemoryTrackerOptions {
  /** The tracker's view of the eligible set; default: every tracker of the net */
  eligible?(): string[]
  serve?: boolean
  replicas?: number
  state?: TrackerStateInit
  maxConcurrentRequests?: number
  /** announces held at once (long polls) */
  maxWaiters?: number
  timeoutMs?: number
  /** Replace the real handler (to test a misbehaving tracker) */
  handler?(stream: Stream, from: string): Promise<void>
}

export interface MemoryTracker {
  peerId: PeerId
  id: string
  state: TrackerState
  rpc: RpcContext
  server: TrackerServerContext
  counts: Record<string, number>
  /** Server handlers started, so tests can wait for them */
  handlers: Array<Promise<void>>
  handler?(stream: Stream, from: string): Promise<void>
}

/**
 * Trackers and clients wired together by in-memory stream pairs: a client's
 * connection manager "dials" a tracker of this net and each stream runs the
 * real server handler on the other end.
 */
export class MemoryNet {
  readonly trackers = new Map<string, MemoryTracker>()
  /** Peer ids whose dial fails */
  readonly unreachable = new Set<string>()
  /** Peer ids that do not speak the protocol, with the protocols their identify announced */
  readonly foreign = new Map<string, string[]>()
  /** Peer objects of foreign (non-tracker) nodes, so they can be dialled */
  readonly foreignPeers = new Map<string, PeerId>()
  /** Streams opened, for cleanup */
  readonly streams: Stream[] = []
  dials = 0

  async addTracker (options: MemoryTrackerOptions = {}): Promise<MemoryTracker> {
    const peerId = await newPeerId()
    const id = peerId.toString()
    const log = defaultLogger().forComponent(`test:tracker:${id.slice(-6)}`)
    const counts: Record<string, number> = {}
    const rpc: RpcContext = {
      state: new TrackerState(options.state),
      self: id,
      eligiblePeers: options.eligible ?? (() => [...this.trackers.keys()]),
      replicas: options.replicas ?? 2,
      serve: options.serve ?? true,
      now: () => Date.now(),
      count: (counter: TrackerCounter, n = 1) => { counts[counter] = (counts[counter] ?? 0) + n },
      waiters: new AnnounceWaiters(options.maxWaiters ?? 64),
      log
    }
    const tracker: MemoryTracker = {
      peerId,
      id,
      state: rpc.state,
      rpc,
      counts,
      handlers: [],
      handler: options.handler,
      server: {
        answer: async (from, request) => answerRequest(from, request, rpc),
        gate: new RequestGate(options.maxConcurrentRequests),
        timeoutMs: options.timeoutMs,
        onBusy: () => { counts.busy = (counts.busy ?? 0) + 1 },
        log
      }
    }
    this.trackers.set(id, tracker)
    return tracker
  }

  /** A connection to `remote`, as connectionManager.openConnection would give */
  connection (remote: PeerId, from: string): Connection {
    const id = remote.toString()
    const connection = {
      remotePeer: remote,
      newStream: async (protocol: string) => {
        const foreign = this.foreign.get(id)
        const tracker = this.trackers.get(id)
        if (foreign != null || tracker == null) {
          throw new UnsupportedProtocolError(`Protocol selection failed - could not negotiate ${protocol}`)
        }
        const [client, server] = await streamPair()
        this.streams.push(client, server)
        const handler = tracker.handler ?? (async (s: Stream, f: string) => handleTrackerStream(s, f, tracker.server))
        tracker.handlers.push(handler(server, from).catch(() => {}))
        return client
      }
    }
    return connection as unknown as Connection
  }

  client (self: PeerId, init: TrackerClientInit = {}): TrackerClient {
    const from = self.toString()
    return new TrackerClient({
      connectionManager: {
        openConnection: async (peer: PeerId | Multiaddr[]) => {
          this.dials++
          const target = Array.isArray(peer) ? peer[0].getComponents().find(c => c.name === 'p2p')?.value : peer.toString()
          const remote = target == null ? undefined : ([...this.trackers.values()].find(t => t.id === target)?.peerId ?? this.foreignPeers.get(target))
          if (remote == null || this.unreachable.has(target ?? '')) {
            throw new Error(`connect ECONNREFUSED (memory net has no reachable ${String(target)})`)
          }
          return this.connection(remote, from)
        }
      },
      peerStore: {
        get: async (peerId: PeerId) => ({ protocols: this.foreign.get(peerId.toString()) ?? [] })
      },
      logger: defaultLogger()
    }, { random: () => 0.5, retryBaseDelayMs: 5, ...init })
  }

  async addForeign (protocols: string[] = []): Promise<PeerId> {
    const peerId = await newPeerId()
    this.foreign.set(peerId.toString(), protocols)
    this.foreignPeers.set(peerId.toString(), peerId)
    return peerId
  }

  cleanup (): void {
    for (const s of this.streams.splice(0)) {
      s.abort(new Error('test cleanup'))
    }
  }
}
