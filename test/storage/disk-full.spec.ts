import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { FsPieceStore, StoreGc } from '../../src/storage/index.ts'
import { taskIdFromUrl } from '../../src/task/id.ts'
import { pieceBytes } from './fixtures/piece-bytes.ts'

const KiB = 1024
const MiB = 1024 * KiB
const A = taskIdFromUrl({ url: 'https://example.com/a' })
const B = taskIdFromUrl({ url: 'https://example.com/b' })
const BIG = taskIdFromUrl({ url: 'https://example.com/big' })
const PIECE = 256 * KiB

/**
 * Write to `file` until the file system is full: 64 KiB chunks, then
 * smaller ones down to 512 bytes to use up the last blocks.
 */
async function fillDisk (file: string): Promise<void> {
  const handle = await fs.open(file, 'w')
  const chunk = new Uint8Array(64 * KiB).fill(7)

  async function writeUntilFull (size: number): Promise<void> {
    try {
      while (true) {
        await handle.write(chunk, 0, size)
      }
    } catch (err: any) {
      if (err.code !== 'ENOSPC') {
        throw err
      }
    }
  }

  try {
    for (let size = chunk.byteLength; size >= 512; size /= 2) {
      await writeUntilFull(size)
    }
  } finally {
    await handle.close().catch(() => {})
  }
}

