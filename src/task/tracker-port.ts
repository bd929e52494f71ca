import type { TaskMetadata } from '../storage/index.ts'
import type { TaskMetaInfo } from '../tracker/index.ts'
import type { Bitfield } from '../utils/bitfield.ts'

/**
 * What the download engine needs from the tracker role. The node adapts the
 * tracker client to this; a test can drive the engine with its own.
 */

export type { TaskMetaInfo }

export interface ParentInfo {
  peerId: string
  addrs: string[]
  have: Bitfield
  freeUploadSlots: number
}

export interface AnnounceRequest {
  taskId: string
  url?: string
  digest?: string
  meta?: TaskMetaInfo
  have: Bitfield | undefined
  wantGrant: boolean
  /**
   * With nothing to fetch: let the tracker hold the answer up to this many ms
   * until a piece we lack appears (a long poll). 0 or absent: answer at once.
   */
  waitMs?: number
  /**
   * Ask for every piece digest the tracker knows (default true). Each answer
   * then carries 32 bytes per piece: a download asks only while it lacks a
   * digest or does not know what a new tracker knows.
   */
  wantDigests?: boolean
  /**
   * We would ask our upstream ahead for pieces whose digest we lack, taking
   * them on their source's signature: the tracker need not hold the answer
   * while our upstream has nothing for us yet
   */
  attested?: boolean
}

export interface AnnounceResult {
  status: 'ok' | 'need-meta' | 'refused'
  /** the tracker that answered */
  tracker: string
  meta?: TaskMetaInfo
  /** sha256 per piece (32 bytes) when known */
  digests?: Array<Uint8Array | undefined>
  parents: ParentInfo[]
  /** pieces this node should fetch from the origin */
  grant: number[]
  /** pieces per stripe of the grant: one origin range may run to the end of a granted piece's stripe; undefined: the tracker did not say */
  grantStripe?: number
  /** the peer (id string) to stream pieces from in index order, our predecessor in the task's pipeline; listed first in `parents`; undefined: none (the first peer, a direct answer, or the tracker did not say) */
  upstream?: string
  /** the task's source peers (id strings), whose signed piece digests stand in for digests not known yet; empty: none named (or a tracker older than the field) */
  sources?: string[]
  intervalMs: number
  message?: string
  /** the answer of a DHT provider about its own copy, not of a tracker */
  direct?: boolean
}

export interface TrackerPort {
  /** announce to the elected tracker; throws NoTrackerReachableError when none answers */
  announce(req: AnnounceRequest, options?: { signal?: AbortSignal }): Promise<AnnounceResult>
  /** tell the tracker(s) which pieces we now hold (batched by the caller) */
  report(tracker: string, taskId: string, pieces: Array<{ index: number, digest: Uint8Array }>, options?: { signal?: AbortSignal }): Promise<void>
  leave(tracker: string, taskId: string): Promise<void>
  reportBadPeer(tracker: string, taskId: string, peerId: string, index: number): Promise<void>
  /** ask a node found as a DHT provider about its own copy of the task (no tracker involved) */
  announceDirect(peerId: string, req: AnnounceRequest, options?: { signal?: AbortSignal }): Promise<AnnounceResult>
}

/**
 * Whether an announce failed only because every tracker tried was too slow
 * to answer (alive, but behind saturated links or busy), as opposed to gone
 */
export function trackersTimedOut (err: unknown): boolean {
  const attempts = (err as { attempts?: Array<{ cause?: string }> } | undefined)?.attempts
  return Array.isArray(attempts) && attempts.length > 0 && attempts.every(a => a.cause === 'timeout')
}

/** What a tracker is told about a task, from its metadata in the store */
export function metaInfoOf (meta: TaskMetadata): TaskMetaInfo {
  return { contentLength: meta.contentLength, pieceSize: meta.pieceSize, etag: meta.etag, lastModified: meta.lastModified, url: meta.url, digest: meta.digest }
}
