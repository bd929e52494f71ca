/**
 * The tracker's request dispatcher: one decoded TrackerRequest in, one
 * TrackerResponse out. It decides whether this node serves the task (its own
 * view of the election) or redirects, turns wire messages into calls on the
 * pure TrackerState, and named errors into wire codes. No stream I/O here,
 * so every message type is tested without a network.
 */

import { InvalidParametersError } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { electTrackers, trackerRole } from '../election/index.ts'
import { ErrorCode, TrackerRequest, TrackerResponse } from '../pb/tracker.ts'
import { MAX_PIECE_COUNT } from '../task/piece-size.ts'
import { MAX_ADDR_BYTES, MAX_ADDRS_PER_PEER, MAX_ANNOUNCE_WAIT_MS, MAX_MESSAGE_CHARS, META_STAT_WAIT_MS, MAX_PARENTS_PER_ANSWER, MAX_PIECES_PER_REPORT } from './constants.ts'
import { NotATrackerError, UnknownTaskError, toWireCode } from './errors.ts'
import { validateTaskId } from './state.ts'
import { holdsMissing } from './waiters.ts'
import type { AnnounceInput, AnnounceResult, TaskMetaInfo, TrackerState } from './state.ts'
import type { AnnounceWaiters } from './waiters.ts'
import type { TaskMeta } from '../pb/tracker.ts'
import type { Logger } from '@libp2p/interface'
import type { DecodeOptions } from 'protons-runtime'

/** What the dispatcher counts; the service turns these into stats and metrics */
export type TrackerCounter =
  | 'requests'
  | 'registrations'
  | 'redirects'
  | 'refusals'
  | 'errors'
  | 'grants'
  | 'badPeerReports'
  | 'blockedPeers'
  | 'digestConflicts'
  | 'slowPeersMoved'

export interface RpcContext {
  state: TrackerState
  /** This node's peer id */
  self: string
  /** The live eligible set, including this node when it is eligible */
  eligiblePeers(): Iterable<string>
  /** Trackers per task (R) */
  replicas: number
  /** Whether this node serves as a tracker at all; when false it only redirects */
  serve: boolean
  /** The clock, ms */
  now(): number
  /** Binary multiaddrs to send along with a redirect to `peerId` (at most 16), if known */
  addressesOf?(peerId: string): Promise<Uint8Array[]>
  /** A complete task this node holds itself, for DIRECT announces */
  localTask?(taskId: string): LocalTask | undefined
  /** Count an event */
  count?(counter: TrackerCounter, n?: number): void
  /** Announces held until a piece their peer lacks appears (long polls); absent: every announce is answered at once */
  waiters?: AnnounceWaiters
  log: Logger
}

/**
 * What a node tells about content in its own store (a DIRECT announce)
 */
export interface LocalTask {
  meta: TaskMetaInfo
  pieceDigests: Array<Uint8Array | undefined>
  have: Uint8Array
  addrs: Uint8Array[]
  freeUploadSlots: number
}

const EMPTY = new Uint8Array(0)

/**
 * protons types bytes fields as `Uint8Array<ArrayBuffer>`; ours are plain
 * Uint8Arrays over ArrayBuffers (never SharedArrayBuffer), and the encoder
 * copies them, so this only narrows the type.
 */
export function wire (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}

/**
 * Decoder limits for a request: every repeated field is bounded (STYLE rule
 * 8). Piece digests never travel in a request, so one is already too many.
 */
export const REQUEST_LIMITS: DecodeOptions<TrackerRequest>['limits'] = {
  announce: { addrs: MAX_ADDRS_PER_PEER, meta: { pieceDigests: 0 } },
  report: { pieces: MAX_PIECES_PER_REPORT }
}

/** Decoder limits for an answer */
export const RESPONSE_LIMITS: DecodeOptions<TrackerResponse>['limits'] = {
  redirect: { addrs: MAX_ADDRS_PER_PEER },
  meta: { pieceDigests: MAX_PIECE_COUNT },
  parents: MAX_PARENTS_PER_ANSWER,
  parents$: { addrs: MAX_ADDRS_PER_PEER },
  grant: MAX_PIECE_COUNT,
  rejected: MAX_PIECES_PER_REPORT
}

function truncate (message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : message
}

/** An answer with no payload */
export function bareResponse (status: TrackerResponse.Status, errorCode: ErrorCode = ErrorCode.NONE, message?: string): TrackerResponse {
  return {
    status,
    errorCode,
    message: message == null ? undefined : truncate(message),
    parents: [],
    grant: [],
    grantStripe: 0,
    intervalMs: 0,
    rejected: [],
    upstream: '',
    sources: []
  }
}

