/**
 * Range requests (RFC 9110 §14) against a representation of known length.
 * Pure functions, no I/O.
 */

export type RangeRequest =
  /** no usable Range header: send the whole representation (200) */
  | { kind: 'full' }
  /** send bytes [start, end) (206) */
  | { kind: 'partial', start: number, end: number }
  /** no byte of the range exists: 416 with `Content-Range: bytes *\/<length>` */
  | { kind: 'unsatisfiable' }

const RANGE_SPEC = /^(\d*)-(\d*)$/

/**
 * Interpret a Range header for a representation of `length` bytes. One
 * range per request is served: a header with several ranges, another unit
 * or a malformed spec (`bytes=5-2`) is ignored and the whole body is sent,
 * which RFC 9110 allows. `bytes=a-b` (b clamped to the end), `bytes=a-` and
 * the suffix form `bytes=-n` are understood; a range that starts at or past
 * the end, or `bytes=-0`, is unsatisfiable.
 */
export function parseRange (header: string | undefined, length: number): RangeRequest {
  if (header == null) {
    return { kind: 'full' }
  }
  const value = header.trim()
  const eq = value.indexOf('=')
  if (eq === -1 || value.slice(0, eq).trim().toLowerCase() !== 'bytes') {
    return { kind: 'full' }
  }
  const spec = value.slice(eq + 1).trim()
  if (spec.includes(',')) {
    return { kind: 'full' }
  }
  const m = RANGE_SPEC.exec(spec)
  if (m == null || (m[1] === '' && m[2] === '')) {
    return { kind: 'full' }
  }
  const first = m[1] === '' ? undefined : Number(m[1])
  const last = m[2] === '' ? undefined : Number(m[2])
  if (![first, last].every(n => n == null || Number.isSafeInteger(n))) {
    return { kind: 'full' }
  }

  if (first == null) {
    return suffixRange(last!, length)
  }
  if (last != null && last < first) {
    return { kind: 'full' }
  }
  if (first >= length) {
    return { kind: 'unsatisfiable' }
  }
  return { kind: 'partial', start: first, end: last == null ? length : Math.min(last + 1, length) }
}

/**
 * `bytes=-n`: the last n bytes
 */
function suffixRange (n: number, length: number): RangeRequest {
  if (n === 0 || length === 0) {
    return { kind: 'unsatisfiable' }
  }
  return { kind: 'partial', start: Math.max(0, length - n), end: length }
}

/**
 * Whether a request's If-Range lets its Range apply to the representation
 * with entity tag `etag`. Only a strong, equal entity tag does; a date never
 * does here (blobs carry no Last-Modified), so the whole body is sent.
 */
export function ifRangeAllows (ifRange: string | undefined, etag: string): boolean {
  if (ifRange == null) {
    return true
  }
  const value = ifRange.trim()
  return !value.startsWith('W/') && value === etag
}

/**
 * `bytes <start>-<last>/<length>` for a 206 answer of bytes [start, end)
 */
export function contentRange (start: number, end: number, length: number): string {
  return `bytes ${start}-${end - 1}/${length}`
}
