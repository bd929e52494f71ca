/**
 * Errors of the tracker protocol, and the one table that maps them to the
 * wire's `ErrorCode` and back (STYLE.md rule 12). Callers branch on
 * `err.name`; an error decoded from an answer also carries the wire code on
 * `.code`. Generic cases reuse `@libp2p/interface` errors (TimeoutError,
 * AbortError, InvalidParametersError, InvalidMessageError, NotStartedError).
 */

import { InvalidMessageError, InvalidParametersError } from '@libp2p/interface'
import { ErrorCode } from '../pb/tracker.ts'

/** The request broke a protocol rule (bad task id, bitfield, index, digest); sending it again will not help */
export class InvalidTrackerRequestError extends Error {
  static name = 'InvalidTrackerRequestError'
  code?: string

  constructor (message = 'The tracker rejected the request as invalid - fix the request; retrying it unchanged will fail again') {
    super(message)
    this.name = 'InvalidTrackerRequestError'
  }
}

/** REPORT or BAD_PEER for a task whose metadata the tracker does not know */
export class UnknownTaskError extends Error {
  static name = 'UnknownTaskError'
  code?: string

  constructor (message = 'The tracker does not know this task - announce it (with metadata) first') {
    super(message)
    this.name = 'UnknownTaskError'
  }
}

/** The announced metadata disagrees with what the tracker recorded for the task */
export class MetaConflictError extends Error {
  static name = 'MetaConflictError'
  code?: string

  constructor (message = 'The announced task metadata conflicts with the tracker\'s - the origin may have changed; check the URL or pin a digest') {
    super(message)
    this.name = 'MetaConflictError'
  }
}

/** The tracker tracks as many tasks as it may */
export class TooManyTasksError extends Error {
  static name = 'TooManyTasksError'
  code?: string

  constructor (message = 'The tracker is tracking its maximum number of tasks - ask the other elected tracker, or fetch from the origin') {
    super(message)
    this.name = 'TooManyTasksError'
  }
}

/** The task has as many peers on this tracker as it may */
export class TooManyPeersError extends Error {
  static name = 'TooManyPeersError'
  code?: string

  constructor (message = 'The task has its maximum number of peers on this tracker - ask the other elected tracker, or fetch from the origin') {
    super(message)
    this.name = 'TooManyPeersError'
  }
}

/** The tracker has too many requests in flight; try again after a backoff */
export class TrackerBusyError extends Error {
  static name = 'TrackerBusyError'
  code?: string

  constructor (message = 'The tracker is busy - retry after a backoff') {
    super(message)
    this.name = 'TrackerBusyError'
  }
}

/** The requester is not (or no longer) registered for the task */
export class NotRegisteredError extends Error {
  static name = 'NotRegisteredError'
  code?: string

  constructor (message = 'This peer is not registered for the task on the tracker - announce again, then repeat the request') {
    super(message)
    this.name = 'NotRegisteredError'
  }
}

/** The node does not serve as a tracker and knows no elected tracker to redirect to */
export class NotATrackerError extends Error {
  static name = 'NotATrackerError'
  code?: string

  constructor (message = 'This node does not serve as a tracker and knows no elected tracker - refresh the eligible set and ask another node') {
    super(message)
    this.name = 'NotATrackerError'
  }
}

/** The tracker failed while handling the request */
export class TrackerInternalError extends Error {
  static name = 'TrackerInternalError'
  code?: string

  constructor (message = 'The tracker failed to handle the request - retry later or ask the other elected tracker') {
    super(message)
    this.name = 'TrackerInternalError'
  }
}

/** A REPORT, LEAVE or BAD_PEER was answered REDIRECT: send it to `redirect` instead */
export class TrackerRedirectError extends Error {
  static name = 'TrackerRedirectError'
  /** The peer id the tracker named */
  redirect?: string

  constructor (message = 'The node is not an elected tracker of this task - send the request to the tracker it named', redirect?: string) {
    super(message)
    this.name = 'TrackerRedirectError'
    this.redirect = redirect
  }
}

/** The remote does not speak our tracker protocol version (or none at all) */
export class TrackerProtocolNotSupportedError extends Error {
  static name = 'TrackerProtocolNotSupportedError'
  /** Tracker protocol ids the remote announced through identify (may be empty) */
  remoteProtocols: string[]

  constructor (message = 'The peer does not speak this tracker protocol version - run compatible Damselfly versions', remoteProtocols: string[] = []) {
    super(message)
    this.name = 'TrackerProtocolNotSupportedError'
    this.remoteProtocols = remoteProtocols
  }
}

/** A length prefix announced a frame larger than the protocol allows; the stream is aborted before the frame is read */
export class FrameTooLargeError extends Error {
  static name = 'FrameTooLargeError'

  constructor (message = 'Length-prefixed frame exceeds the tracker protocol maximum - the peer is misbehaving or speaks another protocol version') {
    super(message)
    this.name = 'FrameTooLargeError'
  }
}

/** No connection to the tracker could be opened; the dial error is on `.cause` */
export class TrackerDialError extends Error {
  static name = 'TrackerDialError'

  constructor (message = 'Could not connect to the tracker - check that it runs and is reachable; the other elected tracker is tried next', options?: ErrorOptions) {
    super(message, options)
    this.name = 'TrackerDialError'
  }
}

/** The stream to the tracker failed mid-exchange or the answer was malformed; the underlying error is on `.cause` */
export class TrackerStreamError extends Error {
  static name = 'TrackerStreamError'

  constructor (message = 'The exchange with the tracker failed - retry, or ask the other elected tracker', options?: ErrorOptions) {
    super(message, options)
    this.name = 'TrackerStreamError'
  }
}

