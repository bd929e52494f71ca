/**
 * The tracker client used by the download engine: announce, report, leave
 * and bad-peer reports, each over a stream of its own, with a per-attempt
 * timeout and bounded retries with full-jitter backoff; and
 * `announceElected`, which finds the task's trackers and follows redirects.
 */

import '../polyfill.ts'
import { InvalidMessageError, InvalidParametersError, TimeoutError, setMaxListeners } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { anySignal } from 'any-signal'
import { DEFAULT_TRACKER_REPLICAS, electTrackers } from '../election/index.ts'
import { TrackerRequest, TrackerResponse } from '../pb/tracker.ts'
import { MAX_PIECE_COUNT } from '../task/piece-size.ts'
import { Bitfield } from '../utils/bitfield.ts'
import { DAMSELFLY_VERSION, parseProtocol } from '../version.ts'
import {
  DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
  DEFAULT_CLIENT_RETRIES,
  DEFAULT_MAX_OUTBOUND_STREAMS,
  DEFAULT_PROTOCOL_PREFIX,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  DIGEST_BYTES,
  MAX_ADDRS_PER_PEER,
  MAX_ANNOUNCE_WAIT_MS,
  MAX_BITFIELD_BYTES,
  MAX_PIECES_PER_REPORT,
  MAX_REDIRECTS,
  MAX_REQUEST_BYTES,
  MAX_RESPONSE_BYTES,
  MAX_SOURCES_PER_ANSWER,
  PROTOCOL_NAME,
  PROTOCOL_VERSION
} from './constants.ts'
import {
  NoTrackerReachableError,
  TRACKER_FAILURE_CAUSES,
  TrackerDialError,
  TrackerProtocolNotSupportedError,
  TrackerRedirectError,
  TrackerStreamError,
  failureCause,
  fromWireCode,
  isRetryable
} from './errors.ts'
import { boundedLpStream } from './framing.ts'
import { RESPONSE_LIMITS, wire } from './rpc.ts'
import { validateTaskId } from './state.ts'
import type { TrackerAttempt, TrackerFailureCause } from './errors.ts'
import type { TaskMetaInfo } from './state.ts'
import type { AbortOptions, ComponentLogger, Connection, CounterGroup, Logger, Metrics, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What an ANNOUNCE says about the client */
export interface AnnounceRequest {
  /** 64 lowercase hex digits */
  taskId: string
  /** The URL being downloaded (for the tracker's logs) */
  url?: string
  /** Whole-file digest `sha256:<hex>`, when known */
  digest?: string
  /** Metadata from an origin stat; send it when the tracker answered `need-meta` */
  meta?: TaskMetaInfo
  /** Pieces held verified: a Bitfield or its bytes; absent or empty = none */
  have?: Bitfield | Uint8Array
  /** Where other peers can dial this client (at most 16 are sent) */
  addrs?: Multiaddr[]
  /** Upload slots in total */
  uploadSlots: number
  /** Upload slots free now */
  freeUploadSlots: number
  /** @default DAMSELFLY_VERSION */
  version?: string
  /** The client may fetch from the origin: ask for a source grant. false releases a grant held */
  wantGrant?: boolean
  /** Ask for the piece digests (set while some are missing) */
  wantDigests?: boolean
  /** We ask our upstream ahead for pieces whose digest we lack, taking them on their source's signature: an upstream is work */
  attested?: boolean
  zone?: string
  /** ask the node about content it holds itself (a DHT provider), elected or not */
  direct?: boolean
  /**
   * With nothing to fetch, let the tracker hold the answer up to this many ms
   * until a piece we lack appears (a long poll instead of polling); the
   * request's timeout grows by as much. 0 (default): answer at once.
   */
  waitMs?: number
}

/** A candidate parent */
export interface TrackerParent {
  peerId: PeerId
  addrs: Multiaddr[]
  /** The parent's have bitfield bytes as the tracker last heard them */
  have: Uint8Array
  freeUploadSlots: number
}

/** Task metadata from the tracker; it cannot vouch for the digests (see index.ts) */
export interface TrackerMeta extends TaskMetaInfo {
  /** When asked for: one entry per piece, undefined where the tracker has no digest yet */
  pieceDigests?: Array<Uint8Array | undefined>
}

export interface AnnounceResponse {
  /**
   * - ok: registered; meta, parents and grant are set
   * - need-meta: stat the origin and announce again with `meta`
   * - redirect: this node is not an elected tracker; ask `redirect`
   */
  status: 'ok' | 'need-meta' | 'redirect'
  redirect?: { peerId: PeerId, addrs: Multiaddr[] }
  meta?: TrackerMeta
  /** Best first */
  parents: TrackerParent[]
  /** Pieces to fetch from the origin, ascending: the complete current grant */
  grant: number[]
  /**
   * Pieces per stripe as the tracker cuts grants: a granted piece may be read
   * to the end of its stripe in one origin range. Undefined from a tracker
   * older than the field (those cut 16-piece stripes for 4 source peers).
   */
  grantStripe?: number
  /**
   * The peer to stream pieces from in index order: our predecessor in the
   * task's pipeline, which forwards each piece as soon as it has it; listed
   * first in `parents` unless we are complete. Undefined when we have none
   * (the first peer of the task), from a tracker with pipelining off or older
   * than the field, and in a DIRECT answer
   */
  upstream?: PeerId
  /** The task's source peers (they read pieces from the origin), the latest last: their signed piece digests may be trusted */
  sources: PeerId[]
  /** Announce again after this many ms (0 unless ok) */
  intervalMs: number
}

export interface ReportResponse {
  /** Pieces whose digest conflicts with the one the tracker recorded first */
  rejected: number[]
}

export interface ElectedAnnounce {
  /** The tracker that answered */
  tracker: PeerId
  /** Its answer: status 'ok' or 'need-meta' */
  response: AnnounceResponse
}

export interface ReportedPiece {
  index: number
  /** sha256, 32 bytes */
  digest: Uint8Array
}

export interface TrackerRequestOptions extends AbortOptions {
  /**
   * Time per attempt, dial included (ms)
   *
   * @default 5000
   */
  timeoutMs?: number
  /**
   * Retries after the first attempt
   *
   * @default 2
   */
  retries?: number
  /** Addresses to dial the tracker at, when the peer store may not know them (a redirect hint) */
  addrs?: Multiaddr[]
}

export interface TrackerClientInit {
  /** @default '/damselfly' */
  protocolPrefix?: string
  /** @default 5000 */
  timeoutMs?: number
  /** @default 2 */
  retries?: number
  /**
   * Trackers per task, as the election uses
   *
   * @default 2
   */
  replicas?: number
  /**
   * Backoff base, ms
   *
   * @default 200
   */
  retryBaseDelayMs?: number
  /**
   * Backoff cap, ms
   *
   * @default 3000
   */
  retryMaxDelayMs?: number
  /**
   * Random source in [0, 1) for the jitter
   *
   * @default Math.random
   */
  random?(): number
  /**
   * This node's own tracker: requests to `peerId` are answered in-process
   * instead of dialling ourselves
   */
  local?: { peerId: string, answer(request: TrackerRequest, options?: AbortOptions): Promise<TrackerResponse> }
}

export interface TrackerClientComponents {
  connectionManager: {
    openConnection(peer: PeerId | Multiaddr[], options?: AbortOptions): Promise<Connection>
  }
  /** Used to name the tracker protocol versions a remote does speak */
  peerStore?: {
    get(peerId: PeerId, options?: AbortOptions): Promise<{ protocols: string[] }>
  }
  logger?: ComponentLogger
  metrics?: Metrics
}

export interface TrackerClientStats {
  /** Requests sent (attempts, including retries) */
  attempts: number
  /** Failed attempts by cause (redirect answers included) */
  failures: Record<TrackerFailureCause, number>
}

type Target = string | PeerId

function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function toBytes (have: Bitfield | Uint8Array | undefined): Uint8Array {
  if (have == null) {
    return new Uint8Array(0)
  }
  return have instanceof Bitfield ? have.toBytes() : have
}

function parseAddrs (list: Uint8Array[], log: Logger): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const bytes of list) {
    try {
      out.push(multiaddr(bytes))
    } catch (err) {
      log.trace('tracker answer holds an unparsable multiaddr - %e', err)
    }
  }
  return out
}

