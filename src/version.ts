/**
 * The Damselfly release and the versions of its wire protocols.
 *
 * Every protocol id carries a semver. Two nodes can talk over a protocol when
 * the major versions match (for 0.x, the minor versions too).
 */
export const DAMSELFLY_VERSION = '0.1.0'

export const PROTOCOL_VERSIONS = {
  piece: '1.0.0',
  tracker: '1.0.0',
  kad: '1.0.0',
  members: '1'
} as const

export type ProtocolName = 'piece' | 'tracker'

/** The DHT protocol of a swarm: each swarm name has a DHT of its own */
export function kadProtocol (swarm: string): string {
  return `/damselfly/${swarm}/kad/${PROTOCOL_VERSIONS.kad}`
}

export interface ParsedProtocol {
  name: string
  version: string
}

const PROTOCOL_RE = /^\/damselfly\/(?:[^/]+\/)?([a-z-]+)\/(\d+\.\d+\.\d+)$/

/**
 * Parse `/damselfly/piece/1.0.0` or `/damselfly/<swarm>/kad/1.0.0`
 */
export function parseProtocol (protocol: string): ParsedProtocol | undefined {
  const m = PROTOCOL_RE.exec(protocol)
  if (m == null) {
    return undefined
  }
  return { name: m[1], version: m[2] }
}

/**
 * True when two semvers of one protocol can interoperate
 */
export function compatibleVersions (a: string, b: string): boolean {
  const [aMajor, aMinor] = a.split('.').map(Number)
  const [bMajor, bMinor] = b.split('.').map(Number)
  if (aMajor !== bMajor) {
    return false
  }
  return aMajor !== 0 || aMinor === bMinor
}
