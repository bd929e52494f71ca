import { cpuSecondsSince, machineBusySeconds, sleep } from '../lib/proc.ts'

/** The window over which the machine's load is measured, ms */
const WINDOW_MS = 2000

/**
 * On a shared machine, wait up to `maxWaitS` seconds until other processes
 * use less than `maxCores` cores (measured over 2 s windows, minus this
 * process). Resolves to the seconds waited and the last load seen.
 */
export async function waitForIdle (maxWaitS: number, maxCores: number): Promise<{ waitedS: number, cores: number }> {
  const started = Date.now()
  let cores = NaN
  while (Date.now() - started < maxWaitS * 1000) {
    const busy0 = machineBusySeconds()
    const self0 = process.cpuUsage()
    await sleep(WINDOW_MS)
    cores = (machineBusySeconds() - busy0 - cpuSecondsSince(self0)) / (WINDOW_MS / 1000)
    if (cores < maxCores) {
      break
    }
  }
  return { waitedS: (Date.now() - started) / 1000, cores }
}