/** Why one tracker could not be used, as reported by NoTrackerReachableError */
export type TrackerFailureCause =
  /** the connection could not be opened */
  | 'dial-failed'
  /** the peer does not speak our tracker protocol version */
  | 'protocol-not-supported'
  /** no answer within the per-attempt timeout */
  | 'timeout'
  /** REFUSED: the tracker is full or busy, or is not a tracker */
  | 'refused'
  /** REDIRECT: not an elected tracker; too many redirects or a loop */
  | 'redirect'
  /** ERROR: the tracker rejected the request */
  | 'error'
  /** the stream failed in the middle of the exchange, or the answer was malformed */
  | 'stream-failed'

export const TRACKER_FAILURE_CAUSES: readonly TrackerFailureCause[] = ['dial-failed', 'protocol-not-supported', 'timeout', 'refused', 'redirect', 'error', 'stream-failed']

export interface TrackerAttempt {
  /** The tracker's peer id */
  peerId: string
  cause: TrackerFailureCause
  /** What went wrong, in words */
  message: string
}

/** `announceElected` reached no tracker; `attempts` lists each tracker tried and why it failed */
export class NoTrackerReachableError extends Error {
  static name = 'NoTrackerReachableError'
  attempts: TrackerAttempt[]

  constructor (message = 'No tracker of the task could be reached - keep downloading from DHT providers and the origin', attempts: TrackerAttempt[] = []) {
    super(message)
    this.name = 'NoTrackerReachableError'
    this.attempts = attempts
  }
}

type ErrorClass = new (message?: string) => Error

interface WireEntry {
  code: ErrorCode
  /** Answered with status REFUSED (capacity / load) rather than ERROR */
  refused: boolean
  /** The class an answer with this code becomes on the client */
  Class: ErrorClass
  /** Further local classes sent with this code */
  aliases?: ErrorClass[]
}

/** The single mapping between named errors and wire codes */
const WIRE_TABLE: readonly WireEntry[] = [
  { code: ErrorCode.INVALID_REQUEST, refused: false, Class: InvalidTrackerRequestError, aliases: [InvalidParametersError, InvalidMessageError] },
  { code: ErrorCode.UNKNOWN_TASK, refused: false, Class: UnknownTaskError },
  { code: ErrorCode.META_CONFLICT, refused: false, Class: MetaConflictError },
  { code: ErrorCode.TOO_MANY_TASKS, refused: true, Class: TooManyTasksError },
  { code: ErrorCode.TOO_MANY_PEERS, refused: true, Class: TooManyPeersError },
  { code: ErrorCode.BUSY, refused: true, Class: TrackerBusyError },
  { code: ErrorCode.NOT_REGISTERED, refused: false, Class: NotRegisteredError },
  { code: ErrorCode.NOT_A_TRACKER, refused: true, Class: NotATrackerError },
  { code: ErrorCode.INTERNAL, refused: false, Class: TrackerInternalError }
]

const INTERNAL_ENTRY = WIRE_TABLE[WIRE_TABLE.length - 1]

function entryFor (err: unknown): WireEntry {
  const name = (err as Error | undefined)?.name
  return WIRE_TABLE.find(e => e.Class.name === name || e.aliases?.some(a => a.name === name) === true) ?? INTERNAL_ENTRY
}

/**
 * The wire code for an error raised while serving a request, and whether the
 * answer's status is REFUSED (capacity, load) or ERROR. Unknown errors map to
 * INTERNAL.
 */
export function toWireCode (err: unknown): { code: ErrorCode, refused: boolean } {
  const entry = entryFor(err)
  return { code: entry.code, refused: entry.refused }
}

/**
 * The named error for a code received in an answer, with the tracker's
 * message and the code (e.g. `'TOO_MANY_PEERS'`) on `.code`. NONE becomes
 * TrackerInternalError (an answer with an error status must name a code).
 */
export function fromWireCode (code: ErrorCode, message?: string): Error {
  const entry = WIRE_TABLE.find(e => e.code === code) ?? INTERNAL_ENTRY
  const err = new entry.Class(message != null && message !== '' ? message : undefined) as Error & { code?: string }
  err.code = code
  return err
}

const CAUSES: Record<string, TrackerFailureCause> = {
  [TrackerDialError.name]: 'dial-failed',
  [TrackerProtocolNotSupportedError.name]: 'protocol-not-supported',
  TimeoutError: 'timeout',
  [TooManyTasksError.name]: 'refused',
  [TooManyPeersError.name]: 'refused',
  [TrackerBusyError.name]: 'refused',
  [NotATrackerError.name]: 'refused',
  [TrackerRedirectError.name]: 'redirect',
  [InvalidTrackerRequestError.name]: 'error',
  [UnknownTaskError.name]: 'error',
  [MetaConflictError.name]: 'error',
  [NotRegisteredError.name]: 'error',
  [TrackerInternalError.name]: 'error'
}

/** The failure cause a client-side error counts under; anything unnamed is a stream failure */
export function failureCause (err: unknown): TrackerFailureCause {
  return CAUSES[(err as Error | undefined)?.name ?? ''] ?? 'stream-failed'
}

/**
 * Whether a failed attempt may succeed when repeated on the same tracker
 * after a backoff: dial failures, timeouts, broken streams, BUSY and INTERNAL.
 */
export function isRetryable (err: unknown): boolean {
  const cause = failureCause(err)
  if (cause === 'dial-failed' || cause === 'timeout' || cause === 'stream-failed') {
    return true
  }
  const name = (err as Error | undefined)?.name
  return name === TrackerBusyError.name || name === TrackerInternalError.name
}
