import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { electTrackers } from '../election/index.ts'
import { tracker } from '../tracker/index.ts'
import { Bitfield } from '../utils/bitfield.ts'
import { DAMSELFLY_VERSION } from '../version.ts'
import type { AnnounceRequest, AnnounceResult, TrackerPort } from '../task/tracker-port.ts'
import type { AnnounceRequest as TrackerAnnounceRequest, AnnounceResponse as TrackerAnnounceResponse, Tracker, TrackerComponents, TrackerInit } from '../tracker/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

export type TrackerHandle = Tracker

export function trackerServiceFor (components: TrackerComponents, init: TrackerInit): Tracker {
  return tracker(init)(components)
}

export interface TrackerPortInit {
  tracker: Tracker
  eligiblePeers(): string[]
  selfAddrs(): string[]
  uploadSlots(): number
  freeUploadSlots(): number
  /** the clock, ms (tests) */
  now?(): number
}

/**
 * How often the standby tracker of a task hears from us: a whole announce,
 * then the pieces we reported to the first tracker since the last one. It
 * needs our registration, bitfield and digests only to take over when the
 * first tracker fails, and after a takeover every peer announces to it and
 * reports each piece it does not know anyway. A copy of every announce (one a
 * second while downloading) doubled the tracker requests of a busy swarm; a
 * copy of every report (one per 100 ms batch) did the same for reports, and
 * the first ones failed because they overtook the standby registration.
 */
export const STANDBY_ANNOUNCE_INTERVAL_MS = 5_000

