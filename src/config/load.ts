import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../errors.ts'
import { NODE_OPTIONS } from './options.ts'
import { configSchema } from './schema.ts'
import type { CliOption } from './options.ts'
import type { NodeConfig } from './schema.ts'
import type { z } from 'zod'

export interface LoadConfigOptions {
  /** values from command-line flags, keyed by flag name (`data-dir`) */
  flags?: Record<string, unknown>
  /** the environment to read `DAMSELFLY_*` from (pass `process.env`) */
  env?: Record<string, string | undefined>
  /** base directory for relative paths */
  cwd?: string
}

type Layer = Record<string, unknown>

/**
 * Build the node configuration: flags > env `DAMSELFLY_*` > config file >
 * defaults. Any invalid value throws a `ConfigError` naming where it came
 * from, its key path and what is allowed.
 */
export async function loadConfig (options: LoadConfigOptions = {}): Promise<NodeConfig> {
  const env = options.env ?? {}
  const flags = options.flags ?? {}
  const cwd = options.cwd ?? process.cwd()

  const envLayer = layerFrom(NODE_OPTIONS, (o) => env[o.env], (o) => `environment variable ${o.env}`)
  const flagLayer = layerFrom(NODE_OPTIONS, (o) => flags[o.flag], (o) => `flag --${o.flag}`)

  const configFile = (flags.config ?? env.DAMSELFLY_CONFIG) as string | undefined
  let fileLayer: Layer = {}
  if (configFile != null && configFile !== '') {
    fileLayer = await readConfigFile(path.resolve(cwd, configFile))
  }

  const merged = merge(merge(fileLayer, envLayer.values), flagLayer.values)
  const result = configSchema.safeParse(merged)

  if (!result.success) {
    const issue = result.error.issues[0]
    const key = issue.path.join('.')
    const source = flagLayer.sources.get(key) ?? envLayer.sources.get(key) ?? (configFile != null ? `config file ${configFile}` : 'configuration')
    throw new ConfigError(`${source}: ${describeIssue(issue)}`)
  }

  return finalise(result.data, cwd, env)
}

/**
 * Validate a configuration object given in code (the programmatic API)
 */
export function parseConfig (input: unknown, cwd = process.cwd()): NodeConfig {
  const result = configSchema.safeParse(input ?? {})
  if (!result.success) {
    throw new ConfigError(`configuration: ${describeIssue(result.error.issues[0])}`)
  }
  return finalise(result.data, cwd, {})
}

function finalise (config: NodeConfig, cwd: string, env: Record<string, string | undefined>): NodeConfig {
  const home = env.HOME ?? os.homedir()
  const expand = (p: string): string => path.resolve(cwd, p.startsWith('~/') || p === '~' ? path.join(home, p.slice(1)) : p)
  config.dataDir = expand(config.dataDir)
  if (config.swarm.keyFile != null) {
    config.swarm.keyFile = expand(config.swarm.keyFile)
  }
  return config
}

function describeIssue (issue: z.core.$ZodIssue): string {
  const key = issue.path.join('.')
  if (issue.code === 'unrecognized_keys') {
    const where = key === '' ? '' : `${key}.`
    return `${issue.keys.map(k => where + k).join(', ')}: unknown key; see config/default.yaml for the allowed keys`
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${key}: must be one of ${issue.values.map(v => JSON.stringify(v)).join(', ')}`
  }
  return `${key === '' ? '(root)' : key}: ${issue.message}`
}

async function readConfigFile (file: string): Promise<Layer> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err: any) {
    throw new ConfigError(`config file ${file}: cannot be read (${err.code ?? err.message}); check the path given to --config or DAMSELFLY_CONFIG`)
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err: any) {
    throw new ConfigError(`config file ${file}: not valid YAML: ${String(err.message).split('\n')[0]}`)
  }
  if (doc == null) {
    return {}
  }
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`config file ${file}: must be a YAML mapping of keys to values`)
  }
  return doc as Layer
}

function layerFrom (opts: CliOption[], get: (o: CliOption) => unknown, describe: (o: CliOption) => string): { values: Layer, sources: Map<string, string> } {
  const values: Layer = {}
  const sources = new Map<string, string>()
  for (const o of opts) {
    if (o.key === '') {
      continue
    }
    const raw = get(o)
    if (raw == null) {
      continue
    }
    const value = coerce(raw, o, describe(o))
    if (value === undefined) {
      continue
    }
    setPath(values, o.key, value)
    sources.set(o.key, describe(o))
  }
  return { values, sources }
}

function coerce (raw: unknown, o: CliOption, where: string): unknown {
  if (o.type === 'array') {
    const list = Array.isArray(raw) ? raw : String(raw).split(',')
    const items = list.map(String).map(s => s.trim()).filter(s => s !== '')
    return items
  }
  if (o.type === 'boolean') {
    if (typeof raw === 'boolean') {
      return raw
    }
    const s = String(raw).toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(s)) {
      return true
    }
    if (['0', 'false', 'no', 'off', ''].includes(s)) {
      return false
    }
    throw new ConfigError(`${where}: "${String(raw)}" is not a boolean; use true or false`)
  }
  if (o.type === 'number') {
    const n = typeof raw === 'number' ? raw : Number(raw)
    if (!Number.isFinite(n)) {
      throw new ConfigError(`${where}: "${String(raw)}" is not a number`)
    }
    return n
  }
  return String(raw)
}

function setPath (target: Layer, key: string, value: unknown): void {
  const parts = key.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] == null) {
      node[part] = {}
    }
    node = node[part] as Layer
  }
  node[parts[parts.length - 1]] = value
}

function isPlainObject (v: unknown): v is Layer {
  return typeof v === 'object' && v != null && !Array.isArray(v)
}

function merge (base: Layer, over: Layer): Layer {
  const out: Layer = { ...base }
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? merge(out[k], v) : v
  }
  return out
}
