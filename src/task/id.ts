/**
 * Task identity.
 *
 * A task id is 64 lowercase hex digits: the sha256 of a canonical string.
 *
 * With a content digest (`sha256:…`) the id depends on the digest alone, so
 * the same blob fetched from two mirrors or under two URLs is one task.
 *
 * Otherwise the id is derived from the normalised URL plus the tag,
 * application and byte range. Normalising removes what changes between two
 * requests for the same content: signature and expiry query parameters of
 * presigned URLs, the order of query parameters, the case of scheme and host,
 * default ports, the fragment and user credentials.
 *
 * The canonical strings carry a version prefix so that a future change of the
 * rules yields new ids instead of colliding with old ones.
 */
import '../polyfill.ts'
import { createHash } from 'node:crypto'
import { InvalidParametersError } from '@libp2p/interface'
import { parseDigest } from './digest.ts'
import { InvalidUrlError } from './errors.ts'

/**
 * Query parameters that authorise or expire a request but do not name the
 * content. They are removed (case-insensitively) before a URL becomes a task
 * id, so two presigned URLs for the same object give the same task.
 */
export const DEFAULT_FILTERED_QUERY_PARAMS: readonly string[] = Object.freeze([
  // AWS S3 presigned URLs, signature v4 and v2
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
  'AWSAccessKeyId',
  'Signature',
  'Expires',
  // Google Cloud Storage signed URLs, v4 and v2
  'X-Goog-Algorithm',
  'X-Goog-Credential',
  'X-Goog-Date',
  'X-Goog-Expires',
  'X-Goog-SignedHeaders',
  'X-Goog-Signature',
  'GoogleAccessId',
  // Aliyun OSS signed URLs (`Expires` and `Signature` are listed above)
  'OSSAccessKeyId',
  'security-token',
  // Azure Blob Storage shared access signatures
  'sig',
  'se',
  'st',
  'sp',
  'sv',
  'sr',
  'spr',
  'skoid',
  'sktid',
  'skt',
  'ske',
  'sks',
  'skv'
])

const CANONICAL_VERSION = 'damselfly-task-id/1'

export interface UrlTaskIdOptions {
  /**
   * The URL of the content
   */
  url: string

  /**
   * Query parameter names to drop in addition to
   * `DEFAULT_FILTERED_QUERY_PARAMS` (case-insensitive)
   */
  filteredQueryParams?: readonly string[]

  /**
   * Distinguishes otherwise identical URLs whose content differs, e.g. a
   * mutable "latest" URL fetched by different builds
   */
  tag?: string

  /**
   * The application the task belongs to
   */
  application?: string

  /**
   * A byte range of the URL, e.g. `bytes=0-1023` (the `bytes=` prefix is
   * optional)
   */
  range?: string
}

export interface TaskIdOptions extends Partial<UrlTaskIdOptions> {
  /**
   * The whole-file content digest, `sha256:<64 hex>`. When given the id is
   * derived from it alone.
   */
  digest?: string
}

/**
 * Normalise a URL for use in a task id: lowercase scheme and host, no
 * default port, no fragment, no credentials, filtered query parameters
 * removed and the rest sorted by name (stable, duplicates kept in order).
 *
 * @throws {InvalidUrlError} when `url` is not an absolute URL
 */
export function normaliseUrl (url: string, filteredQueryParams: readonly string[] = []): string {
  let parsed: URL

  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidUrlError(`Invalid URL ${JSON.stringify(url)} - pass an absolute URL such as https://example.com/file`)
  }

  // the WHATWG parser already lowercases the scheme and drops the default port
  // of http (80) and https (443); it lowercases the host of those schemes only
  parsed.hostname = parsed.hostname.toLowerCase()

  parsed.hash = ''
  parsed.username = ''
  parsed.password = ''
  parsed.search = normaliseQuery(parsed.search, filteredQueryParams)

  return parsed.href
}

/**
 * Remove filtered params from a `?a=1&b=2` query string and sort the rest by
 * name. The pairs are kept as the URL parser encoded them, so no value is
 * re-encoded differently.
 */
function normaliseQuery (search: string, filteredQueryParams: readonly string[]): string {
  if (search.length <= 1) {
    return ''
  }

  const filtered = new Set([...DEFAULT_FILTERED_QUERY_PARAMS, ...filteredQueryParams].map(name => name.toLowerCase()))
  const pairs: Array<{ name: string, pair: string }> = []

  for (const pair of search.slice(1).split('&')) {
    if (pair === '') {
      continue
    }

    const name = decodeParamName(pair)

    if (!filtered.has(name.toLowerCase())) {
      pairs.push({ name, pair })
    }
  }

  // Array.prototype.sort is stable, so repeated names keep their order
  pairs.sort((a, b) => compareStrings(a.name, b.name))

  return pairs.length === 0 ? '' : `?${pairs.map(p => p.pair).join('&')}`
}

function compareStrings (a: string, b: string): number {
  if (a === b) {
    return 0
  }

  return a < b ? -1 : 1
}

function decodeParamName (pair: string): string {
  const eq = pair.indexOf('=')
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).replaceAll('+', ' ')

  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}

/**
 * The id of a task named by URL (when no content digest is known).
 *
 * @returns 64 lowercase hex digits
 * @throws {InvalidUrlError}
 */
export function taskIdFromUrl (options: UrlTaskIdOptions): string {
  const url = normaliseUrl(options.url, options.filteredQueryParams)

  return sha256Hex([
    CANONICAL_VERSION,
    `url:${url}`,
    `tag:${options.tag ?? ''}`,
    `application:${options.application ?? ''}`,
    `range:${normaliseRange(options.range)}`
  ].join('\n'))
}

function normaliseRange (range: string | undefined): string {
  return (range ?? '').trim().replace(/^bytes=/i, '').replaceAll(' ', '')
}

/**
 * The id of a task named by its content digest. The same digest always gives
 * the same id, whatever URL, mirror or tag the content came from.
 *
 * @returns 64 lowercase hex digits
 * @throws {InvalidDigestError}
 */
export function taskIdFromDigest (digest: string): string {
  const { algorithm, hex } = parseDigest(digest)

  return sha256Hex(`${CANONICAL_VERSION}\ndigest:${algorithm}:${hex}`)
}

/**
 * The id of a task: from the digest when one is given, else from the URL.
 *
 * @throws {InvalidDigestError | InvalidUrlError | InvalidParametersError}
 */
export function taskId (options: TaskIdOptions): string {
  if (options.digest != null && options.digest !== '') {
    return taskIdFromDigest(options.digest)
  }

  if (options.url == null || options.url === '') {
    throw new InvalidParametersError('A task needs a url or a digest - pass one of them')
  }

  return taskIdFromUrl({ ...options, url: options.url })
}

function sha256Hex (s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex')
}
