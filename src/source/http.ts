import '../polyfill.ts'
import { AbortError, InvalidParametersError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { Agent, interceptors, request } from 'undici'
import {
  DEFAULT_BODY_IDLE_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_MAX_REDIRECTIONS,
  DEFAULT_MAX_RETRY_AFTER_MS,
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  LOG_NAMESPACE
} from './constants.ts'
import {
  LengthRequiredError,
  SourceChangedError,
  SourceForbiddenError,
  SourceHttpError,
  SourceInvalidResponseError,
  SourceNotFoundError,
  SourceTimeoutError,
  SourceTruncatedError,
  SourceUnreachableError
} from './errors.ts'
import {
  compareValidators,
  describeChange,
  formatRange,
  ifRangeValue,
  parseContentLength,
  parseContentRange,
  parseUnsatisfiedRangeTotal
} from './http-headers.ts'
import { backoffDelay, isRetryableStatus, parseRetryAfter } from './retry.ts'
import { defaultUserAgent, validateRange } from './utils.ts'
import type { Validator } from './http-headers.ts'
import type { ReadRangeOptions, SourceClient, SourceClientInit, SourceRequestOptions, SourceStat } from './index.ts'
import type { RetryPolicy } from './retry.ts'
import type { Logger } from '@libp2p/interface'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'

export interface HttpSourceInit extends SourceClientInit {
  /** Retry tuning; unset fields take the DEFAULT_RETRY_* constants */
  retry?: Partial<RetryPolicy>
  /** @default 'damselfly/<version>' */
  userAgent?: string
  /**
   * Accept any TLS certificate. Only for test setups with self-signed certificates.
   *
   * @default false
   */
  insecureTls?: boolean
}

type Body = Dispatcher.ResponseData['body']

interface HttpResponse {
  status: number
  statusText: string
  headers: IncomingHttpHeaders
  body: Body
  finalUrl: string
}

interface ProbeResult {
  length?: number
  validator: Validator
  finalUrl: string
  acceptRanges: boolean
}

interface RangeState {
  /** The version every byte must come from, once known */
  validator?: Validator
}

/** Headers this client controls; a caller's value for them is ignored */
const RESERVED_HEADERS = new Set(['range', 'if-range', 'accept-encoding'])

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH',
  'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EADDRNOTAVAIL', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'
])

/**
 * Failures worth another attempt, with the wait the origin asked for (if it did)
 */
const retryHints = new WeakMap<Error, { retryAfterMs?: number }>()

function retryable <E extends Error> (err: E, retryAfterMs?: number): E {
  retryHints.set(err, { retryAfterMs })
  return err
}

/**
 * Origins whose Range-ignoring was already logged, so it is logged once, not
 * once per piece. Bounded: cleared when it grows past this.
 */
const MAX_REMEMBERED_ORIGINS = 1024

/**
 * Reads files from http(s) origins with undici: HEAD + Range probe for stat,
 * ranged GETs with If-Range for reads, retries with backoff, resume after a
 * dropped connection.
 */
export class HttpSource implements SourceClient {
  readonly schemes = ['http', 'https']
  private readonly log: Logger
  private readonly agent: Agent
  private readonly dispatcher: Dispatcher
  private readonly retry: RetryPolicy
  private readonly userAgent: string
  private readonly onBytes?: (bytes: number) => void
  private readonly rangeIgnoredLogged = new Set<string>()

