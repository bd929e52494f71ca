import { loadConfig, NODE_OPTIONS } from '../config/index.ts'
import { socketPath } from '../daemon/socket.ts'
import { UsageError } from '../errors.ts'
import { FsPieceStore } from '../storage/index.ts'
import { ControlClient } from './client.ts'
import type { ControlTarget } from './client.ts'
import type { NodeConfig } from '../config/index.ts'
import type { Argv } from 'yargs'

export type Args = Record<string, unknown> & { _: Array<string | number>, json?: boolean }

/**
 * Add every node setting as a flag (the table in config/options.ts)
 */
export function withNodeOptions<T> (y: Argv<T>): Argv<T> {
  for (const o of NODE_OPTIONS) {
    y.option(o.flag, {
      // numbers are parsed (and checked) by the config schema, arrays are lists of strings
      type: o.type === 'array' || o.type === 'number' ? 'string' : o.type,
      array: o.type === 'array' ? true : undefined,
      describe: `${o.describe} [env ${o.env}]`,
      group: 'Node options:'
    })
  }
  return y
}

/**
 * Only the options that locate a daemon
 */
export function withClientOptions<T> (y: Argv<T>): Argv<T> {
  return y
    .option('data-dir', { type: 'string', describe: 'Data directory of the daemon (its control socket is there) [env DAMSELFLY_DATA_DIR]' })
    .option('control', { type: 'string', describe: 'HOST:PORT of the daemon\'s control API [env DAMSELFLY_CONTROL]' })
    .option('config', { type: 'string', describe: 'YAML config file [env DAMSELFLY_CONFIG]' })
}

export async function nodeConfig (argv: Args): Promise<NodeConfig> {
  return loadConfig({ flags: argv, env: process.env })
}

/**
 * A client for the daemon the flags point at: --control alone, else the
 * data dir's socket, then the configured control address.
 */
export async function controlClient (argv: Args): Promise<ControlClient> {
  const config = await nodeConfig(argv)
  const targets: ControlTarget[] = []
  if (argv.control != null && argv.control !== '') {
    targets.push({ address: String(argv.control) })
  } else {
    if (config.control.socket) {
      targets.push({ socketPath: socketPath(config.dataDir) })
    }
    if (config.control.listen !== '') {
      targets.push({ address: config.control.listen })
    }
  }
  return new ControlClient(targets)
}

/**
 * Ask the running daemon (`viaDaemon`) or, when none answers, work on the
 * store of the configured data dir directly (`direct`; the store is opened
 * and closed around it)
 */
export async function daemonOrStore<T> (argv: Args, viaDaemon: (client: ControlClient) => Promise<T>, direct: (store: FsPieceStore, config: NodeConfig) => Promise<T>): Promise<T> {
  const client = await controlClient(argv)
  try {
    return await viaDaemon(client)
  } catch (err: any) {
    if (err.name !== 'DaemonNotRunningError') {
      throw err
    }
  }
  const config = await nodeConfig(argv)
  const store = new FsPieceStore({ dir: config.dataDir })
  await store.open()
  try {
    return await direct(store, config)
  } finally {
    await store.close()
  }
}

export function printJson (value: unknown): void {
  // eslint-disable-next-line no-console
  console.log(JSON.stringify(value, null, 2))
}

export function print (line = ''): void {
  // eslint-disable-next-line no-console
  console.log(line)
}

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A duration flag's value in ms: a number with a unit (ms, s, m, h, d), or
 * seconds without one
 */
export function parseDuration (s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim())
  if (m == null) {
    throw new UsageError(`${flag} "${s}" is not a duration; use e.g. 500ms, 90s, 10m, 2h, 7d`)
  }
  return Math.round(Number(m[1]) * DURATION_UNITS[(m[2] ?? 's') as keyof typeof DURATION_UNITS])
}

export function formatDuration (ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) {
    return `${s}s`
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  }
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}
