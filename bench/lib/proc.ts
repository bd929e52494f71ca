import { spawn } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import type { ChildProcess, SpawnOptions } from 'node:child_process'

/** Linux clock ticks per second for /proc/<pid>/stat and /proc/stat (USER_HZ, 100 on every mainstream kernel) */
const CLK_TCK = 100

/**
 * A field of /proc/<pid>/status in KiB (VmRSS, VmHWM, ...); undefined once
 * the process is gone
 */
export function procStatusKiB (pid: number | 'self', field: string): number | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text)

    return m == null ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat */
export function procCpuSeconds (pid: number): number | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command name (field 2) may contain spaces: split after its closing parenthesis
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat */
export function machineBusySeconds (): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)

  return (user + nice + system + irq + softirq + (steal ?? 0)) / CLK_TCK
}

/**
 * Local timer interrupts so far, all CPUs (the LOC line of /proc/interrupts);
 * NaN where there is none. In the netns lab each tbf queue that waits for
 * tokens arms a timer per packet, and in a VM every interrupt is dear.
 */
export function timerInterrupts (): number {
  try {
    const line = fs.readFileSync('/proc/interrupts', 'utf8').split('\n').find(l => l.trimStart().startsWith('LOC:'))
    if (line == null) {
      return NaN
    }
    return line.trim().split(/\s+/).slice(1).map(Number).filter(n => Number.isFinite(n)).reduce((a, n) => a + n, 0)
  } catch {
    return NaN
  }
}

/** process.cpuUsage() in seconds since `since` */
export function cpuSecondsSince (since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since)

  return (d.user + d.system) / 1e6
}

export interface Watched {
  proc: ChildProcess
  /** everything printed so far on stdout and stderr */
  output(): string
  /** complete lines printed so far, with the performance.now() at which each arrived */
  lines(): Array<{ at: number, line: string }>
  /** wait until the output matches `re`; rejects if the process exits or `ms` pass first */
  waitFor(re: RegExp, ms: number): Promise<RegExpExecArray>
  exited: Promise<number | null>
}

/**
 * Child processes and temp dirs of a benchmark: everything is removed in
 * cleanup(), and cleanupSync() kills what is left when the runner exits
 */
export class Resources {
  private readonly procs = new Set<ChildProcess>()
  private readonly dirs = new Set<string>()
  private readonly files = new Set<string>()

  spawn (command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    this.procs.add(proc)
    proc.once('exit', () => { this.procs.delete(proc) })

    return proc
  }

  /** spawn and collect its output, to wait for lines it prints */
  spawnWatched (command: string, args: string[], options: SpawnOptions = {}): Watched {
    const proc = this.spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const lines: Array<{ at: number, line: string }> = []
    const listeners = new Set<() => void>()
    const collect = (stream: NodeJS.ReadableStream | null | undefined): void => {
      let partial = ''
      stream?.on('data', (d: Buffer) => {
        const text = String(d)
        const at = performance.now()
        out += text
        const parts = (partial + text).split('\n')
        partial = parts.pop() ?? ''
        for (const line of parts) {
          lines.push({ at, line })
        }
        for (const l of listeners) {
          l()
        }
      })
    }
    collect(proc.stdout)
    collect(proc.stderr)
    const exited = new Promise<number | null>(resolve => proc.once('close', (code) => {
      for (const l of listeners) {
        l()
      }
      resolve(code)
    }))

    return {
      proc,
      exited,
      output: () => out,
      lines: () => lines,
      waitFor: async (re, ms) => new Promise<RegExpExecArray>((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(out)

          if (m != null) {
            done()
            resolve(m)
          } else if (proc.exitCode != null || proc.signalCode != null) {
            done()
            reject(new Error(`${path.basename(String(proc.spawnargs[1] ?? command))} exited (${proc.exitCode ?? proc.signalCode}) before printing ${re}:\n${out}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`timed out after ${ms} ms waiting for ${re} from pid ${proc.pid}:\n${out}`))
        }, ms)
        const done = (): void => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      })
    }
  }

  async tempDir (prefix: string): Promise<string> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix))
    this.dirs.add(dir)

    return dir
  }

  /** a path in os.tmpdir() removed at cleanup */
  tempFile (name: string): string {
    const file = path.join(os.tmpdir(), `${name}-${process.pid}-${Date.now()}`)
    this.files.add(file)

    return file
  }

  async removeDir (dir: string): Promise<void> {
    await fsp.rm(dir, { recursive: true, force: true })
    this.dirs.delete(dir)
  }

  async removeFile (file: string): Promise<void> {
    await fsp.rm(file, { force: true })
    this.files.delete(file)
  }

  /**
   * Stop a child: `signal` (SIGTERM), then SIGKILL after `graceMs`
   */
  async stop (proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (proc.exitCode != null || proc.signalCode != null) {
      this.procs.delete(proc)
      return
    }

    const exited = new Promise<void>(resolve => proc.once('exit', () => { resolve() }))
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
    this.procs.delete(proc)
  }

  /** wait up to `ms` for a child to exit by itself; true if it did */
  async exited (proc: ChildProcess, ms: number): Promise<boolean> {
    if (proc.exitCode != null || proc.signalCode != null) {
      return true
    }
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        proc.off('exit', onExit)
        resolve(false)
      }, ms)
      const onExit = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      proc.once('exit', onExit)
    })
  }

  async cleanup (): Promise<void> {
    await Promise.allSettled([...this.procs].map(async p => this.stop(p)))
    await Promise.allSettled([...this.dirs].map(async d => this.removeDir(d)))
    await Promise.allSettled([...this.files].map(async f => this.removeFile(f)))
  }

  /** last resort when the runner exits: kill children, remove dirs */
  cleanupSync (): void {
    for (const p of this.procs) {
      try {
        p.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
    for (const d of this.dirs) {
      try {
        fs.rmSync(d, { recursive: true, force: true })
      } catch {
        // best effort on exit
      }
    }
    for (const f of this.files) {
      try {
        fs.rmSync(f, { force: true })
      } catch {
        // best effort on exit
      }
    }
    this.procs.clear()
    this.dirs.clear()
    this.files.clear()
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
