import type { Libp2pEvents, Peer, PeerData, PeerId, PeerStore, TypedEventTarget } from '@libp2p/interface'

/**
 * How long a peer's protocol list is taken as known before a protocol-only
 * merge goes to the peer store again. The store's merge also refreshes the
 * record's `updated` time, which keeps the peer from expiring (after 6 h
 * unrefreshed in `@libp2p/peer-store` 12), so the merge is not skipped for
 * ever: once a minute per peer still refreshes it.
 */
export const DEFAULT_PROTOCOL_MERGE_REFRESH_MS = 60_000

/** Peers whose protocol lists are remembered; beyond it the least recently merged is forgotten */
export const DEFAULT_PROTOCOL_MERGE_MEMORY = 4096

export interface ProtocolMergesInit {
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  refreshMs?: number
  memory?: number
  now?(): number
}

interface Known {
  /** the record as the last real merge returned it */
  peer: Peer
  at: number
}

/**
 * libp2p merges a stream's protocol into the remote peer's record every time
 * a stream opens, on both ends (`peerStore.merge(peer, { protocols })`): a
 * lock, a protobuf decode and encode, address sorting and a datastore write.
 * A node that opens a stream per piece request and per tracker call pays that
 * thousands of times for a record that does not change; in the 16-node
 * fan-out it was 13 % of the daemons' JavaScript time.
 *
 * This wraps `peerStore.merge` so that a merge of protocols only, all of them
 * already in the peer's record as last seen here, returns that record without
 * touching the store - until `refreshMs` has passed since the last real merge.
 * Any other merge goes through unchanged. A `peer:update` event for the peer
 * (something changed its record) forgets what was remembered of it, so a
 * protocol removed elsewhere is merged back in on the next stream.
 *
 * Returns a function that puts the original `merge` back.
 */
export function coalesceProtocolMerges (init: ProtocolMergesInit): () => void {
  const { peerStore, events } = init
  const refreshMs = init.refreshMs ?? DEFAULT_PROTOCOL_MERGE_REFRESH_MS
  const memory = init.memory ?? DEFAULT_PROTOCOL_MERGE_MEMORY
  const now = init.now ?? Date.now
  const known = new Map<string, Known>()
  const original = peerStore.merge

  const remember = (id: PeerId, peer: Peer): void => {
    const key = id.toString()
    known.delete(key)
    known.set(key, { peer, at: now() })
    if (known.size > memory) {
      known.delete(known.keys().next().value!)
    }
  }

  const onUpdate = (evt: CustomEvent<{ peer: Peer }>): void => {
    known.delete(evt.detail.peer.id.toString())
  }

  peerStore.merge = async function merge (id: PeerId, data: PeerData, options?: any): Promise<Peer> {
    const protocols = protocolsOnly(data)
    if (protocols != null) {
      const k = known.get(id.toString())
      if (k != null && now() - k.at < refreshMs && protocols.every(p => k.peer.protocols.includes(p))) {
        return k.peer
      }
    }
    const peer = await original.call(peerStore, id, data, options)
    // the update event (if any) fired inside the call: remember the result after it
    remember(id, peer)
    return peer
  }
  events.addEventListener('peer:update', onUpdate)

  return () => {
    events.removeEventListener('peer:update', onUpdate)
    peerStore.merge = original
  }
}

/** The protocols of a merge that sets nothing else, or undefined */
function protocolsOnly (data: PeerData): string[] | undefined {
  let protocols: string[] | undefined
  for (const [key, value] of Object.entries(data)) {
    if (value == null) {
      continue
    }
    if (key !== 'protocols' || !Array.isArray(value)) {
      return undefined
    }
    protocols = value
  }
  return protocols
}
