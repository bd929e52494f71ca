/**
 * Minimal argv parsing for the benchmarks: positional names and
 * `--key value` / `--key=value` / `--flag` options.
 */

export interface FlagSpec {
  /** long name without dashes */
  name: string
  /** what it sets, with the default */
  describe: string
  /** a flag that takes no value */
  boolean?: boolean
}

export interface Args {
  names: string[]
  flags: Map<string, string | true>
}

export class UsageError extends Error {
  static name = 'UsageError'

  constructor (message = 'Bad command-line arguments - run with --help') {
    super(message)
    this.name = 'UsageError'
  }
}

/**
 * Split argv into positional names and flags. `known` lists every accepted
 * flag; anything else is a UsageError naming it.
 */
export function parseArgs (argv: string[], known: FlagSpec[]): Args {
  const specs = new Map(known.map(f => [f.name, f]))
  const names: string[] = []
  const flags = new Map<string, string | true>()

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]

    if (!arg.startsWith('--')) {
      names.push(arg)
      continue
    }

    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    const spec = specs.get(name)

    if (spec == null) {
      throw new UsageError(`Unknown option --${name} - run with --help to list the options`)
    }

    if (eq !== -1) {
      flags.set(name, arg.slice(eq + 1))
    } else if (spec.boolean === true) {
      flags.set(name, true)
    } else {
      const value = argv[i + 1]

      if (value == null || value.startsWith('--')) {
        throw new UsageError(`Option --${name} needs a value`)
      }

      flags.set(name, value)
      i++
    }
  }

  return { names, flags }
}

export function stringFlag (args: Args, name: string, def: string): string {
  const v = args.flags.get(name)

  return v == null || v === true ? def : v
}

export function boolFlag (args: Args, name: string): boolean {
  const v = args.flags.get(name)

  return v === true || v === 'true' || v === '1'
}

export function intFlag (args: Args, name: string, def: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const v = args.flags.get(name)

  if (v == null || v === true) {
    return def
  }

  const n = Number(v)

  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`}, got "${v}"`)
  }

  return n
}

export function floatFlag (args: Args, name: string, def: number): number {
  const v = args.flags.get(name)

  if (v == null || v === true) {
    return def
  }

  const n = Number(v)

  if (!Number.isFinite(n) || n < 0) {
    throw new UsageError(`--${name} must be a number ≥ 0, got "${v}"`)
  }

  return n
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9
}

/**
 * A byte size: `1073741824`, `1GiB`, `256MiB`, `64m`, `1.5g`
 */
export function parseSize (s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s.trim())
  const unit = m == null ? undefined : UNITS[m[2].toLowerCase()]

  if (m == null || unit == null) {
    throw new UsageError(`"${s}" is not a size - use e.g. 1GiB, 256MiB or a byte count`)
  }

  return Math.round(Number(m[1]) * unit)
}

export function sizeFlag (args: Args, name: string, def: number): number {
  const v = args.flags.get(name)

  if (v == null || v === true) {
    return def
  }

  const n = parseSize(v)

  if (n < 1) {
    throw new UsageError(`--${name} must be at least 1 byte`)
  }

  return n
}

export function listFlag (args: Args, name: string, def: string[]): string[] {
  const v = args.flags.get(name)

  if (v == null || v === true) {
    return def
  }

  return v.split(',').map(s => s.trim()).filter(s => s !== '')
}