/** The answer for an error raised while serving a request */
export function errorResponse (err: unknown): TrackerResponse {
  const { code, refused } = toWireCode(err)
  return bareResponse(refused ? TrackerResponse.Status.REFUSED : TrackerResponse.Status.ERROR, code, String((err as Error)?.message ?? err))
}

/** Keep the multiaddrs that parse and are not oversized, in canonical bytes */
export function cleanAddrs (addrs: Uint8Array[], log?: Logger): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const bytes of addrs) {
    if (out.length === MAX_ADDRS_PER_PEER) {
      break
    }
    if (bytes.byteLength === 0 || bytes.byteLength > MAX_ADDR_BYTES) {
      continue
    }
    try {
      out.push(multiaddr(bytes).bytes)
    } catch (err) {
      log?.trace('dropping an unparsable multiaddr - %e', err)
    }
  }
  return out
}

function metaFromWire (meta: TaskMeta): TaskMetaInfo {
  const contentLength = Number(meta.contentLength)
  return {
    contentLength: Number.isSafeInteger(contentLength) ? contentLength : Number.MAX_SAFE_INTEGER,
    pieceSize: meta.pieceSize,
    etag: meta.etag,
    lastModified: meta.lastModified,
    url: meta.url,
    digest: meta.digest
  }
}

function metaToWire (meta: TaskMetaInfo, pieceDigests?: Array<Uint8Array | undefined>): TaskMeta {
  return {
    contentLength: BigInt(meta.contentLength),
    pieceSize: meta.pieceSize,
    etag: meta.etag,
    lastModified: meta.lastModified,
    url: meta.url,
    digest: meta.digest,
    pieceDigests: pieceDigests?.map(d => wire(d ?? EMPTY)) ?? []
  }
}

/** This node's own view of who tracks a task, from one election per request */
export interface ElectionView {
  /** whom to send the request to instead of serving it here; undefined to serve */
  redirect?: string
  /** this node is the first elected tracker (or sees nobody eligible): only the first grants origin reads */
  first: boolean
  /** how many eligible peers the view holds (for logs) */
  eligible: number
}

/**
 * Where a request for `taskId` belongs by this node's own view (serve when
 * elected, or when nobody is eligible), and whether this node may grant.
 *
 * @throws {NotATrackerError} when this node does not serve and knows no tracker
 */
export function electionView (taskId: string, ctx: Pick<RpcContext, 'self' | 'eligiblePeers' | 'replicas' | 'serve'>): ElectionView {
  const eligible = [...ctx.eligiblePeers()]
  if (!ctx.serve) {
    const elected = electTrackers(taskId, eligible.filter(p => p !== ctx.self), ctx.replicas)
    if (elected.length === 0) {
      throw new NotATrackerError('This node does not serve as a tracker and sees no eligible tracker - refresh the eligible set and ask another node')
    }
    return { redirect: elected[0], first: false, eligible: eligible.length }
  }
  return { ...trackerRole(taskId, ctx.self, eligible, ctx.replicas), eligible: eligible.length }
}

/**
 * Answer one request from `from` (the authenticated remote peer id, or this
 * node's own id for a local request). Never throws: failures become REFUSED or
 * ERROR answers.
 */
export async function answerRequest (from: string, req: TrackerRequest, ctx: RpcContext): Promise<TrackerResponse> {
  ctx.count?.('requests')
  try {
    const response = await dispatch(from, req, ctx)
    if (response.status === TrackerResponse.Status.REDIRECT) {
      ctx.count?.('redirects')
    }
    return response
  } catch (err: any) {
    const response = errorResponse(err)
    if (response.status === TrackerResponse.Status.REFUSED) {
      ctx.count?.('refusals')
      ctx.log('refused %s from %s for task %s - %s', req.type, from, req.taskId, err.message)
    } else {
      ctx.count?.('errors')
      if (response.errorCode === ErrorCode.INTERNAL) {
        ctx.log.error('failed to answer %s from %s for task %s - %e', req.type, from, req.taskId, err)
      } else {
        ctx.log('rejected %s from %s for task %s - %s', req.type, from, req.taskId, err.message)
      }
    }
    return response
  }
}

