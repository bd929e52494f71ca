/**
 * @packageDocumentation
 *
 * Back-to-source clients: read a file's length and byte ranges from its
 * origin (`http://`, `https://`, `file://`). One interface per scheme, a
 * registry that picks the client by URL, retries with backoff, version pinning
 * (a file that changes during a download is an error, never a mix of two
 * versions) and a count of the bytes received from origins.
 *
 * @example
 *
 * ```ts
 * const sources = createDefaultSources()
 * const stat = await sources.stat('https://example.com/big.bin')
 * for await (const chunk of sources.readRange(stat.url, { start: 0, end: 1024, validator: stat })) {
 *   // exactly 1024 bytes in total
 * }
 * await sources.close()
 * ```
 */

import '../polyfill.ts'
import { FileSource } from './file.ts'
import { HttpSource } from './http.ts'
import { SourceRegistry } from './registry.ts'
import type { RetryPolicy } from './retry.ts'
import type { AbortOptions, ComponentLogger } from '@libp2p/interface'

export interface SourceRequestOptions extends AbortOptions {
  /**
   * Extra request headers, sent on every request including retries and
   * redirects (http only). As in browsers, Authorization and Cookie are
   * dropped when a redirect leads to another origin. Range, If-Range and
   * Accept-Encoding are the client's own and cannot be overridden.
   */
  headers?: Record<string, string>
  /**
   * Overrides, for this call, how long to wait for response headers and the
   * longest silence while reading a body, in ms (http only). The connect
   * timeout stays DEFAULT_CONNECT_TIMEOUT_MS. undici checks these timers about
   * every 0.5 s, so a timeout fires up to that much late.
   */
  timeoutMs?: number
}

export interface SourceStat {
  /** The URL as asked */
  url: string
  /** The URL after redirects */
  finalUrl: string
  /** Length of the file in bytes */
  contentLength: number
  etag?: string
  lastModified?: string
  /** `true` only when the origin answered a Range probe with 206 Partial Content */
  acceptRanges: boolean
}

export interface SourceValidator {
  etag?: string
  lastModified?: string
}

export interface ReadRangeOptions extends SourceRequestOptions {
  /** First byte, inclusive */
  start: number
  /** Byte after the last one: the range is [start, end) */
  end: number
  /**
   * The version of the file the bytes must come from (usually the
   * `SourceStat`). Sent as `If-Range`; if the origin has another version,
   * `readRange` throws `SourceChangedError` and yields none of its bytes.
   * Without it the version of the first response is pinned for retries.
   */
  validator?: SourceValidator
}

export interface SourceClient {
  /** URL schemes handled, without the colon: `['http', 'https']` */
  readonly schemes: string[]

  /** Length, version and range support of the file at `url` */
  stat(url: string, options?: SourceRequestOptions): Promise<SourceStat>

  /** Yields exactly `end - start` bytes of the file, or throws */
  readRange(url: string, options: ReadRangeOptions): AsyncIterable<Uint8Array>

  /** Release connections and other resources */
  close?(): Promise<void>
}

export interface SourceClientInit {
  logger?: ComponentLogger
  /** Called with the size of every chunk of body bytes received from the origin */
  onBytes?(bytes: number): void
}

export interface DefaultSourcesInit {
  /** @default defaultLogger() */
  logger?: ComponentLogger
  /** Retry tuning, see DEFAULT_RETRY_* in constants.ts */
  retry?: Partial<RetryPolicy>
  /** @default 'damselfly/<version>' */
  userAgent?: string
  /**
   * Accept any TLS certificate from https origins. Only for test setups with
   * self-signed certificates.
   *
   * @default false
   */
  insecureTls?: boolean
  /** Called with the size of every chunk received from any origin */
  onBytes?(bytes: number): void
}

/**
 * A registry with the http, https and file clients
 */
export function createDefaultSources (init: DefaultSourcesInit = {}): SourceRegistry {
  const registry = new SourceRegistry({ onBytes: init.onBytes })

  registry.register(new HttpSource({
    logger: init.logger,
    retry: init.retry,
    userAgent: init.userAgent,
    insecureTls: init.insecureTls,
    onBytes: registry.countBytes
  }))
  registry.register(new FileSource({
    logger: init.logger,
    onBytes: registry.countBytes
  }))

  return registry
}

export { SourceRegistry } from './registry.ts'
export type { SourceRegistryInit } from './registry.ts'
export { HttpSource } from './http.ts'
export type { HttpSourceInit } from './http.ts'
export { FileSource } from './file.ts'
export type { RetryPolicy } from './retry.ts'
export * from './errors.ts'
