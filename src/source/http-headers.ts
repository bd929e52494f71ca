/**
 * Pure helpers to read and write the HTTP headers the source clients use.
 */

export interface ContentRange {
  /** First byte, inclusive */
  start: number
  /** Last byte, inclusive */
  last: number
  /** Full length of the file, `undefined` when the origin sent `*` */
  total?: number
}

/**
 * Parse `Content-Range: bytes <first>-<last>/<total|*>` of a 206 response.
 * Returns `undefined` for anything else (including the `bytes *\/<total>` form
 * of a 416).
 */
export function parseContentRange (value: string | undefined): ContentRange | undefined {
  if (value == null) {
    return undefined
  }

  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value)

  if (match == null) {
    return undefined
  }

  const start = Number(match[1])
  const last = Number(match[2])
  const total = match[3] === '*' ? undefined : Number(match[3])

  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start) {
    return undefined
  }

  if (total != null && (!Number.isSafeInteger(total) || last >= total)) {
    return undefined
  }

  return { start, last, total }
}

/**
 * Parse the `<total>` of an unsatisfied range: `Content-Range: bytes *\/<total>`
 */
export function parseUnsatisfiedRangeTotal (value: string | undefined): number | undefined {
  if (value == null) {
    return undefined
  }

  const match = /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(value)

  if (match == null) {
    return undefined
  }

  const total = Number(match[1])
  return Number.isSafeInteger(total) ? total : undefined
}

/**
 * Parse a Content-Length, `undefined` when absent or not a plain non-negative integer
 */
export function parseContentLength (value: string | undefined): number | undefined {
  if (value == null || !/^\s*\d+\s*$/.test(value)) {
    return undefined
  }

  const length = Number(value)
  return Number.isSafeInteger(length) ? length : undefined
}

/**
 * The `Range` header value for bytes [start, end) - end exclusive
 */
export function formatRange (start: number, end: number): string {
  return `bytes=${start}-${end - 1}`
}

/**
 * What identifies one version of a file at the origin
 */
export interface Validator {
  etag?: string
  lastModified?: string
}

/**
 * The value to send as `If-Range`. It must be a strong validator (RFC 9110
 * §13.1.5): a strong ETag if there is one, else Last-Modified, else a weak
 * ETag (which a compliant server answers with 200, so the reply is checked
 * against the validator instead).
 */
export function ifRangeValue (validator: Validator | undefined): string | undefined {
  if (validator == null) {
    return undefined
  }

  if (validator.etag != null && !isWeakEtag(validator.etag)) {
    return validator.etag
  }

  return validator.lastModified ?? validator.etag
}

export function isWeakEtag (etag: string): boolean {
  return etag.startsWith('W/')
}

/**
 * Compare the validator a request was pinned to with the one a response
 * carries.
 *
 * - `same`: the response positively is the expected version
 * - `changed`: it positively is another version
 * - `unknown`: the response carries nothing to compare with
 *
 * ETags are compared first (weakly: `W/"x"` matches `"x"`, enough to tell two
 * versions apart); Last-Modified only when one side lacks an ETag.
 */
export function compareValidators (expected: Validator, actual: Validator): 'same' | 'changed' | 'unknown' {
  if (expected.etag != null && actual.etag != null) {
    return stripWeak(expected.etag) === stripWeak(actual.etag) ? 'same' : 'changed'
  }

  if (expected.lastModified != null && actual.lastModified != null) {
    return Date.parse(expected.lastModified) === Date.parse(actual.lastModified) ? 'same' : 'changed'
  }

  return 'unknown'
}

/**
 * Describe the change between two validators for an error message, e.g.
 * `ETag "a" → "b"`
 */
export function describeChange (expected: Validator, actual: Validator): string {
  if (expected.etag != null) {
    return `ETag ${expected.etag} → ${actual.etag ?? 'none'}`
  }

  return `Last-Modified ${expected.lastModified ?? 'none'} → ${actual.lastModified ?? 'none'}`
}

function stripWeak (etag: string): string {
  return isWeakEtag(etag) ? etag.slice(2) : etag
}