async function dispatch (from: string, req: TrackerRequest, ctx: RpcContext): Promise<TrackerResponse> {
  if (req.type === TrackerRequest.MessageType.UNSPECIFIED) {
    throw new InvalidParametersError('The request has no message type - set type to ANNOUNCE, REPORT, LEAVE or BAD_PEER')
  }

  if (req.type === TrackerRequest.MessageType.ANNOUNCE && req.announce?.direct === true) {
    return direct(req, ctx)
  }

  const view = electionView(req.taskId, ctx)
  const hint = view.redirect
  if (hint != null) {
    const addrs = await ctx.addressesOf?.(hint).catch(() => []) ?? []
    ctx.log.trace('redirecting %s from %s for task %s to %s', req.type, from, req.taskId, hint)
    return {
      ...bareResponse(TrackerResponse.Status.REDIRECT),
      redirect: { peerId: hint, addrs: addrs.slice(0, MAX_ADDRS_PER_PEER).map(wire) }
    }
  }

  const now = ctx.now()
  switch (req.type) {
    case TrackerRequest.MessageType.ANNOUNCE:
      return announce(from, req, now, view, ctx)
    case TrackerRequest.MessageType.REPORT:
      return report(from, req, now, ctx)
    case TrackerRequest.MessageType.LEAVE:
      if (ctx.state.leave(from, req.taskId, now)) {
        ctx.log.trace('peer %s left task %s', from, req.taskId)
      }
      return bareResponse(TrackerResponse.Status.OK)
    case TrackerRequest.MessageType.BAD_PEER:
      return badPeer(from, req, now, ctx)
    default:
      throw new InvalidParametersError(`Unknown message type ${String(req.type)} - this tracker speaks ANNOUNCE, REPORT, LEAVE and BAD_PEER`)
  }
}

/** Piece digests a peer reports: recorded unless they conflict with the recorded ones */
function report (from: string, req: TrackerRequest, now: number, ctx: RpcContext): TrackerResponse {
  if (req.report == null) {
    throw new InvalidParametersError('A REPORT request needs a report body - set report.pieces')
  }
  const result = ctx.state.report(from, req.taskId, req.report.pieces, now)
  const rejected = new Set(result.rejected)
  ctx.waiters?.notify(req.taskId, req.report.pieces.map(p => p.index).filter(i => !rejected.has(i)))
  if (result.rejected.length > 0) {
    ctx.count?.('digestConflicts', result.rejected.length)
    ctx.log('peer %s reported digests for pieces %s of task %s that conflict with the recorded ones - not recorded', from, result.rejected.slice(0, 16).join(','), req.taskId)
  }
  return { ...bareResponse(TrackerResponse.Status.OK), rejected: result.rejected }
}

/** A peer reports a bad piece from another: counted, and the other blocked once several peers agree */
function badPeer (from: string, req: TrackerRequest, now: number, ctx: RpcContext): TrackerResponse {
  if (req.badPeer == null) {
    throw new InvalidParametersError('A BAD_PEER request needs a bad_peer body - set bad_peer.peer_id and bad_peer.index')
  }
  const result = ctx.state.badPeer(from, req.taskId, req.badPeer.peerId, req.badPeer.index, now)
  if (result.counted) {
    ctx.count?.('badPeerReports')
    ctx.log('peer %s reports a bad piece %d of task %s from %s', from, req.badPeer.index, req.taskId, req.badPeer.peerId)
  }
  if (result.blocked) {
    ctx.count?.('blockedPeers')
    ctx.log('blocked %s for task %s after bad-piece reports from several peers', req.badPeer.peerId, req.taskId)
  }
  return bareResponse(TrackerResponse.Status.OK)
}

/**
 * A long poll: while the answer offers nothing to do and the deadline has not
 * passed, hold it until another peer reports a piece the requester lacks,
 * then ask the state again
 */
async function holdUntilWork (from: string, input: AnnounceInput, attested: boolean, first: AnnounceResult, deadline: number, ctx: RpcContext): Promise<AnnounceResult> {
  let result = first
  for (let left = deadline - ctx.now(); left > 0; left = deadline - ctx.now()) {
    if (result.status !== 'ok' || offersWork(result, input.have, attested) || ctx.waiters?.canWait() !== true) {
      break
    }
    await ctx.waiters.wait(input.taskId, input.have, left)
    result = ctx.state.announce(from, input, ctx.now())
  }
  return result
}

/**
 * The tracker lacks the task's metadata. The first peer to ask with an
 * origin URL is told to stat it and announce the metadata; others that ask meanwhile and may wait
 * are held until it does (or until META_STAT_WAIT_MS after it was told, when
 * the next one is told to stat), so one peer, not all, asks the origin.
 */
async function holdForMeta (from: string, input: AnnounceInput, waitMs: number, first: AnnounceResult, ctx: RpcContext): Promise<AnnounceResult> {
  const waiters = ctx.waiters
  if (waiters == null) {
    return first
  }
  const left = waiters.statPending(input.taskId, ctx.now())
  if (left > 0 && waitMs > 0 && waiters.canWait()) {
    await waiters.waitForMeta(input.taskId, Math.min(left, waitMs, MAX_ANNOUNCE_WAIT_MS))
    const result = ctx.state.announce(from, input, ctx.now())
    if (result.status === 'ok') {
      return result
    }
  } else if (left > 0) {
    // it cannot wait: it stats too, and the window stays the first one's
    return first
  }
  // this one stats now, if it names an origin; who asks from here on waits for it
  if (input.url != null && input.url !== '') {
    waiters.statStarted(input.taskId, ctx.now() + META_STAT_WAIT_MS, ctx.now())
  }
  return first
}