  constructor (init: HttpSourceInit = {}) {
    this.log = (init.logger ?? defaultLogger()).forComponent(`${LOG_NAMESPACE}:http`)
    this.retry = {
      attempts: init.retry?.attempts ?? DEFAULT_RETRY_ATTEMPTS,
      baseDelayMs: init.retry?.baseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
      maxDelayMs: init.retry?.maxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS,
      maxRetryAfterMs: init.retry?.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS
    }

    if (!Number.isSafeInteger(this.retry.attempts) || this.retry.attempts < 1) {
      throw new InvalidParametersError(`retry.attempts must be an integer >= 1, got ${this.retry.attempts}`)
    }

    this.userAgent = init.userAgent ?? defaultUserAgent()
    this.onBytes = init.onBytes

    if (init.insecureTls === true) {
      this.log('TLS certificate verification is OFF for https origins (insecureTls)')
    }

    this.agent = new Agent({
      connect: {
        timeout: DEFAULT_CONNECT_TIMEOUT_MS,
        rejectUnauthorized: init.insecureTls !== true
      },
      headersTimeout: DEFAULT_HEADERS_TIMEOUT_MS,
      bodyTimeout: DEFAULT_BODY_IDLE_TIMEOUT_MS
    })
    this.dispatcher = this.agent.compose(interceptors.redirect({ maxRedirections: DEFAULT_MAX_REDIRECTIONS }))
  }

  async close (): Promise<void> {
    await this.agent.close()
  }

  async stat (url: string, options: SourceRequestOptions = {}): Promise<SourceStat> {
    checkHttpUrl(url)
    throwIfAborted(url, options)

    const head = await this.withRetries('HEAD', url, options, async () => this.headOnce(url, options))
    const probe = await this.withRetries('range probe', url, options, async () => this.probeOnce(url, options))

    if (head?.length != null && probe.length != null && head.length !== probe.length) {
      this.log('%s: HEAD said %d bytes, the range probe %d; the file changed in between, using the probe', url, head.length, probe.length)
    }

    const contentLength = probe.length ?? head?.length

    if (contentLength == null) {
      throw new LengthRequiredError(`the origin sent no Content-Length for ${url} (neither to HEAD nor to a ranged GET); Damselfly needs the file length up front - serve the file with a Content-Length header`)
    }

    const validator = hasValidator(probe.validator) ? probe.validator : (head?.validator ?? {})

    return {
      url,
      finalUrl: probe.finalUrl,
      contentLength,
      etag: validator.etag,
      lastModified: validator.lastModified,
      acceptRanges: probe.acceptRanges
    }
  }

  async * readRange (url: string, options: ReadRangeOptions): AsyncGenerator<Uint8Array, void, undefined> {
    checkHttpUrl(url)
    validateRange(url, options.start, options.end)
    throwIfAborted(url, options)

    const { end } = options
    const state: RangeState = {
      validator: hasValidator(options.validator) ? { etag: options.validator.etag, lastModified: options.validator.lastModified } : undefined
    }
    let position = options.start
    let failures = 0

    while (position < end) {
      const chunks = this.rangeAttempt(url, position, end, state, options)
      let failure: Error | undefined

      try {
        while (true) {
          let result: IteratorResult<Uint8Array>

          try {
            result = await chunks.next()
          } catch (err: any) {
            failure = this.mapError(err, url, options)
            break
          }

          if (result.done === true) {
            break
          }

          position += result.value.byteLength
          yield result.value
        }
      } finally {
        // closes the response body when the consumer stopped early
        await chunks.return()
      }

      if (failure == null) {
        if (position !== end) {
          throw new SourceTruncatedError(`reading ${url} stopped at byte ${position} of the range [${options.start}, ${end}); try again`)
        }

        return
      }

      // every failure counts, progress or not: a read is one piece, and an
      // origin that breaks off every response must not keep us busy forever
      failures++
      await this.beforeRetry(failure, failures, `GET bytes ${position}-${end - 1}`, url, options)
    }
  }

