/**
 * Fan-out scenarios: which mode, how many peers, how large a file and (netns)
 * how fast each host's link is. Pure: parsing and the physical bound.
 */
import { parseSize, UsageError } from '../lib/args.ts'
import { fmtBytes } from '../lib/stats.ts'

export type Mode = 'loopback' | 'netns'

export interface Scenario {
  /** e.g. "netns:16:64MiB:25" - the spec it was parsed from, normalised */
  id: string
  mode: Mode
  /** peer daemons */
  nodes: number
  /** file size, bytes */
  size: number
  /** netns only: the tbf rate of every host's link in each direction, Mbit/s (10^6 bit/s) */
  rateMbit?: number
}

/**
 * Named sets of scenarios. `quick` finishes in a few minutes; `issue` is the
 * table issue 5 asks for (plain HTTP of 16 peers at 25 Mbit/s alone takes
 * 16 × S/B ≈ 6 min); `full` adds the 256 MiB loopback runs and the other
 * netns combinations.
 */
export const PRESETS: Record<string, string[]> = {
  quick: ['loopback:8:64MiB', 'loopback:16:64MiB', 'netns:8:64MiB:100'],
  issue: ['loopback:8:64MiB', 'loopback:16:64MiB', 'netns:16:64MiB:25', 'netns:8:64MiB:100'],
  full: [
    'loopback:8:64MiB', 'loopback:16:64MiB', 'loopback:8:256MiB', 'loopback:16:256MiB',
    'netns:16:64MiB:25', 'netns:8:64MiB:100', 'netns:8:64MiB:25', 'netns:16:64MiB:100'
  ],
  loopback: ['loopback:8:64MiB', 'loopback:16:64MiB', 'loopback:8:256MiB', 'loopback:16:256MiB'],
  netns: ['netns:16:64MiB:25', 'netns:8:64MiB:100']
}

export const DEFAULT_PRESET = 'quick'

/** The most daemons one scenario may start (addresses 10.77.0.10+i, two cores) */
export const MAX_NODES = 64

/**
 * Parse `mode:nodes:size[:Mbit/s]` items or preset names
 */
export function parseScenarios (items: string[]): Scenario[] {
  const out: Scenario[] = []

  for (const item of items) {
    const preset = PRESETS[item]

    if (preset != null) {
      out.push(...parseScenarios(preset))
      continue
    }

    out.push(parseScenario(item))
  }

  const seen = new Set<string>()

  return out.filter(s => {
    if (seen.has(s.id)) {
      return false
    }
    seen.add(s.id)
    return true
  })
}

export function parseScenario (spec: string): Scenario {
  const parts = spec.split(':')
  const bad = (why: string): UsageError => new UsageError(`Scenario "${spec}": ${why} - write mode:nodes:size[:Mbit/s], e.g. loopback:8:64MiB or netns:16:64MiB:25, or a preset (${Object.keys(PRESETS).join(', ')})`)
  const mode = parts[0]

  if (mode !== 'loopback' && mode !== 'netns') {
    throw bad(`mode must be loopback or netns, not "${mode}"`)
  }

  const nodes = Number(parts[1])

  if (!Number.isInteger(nodes) || nodes < 2 || nodes > MAX_NODES) {
    throw bad(`nodes must be an integer from 2 to ${MAX_NODES}`)
  }

  if (parts[2] == null || parts[2] === '') {
    throw bad('the file size is missing')
  }

  const size = parseSize(parts[2])

  if (size < 1) {
    throw bad('the file size must be at least 1 byte')
  }

  if (mode === 'loopback') {
    if (parts.length !== 3) {
      throw bad('loopback takes no link rate')
    }
    return { id: `loopback:${nodes}:${sizeLabel(size)}`, mode, nodes, size }
  }

  const rateMbit = Number(parts[3])

  if (parts.length !== 4 || !Number.isFinite(rateMbit) || rateMbit <= 0) {
    throw bad('netns needs the link rate in Mbit/s, a number > 0')
  }

  return { id: `netns:${nodes}:${sizeLabel(size)}:${rateMbit}`, mode, nodes, size, rateMbit }
}

/** "64MiB" for whole MiB, else the byte count */
function sizeLabel (size: number): string {
  return size % (1024 * 1024) === 0 ? `${size / (1024 * 1024)}MiB` : String(size)
}

/**
 * The physical bound of a netns scenario, seconds: every peer must receive
 * S bytes over its own link of B bit/s, so no peer can finish before S/B
 */
export function boundSeconds (s: Scenario): number | undefined {
  return s.rateMbit == null ? undefined : s.size * 8 / (s.rateMbit * 1e6)
}

/** What a scenario is, in words, for progress lines and tables */
export function describeScenario (s: Scenario): string {
  return s.mode === 'loopback'
    ? `loopback N=${s.nodes} ${fmtBytes(s.size)}`
    : `netns N=${s.nodes} ${fmtBytes(s.size)} @ ${s.rateMbit} Mbit/s`
}
