/**
 * Tunables of the back-to-source clients. Times are in milliseconds.
 */

/** Log namespace of this module */
export const LOG_NAMESPACE = 'damselfly:source'

/**
 * First retry waits up to this long (full jitter: a random time in [0, delay]).
 * Short enough that a blip costs little, long enough not to hammer a struggling origin.
 */
export const DEFAULT_RETRY_BASE_DELAY_MS = 250

/** Backoff never waits longer than this between two attempts; doubling stops here */
export const DEFAULT_RETRY_MAX_DELAY_MS = 10_000

/**
 * Attempts per request, the first one included. With the delays above the
 * whole sequence takes at most 0.25 + 0.5 + 1 + 2 = 3.75 s of waiting.
 */
export const DEFAULT_RETRY_ATTEMPTS = 5

/**
 * A `Retry-After` from the origin is honoured up to this long; an origin asking
 * for more is treated as if it asked for this, so a download never stalls for hours.
 */
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000

/** Giving up on a TCP (and TLS) connect after this long; origins on a LAN or CDN connect in milliseconds */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

/** Longest wait between sending a request and receiving the complete response headers */
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000

/**
 * Longest silence while reading a response body. It is an idle timeout, not a
 * deadline: a slow but steady origin never hits it.
 */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000

/** Redirects followed per request, like curl's and browsers' sane limit */
export const DEFAULT_MAX_REDIRECTIONS = 5

/** Product token of the User-Agent header; the version is appended */
export const USER_AGENT_PRODUCT = 'damselfly'