  /**
   * Run `fn` until it succeeds, retrying failures marked retryable
   */
  private async withRetries <T> (label: string, url: string, options: SourceRequestOptions, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (err: any) {
        await this.beforeRetry(this.mapError(err, url, options), attempt, label, url, options)
      }
    }
  }

  /**
   * Wait before the next attempt, or throw `err` when it is not retryable or
   * the attempts are used up
   */
  private async beforeRetry (err: Error, failures: number, label: string, url: string, options: SourceRequestOptions): Promise<void> {
    if (err.name === 'AbortError') {
      throw err
    }

    const hint = retryHints.get(err)

    if (hint == null) {
      this.log('%s %s failed - %e', label, url, err)
      throw err
    }

    if (failures >= this.retry.attempts) {
      this.log.error('%s %s failed %d times in a row, giving up - %e', label, url, failures, err)
      throw err
    }

    const delay = hint.retryAfterMs ?? backoffDelay(failures, this.retry)
    this.log('%s %s failed (attempt %d of %d), retrying in %d ms%s - %e', label, url, failures, this.retry.attempts, delay, hint.retryAfterMs != null ? ' as the origin asked (Retry-After)' : '', err)
    await sleep(delay, url, options)
  }

  private async headOnce (url: string, options: SourceRequestOptions): Promise<ProbeResult | undefined> {
    const res = await this.send(url, 'HEAD', {}, options)
    discard(res.body)

    if (res.status >= 200 && res.status < 300) {
      return {
        length: parseContentLength(header(res.headers, 'content-length')),
        validator: validatorOf(res.headers),
        finalUrl: res.finalUrl,
        acceptRanges: false
      }
    }

    if (res.status === 404 || res.status === 410 || isRetryableStatus(res.status)) {
      throw this.statusError(res, url)
    }

    // 405/501 (HEAD not supported), or 403 from URLs signed for GET only:
    // the ranged GET decides
    this.log('HEAD %s answered %d %s, trying a ranged GET instead', url, res.status, res.statusText)
    return undefined
  }

  private async probeOnce (url: string, options: SourceRequestOptions): Promise<ProbeResult> {
    const res = await this.send(url, 'GET', { range: formatRange(0, 1) }, options)

    try {
      const validator = validatorOf(res.headers)

      if (res.status === 206) {
        const raw = header(res.headers, 'content-range')
        const range = parseContentRange(raw)

        if (range?.start !== 0 || range.last !== 0 || range.total == null) {
          throw new SourceInvalidResponseError(`the origin answered a range probe of ${url} (bytes 0-0) with Content-Range "${raw ?? ''}" instead of "bytes 0-0/<length>"; report this to whoever runs the origin`)
        }

        await this.drain(res.body)
        return { length: range.total, validator, finalUrl: res.finalUrl, acceptRanges: true }
      }

      if (res.status >= 200 && res.status < 300) {
        // the origin ignores Range: the headers tell the length, the body is not wanted
        return { length: parseContentLength(header(res.headers, 'content-length')), validator, finalUrl: res.finalUrl, acceptRanges: false }
      }

      if (res.status === 416) {
        // only an empty file cannot serve its first byte
        return { length: parseUnsatisfiedRangeTotal(header(res.headers, 'content-range')), validator, finalUrl: res.finalUrl, acceptRanges: false }
      }

      throw this.statusError(res, url)
    } finally {
      discard(res.body)
    }
  }

  /**
   * One ranged GET for [from, end): yields the bytes of that range only, or
   * throws
   */
  private async * rangeAttempt (url: string, from: number, end: number, state: RangeState, options: SourceRequestOptions): AsyncGenerator<Uint8Array, void, undefined> {
    const extra: Record<string, string> = { range: formatRange(from, end) }
    const ifRange = ifRangeValue(state.validator)

    if (ifRange != null) {
      extra['if-range'] = ifRange
    }

    const res = await this.send(url, 'GET', extra, options)

    try {
      const actual = validatorOf(res.headers)

      if (res.status === 206) {
        const raw = header(res.headers, 'content-range')
        const range = parseContentRange(raw)

        if (range == null || range.start !== from || range.last !== end - 1) {
          throw new SourceInvalidResponseError(`asked ${url} for bytes ${from}-${end - 1} but the origin sent Content-Range "${raw ?? ''}"; report this to whoever runs the origin`)
        }

        // the origin honoured Range; make sure it also honoured If-Range
        if (state.validator != null && compareValidators(state.validator, actual) === 'changed') {
          throw this.changedError(url, state.validator, actual)
        }

        state.validator ??= pinnable(actual)
        yield * this.readBody(res.body, 0, end - from, url)
        return
      }

      if (res.status === 200) {
        // either If-Range failed (another version) or the origin ignores Range
        if (state.validator != null && compareValidators(state.validator, actual) !== 'same') {
          throw this.changedError(url, state.validator, actual)
        }

        state.validator ??= pinnable(actual)
        this.logRangeIgnored(url)
        yield * this.readBody(res.body, from, end - from, url)
        return
      }

      throw this.statusError(res, url)
    } finally {
      discard(res.body)
    }
  }

  /**
   * Yield `length` bytes of `body` after skipping `skip`, counting every byte
   * received
   */
  private async * readBody (body: Body, skip: number, length: number, url: string): AsyncGenerator<Uint8Array, void, undefined> {
    let skipped = 0
    let sent = 0

    for await (const chunk of body as AsyncIterable<Buffer>) {
      this.onBytes?.(chunk.byteLength)
      let data: Uint8Array = chunk

      if (skipped < skip) {
        const n = Math.min(skip - skipped, data.byteLength)
        skipped += n
        data = data.subarray(n)
      }

      if (data.byteLength === 0) {
        continue
      }

      const take = Math.min(length - sent, data.byteLength)
      sent += take
      yield take === data.byteLength ? data : data.subarray(0, take)

      if (sent === length) {
        return
      }
    }

    throw retryable(new SourceTruncatedError(`the origin ended the response for ${url} after ${sent} of ${length} bytes; it will be resumed`))
  }

  private async drain (body: Body): Promise<void> {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      this.onBytes?.(chunk.byteLength)
    }
  }

  private async send (url: string, method: 'GET' | 'HEAD', extra: Record<string, string>, options: SourceRequestOptions): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent }

    for (const [name, value] of Object.entries(options.headers ?? {})) {
      const lower = name.toLowerCase()

      if (!RESERVED_HEADERS.has(lower)) {
        headers[lower] = value
      }
    }

    // lengths and offsets are of the stored bytes, never of a compressed form
    headers['accept-encoding'] = 'identity'
    Object.assign(headers, extra)

    const res = await request(url, {
      dispatcher: this.dispatcher,
      method,
      headers,
      signal: options.signal,
      headersTimeout: options.timeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      bodyTimeout: options.timeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS
    })
    const history = (res.context as { history?: URL[] } | undefined)?.history

    return {
      status: res.statusCode,
      statusText: res.statusText,
      headers: res.headers,
      body: res.body,
      finalUrl: history?.at(-1)?.href ?? url
    }
  }

  /**
   * Turn a failed response into the error to throw, marked retryable where a
   * retry may help
   */
  private statusError (res: HttpResponse, url: string): Error {
    const status = res.status
    const described = `HTTP ${status}${res.statusText !== '' ? ` ${res.statusText}` : ''}`

    if (status === 404 || status === 410) {
      return new SourceNotFoundError(`${url} was not found at the origin (${described}); check the URL`)
    }

    if (status === 401 || status === 403) {
      return new SourceForbiddenError(`the origin refused access to ${url} (${described}); check the credentials or headers sent with the request`)
    }

    if (isRetryableStatus(status)) {
      const retryAfterMs = parseRetryAfter(header(res.headers, 'retry-after'), this.retry.maxRetryAfterMs)
      return retryable(new SourceHttpError(`the origin answered ${described} for ${url}; it is failing or overloaded, try again later`, status), retryAfterMs)
    }

    if (status >= 300 && status < 400) {
      return new SourceHttpError(`${url} answered ${described} after following ${DEFAULT_MAX_REDIRECTIONS} redirects at most; check the URL for a redirect loop`, status)
    }

    if (status === 416) {
      return new SourceHttpError(`the origin cannot serve the requested bytes of ${url} (${described}); the file is shorter than expected - start the download again`, status)
    }

    return new SourceHttpError(`the origin answered ${described} for ${url}; check the URL and the request headers`, status)
  }

  private changedError (url: string, expected: Validator, actual: Validator): SourceChangedError {
    return new SourceChangedError(`the file at ${url} changed during the download (${describeChange(expected, actual)}); start the download again`)
  }

  /**
   * Map what undici or the network threw to this module's errors
   */
  private mapError (err: any, url: string, options: SourceRequestOptions): Error {
    if (options.signal?.aborted === true) {
      return new AbortError(`the request for ${url} was aborted`)
    }

    if (!(err instanceof Error)) {
      return new Error(String(err))
    }

    if (err.name.startsWith('Source') || err.name === 'AbortError' || err.name === 'LengthRequiredError') {
      return err
    }

    const code = errorCode(err)

    if (TIMEOUT_CODES.has(code)) {
      return retryable(new SourceTimeoutError(`${url}: ${describeTimeout(code, options.timeoutMs)}; check that the origin is up, or allow a longer timeout`, { cause: err }))
    }

    if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
      return new SourceUnreachableError(`TLS with ${originOf(url)} failed (${code}: ${err.message}); fix the origin's certificate (for a test setup, insecureTls skips the check)`, { cause: err })
    }

    if (NETWORK_CODES.has(code)) {
      return retryable(new SourceUnreachableError(`cannot reach ${originOf(url)} for ${url} (${code}: ${err.message}); check the host name, port and network`, { cause: err }))
    }

    if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      return retryable(new SourceTruncatedError(`the response for ${url} did not match its Content-Length (${err.message}); it will be retried`))
    }

    if (code === 'UND_ERR_INVALID_ARG' && /redirect loop/i.test(err.message)) {
      return new SourceHttpError(`${url} redirects in a loop; check the URL`)
    }

    if (code === 'UND_ERR_INVALID_ARG') {
      return new InvalidParametersError(`cannot request ${url}: ${err.message}`)
    }

    return err
  }

  private logRangeIgnored (url: string): void {
    const origin = originOf(url)

    if (this.rangeIgnoredLogged.has(origin)) {
      return
    }

    if (this.rangeIgnoredLogged.size >= MAX_REMEMBERED_ORIGINS) {
      this.rangeIgnoredLogged.clear()
    }

    this.rangeIgnoredLogged.add(origin)
    this.log('%s ignores Range requests: every piece downloads the file from its start and discards the bytes before the piece', origin)
  }
}

