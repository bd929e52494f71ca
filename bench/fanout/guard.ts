/**
 * Last-resort cleanup of the fan-out benchmark: every process it starts and
 * every netns lab it creates is registered here, and removed when the bench
 * ends, when the runner exits (also through process.exit in its signal
 * handler) and on SIGINT/SIGTERM - synchronously, so it works in an 'exit'
 * handler.
 */
import type { NetnsLab } from './netns.ts'
import type { ChildProcess } from 'node:child_process'

export class Guard {
  private readonly procs = new Set<ChildProcess>()
  private readonly labs = new Set<NetnsLab>()
  private readonly onExit = (): void => { this.cleanupSync() }
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.cleanupSync()
    process.stderr.write(`${sig}: fanout stopped; its processes, namespaces and bridge are removed\n`)
    process.exit(130)
  }

  install (): void {
    process.on('exit', this.onExit)
    process.once('SIGINT', this.onSignal)
    process.once('SIGTERM', this.onSignal)
  }

  uninstall (): void {
    process.off('exit', this.onExit)
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
  }

  track (proc: ChildProcess): void {
    this.procs.add(proc)
    proc.once('exit', () => { this.procs.delete(proc) })
  }

  addLab (lab: NetnsLab): void {
    this.labs.add(lab)
  }

  removeLab (lab: NetnsLab): void {
    lab.destroy()
    this.labs.delete(lab)
  }

  cleanupSync (): void {
    for (const p of this.procs) {
      try {
        p.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
    this.procs.clear()
    for (const lab of this.labs) {
      lab.destroy()
    }
    this.labs.clear()
  }
}
