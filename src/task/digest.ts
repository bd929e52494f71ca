import { InvalidDigestError } from './errors.ts'

/**
 * A parsed content digest. Only sha256 is supported: it is what OCI
 * registries, `--digest` and our piece hashes use.
 */
export interface Digest {
  algorithm: 'sha256'

  /**
   * 64 lowercase hex digits
   */
  hex: string
}

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/i
const HEX_RE = /^[0-9a-f]{64}$/i

/**
 * Parse `sha256:<64 hex>` (case-insensitive). The hex part is normalised to
 * lowercase.
 *
 * @throws {InvalidDigestError} for anything else
 */
export function parseDigest (s: string): Digest {
  const match = typeof s === 'string' ? DIGEST_RE.exec(s.trim()) : null

  if (match == null) {
    throw new InvalidDigestError(`Invalid digest ${JSON.stringify(s)} - expected "sha256:" followed by 64 hex digits`)
  }

  return { algorithm: 'sha256', hex: match[1].toLowerCase() }
}

/**
 * The canonical string form of a digest: `sha256:<64 lowercase hex>`.
 */
export function formatDigest (digest: Digest): string {
  return `${digest.algorithm}:${digest.hex}`
}

/**
 * Parse and re-format a digest string, e.g. `SHA256:AB…` → `sha256:ab…`.
 *
 * @throws {InvalidDigestError}
 */
export function normaliseDigest (s: string): string {
  return formatDigest(parseDigest(s))
}

/**
 * Whether `s` is 64 hex digits (a bare sha256, as used for piece digests).
 */
export function isSha256Hex (s: unknown): s is string {
  return typeof s === 'string' && HEX_RE.test(s)
}