function checkHttpUrl (url: string): void {
  let parsed: URL

  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidParametersError(`"${url}" is not a valid absolute URL; give a full URL such as https://example.com/file.bin`)
  }

  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidParametersError(`the http source cannot fetch ${url}; it handles http:// and https:// URLs only`)
  }
}

function throwIfAborted (url: string, options: SourceRequestOptions): void {
  if (options.signal?.aborted === true) {
    throw new AbortError(`the request for ${url} was aborted`)
  }
}

async function sleep (ms: number, url: string, options: SourceRequestOptions): Promise<void> {
  throwIfAborted(url, options)

  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new AbortError(`the request for ${url} was aborted`))
    }
    const timer = setTimeout(() => {
      options.signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)

    options.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Drop a response body that is not (or no longer) wanted. Destroying an
 * unfinished undici body emits an error, which is expected here.
 */
function discard (body: Body): void {
  if (!body.destroyed) {
    body.on('error', () => {})
    body.destroy()
  }
}

function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

function validatorOf (headers: IncomingHttpHeaders): Validator {
  return {
    etag: header(headers, 'etag'),
    lastModified: header(headers, 'last-modified')
  }
}

function hasValidator (validator: Validator | undefined): validator is Validator {
  return validator?.etag != null || validator?.lastModified != null
}

/** A response's validator to pin the following attempts to, if it has one */
function pinnable (validator: Validator): Validator | undefined {
  return hasValidator(validator) ? validator : undefined
}

function originOf (url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

function describeTimeout (code: string, timeoutMs: number | undefined): string {
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return `the response body stalled for more than ${timeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS} ms`
  }

  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return `no response within ${timeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS} ms`
  }

  return `could not connect within ${DEFAULT_CONNECT_TIMEOUT_MS} ms`
}

/**
 * The error code of a network error. Connecting to a name with several
 * addresses fails with an AggregateError of one error per address.
 */
function errorCode (err: any): string {
  const code = err?.code ?? err?.cause?.code ?? err?.errors?.[0]?.code
  return typeof code === 'string' ? code : ''
}
