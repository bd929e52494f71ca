import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CLI_NODE_FLAGS } from '../node-flags.ts'
import type { ChildProcess } from 'node:child_process'

export interface SpawnedDaemon {
  proc: ChildProcess
  dataDir: string
  peerId: string
  /** dialable multiaddrs with /p2p/ */
  addrs: string[]
  /** HOST:PORT of its control API */
  control: string
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * The compiled CLI entry point next to this module
 */
export function cliEntry (): string {
  return fileURLToPath(new URL('../index.js', import.meta.url))
}

/**
 * Spawn `damselfly daemon` with a data dir, loopback control on a free port,
 * and wait until it printed its addresses
 */
export async function spawnDaemon (dataDir: string, args: string[] = [], env: Record<string, string | undefined> = {}): Promise<SpawnedDaemon> {
  const argv = [...CLI_NODE_FLAGS, cliEntry(), 'daemon', '--data-dir', dataDir, '--control', '127.0.0.1:0', ...args]
  if (!args.includes('--listen')) {
    argv.push('--listen', '/ip4/127.0.0.1/tcp/0')
  }
  if (!args.includes('--proxy')) {
    // many daemons on one host: no fixed mirror port
    argv.push('--proxy', '')
  }
  const proc = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout!.on('data', (d) => { out += String(d) })
  proc.stderr!.on('data', (d) => { out += String(d) })
  const exited = new Promise<number | null>(resolve => proc.on('close', resolve))
  const deadline = Date.now() + 30_000
  while (!/control\s+http:\/\/\S+/.test(out)) {
    if (proc.exitCode != null || Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`the daemon did not start:\n${out}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    proc,
    dataDir,
    peerId: /peer id\s+(\S+)/.exec(out)![1],
    addrs: [...out.matchAll(/^listen\s+(\S+)$/gm)].map(m => m[1]),
    control: /control\s+http:\/\/(\S+)/.exec(out)![1],
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode != null || proc.signalCode != null) {
        return proc.exitCode
      }
      proc.kill(signal)
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}
