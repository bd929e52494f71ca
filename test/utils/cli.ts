import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { spawnDaemon } from '../../src/cli/demo/daemons.ts'
import { CLI_NODE_FLAGS } from '../../src/cli/node-flags.ts'
import { cliPath } from './paths.ts'
import type { SpawnedDaemon } from '../../src/cli/demo/daemons.ts'

export interface CliResult {
  code: number | null
  stdout: string
  /** stdout as bytes (a file written with -O -) */
  stdoutBytes: Buffer
  stderr: string
}

/**
 * Run `damselfly <args>` to completion
 */
export async function runCli (args: string[], options: { env?: Record<string, string>, timeoutMs?: number, cwd?: string, closeStdoutAfter?: number } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [...CLI_NODE_FLAGS, cliPath(), ...args], {
    env: { ...process.env, DEBUG: '', ...options.env },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  let outBytes = 0
  const err: Buffer[] = []
  child.stdout.on('data', (d: Buffer) => {
    out.push(d)
    outBytes += d.byteLength
    // a reader that stops early, as `| head` does
    if (options.closeStdoutAfter != null && outBytes >= options.closeStdoutAfter) {
      child.stdout.destroy()
    }
  })
  child.stderr.on('data', (d: Buffer) => { err.push(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  const stdoutBytes = Buffer.concat(out)
  return { code, stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.concat(err).toString() }
}

export type DaemonProcess = SpawnedDaemon

/**
 * Spawn `damselfly daemon` on 127.0.0.1 with its own data dir (a temp dir
 * unless given), a 500 ms heartbeat and no debug output, and wait until it
 * printed its addresses. Stop it with stop() (SIGTERM, then SIGKILL).
 */
export async function startDaemon (args: string[] = [], options: { dataDir?: string, env?: Record<string, string> } = {}): Promise<DaemonProcess> {
  const dataDir = options.dataDir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-daemon-'))
  return spawnDaemon(dataDir, ['--heartbeat-interval', '500', ...args], { DEBUG: '', ...options.env })
}

export async function stopAll (daemons: DaemonProcess[]): Promise<void> {
  await Promise.allSettled(daemons.splice(0).map(async d => {
    await d.stop()
    await fs.rm(d.dataDir, { recursive: true, force: true })
  }))
}