/**
 * Whether an answer gives its peer (holding `have`) something to do: a source
 * grant, or a parent holding a piece the peer lacks. The state names only
 * such parents, except the upstream, which is listed even while it holds
 * nothing new: that alone is no work, the peer would only wait on it. Unless
 * the peer takes pieces on their source's signature (`attested`) and the
 * task has a source: then it asks the upstream ahead at once.
 */
function offersWork (result: Extract<AnnounceResult, { status: 'ok' }>, have: Uint8Array, attested: boolean): boolean {
  return result.grant.length > 0 || (attested && result.upstream != null && result.sources.length > 0) ||
    result.parents.some(p => p.peerId !== result.upstream || holdsMissing(have, p.have))
}

/**
 * A DIRECT announce: what this node holds of the task itself, elected or not.
 * No registration, so no pipeline: the answer names no upstream
 */
function direct (req: TrackerRequest, ctx: RpcContext): TrackerResponse {
  validateTaskId(req.taskId)
  const local = ctx.localTask?.(req.taskId)
  if (local == null) {
    throw new UnknownTaskError(`This node holds no complete copy of task ${req.taskId} - ask the task's tracker or another provider`)
  }
  return {
    ...bareResponse(TrackerResponse.Status.OK),
    meta: metaToWire(local.meta, local.pieceDigests),
    parents: [{ peerId: ctx.self, addrs: local.addrs.slice(0, MAX_ADDRS_PER_PEER).map(wire), have: wire(local.have), freeUploadSlots: local.freeUploadSlots }],
    grant: [],
    intervalMs: 0
  }
}

async function announce (from: string, req: TrackerRequest, now: number, view: ElectionView, ctx: RpcContext): Promise<TrackerResponse> {
  const body = req.announce
  if (body == null) {
    throw new InvalidParametersError('An ANNOUNCE request needs an announce body')
  }
  const input: AnnounceInput = {
    taskId: req.taskId,
    url: body.url,
    digest: body.digest,
    meta: body.meta == null ? undefined : metaFromWire(body.meta),
    have: body.have,
    addrs: cleanAddrs(body.addrs, ctx.log),
    uploadSlots: body.uploadSlots,
    freeUploadSlots: body.freeUploadSlots,
    version: body.version,
    // Only the first elected tracker grants origin reads. The other replica
    // keeps standby registrations and names parents, so it can take over; if
    // it granted too, the two would hand out the same stripes independently
    // whenever nodes' views of the members differ for a moment (seen in the
    // mirror bench: the registry served a 64 MiB layer twice). When the first
    // one is gone, the views drop it and this node becomes the first.
    wantGrant: body.wantGrant && view.first,
    wantDigests: body.wantDigests,
    zone: body.zone
  }
  let result = ctx.state.announce(from, input, now)
  if (result.status === 'need-meta') {
    result = await holdForMeta(from, input, body.waitMs, result, ctx)
  } else if (input.meta != null) {
    ctx.waiters?.metaKnown(req.taskId)
  }
  if (result.status === 'ok') {
    ctx.waiters?.notify(req.taskId, body.have)
    // a peer's first announce is answered at once: it sets up its download
    // (metadata, connections) while it waits for pieces
    if (!result.registered) {
      result = await holdUntilWork(from, input, body.attested, result, now + Math.min(body.waitMs, MAX_ANNOUNCE_WAIT_MS), ctx)
    }
  }
  if (result.status === 'need-meta') {
    return bareResponse(TrackerResponse.Status.NEED_META, ErrorCode.NONE, 'The tracker knows no metadata for this task - stat the origin and announce again with meta')
  }
  if (result.registered) {
    ctx.count?.('registrations')
    ctx.log.trace('registered %s for task %s', from, req.taskId)
  }
  if (result.movedToEnd) {
    ctx.count?.('slowPeersMoved')
    ctx.log('%s gains pieces at under half its upstream\'s rate: moved to the end of task %s\'s pipeline', from, req.taskId)
  }
  if (result.grant.length > 0) {
    ctx.count?.('grants')
    ctx.log('%s may read %d pieces of task %s from the origin, from piece %d (eligible: %s)', from, result.grant.length, req.taskId, result.grant[0], view.eligible)
  }
  return {
    ...bareResponse(TrackerResponse.Status.OK),
    meta: metaToWire(result.meta, result.pieceDigests),
    parents: result.parents.map(p => ({ peerId: p.peerId, addrs: p.addrs.map(wire), have: wire(p.have), freeUploadSlots: p.freeUploadSlots })),
    grant: result.grant,
    grantStripe: result.grantStripe,
    upstream: result.upstream ?? '',
    sources: result.sources,
    intervalMs: result.intervalMs
  }
}
