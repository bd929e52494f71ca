import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { tracker } from '../tracker/index.ts'
import { Bitfield } from '../utils/bitfield.ts'
import { DAMSELFLY_VERSION } from '../version.ts'
import type { AnnounceRequest, AnnounceResult, TrackerPort } from '../task/tracker-port.ts'
import type { Tracker, TrackerComponents } from '../tracker/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

export type TrackerHandle = Tracker

export function trackerServiceFor (components: TrackerComponents, init: { eligiblePeers(): string[], protocolVersion?: string }): Tracker {
  return tracker({ eligiblePeers: init.eligiblePeers, protocolVersion: init.protocolVersion })(components)
}

export interface TrackerPortInit {
  tracker: Tracker
  eligiblePeers(): string[]
  selfAddrs(): string[]
  uploadSlots(): number
  freeUploadSlots(): number
}

function toMultiaddrs (addrs: string[]): Multiaddr[] {
  return addrs.flatMap(a => {
    try {
      return [multiaddr(a)]
    } catch {
      return []
    }
  })
}

/**
 * The download engine's view of the tracker role: announce to the elected
 * tracker of a task (following redirects), report pieces, leave, report a
 * bad peer
 */
export class TrackerPortAdapter implements TrackerPort {
  private readonly init: TrackerPortInit

  constructor (init: TrackerPortInit) {
    this.init = init
  }

  async announce (req: AnnounceRequest, options: { signal?: AbortSignal } = {}): Promise<AnnounceResult> {
    const { tracker, response } = await this.init.tracker.client.announceElected(req.taskId, this.init.eligiblePeers(), {
      url: req.url,
      digest: req.digest,
      meta: req.meta,
      have: req.have,
      addrs: toMultiaddrs(this.init.selfAddrs()),
      uploadSlots: this.init.uploadSlots(),
      freeUploadSlots: this.init.freeUploadSlots(),
      version: DAMSELFLY_VERSION,
      wantGrant: req.wantGrant,
      wantDigests: true
    }, { signal: options.signal })
    const pieceCount = response.meta != null && response.meta.pieceSize > 0 ? Math.ceil(response.meta.contentLength / response.meta.pieceSize) : 0
    return {
      status: response.status === 'need-meta' ? 'need-meta' : 'ok',
      tracker: tracker.toString(),
      meta: response.meta,
      digests: response.meta?.pieceDigests,
      parents: response.parents.flatMap(p => {
        try {
          return [{ peerId: p.peerId.toString(), addrs: p.addrs.map(a => a.toString()), have: Bitfield.from(p.have, pieceCount), freeUploadSlots: p.freeUploadSlots }]
        } catch {
          return []
        }
      }),
      grant: response.grant,
      intervalMs: response.intervalMs
    }
  }

  async report (trackerId: string, taskId: string, pieces: Array<{ index: number, digest: Uint8Array }>, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.init.tracker.client.report(trackerId, taskId, pieces, { signal: options.signal })
  }

  async leave (trackerId: string, taskId: string): Promise<void> {
    await this.init.tracker.client.leave(trackerId, taskId, { retries: 0 })
  }

  async reportBadPeer (trackerId: string, taskId: string, peerId: string, index: number): Promise<void> {
    await this.init.tracker.client.reportBadPeer(trackerId, taskId, peerIdFromString(peerId), index)
  }
}