/** The addresses that parse as multiaddrs (peers send us strings; one bad one must not lose the rest) */
export function toMultiaddrs (addrs: string[]): Multiaddr[] {
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

  /** the other elected trackers each task registered with, which get our reports too */
  private readonly secondaries = new Map<string, Set<string>>()
  /** per task, when each standby tracker last got an announce from us */
  private readonly standbyAt = new Map<string, Map<string, number>>()
  /** per task and standby tracker, the pieces reported to the first tracker since the standby last heard of them */
  private readonly standbyPieces = new Map<string, Map<string, Map<number, Uint8Array>>>()

  private wireRequest (req: AnnounceRequest): Omit<TrackerAnnounceRequest, 'taskId'> {
    return {
      url: req.url,
      digest: req.digest,
      meta: req.meta,
      have: req.have,
      addrs: toMultiaddrs(this.init.selfAddrs()),
      uploadSlots: this.init.uploadSlots(),
      freeUploadSlots: this.init.freeUploadSlots(),
      version: DAMSELFLY_VERSION,
      wantGrant: req.wantGrant,
      wantDigests: req.wantDigests ?? true,
      attested: req.attested ?? false
    }
  }

  /**
   * Announce to the first elected tracker that answers (following
   * redirects), and register with the other elected tracker too, so it can
   * take over with our state if the first one goes away. When the first knows
   * nothing of the task and we cannot tell it (no metadata), the other may.
   */
  async announce (req: AnnounceRequest, options: { signal?: AbortSignal } = {}): Promise<AnnounceResult> {
    const eligible = this.init.eligiblePeers()
    const request = this.wireRequest(req)
    const { tracker, response } = await this.init.tracker.client.announceElected(req.taskId, eligible, { ...request, waitMs: req.waitMs }, { signal: options.signal })
    const others = electTrackers(req.taskId, eligible).filter(p => p !== tracker.toString())
    this.secondaries.set(req.taskId, new Set(others))
    const pending = this.standbyPieces.get(req.taskId)
    for (const id of pending?.keys() ?? []) {
      if (!others.includes(id)) {
        // no longer a standby: whoever takes over hears of our pieces from us then
        pending!.delete(id)
      }
    }
    if (response.status === 'need-meta' && req.meta == null) {
      for (const other of others) {
        try {
          // no grant from the standby: it does not know what the first one granted
          const res = await this.init.tracker.client.announce(other, { ...request, taskId: req.taskId, wantGrant: false }, { signal: options.signal, retries: 0 })
          if (res.status === 'ok' && res.meta != null) {
            return this.toResult(peerIdFromString(other).toString(), res)
          }
        } catch {
          // the other tracker is down or redirects: the first answer stands
        }
      }
    }
    const now = this.init.now?.() ?? Date.now()
    const sent = this.standbyAt.get(req.taskId) ?? new Map<string, number>()
    this.standbyAt.set(req.taskId, sent)
    for (const other of others) {
      if (now - (sent.get(other) ?? -Infinity) < STANDBY_ANNOUNCE_INTERVAL_MS) {
        continue
      }
      sent.set(other, now)
      this.updateStandby(other, req.taskId, request)
    }
    return this.toResult(tracker.toString(), response)
  }

  async announceDirect (peerId: string, req: AnnounceRequest, options: { signal?: AbortSignal } = {}): Promise<AnnounceResult> {
    const response = await this.init.tracker.client.announce(peerId, { ...this.wireRequest(req), taskId: req.taskId, wantGrant: false, direct: true }, { signal: options.signal, retries: 0 })
    return { ...this.toResult(peerId, response), direct: true }
  }

  private toResult (tracker: string, response: TrackerAnnounceResponse): AnnounceResult {
    const pieceCount = response.meta != null && response.meta.pieceSize > 0 ? Math.ceil(response.meta.contentLength / response.meta.pieceSize) : 0
    return {
      status: response.status === 'need-meta' ? 'need-meta' : 'ok',
      tracker,
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
      grantStripe: response.grantStripe,
      upstream: response.upstream?.toString(),
      sources: response.sources.map(p => p.toString()),
      intervalMs: response.intervalMs
    }
  }

  /**
   * Register with a standby tracker (no grant from it, so the origin is read
   * once), then tell it the pieces reported since it last heard from us
   */
  private updateStandby (standby: string, taskId: string, request: Omit<TrackerAnnounceRequest, 'taskId'>): void {
    const pending = this.standbyPieces.get(taskId)?.get(standby)
    const pieces = [...pending ?? []].map(([index, digest]) => ({ index, digest }))
    pending?.clear()
    const client = this.init.tracker.client
    client.announce(standby, { ...request, taskId, wantGrant: false }, { retries: 0 })
      .then(async () => {
        if (pieces.length > 0) {
          await client.report(standby, taskId, pieces, { retries: 0 })
        }
      })
      .catch(() => {
        // next time, unless the download left or the standby changed meanwhile
        const again = this.standbyPieces.get(taskId)?.get(standby)
        for (const { index, digest } of pieces) {
          if (again != null && !again.has(index)) {
            again.set(index, digest)
          }
        }
      })
  }

  /** The pieces queued for `standby` of `taskId`, created empty when none are */
  private pendingFor (taskId: string, standby: string): Map<number, Uint8Array> {
    let byStandby = this.standbyPieces.get(taskId)
    if (byStandby == null) {
      byStandby = new Map()
      this.standbyPieces.set(taskId, byStandby)
    }
    let pending = byStandby.get(standby)
    if (pending == null) {
      pending = new Map()
      byStandby.set(standby, pending)
    }
    return pending
  }

  async report (trackerId: string, taskId: string, pieces: Array<{ index: number, digest: Uint8Array }>, options: { signal?: AbortSignal } = {}): Promise<void> {
    for (const other of this.secondaries.get(taskId) ?? []) {
      if (other === trackerId) {
        continue
      }
      // the standby hears of them with our next announce to it
      const pending = this.pendingFor(taskId, other)
      for (const { index, digest } of pieces) {
        pending.set(index, digest)
      }
    }
    await this.init.tracker.client.report(trackerId, taskId, pieces, { signal: options.signal })
  }

  async leave (trackerId: string, taskId: string): Promise<void> {
    for (const other of this.secondaries.get(taskId) ?? []) {
      if (other !== trackerId) {
        this.init.tracker.client.leave(other, taskId, { retries: 0 }).catch(() => {})
      }
    }
    this.secondaries.delete(taskId)
    this.standbyAt.delete(taskId)
    this.standbyPieces.delete(taskId)
    await this.init.tracker.client.leave(trackerId, taskId, { retries: 0 })
  }

  async reportBadPeer (trackerId: string, taskId: string, peerId: string, index: number): Promise<void> {
    await this.init.tracker.client.reportBadPeer(trackerId, taskId, peerIdFromString(peerId), index)
  }
}
