import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { cliPath } from './paths.ts'
import type { ChildProcess } from 'node:child_process'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Run `damselfly <args>` to completion
 */
export async function runCli (args: string[], options: { env?: Record<string, string>, timeoutMs?: number, cwd?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [cliPath(), ...args], {
    env: { ...process.env, DEBUG: '', ...options.env },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface DaemonProcess {
  proc: ChildProcess
  dataDir: string
  peerId: string
  /** dialable multiaddrs with /p2p/ */
  addrs: string[]
  control: string
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Spawn `damselfly daemon` on 127.0.0.1 with its own data dir and wait until
 * it printed its addresses. Stop it with stop() (SIGTERM, then SIGKILL).
 */
export async function startDaemon (args: string[] = [], options: { dataDir?: string, env?: Record<string, string> } = {}): Promise<DaemonProcess> {
  const dataDir = options.dataDir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-daemon-'))
  const argv = [cliPath(), 'daemon', '--data-dir', dataDir, '--control', '127.0.0.1:0', '--heartbeat-interval', '500', ...args]
  if (!args.includes('--listen')) {
    argv.push('--listen', '/ip4/127.0.0.1/tcp/0')
  }
  if (!args.includes('--proxy')) {
    argv.push('--proxy', '')
  }
  const proc = spawn(process.execPath, argv, {
    env: { ...process.env, DEBUG: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  proc.stdout!.on('data', (d) => { out += String(d) })
  proc.stderr!.on('data', (d) => { out += String(d) })
  const exited = new Promise<number | null>(resolve => proc.on('close', resolve))
  const deadline = Date.now() + 30_000
  while (!/control\s+http:\/\/\S+/.test(out)) {
    if (proc.exitCode != null || Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`daemon did not start:\n${out}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const peerId = /peer id\s+(\S+)/.exec(out)![1]
  const addrs = [...out.matchAll(/^listen\s+(\S+)$/gm)].map(m => m[1])
  const control = /control\s+http:\/\/(\S+)/.exec(out)![1]
  return {
    proc,
    dataDir,
    peerId,
    addrs,
    control,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode == null && proc.signalCode == null) {
        proc.kill(signal)
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
        const code = await exited
        clearTimeout(timer)
        return code
      }
      return proc.exitCode
    }
  }
}

export async function stopAll (daemons: DaemonProcess[]): Promise<void> {
  await Promise.allSettled(daemons.splice(0).map(async d => {
    await d.stop()
    await fs.rm(d.dataDir, { recursive: true, force: true })
  }))
}
