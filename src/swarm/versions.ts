import { compatibleVersions, parseProtocol } from '../version.ts'

export interface Incompatibility {
  peerId: string
  /** protocol name, e.g. "piece" */
  protocol: string
  ours: string
  theirs: string
  at: number
}

/**
 * Compare the Damselfly protocols a remote announced (through identify or a
 * heartbeat) with ours. A remote that speaks a protocol of ours only in an
 * incompatible version is reported with both versions.
 */
export function findIncompatibilities (peerId: string, ours: string[], theirs: string[], now = Date.now()): Incompatibility[] {
  const mine = new Map<string, string>()
  for (const p of ours) {
    const parsed = parseProtocol(p)
    if (parsed != null) {
      mine.set(parsed.name, parsed.version)
    }
  }
  const remote = new Map<string, string[]>()
  for (const p of theirs) {
    const parsed = parseProtocol(p)
    if (parsed != null && mine.has(parsed.name)) {
      remote.set(parsed.name, [...(remote.get(parsed.name) ?? []), parsed.version])
    }
  }
  const out: Incompatibility[] = []
  for (const [name, versions] of remote) {
    const ourVersion = mine.get(name)!
    if (!versions.some(v => compatibleVersions(v, ourVersion))) {
      out.push({ peerId, protocol: name, ours: ourVersion, theirs: versions.join(', '), at: now })
    }
  }
  return out
}
