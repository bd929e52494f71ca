/**
 * One process at a time per store. `<dir>/store.lock` names the process that
 * has the store open and a token of the opening. Two processes writing one
 * store would each keep its own view of the tasks and overwrite the other's
 * metadata, so a second one is refused with the holder's pid. A lock whose
 * process is gone (a crash, kill -9) is stale and taken over. So is a lock
 * of this very process: a second store object in one program stands for a
 * restart (the crash tests do that), and its release leaves the newer lock.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

export const LOCK_FILE = 'store.lock'

/**
 * Another live process has the store open
 */
export class StoreLockedError extends Error {
  static name = 'StoreLockedError'

  constructor (message = 'The store is in use by another process') {
    super(message)
    this.name = 'StoreLockedError'
  }
}

/**
 * Take the lock of the store in `dir`; resolves to its release
 *
 * @throws {StoreLockedError} when a live process other than this one holds it
 */
export async function lockStore (dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE)
  const mine = `${process.pid} ${randomBytes(8).toString('hex')}\n`

  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, mine, { flag: 'wx', mode: 0o644 })
      return async () => {
        // only our own lock: a later opening in this process may have taken it over
        if (await fs.readFile(file, 'utf8').catch(() => '') === mine) {
          await fs.rm(file, { force: true })
        }
      }
    } catch (err: any) {
      if (err.code !== 'EEXIST') {
        throw err
      }
    }

    const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).split(' ')[0])

    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new StoreLockedError(`The store in ${dir} is in use by process ${holder} (a daemon, or a command running without one) - wait for it or stop it, or use another --data-dir`)
    }

    // stale, or ours
    await fs.rm(file, { force: true })
  }

  throw new StoreLockedError(`Could not lock the store in ${dir}: ${file} came back three times - another process is opening it; try again`)
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    // EPERM: it exists but belongs to another user
    return err.code === 'EPERM'
  }
}
