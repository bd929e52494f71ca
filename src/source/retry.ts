/**
 * Pure retry decisions: which failures are worth another attempt and how long
 * to wait before it. No I/O here so it can be tested exhaustively.
 */

export interface RetryPolicy {
  /** Attempts per request, the first one included */
  attempts: number
  /** Backoff cap of the first retry, in ms */
  baseDelayMs: number
  /** Backoff never exceeds this, in ms */
  maxDelayMs: number
  /** A longer `Retry-After` is cut to this, in ms */
  maxRetryAfterMs: number
}

/**
 * HTTP statuses that may succeed if asked again: request timeout, too many
 * requests, and every server error except "not implemented", which will not
 * change by waiting
 */
export function isRetryableStatus (status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status <= 599)
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"): a uniformly random wait in [0, min(max, base * 2^(retry-1))].
 *
 * @param retry - 1 for the first retry, 2 for the second...
 * @param policy - base and cap of the delay
 * @param random - a number in [0, 1), `Math.random()` outside tests
 */
export function backoffDelay (retry: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: number = Math.random()): number {
  const exponent = Math.max(0, retry - 1)
  // 2 ** 31 already exceeds any sane cap, keep the arithmetic finite
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(exponent, 31))
  return Math.floor(random * ceiling)
}

/**
 * Parse a `Retry-After` header: either delay-seconds or an HTTP-date
 * (RFC 9110 §10.2.3). Returns the wait in ms capped at `maxMs`, or
 * `undefined` when the header is absent or unparseable.
 */
export function parseRetryAfter (value: string | undefined, maxMs: number, now: number = Date.now()): number | undefined {
  if (value == null) {
    return undefined
  }

  const trimmed = value.trim()

  if (/^\d+$/.test(trimmed)) {
    return Math.min(Number(trimmed) * 1000, maxMs)
  }

  // every HTTP-date form names a weekday and a month; this keeps Date.parse
  // from reading things like "-5" as a year
  const date = /[a-z]{3}/i.test(trimmed) ? Date.parse(trimmed) : Number.NaN

  if (Number.isNaN(date)) {
    return undefined
  }

  return Math.min(Math.max(0, date - now), maxMs)
}