function parsePeerId (id: string): PeerId | undefined {
  try {
    return peerIdFromString(id)
  } catch {
    return undefined
  }
}

/**
 * Talks to trackers. One request per stream (the tracker closes the stream
 * after its answer), so there is no stream state to keep between requests.
 */
export class TrackerClient {
  readonly protocol: string
  readonly #components: TrackerClientComponents
  readonly #log: Logger
  readonly #timeoutMs: number
  readonly #retries: number
  readonly #replicas: number
  readonly #baseDelayMs: number
  readonly #maxDelayMs: number
  readonly #random: () => number
  readonly #local?: TrackerClientInit['local']
  readonly #failures: Record<TrackerFailureCause, number>
  readonly #metric?: CounterGroup<TrackerFailureCause>
  #attempts = 0

  constructor (components: TrackerClientComponents, init: TrackerClientInit = {}) {
    this.#components = components
    this.#log = (components.logger ?? defaultLogger()).forComponent('damselfly:tracker:client')
    this.protocol = `${init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX}/${PROTOCOL_NAME}/${PROTOCOL_VERSION}`
    this.#timeoutMs = init.timeoutMs ?? DEFAULT_CLIENT_REQUEST_TIMEOUT_MS
    this.#retries = init.retries ?? DEFAULT_CLIENT_RETRIES
    this.#replicas = init.replicas ?? DEFAULT_TRACKER_REPLICAS
    this.#baseDelayMs = init.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS
    this.#maxDelayMs = init.retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS
    this.#random = init.random ?? Math.random
    this.#local = init.local
    this.#failures = Object.fromEntries(TRACKER_FAILURE_CAUSES.map(c => [c, 0])) as Record<TrackerFailureCause, number>
    this.#metric = components.metrics?.registerCounterGroup('damselfly_tracker_client_failures_total', {
      label: 'cause',
      help: 'Failed tracker requests (attempts) by cause: dial-failed, protocol-not-supported, timeout, refused, redirect, error, stream-failed'
    })
    if (!(this.#timeoutMs > 0) || !Number.isSafeInteger(this.#retries) || this.#retries < 0) {
      throw new InvalidParametersError(`Tracker client needs timeoutMs > 0 and retries >= 0, got ${this.#timeoutMs} and ${this.#retries}`)
    }
  }

  stats (): TrackerClientStats {
    return { attempts: this.#attempts, failures: { ...this.#failures } }
  }

  /**
   * Register with (or refresh at) the tracker `peer`. A REDIRECT is an
   * answer (status 'redirect'), not an error.
   *
   * @throws {InvalidParametersError} the request is invalid (nothing is sent)
   * @throws {Error} after the retries, a named error: TrackerDialError,
   * TrackerProtocolNotSupportedError, TimeoutError, TrackerStreamError, for
   * REFUSED TooManyTasksError, TooManyPeersError, TrackerBusyError or
   * NotATrackerError, for ERROR InvalidTrackerRequestError, MetaConflictError, ...
   */
  async announce (peer: Target, req: AnnounceRequest, options: TrackerRequestOptions = {}): Promise<AnnounceResponse> {
    const request = this.#announceRequest(req)
    const response = await this.#request(peer, request, this.#waitOptions(request, options))
    return this.#announceResponse(response)
  }

  /** A long poll may be held for its wait on top of the usual answer time */
  #waitOptions (request: TrackerRequest, options: TrackerRequestOptions): TrackerRequestOptions {
    const waitMs = request.announce?.waitMs ?? 0
    return waitMs > 0 ? { ...options, timeoutMs: (options.timeoutMs ?? this.#timeoutMs) + waitMs } : options
  }

  /**
   * Report finished, verified pieces (split into requests of at most 1024;
   * nothing is sent for an empty list).
   *
   * @throws {Error} as `announce`, plus TrackerRedirectError, NotRegisteredError (announce first) and UnknownTaskError
   */
  async report (peer: Target, taskId: string, pieces: readonly ReportedPiece[], options: TrackerRequestOptions = {}): Promise<ReportResponse> {
    validateTaskId(taskId)
    for (const { index, digest } of pieces) {
      if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_PIECE_COUNT) {
        throw new InvalidParametersError(`Invalid piece index ${index} - indexes are 0 .. ${MAX_PIECE_COUNT - 1}`)
      }
      if (digest?.byteLength !== DIGEST_BYTES) {
        throw new InvalidParametersError(`The digest of piece ${index} must be a ${DIGEST_BYTES}-byte sha256`)
      }
    }
    const rejected: number[] = []
    for (let start = 0; start < pieces.length; start += MAX_PIECES_PER_REPORT) {
      const batch = pieces.slice(start, start + MAX_PIECES_PER_REPORT).map(p => ({ index: p.index, digest: wire(p.digest) }))
      const response = await this.#request(peer, { type: TrackerRequest.MessageType.REPORT, taskId, report: { pieces: batch } }, options)
      this.#expectOk(peer, response)
      rejected.push(...response.rejected)
    }
    return { rejected }
  }

  /** Leave the task: the tracker releases our grants at once */
  async leave (peer: Target, taskId: string, options: TrackerRequestOptions = {}): Promise<void> {
    validateTaskId(taskId)
    const response = await this.#request(peer, { type: TrackerRequest.MessageType.LEAVE, taskId }, options)
    this.#expectOk(peer, response)
  }

  /** `badPeer` sent us a piece `index` that failed verification */
  async reportBadPeer (peer: Target, taskId: string, badPeer: Target, index: number, options: TrackerRequestOptions = {}): Promise<void> {
    validateTaskId(taskId)
    if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_PIECE_COUNT) {
      throw new InvalidParametersError(`Invalid piece index ${index} - indexes are 0 .. ${MAX_PIECE_COUNT - 1}`)
    }
    const response = await this.#request(peer, {
      type: TrackerRequest.MessageType.BAD_PEER,
      taskId,
      badPeer: { peerId: badPeer.toString(), index }
    }, options)
    this.#expectOk(peer, response)
  }

  /**
   * Announce to the task's trackers: compute `electTrackers(taskId, eligible)`
   * locally, try the first elected tracker, then the second; follow at most
   * 2 redirects from each. Returns the first answer that is 'ok' or
   * 'need-meta' with the tracker that gave it.
   *
   * @throws {NoTrackerReachableError} listing each tracker tried and why it failed
   */
  async announceElected (taskId: string, eligible: Iterable<string>, req: Omit<AnnounceRequest, 'taskId'>, options: TrackerRequestOptions = {}): Promise<ElectedAnnounce> {
    validateTaskId(taskId)
    const request = this.#announceRequest({ ...req, taskId })
    options = this.#waitOptions(request, options)
    const elected = electTrackers(taskId, eligible, this.#replicas)
    const attempts: TrackerAttempt[] = []
    const tried = new Set<string>()

    for (const first of elected) {
      let target = first
      let addrs: Multiaddr[] | undefined
      let redirects = 0

      while (!tried.has(target)) {
        tried.add(target)
        let response: AnnounceResponse
        try {
          response = this.#announceResponse(await this.#request(target, request, { ...options, addrs }))
        } catch (err: any) {
          if (options.signal?.aborted === true) {
            throw err
          }
          attempts.push({ peerId: target, cause: failureCause(err), message: err.message })
          break
        }
        if (response.status !== 'redirect') {
          return { tracker: peerIdFromString(target), response }
        }
        const hint = response.redirect?.peerId.toString()
        if (hint == null || redirects >= MAX_REDIRECTS || tried.has(hint)) {
          let why = `named ${hint} after ${MAX_REDIRECTS} redirects`
          if (hint == null) {
            why = 'named no tracker'
          } else if (tried.has(hint)) {
            why = `named ${hint}, already tried`
          }
          attempts.push({ peerId: target, cause: 'redirect', message: `redirect ${why}` })
          break
        }
        attempts.push({ peerId: target, cause: 'redirect', message: `redirected to ${hint}` })
        this.#log('tracker %s redirects task %s to %s', target, taskId, hint)
        redirects++
        target = hint
        addrs = response.redirect?.addrs
      }
    }

    const list = attempts.map(a => `${a.peerId}: ${a.cause} (${a.message})`).join('; ')
    const message = elected.length === 0
      ? `No eligible tracker is known for task ${taskId} - keep downloading from DHT providers and the origin; trackers appear once tracker-eligible nodes join the swarm`
      : `No tracker of task ${taskId} answered - ${list} - keep downloading from DHT providers and the origin`
    this.#log('%s', message)
    throw new NoTrackerReachableError(message, attempts)
  }

  #announceRequest (req: AnnounceRequest): TrackerRequest {
    validateTaskId(req.taskId)
    const have = toBytes(req.have)
    if (have.byteLength > MAX_BITFIELD_BYTES) {
      throw new InvalidParametersError(`The have bitfield is ${have.byteLength} bytes, more than the ${MAX_BITFIELD_BYTES} allowed`)
    }
    for (const [name, value] of [['uploadSlots', req.uploadSlots], ['freeUploadSlots', req.freeUploadSlots]] as const) {
      if (!Number.isSafeInteger(value) || value < 0 || value > 0xffffffff) {
        throw new InvalidParametersError(`${name} must be a non-negative 32-bit integer, got ${value}`)
      }
    }
    const meta = req.meta == null
      ? undefined
      : {
          contentLength: BigInt(req.meta.contentLength),
          pieceSize: req.meta.pieceSize,
          etag: req.meta.etag,
          lastModified: req.meta.lastModified,
          url: req.meta.url,
          digest: req.meta.digest,
          pieceDigests: []
        }
    return {
      type: TrackerRequest.MessageType.ANNOUNCE,
      taskId: req.taskId,
      announce: {
        url: req.url,
        digest: req.digest,
        meta,
        have: wire(have),
        addrs: (req.addrs ?? []).slice(0, MAX_ADDRS_PER_PEER).map(a => wire(a.bytes)),
        uploadSlots: req.uploadSlots,
        freeUploadSlots: req.freeUploadSlots,
        version: req.version ?? DAMSELFLY_VERSION,
        wantGrant: req.wantGrant ?? false,
        wantDigests: req.wantDigests ?? false,
        attested: req.attested ?? false,
        zone: req.zone,
        direct: req.direct ?? false,
        waitMs: Math.max(0, Math.min(MAX_ANNOUNCE_WAIT_MS, Math.floor(req.waitMs ?? 0)))
      }
    }
  }

  /** Turn an answer into an AnnounceResponse, or throw the error it carries */
  #announceResponse (response: TrackerResponse): AnnounceResponse {
    const { Status } = TrackerResponse
    if (response.status === Status.REDIRECT) {
      const redirect = response.redirect == null ? undefined : parsePeerId(response.redirect.peerId)
      if (redirect == null) {
        throw new TrackerStreamError('The tracker answered REDIRECT without a valid peer id - the tracker is faulty', { cause: new InvalidMessageError('bad redirect') })
      }
      return { status: 'redirect', redirect: { peerId: redirect, addrs: parseAddrs(response.redirect?.addrs ?? [], this.#log) }, parents: [], grant: [], sources: [], intervalMs: 0 }
    }
    if (response.status === Status.NEED_META) {
      return { status: 'need-meta', parents: [], grant: [], sources: [], intervalMs: 0 }
    }
    if (response.status !== Status.OK) {
      throw this.#errorOf(response)
    }
    if (response.meta == null) {
      throw new TrackerStreamError('The tracker answered OK without task metadata - the tracker is faulty', { cause: new InvalidMessageError('no meta') })
    }
    const m = response.meta
    const contentLength = Number(m.contentLength)
    const pieceCount = m.pieceSize > 0 ? Math.ceil(contentLength / m.pieceSize) : -1
    if (!Number.isSafeInteger(contentLength) || pieceCount < 0 || pieceCount > MAX_PIECE_COUNT) {
      throw new TrackerStreamError(`The tracker sent impossible metadata (${m.contentLength} bytes in pieces of ${m.pieceSize}) - the tracker is faulty`, { cause: new InvalidMessageError('bad meta') })
    }
    let pieceDigests: Array<Uint8Array | undefined> | undefined
    if (m.pieceDigests.length > 0) {
      if (m.pieceDigests.length !== pieceCount || m.pieceDigests.some(d => d.byteLength !== 0 && d.byteLength !== DIGEST_BYTES)) {
        throw new TrackerStreamError(`The tracker sent ${m.pieceDigests.length} piece digests for ${pieceCount} pieces, or a digest of the wrong size - the tracker is faulty`, { cause: new InvalidMessageError('bad digests') })
      }
      pieceDigests = m.pieceDigests.map(d => d.byteLength === 0 ? undefined : d)
    }
    const haveBytes = (pieceCount + 7) >> 3
    const parents: TrackerParent[] = []
    for (const p of response.parents) {
      const peerId = parsePeerId(p.peerId)
      if (peerId == null || p.have.byteLength !== haveBytes) {
        this.#log.trace('dropping a malformed parent entry %s', p.peerId)
        continue
      }
      parents.push({ peerId, addrs: parseAddrs(p.addrs, this.#log), have: p.have, freeUploadSlots: p.freeUploadSlots })
    }
    return {
      status: 'ok',
      meta: {
        contentLength,
        pieceSize: m.pieceSize,
        etag: m.etag,
        lastModified: m.lastModified,
        url: m.url,
        digest: m.digest,
        pieceDigests
      },
      parents,
      grant: response.grant.filter(i => i < pieceCount),
      grantStripe: response.grantStripe > 0 ? response.grantStripe : undefined,
      upstream: this.#upstreamOf(response.upstream),
      sources: response.sources.slice(0, MAX_SOURCES_PER_ANSWER).flatMap(id => parsePeerId(id) ?? []),
      intervalMs: response.intervalMs
    }
  }

  /** The upstream an answer names; none when it names none or a malformed id */
  #upstreamOf (id: string): PeerId | undefined {
    if (id === '') {
      return undefined
    }
    const peerId = parsePeerId(id)
    if (peerId == null) {
      this.#log.trace('ignoring a malformed upstream %s', id.slice(0, 128))
    }
    return peerId
  }

  #expectOk (peer: Target, response: TrackerResponse): void {
    if (response.status === TrackerResponse.Status.OK) {
      return
    }
    if (response.status === TrackerResponse.Status.REDIRECT) {
      const hint = response.redirect?.peerId
      throw new TrackerRedirectError(`Tracker ${peer.toString()} is not an elected tracker of this task - send the request to ${hint ?? 'the elected tracker'}`, hint)
    }
    throw this.#errorOf(response)
  }

  #errorOf (response: TrackerResponse): Error {
    const { Status } = TrackerResponse
    if (response.status === Status.REFUSED || response.status === Status.ERROR) {
      return fromWireCode(response.errorCode, response.message)
    }
    return new TrackerStreamError(`The tracker answered with unexpected status ${response.status} - the tracker is faulty or speaks another version`, { cause: new InvalidMessageError('unexpected status') })
  }

  /**
   * Send one request with retries. An answer is returned whatever its
   * status, except REFUSED / ERROR with a transient code (BUSY, INTERNAL),
   * which are retried and finally thrown as their named error.
   */
  async #request (peer: Target, request: TrackerRequest, options: TrackerRequestOptions): Promise<TrackerResponse> {
    const retries = options.retries ?? this.#retries
    const id = peer.toString()
    const size = TrackerRequest.encode(request).byteLength
    if (size > MAX_REQUEST_BYTES) {
      throw new InvalidParametersError(`The ${request.type} request is ${size} bytes, more than the ${MAX_REQUEST_BYTES} a tracker accepts - send shorter URLs and headers`)
    }
    for (let attempt = 0; ; attempt++) {
      let failure: Error
      try {
        const response = await this.#attempt(peer, request, options)
        if (response.status === TrackerResponse.Status.REDIRECT) {
          this.#count('redirect')
          this.#log('%s to tracker %s for task %s redirected to %s', request.type, id, request.taskId, response.redirect?.peerId)
        }
        if (response.status !== TrackerResponse.Status.REFUSED && response.status !== TrackerResponse.Status.ERROR) {
          return response
        }
        failure = fromWireCode(response.errorCode, response.message)
      } catch (err: any) {
        if (options.signal?.aborted === true) {
          throw options.signal.reason ?? err
        }
        failure = err
      }
      const retry = isRetryable(failure) && attempt < retries
      this.#fail(request, id, attempt, failure, retry)
      if (!retry) {
        throw failure
      }
      const delay = this.#random() * Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** attempt)
      await sleep(delay, options.signal)
    }
  }

  #count (cause: TrackerFailureCause): void {
    this.#failures[cause]++
    this.#metric?.increment({ [cause]: true })
  }

  #fail (request: TrackerRequest, peer: string, attempt: number, err: Error, willRetry = false): void {
    const cause = failureCause(err)
    this.#count(cause)
    this.#log('%s to tracker %s for task %s failed (%s, attempt %d%s) - %s', request.type, peer, request.taskId, cause, attempt + 1, willRetry ? ', retrying' : '', err.message)
  }

  /** One attempt: dial (or answer locally), one stream, one request, one answer */
  async #attempt (peer: Target, request: TrackerRequest, options: TrackerRequestOptions): Promise<TrackerResponse> {
    this.#attempts++
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = anySignal([timeout, options.signal])
    setMaxListeners(Infinity, signal)
    const id = peer.toString()

    try {
      if (this.#local != null && id === this.#local.peerId) {
        return await this.#local.answer(request, { signal })
      }
      const connection = await this.#dial(peer, options.addrs, signal)
      const stream = await this.#openStream(connection, id, signal)
      return await this.#exchange(stream, id, request, signal)
    } catch (err: any) {
      if (options.signal?.aborted === true) {
        throw options.signal.reason ?? err
      }
      if (timeout.aborted) {
        throw new TimeoutError(`Tracker ${id} did not answer within ${timeoutMs} ms`)
      }
      throw err
    } finally {
      signal.clear()
    }
  }

  async #dial (peer: Target, addrs: Multiaddr[] | undefined, signal: AbortSignal): Promise<Connection> {
    const id = peer.toString()
    try {
      const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
      const target = addrs != null && addrs.length > 0
        ? addrs.map(a => a.getComponents().some(c => c.name === 'p2p') ? a : a.encapsulate(`/p2p/${id}`))
        : peerId
      return await this.#components.connectionManager.openConnection(target, { signal })
    } catch (err: any) {
      throw new TrackerDialError(`Could not connect to tracker ${id} - ${err.message}`, { cause: err })
    }
  }

  async #openStream (connection: Connection, id: string, signal: AbortSignal): Promise<Stream> {
    try {
      return await connection.newStream(this.protocol, { signal, maxOutboundStreams: DEFAULT_MAX_OUTBOUND_STREAMS, runOnLimitedConnection: false })
    } catch (err: any) {
      if (err.name === 'UnsupportedProtocolError') {
        throw await this.#unsupported(connection.remotePeer, id)
      }
      throw new TrackerStreamError(`Could not open a tracker stream to ${id} - ${err.message}`, { cause: err })
    }
  }

  async #exchange (stream: Stream, id: string, request: TrackerRequest, signal: AbortSignal): Promise<TrackerResponse> {
    try {
      const lp = boundedLpStream(stream, MAX_RESPONSE_BYTES, 'Tracker answer')
      await lp.write(TrackerRequest.encode(request), { signal })
      await stream.close({ signal })
      const frame = await lp.read({ signal })
      try {
        return TrackerResponse.decode(frame, { limits: RESPONSE_LIMITS })
      } catch (err: any) {
        throw new InvalidMessageError(`Malformed answer from tracker ${id} - ${err.message}`)
      }
    } catch (err: any) {
      stream.abort(err)
      throw new TrackerStreamError(`The exchange with tracker ${id} failed - ${err.message}`, { cause: err })
    }
  }

  async #unsupported (remote: PeerId, id: string): Promise<TrackerProtocolNotSupportedError> {
    let theirs: string[] = []
    try {
      const peer = await this.#components.peerStore?.get(remote)
      // our own id may be listed because the remote opened tracker streams to us as a
      // client; the failed negotiation just proved it does not serve it
      theirs = (peer?.protocols ?? []).filter(p => p !== this.protocol && (parseProtocol(p)?.name === PROTOCOL_NAME || p.includes(`/${PROTOCOL_NAME}/`)))
    } catch {
      // unknown to the peer store: report no versions
    }
    const speaks = theirs.length === 0 ? 'it announces no tracker protocol (not a Damselfly node, or an older one)' : `it speaks ${theirs.join(', ')}`
    return new TrackerProtocolNotSupportedError(`Tracker ${id} does not support ${this.protocol}: ${speaks} - run compatible Damselfly versions on both nodes`, theirs)
  }
}
