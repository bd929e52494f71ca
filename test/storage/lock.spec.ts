import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { FsPieceStore, LOCK_FILE } from '../../src/storage/index.ts'
import type { ChildProcess } from 'node:child_process'

describe('storage/lock: one process at a time per store', () => {
  let dir: string
  let other: ChildProcess | undefined

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-lock-'))
  })

  afterEach(async () => {
    other?.kill('SIGKILL')
    other = undefined
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function exited (child: ChildProcess): Promise<void> {
    if (child.exitCode == null && child.signalCode == null) {
      await new Promise(resolve => child.once('exit', resolve))
    }
  }

  it('refuses a store another live process holds, naming its pid; takes over once that process is gone', async () => {
    other = spawn('sleep', ['30'], { stdio: 'ignore' })
    await fs.writeFile(path.join(dir, LOCK_FILE), `${other.pid} 0123456789abcdef\n`)

    const store = new FsPieceStore({ dir })
    const err = await store.open().catch(err => err)
    expect(err).to.have.property('name', 'StoreLockedError')
    expect(err.message).to.include(String(other.pid)).and.include(dir).and.include('--data-dir')

    other.kill('SIGKILL')
    await exited(other)
    // the holder died without cleaning up (kill -9): its lock is stale
    await store.open()
    expect((await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')).split(' ')[0]).to.equal(String(process.pid))
    await store.close()
    await expect(fs.stat(path.join(dir, LOCK_FILE))).to.eventually.be.rejected.with.property('code', 'ENOENT')
  })

  it('a second store in this process takes the lock over (a restart), and the first one\'s close leaves it', async () => {
    const first = new FsPieceStore({ dir })
    await first.open()
    const second = new FsPieceStore({ dir })
    await second.open()
    const held = await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')
    await first.close()
    expect(await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')).to.equal(held)
    await second.close()
    await expect(fs.stat(path.join(dir, LOCK_FILE))).to.eventually.be.rejected.with.property('code', 'ENOENT')
  })
})