describe('storage/fs-piece-store on a full disk', function () {
  this.timeout(60_000)

  let mountPoint: string
  let mounted = false
  let store: FsPieceStore | undefined

  before(async () => {
    mountPoint = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-full-'))

    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { stdio: 'pipe' })
      mounted = true
    } catch (err: any) {
      process.stderr.write(`      skipping disk-full tests: cannot mount a 4 MiB tmpfs at ${mountPoint} (${String(err.stderr ?? err.message).trim()}) - run them as root with CAP_SYS_ADMIN\n`)
    }
  })

  beforeEach(function () {
    if (!mounted) {
      this.skip()
    }
  })

  afterEach(async () => {
    await store?.close()
    store = undefined

    if (mounted) {
      for (const name of await fs.readdir(mountPoint)) {
        await fs.rm(path.join(mountPoint, name), { recursive: true, force: true })
      }
    }
  })

  after(async () => {
    if (mounted) {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' })
    }

    await fs.rm(mountPoint, { recursive: true, force: true })
  })

  async function openStore (): Promise<FsPieceStore> {
    await store?.close()
    store = new FsPieceStore({ dir: mountPoint })
    await store.open()
    return store
  }

  it('makes room for a new task by removing the least recently used idle ones, and only when that is enough', async () => {
    const s: FsPieceStore = store = new FsPieceStore({ dir: mountPoint, makeRoom: async (bytes: number, forTaskId: string): Promise<number> => gc.makeRoom(bytes, forTaskId) })
    await s.open()
    let downloading = ''
    const gc: StoreGc = new StoreGc({
      usage: () => s.usage(),
      downloading: (id) => id === downloading,
      remove: async (id) => s.delete(id),
      policy: { quotaBytes: 0, ttlMs: 0, minIdleMs: 0 },
      intervalMs: 0,
      logger: defaultLogger()
    })
    // two complete 1 MiB tasks, A used last
    for (const [id, seed] of [[B, 200], [A, 100]] as const) {
      await s.createTask({ taskId: id, contentLength: 4 * PIECE, pieceSize: PIECE })
      for (let i = 0; i < 4; i++) {
        await s.put(id, i, pieceBytes(seed + i, PIECE))
      }
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    // 2 MiB held of 4: a 2 MiB task (2.2 with head room) fits only once B, the older, is gone
    await s.createTask({ taskId: BIG, contentLength: 2 * MiB, pieceSize: PIECE })
    expect(s.getTask(B)).to.equal(undefined)
    expect(s.getTask(A)).to.not.equal(undefined)
    expect(gc.stats()).to.include({ evicted: 1, evictedBytes: MiB })
    await s.delete(BIG)

    // A is being downloaded: nothing may go, and the task is refused as before
    downloading = A
    const err = await s.createTask({ taskId: B, contentLength: 3 * MiB, pieceSize: PIECE }).catch(err => err)
    expect(err).to.have.property('name', 'InsufficientSpaceError')
    expect(s.getTask(A)).to.not.equal(undefined)
    expect(gc.stats().evicted).to.equal(1)
  })

  it('makes room when a running task\'s write finds the disk full, and fails the task as before when nothing can go', async () => {
    let downloading = new Set<string>()
    const s: FsPieceStore = store = new FsPieceStore({ dir: mountPoint, makeRoom: async (bytes: number, forTaskId: string): Promise<number> => gc.makeRoom(bytes, forTaskId) })
    await s.open()
    const gc: StoreGc = new StoreGc({
      usage: () => s.usage(),
      downloading: (id) => downloading.has(id),
      remove: async (id) => s.delete(id),
      policy: { quotaBytes: 0, ttlMs: 0, minIdleMs: 0 },
      intervalMs: 0,
      logger: defaultLogger()
    })
    // B: complete and idle; A: being downloaded, one piece of four stored
    await s.createTask({ taskId: B, contentLength: 4 * PIECE, pieceSize: PIECE })
    for (let i = 0; i < 4; i++) {
      await s.put(B, i, pieceBytes(200 + i, PIECE))
    }
    downloading = new Set([A])
    await s.createTask({ taskId: A, contentLength: 4 * PIECE, pieceSize: PIECE })
    await s.put(A, 0, pieceBytes(0, PIECE))

    // another program fills the disk: two writes hit it at once, and B goes once for both
    const filler = path.join(mountPoint, 'filler')
    await fillDisk(filler)
    await Promise.all([s.put(A, 1, pieceBytes(1, PIECE)), s.put(A, 2, pieceBytes(2, PIECE))])
    expect(s.getTask(B)).to.equal(undefined)
    expect(gc.stats()).to.include({ evicted: 1, evictedBytes: MiB })
    await s.put(A, 3, pieceBytes(3, PIECE))
    expect(s.getTask(A)).to.include({ state: 'complete' })

    // now A is in use and the only other task: a full disk fails the writing task, as without GC
    downloading = new Set([A, BIG])
    await fs.rm(filler)
    await s.createTask({ taskId: BIG, contentLength: 2 * PIECE, pieceSize: PIECE })
    await fillDisk(filler)
    const err = await s.put(BIG, 0, pieceBytes(50, PIECE)).catch(err => err)
    expect(err).to.have.property('name', 'StorageFullError')
    expect(s.getTask(BIG)).to.include({ state: 'failed' })
    expect(s.has(BIG, 0)).to.be.false()
    expect(gc.stats().evicted).to.equal(1)

    // every stored byte is intact after a reopen
    await fs.rm(filler)
    const reopened = await openStore()
    for (let i = 0; i < 4; i++) {
      expect(await reopened.get(A, i)).to.deep.equal(pieceBytes(i, PIECE))
    }
  })

  it('refuses a task that does not fit up front with InsufficientSpaceError', async () => {
    const s = await openStore()

    const err = await s.createTask({ taskId: BIG, contentLength: 8 * MiB, pieceSize: MiB }).catch(err => err)
    expect(err).to.have.property('name', 'InsufficientSpaceError')
    expect(err.message).to.include(mountPoint).and.include(String(Math.ceil(8 * MiB * 1.1)))
    expect(s.listTasks()).to.deep.equal([])

    // just under the limit fits; a second one does not, as the first is still to be written
    await s.createTask({ taskId: A, contentLength: 3 * MiB, pieceSize: MiB })
    await expect(s.createTask({ taskId: B, contentLength: MiB, pieceSize: MiB })).to.eventually.be.rejected().with.property('name', 'InsufficientSpaceError')
  })

  it('fails a put that hits ENOSPC with StorageFullError, stays consistent and leaves other tasks alone', async () => {
    let s = await openStore()
    await s.createTask({ taskId: A, contentLength: 4 * PIECE, pieceSize: PIECE })
    await s.createTask({ taskId: B, contentLength: 2 * PIECE, pieceSize: PIECE })
    await s.put(A, 0, pieceBytes(0, PIECE))
    await s.put(B, 0, pieceBytes(100, PIECE))

    const filler = path.join(mountPoint, 'filler')
    await fillDisk(filler)

    const err = await s.put(A, 1, pieceBytes(1, PIECE)).catch(err => err)
    expect(err).to.have.property('name', 'StorageFullError')
    expect(err.message).to.include(A)
    expect(s.getTask(A)).to.include({ state: 'failed' })
    expect(s.getTask(A)?.failure).to.include('ENOSPC')
    expect(s.has(A, 1)).to.be.false()

    // the other task is unaffected
    expect(s.getTask(B)).to.include({ state: 'partial' })
    expect(await s.get(B, 0)).to.deep.equal(pieceBytes(100, PIECE))
    expect(await s.get(A, 0)).to.deep.equal(pieceBytes(0, PIECE))

    // reopen while the disk is still full
    s = await openStore()
    expect(s.missing(A)).to.deep.equal([1, 2, 3])
    expect(s.missing(B)).to.deep.equal([1])
    expect(await s.get(A, 0)).to.deep.equal(pieceBytes(0, PIECE))
    expect(await s.get(B, 0)).to.deep.equal(pieceBytes(100, PIECE))

    // once there is room again both tasks finish
    await fs.rm(filler)
    await s.put(B, 1, pieceBytes(101, PIECE))

    for (let i = 1; i < 4; i++) {
      await s.put(A, i, pieceBytes(i, PIECE))
    }

    expect(s.isComplete(A)).to.be.true()
    expect(s.isComplete(B)).to.be.true()
    expect(s.getTask(A)?.state).to.equal('complete')

    s = await openStore()
    expect(s.listTasks().map(t => t.state)).to.deep.equal(['complete', 'complete'])

    for (let i = 0; i < 4; i++) {
      expect(await s.get(A, i)).to.deep.equal(pieceBytes(i, PIECE))
    }
  })
})
