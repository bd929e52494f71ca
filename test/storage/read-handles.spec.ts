import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { FsPieceStore } from '../../src/storage/index.ts'
import { taskIdFromUrl } from '../../src/task/id.ts'
import { pieceBytes } from './fixtures/piece-bytes.ts'

const KiB = 1024
const IDS = ['a', 'b', 'c'].map(name => taskIdFromUrl({ url: `https://example.com/${name}` }))
const PIECE = 16 * KiB
const PIECES = 4

/** Open file descriptors of this process on `file` (Linux /proc), counting deleted ones */
async function openFds (file: string): Promise<number> {
  let count = 0

  for (const fd of await fs.readdir('/proc/self/fd')) {
    const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')

    if (target === file || target === `${file} (deleted)`) {
      count++
    }
  }

  return count
}

describe('storage/fs-piece-store: cached read handles', function () {
  let dir: string
  let store: FsPieceStore | undefined

  beforeEach(async function () {
    if (process.platform !== 'linux') {
      this.skip()
    }

    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-read-handles-'))
  })

  afterEach(async function () {
    await store?.close()
    store = undefined
    await fs.rm(dir, { recursive: true, force: true })
  })

  const dataFile = (taskId: string): string => path.join(dir, 'tasks', taskId, 'data')

  /** three complete tasks, then reopened so that no task has a writer (as a node that only serves) */
  async function openServingStore (maxReadHandles?: number): Promise<FsPieceStore> {
    const writer = new FsPieceStore({ dir })
    await writer.open()

    for (const id of IDS) {
      await writer.createTask({ taskId: id, contentLength: PIECE * PIECES, pieceSize: PIECE })

      for (let i = 0; i < PIECES; i++) {
        await writer.put(id, i, pieceBytes(i, PIECE))
      }
    }

    await writer.close()
    store = new FsPieceStore({ dir, maxReadHandles })
    await store.open()

    return store
  }

  it('serves many reads of a task through one open handle, closed with the store', async function () {
    const s = await openServingStore()

    for (let round = 0; round < 5; round++) {
      const pieces = await Promise.all(Array.from({ length: PIECES }, async (_, i) => s.get(IDS[0], i)))
      pieces.forEach((bytes, i) => { expect(bytes).to.deep.equal(pieceBytes(i, PIECE)) })
      expect(await openFds(dataFile(IDS[0]))).to.equal(1)
    }

    await s.close()
    store = undefined
    expect(await openFds(dataFile(IDS[0]))).to.equal(0)
  })

  it('closes the read handle when the task is deleted', async function () {
    const s = await openServingStore()
    const file = dataFile(IDS[1])
    expect(await s.get(IDS[1], 2)).to.deep.equal(pieceBytes(2, PIECE))
    expect(await openFds(file)).to.equal(1)

    // a read racing the delete finishes first, then the handle goes
    const racing = s.get(IDS[1], 3)
    await s.delete(IDS[1])
    expect(await racing).to.deep.equal(pieceBytes(3, PIECE))
    expect(await openFds(file)).to.equal(0)
    expect(() => s.has(IDS[1], 0)).to.throw().with.property('name', 'TaskNotFoundError')
  })

  it('keeps at most maxReadHandles open, least recently used closed first, without failing reads in progress', async function () {
    const s = await openServingStore(2)

    // interleaved reads of three tasks, all at once: handles are evicted while in use
    const reads = []

    for (let i = 0; i < PIECES; i++) {
      for (const id of IDS) {
        reads.push(s.get(id, i).then(bytes => { expect(bytes).to.deep.equal(pieceBytes(i, PIECE)) }))
      }
    }

    await Promise.all(reads)
    const open = await Promise.all(IDS.map(async id => openFds(dataFile(id))))
    expect(open.reduce((a, b) => a + b, 0)).to.be.at.most(2)

    await s.get(IDS[0], 0)
    await s.get(IDS[1], 0)
    await s.get(IDS[2], 0)
    // IDS[0] was used least recently
    expect(await Promise.all(IDS.map(async id => openFds(dataFile(id))))).to.deep.equal([0, 1, 1])
  })

  it('with maxReadHandles 0 opens the file per read and keeps nothing open', async function () {
    const s = await openServingStore(0)
    expect(await s.get(IDS[2], 1)).to.deep.equal(pieceBytes(1, PIECE))
    expect(await openFds(dataFile(IDS[2]))).to.equal(0)
  })

  it('rejects a negative maxReadHandles', function () {
    expect(() => new FsPieceStore({ dir, maxReadHandles: -1 })).to.throw(/maxReadHandles/)
  })
})
