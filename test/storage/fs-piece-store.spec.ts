import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { FsPieceStore } from '../../src/storage/index.ts'
import { taskIdFromDigest, taskIdFromUrl } from '../../src/task/id.ts'
import { MAX_CONTENT_LENGTH } from '../../src/task/piece-size.ts'
import { pieceBytes, sha256Hex } from './fixtures/piece-bytes.ts'
import type { TaskMetadata } from '../../src/storage/index.ts'

const KiB = 1024
const MiB = 1024 * KiB
const ID = taskIdFromUrl({ url: 'https://example.com/a' })
const ID2 = taskIdFromUrl({ url: 'https://example.com/b' })

async function expectRejectsNamed (p: Promise<unknown>, name: string, mentions: string[] = []): Promise<Error> {
  try {
    await p
  } catch (err: any) {
    expect(err.name, err.stack).to.equal(name)

    for (const m of mentions) {
      expect(err.message).to.include(m)
    }

    return err
  }

  throw new Error(`expected ${name}`)
}

function expectThrowsNamed (fn: () => unknown, name: string): void {
  expect(fn).to.throw().with.property('name', name)
}

function sha256File (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

async function listDir (dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).sort()
}

describe('storage/fs-piece-store', () => {
  let dir: string
  let store: FsPieceStore

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-store-'))
    store = new FsPieceStore({ dir })
    await store.open()
  })

  afterEach(async () => {
    await store.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function reopen (): Promise<void> {
    await store.close()
    store = new FsPieceStore({ dir })
    await store.open()
  }

  /**
   * 10 pieces of 64 KiB, the last one 1000 bytes
   */
  async function createTenPieces (extra: Partial<Parameters<FsPieceStore['createTask']>[0]> = {}): Promise<TaskMetadata> {
    return store.createTask({ taskId: ID, contentLength: 9 * 64 * KiB + 1000, pieceSize: 64 * KiB, ...extra })
  }

  function piece (i: number): Uint8Array {
    return pieceBytes(i, i === 9 ? 1000 : 64 * KiB)
  }

  describe('tasks', () => {
    it('creates a task with its layout on disk and a sparse data file', async () => {
      const task = await createTenPieces({ url: 'https://example.com/a', etag: '"e"' })

      expect(task).to.include({ taskId: ID, contentLength: 9 * 64 * KiB + 1000, pieceSize: 64 * KiB, pieceCount: 10, state: 'partial', url: 'https://example.com/a', etag: '"e"' })
      expect(task.pieceDigests).to.deep.equal(new Array(10).fill(undefined))
      expect(await listDir(path.join(dir, 'tasks', ID))).to.deep.equal(['data', 'metadata.json'])

      const stat = await fs.stat(path.join(dir, 'tasks', ID, 'data'))
      expect(stat.size).to.equal(task.contentLength)
      expect(stat.blocks * 512).to.be.lessThan(task.contentLength)
      expect(store.getTask(ID)).to.deep.equal(task)
      expect(store.listTasks()).to.deep.equal([task])
      expect(store.missing(ID)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    })

    it('returns the existing task on a second create with the same geometry (resume)', async () => {
      const first = await createTenPieces()
      await store.put(ID, 3, piece(3))
      const again = await createTenPieces()

      expect(again.createdAt).to.equal(first.createdAt)
      expect(store.has(ID, 3)).to.be.true()
      expect(store.listTasks()).to.have.lengthOf(1)
    })

    it('rejects a second create with different geometry or digest with TaskConflictError', async () => {
      await createTenPieces({ digest: `sha256:${'a'.repeat(64)}` })

      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 123, pieceSize: 64 * KiB }), 'TaskConflictError', [ID, '123'])
      await expectRejectsNamed(createTenPieces({ pieceSize: 128 * KiB, contentLength: 9 * 64 * KiB + 1000 }), 'TaskConflictError')
      await expectRejectsNamed(createTenPieces({ digest: `sha256:${'b'.repeat(64)}` }), 'TaskConflictError')
    })

    it('rejects bad task ids, geometry and digests', async () => {
      await expectRejectsNamed(store.createTask({ taskId: '../evil', contentLength: 1, pieceSize: 1 }), 'InvalidParametersError', ['../evil'])
      await expectRejectsNamed(store.createTask({ taskId: ID.toUpperCase(), contentLength: 1, pieceSize: 1 }), 'InvalidParametersError')
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: -1, pieceSize: MiB }), 'InvalidParametersError')
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 1, pieceSize: 0 }), 'InvalidParametersError')
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 1, pieceSize: 128 * MiB }), 'InvalidParametersError')
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 65537, pieceSize: 1 }), 'TaskTooLargeError')
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 1, pieceSize: 1, digest: 'md5:x' }), 'InvalidDigestError')
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 2, pieceSize: 1, pieceDigests: ['x', undefined] }), 'InvalidParametersError')
      expect(store.listTasks()).to.deep.equal([])
    })

    it('refuses a task larger than the free space with InsufficientSpaceError', async function () {
      const { bavail, bsize } = await fs.statfs(dir)
      const contentLength = Math.floor(bavail * bsize / 1.05)

      if (contentLength > MAX_CONTENT_LENGTH) {
        this.skip()
      }

      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength, pieceSize: 64 * MiB }), 'InsufficientSpaceError', [dir, String(contentLength)])
      expect(store.listTasks()).to.deep.equal([])
      expect(await listDir(path.join(dir, 'tasks'))).to.deep.equal([])
    })

    it('honours an aborted signal on create', async () => {
      await expectRejectsNamed(store.createTask({ taskId: ID, contentLength: 1000, pieceSize: 100 }, { signal: AbortSignal.abort() }), 'AbortError')
      expect(store.listTasks()).to.deep.equal([])
    })

    it('treats a 0-byte task as complete with 0 pieces', async () => {
      const task = await store.createTask({ taskId: ID, contentLength: 0, pieceSize: MiB })

      expect(task).to.include({ pieceCount: 0, state: 'complete' })
      expect(store.isComplete(ID)).to.be.true()
      expect(store.have(ID)).to.deep.equal(new Uint8Array(0))

      const out = path.join(dir, 'empty')
      await store.export(ID, out)
      expect((await fs.stat(out)).size).to.equal(0)
    })

    it('deletes a task with its files', async () => {
      await createTenPieces()
      await store.put(ID, 0, piece(0))
      await store.createTask({ taskId: ID2, contentLength: 10, pieceSize: 10 })
      await store.put(ID2, 0, pieceBytes(0, 10))

      await store.delete(ID)

      expect(store.getTask(ID)).to.be.undefined()
      expect(store.stats()).to.deep.equal({ tasks: 1, bytesStored: 10 })
      expect(await listDir(path.join(dir, 'tasks'))).to.deep.equal([ID2])
      await expectRejectsNamed(store.get(ID, 0), 'TaskNotFoundError', [ID])
      await store.delete(ID)

      await reopen()
      expect(store.listTasks().map(t => t.taskId)).to.deep.equal([ID2])
    })

    it('records state changes and failures', async () => {
      await createTenPieces()
      await store.setState(ID, 'failed', 'origin returned 404')
      expect(store.getTask(ID)).to.include({ state: 'failed', failure: 'origin returned 404' })

      await reopen()
      expect(store.getTask(ID)).to.include({ state: 'failed', failure: 'origin returned 404' })

      await store.setState(ID, 'partial')
      expect(store.getTask(ID)?.failure).to.be.undefined()
      await expectRejectsNamed(store.setState(ID, 'complete'), 'InvalidParametersError')
      await expectRejectsNamed(store.setState(ID, 'bogus' as any), 'InvalidParametersError')
    })

    it('throws NotStartedError before open and after close', async () => {
      const closed = new FsPieceStore({ dir })
      expectThrowsNamed(() => closed.listTasks(), 'NotStartedError')
      await expectRejectsNamed(closed.createTask({ taskId: ID, contentLength: 1, pieceSize: 1 }), 'NotStartedError')
      await expectRejectsNamed(closed.put(ID, 0, new Uint8Array(1)), 'NotStartedError')

      await createTenPieces()
      await store.close()
      expectThrowsNamed(() => store.getTask(ID), 'NotStartedError')
      await expectRejectsNamed(store.get(ID, 0), 'NotStartedError')
    })

    it('removes a task directory left without metadata by an interrupted create', async () => {
      const orphan = path.join(dir, 'tasks', ID2)
      await fs.mkdir(orphan, { recursive: true })
      await fs.writeFile(path.join(orphan, 'data'), 'x')
      await fs.writeFile(path.join(dir, 'tasks', 'README'), 'not a task')

      await reopen()

      expect(store.listTasks()).to.deep.equal([])
      expect(await listDir(path.join(dir, 'tasks'))).to.deep.equal(['README'])
    })
  })

  describe('metadata on open', () => {
    it('removes a task whose metadata is corrupt', async () => {
      await createTenPieces()
      await store.close()
      await fs.writeFile(path.join(dir, 'tasks', ID, 'metadata.json'), '{"version":1,"clean":true,"task":{"taskId":"x"}}')

      await reopen()

      expect(store.listTasks()).to.deep.equal([])
      expect(await listDir(path.join(dir, 'tasks'))).to.deep.equal([])
    })

    it('leaves a task written by a newer version on disk and does not load it', async () => {
      await createTenPieces()
      await store.close()
      const metadataPath = path.join(dir, 'tasks', ID, 'metadata.json')
      const json = JSON.parse(await fs.readFile(metadataPath, 'utf8'))
      json.version = 99
      await fs.writeFile(metadataPath, JSON.stringify(json))

      await reopen()

      expect(store.listTasks()).to.deep.equal([])
      expect(await listDir(path.join(dir, 'tasks', ID))).to.deep.equal(['data', 'metadata.json'])
    })

    it('opens once when open() is called concurrently', async () => {
      await createTenPieces()
      await store.close()
      store = new FsPieceStore({ dir })

      await Promise.all([store.open(), store.open()])

      expect(store.listTasks()).to.have.lengthOf(1)
    })
  })

  describe('pieces', () => {
    it('round-trips pieces, including a short last piece', async () => {
      await createTenPieces()

      for (const i of [0, 9, 4]) {
        await store.put(ID, i, piece(i))
      }

      for (const i of [0, 9, 4]) {
        expect(await store.get(ID, i)).to.deep.equal(piece(i))
        expect(await store.read(ID, i)).to.deep.equal(piece(i))
      }

      expect(store.stats()).to.deep.equal({ tasks: 1, bytesStored: 2 * 64 * KiB + 1000 })
    })

    it('returns a piece in a buffer of its own', async () => {
      await store.createTask({ taskId: ID2, contentLength: 100, pieceSize: 10 })
      await store.put(ID2, 3, pieceBytes(3, 10))
      const got = await store.get(ID2, 3)

      expect(got).to.deep.equal(pieceBytes(3, 10))
      expect(got.byteOffset).to.equal(0)
      expect(got.buffer.byteLength).to.equal(10)
    })

    it('keeps the bitfield MSB-first', async () => {
      await createTenPieces()

      for (const i of [0, 2, 9]) {
        await store.put(ID, i, piece(i))
      }

      expect(store.have(ID)).to.deep.equal(Uint8Array.from([0b10100000, 0b01000000]))
      expect(store.has(ID, 2)).to.be.true()
      expect(store.has(ID, 1)).to.be.false()
      expect(store.has(ID, 10)).to.be.false()
      expect(store.missing(ID)).to.deep.equal([1, 3, 4, 5, 6, 7, 8])
      expect(store.isComplete(ID)).to.be.false()
    })

    it('tells a waiter when a piece becomes present, and gives up on timeout, delete or close', async () => {
      await createTenPieces()
      await store.put(ID, 0, piece(0))
      expect(await store.whenPresent(ID, 0, { timeoutMs: 10 })).to.be.true()

      const arriving = store.whenPresent(ID, 3, { timeoutMs: 5_000 })
      let settled = false
      void arriving.then(() => { settled = true })
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(settled).to.be.false()
      await store.put(ID, 3, piece(3))
      expect(await arriving).to.be.true()

      expect(await store.whenPresent(ID, 4, { timeoutMs: 30 })).to.be.false()
      const controller = new AbortController()
      const aborted = store.whenPresent(ID, 4, { timeoutMs: 5_000, signal: controller.signal })
      controller.abort()
      expect(await aborted).to.be.false()

      const deleted = store.whenPresent(ID, 5, { timeoutMs: 5_000 })
      await store.delete(ID)
      expect(await deleted).to.be.false()

      await createTenPieces()
      const closed = store.whenPresent(ID, 6, { timeoutMs: 5_000 })
      await store.close()
      expect(await closed).to.be.false()
      await store.open()
    })

    it('records the digest of a piece whose digest was unknown', async () => {
      await createTenPieces()
      await store.put(ID, 1, piece(1))

      expect(store.getTask(ID)?.pieceDigests[1]).to.equal(sha256Hex(piece(1)))
    })

    it('rejects a piece whose digest differs from the known one without writing it', async () => {
      const digests = Array.from({ length: 10 }, (_, i) => sha256Hex(piece(i)))
      await createTenPieces({ pieceDigests: digests })
      const bad = piece(5)

      await expectRejectsNamed(store.put(ID, 3, bad), 'PieceDigestMismatchError', [digests[3], sha256Hex(bad)])
      await expectRejectsNamed(store.put(ID, 4, piece(4), { expectedDigest: sha256Hex(bad) }), 'PieceDigestMismatchError')

      expect(store.has(ID, 3)).to.be.false()
      expect(store.has(ID, 4)).to.be.false()
      await expectRejectsNamed(store.get(ID, 3), 'PieceNotFoundError', [ID, '3'])

      // the bytes never reached the data file
      const data = await fs.readFile(path.join(dir, 'tasks', ID, 'data'))
      expect(data.subarray(3 * 64 * KiB, 5 * 64 * KiB).every(b => b === 0)).to.be.true()
    })

    it('checks expectedDigest for a piece whose digest was unknown', async () => {
      await createTenPieces()

      await expectRejectsNamed(store.put(ID, 2, piece(2), { expectedDigest: sha256Hex(piece(3)) }), 'PieceDigestMismatchError')
      await store.put(ID, 2, piece(2), { expectedDigest: sha256Hex(piece(2)).toUpperCase() })
      expect(store.has(ID, 2)).to.be.true()
    })

    it('rejects pieces of the wrong length or index', async () => {
      await createTenPieces()

      await expectRejectsNamed(store.put(ID, 0, piece(9)), 'InvalidParametersError', ['65536'])
      await expectRejectsNamed(store.put(ID, 9, piece(0)), 'InvalidParametersError', ['1000'])
      await expectRejectsNamed(store.put(ID, 10, piece(0)), 'InvalidParametersError')
      await expectRejectsNamed(store.put(ID, -1, piece(0)), 'InvalidParametersError')
      await expectRejectsNamed(store.put(ID2, 0, piece(0)), 'TaskNotFoundError')
      expect(store.missing(ID)).to.have.lengthOf(10)
    })

    it('accepts concurrent puts of different pieces and of the same piece', async () => {
      await createTenPieces()
      const puts: Array<Promise<void>> = []

      for (let i = 0; i < 10; i++) {
        puts.push(store.put(ID, i, piece(i)), store.put(ID, i, piece(i)))
      }

      await Promise.all(puts)

      expect(store.isComplete(ID)).to.be.true()
      expect(store.getTask(ID)?.state).to.equal('complete')
      expect(store.stats().bytesStored).to.equal(9 * 64 * KiB + 1000)

      for (let i = 0; i < 10; i++) {
        expect(sha256Hex(await store.get(ID, i))).to.equal(sha256Hex(piece(i)))
      }

      // a present piece put again is a no-op, different bytes are refused
      await store.put(ID, 3, piece(3))
      await expectRejectsNamed(store.put(ID, 3, piece(4)), 'PieceDigestMismatchError')
    })

    it('honours an aborted signal', async () => {
      await createTenPieces()

      await expectRejectsNamed(store.put(ID, 0, piece(0), { signal: AbortSignal.abort() }), 'AbortError')
      expect(store.has(ID, 0)).to.be.false()
    })

    it('keeps pieces and learned digests across a clean close, with an empty journal', async () => {
      await createTenPieces()
      await store.put(ID, 0, piece(0))
      await store.put(ID, 7, piece(7))

      const journal = path.join(dir, 'tasks', ID, 'pieces.log')
      expect((await fs.stat(journal)).size).to.equal(80)
      expect(JSON.parse(await fs.readFile(path.join(dir, 'tasks', ID, 'metadata.json'), 'utf8')).clean).to.be.false()

      await reopen()

      expect((await fs.stat(journal)).size).to.equal(0)
      expect(JSON.parse(await fs.readFile(path.join(dir, 'tasks', ID, 'metadata.json'), 'utf8')).clean).to.be.true()
      expect(store.missing(ID)).to.deep.equal([1, 2, 3, 4, 5, 6, 8, 9])
      expect(await store.get(ID, 7)).to.deep.equal(piece(7))
      expect(store.getTask(ID)?.pieceDigests[7]).to.equal(sha256Hex(piece(7)))
      expect(store.stats()).to.deep.equal({ tasks: 1, bytesStored: 2 * 64 * KiB })
    })
  })

  describe('piece digests', () => {
    it('answers per-piece questions without the task metadata: hasTask, pieceDigest, pieceLength', async () => {
      expect(store.hasTask(ID)).to.be.false()
      expect(store.pieceDigest(ID, 0)).to.be.undefined()
      expect(store.pieceLength(ID, 0)).to.be.undefined()

      await createTenPieces()
      await store.put(ID, 9, piece(9))
      expect(store.hasTask(ID)).to.be.true()
      expect(store.pieceDigest(ID, 9)).to.equal(sha256Hex(piece(9)))
      expect(store.pieceDigest(ID, 8)).to.be.undefined()
      expect([0, 8, 9].map(i => store.pieceLength(ID, i))).to.deep.equal([64 * KiB, 64 * KiB, 1000])
      for (const bad of [-1, 10, 1.5, Number.NaN]) {
        expect(store.pieceLength(ID, bad), String(bad)).to.be.undefined()
        expect(store.pieceDigest(ID, bad), String(bad)).to.be.undefined()
      }

      // what getTask says, without copying the digest list for each question
      const task = store.getTask(ID)!
      expect(Array.from({ length: 10 }, (_, i) => store.pieceDigest(ID, i))).to.deep.equal(task.pieceDigests.map(d => d ?? undefined))
    })

    it('fills in digests learned later and keeps them across reopen', async () => {
      await createTenPieces()
      const digests: Array<string | undefined> = new Array(10).fill(undefined)
      digests[2] = sha256Hex(piece(2)).toUpperCase()

      await store.setPieceDigests(ID, digests)
      expect(store.getTask(ID)?.pieceDigests[2]).to.equal(sha256Hex(piece(2)))

      await reopen()
      expect(store.getTask(ID)?.pieceDigests[2]).to.equal(sha256Hex(piece(2)))
      await expectRejectsNamed(store.put(ID, 2, piece(3).subarray(0, 64 * KiB)), 'PieceDigestMismatchError')
    })

    it('rejects digests that conflict with known ones', async () => {
      await createTenPieces()
      await store.put(ID, 1, piece(1))
      const digests: Array<string | undefined> = new Array(10).fill(undefined)
      digests[1] = sha256Hex(piece(2))
      digests[2] = sha256Hex(piece(2))

      await expectRejectsNamed(store.setPieceDigests(ID, digests), 'PieceDigestConflictError', [sha256Hex(piece(1))])
      // nothing of a conflicting list is applied
      expect(store.getTask(ID)?.pieceDigests[2]).to.be.undefined()
      await expectRejectsNamed(store.setPieceDigests(ID, [undefined]), 'InvalidParametersError', ['10'])
    })

    it('merges digests passed to a resumed createTask', async () => {
      await createTenPieces()
      const digests: Array<string | undefined> = new Array(10).fill(undefined)
      digests[0] = sha256Hex(piece(0))

      const task = await createTenPieces({ pieceDigests: digests })
      expect(task.pieceDigests[0]).to.equal(digests[0])
    })
  })

  describe('import and export', () => {
    let source: string
    let content: Uint8Array

    beforeEach(async () => {
      content = pieceBytes(42, 3 * MiB + 12345)
      source = path.join(dir, 'source.bin')
      await fs.writeFile(source, content)
    })

    it('imports a file as a complete task and exports identical bytes', async () => {
      const digest = sha256File(content)
      const taskId = taskIdFromDigest(digest)
      const task = await store.import(source, { taskId, url: 'file:///source.bin', digest })

      // the default piece size for a file of a few MiB (choosePieceSize)
      const size = 512 * KiB
      expect(task).to.include({ taskId, contentLength: content.byteLength, pieceSize: size, pieceCount: 7, state: 'complete', digest })
      expect(task.pieceDigests).to.deep.equal(Array.from({ length: 7 }, (_, i) => sha256Hex(content.subarray(i * size, (i + 1) * size))))
      expect(store.isComplete(taskId)).to.be.true()

      const out = path.join(dir, 'out.bin')
      await store.export(taskId, out)
      expect(sha256File(await fs.readFile(out))).to.equal(digest)
      expect(await listDir(dir)).to.deep.equal(['out.bin', 'source.bin', 'store.lock', 'tasks'])

      await reopen()
      expect(store.getTask(taskId)).to.deep.equal(task)
      expect(await store.get(taskId, 6)).to.deep.equal(content.subarray(6 * size))
    })

    it('records the whole-file digest of an import without one, with a chosen piece size', async () => {
      const task = await store.import(source, { taskId: ID, pieceSize: 256 * KiB })

      expect(task).to.include({ digest: sha256File(content), pieceSize: 256 * KiB, pieceCount: 13 })
    })

    it('rejects an import whose digest does not match and stores nothing', async () => {
      const wrong = `sha256:${'0'.repeat(64)}`

      await expectRejectsNamed(store.import(source, { taskId: ID, digest: wrong }), 'DigestMismatchError', [wrong, sha256File(content)])
      expect(store.getTask(ID)).to.be.undefined()
      expect(await listDir(path.join(dir, 'tasks'))).to.deep.equal([])
    })

    it('refuses to import a directory or a missing file', async () => {
      await expectRejectsNamed(store.import(dir, { taskId: ID }), 'InvalidParametersError')
      await expect(store.import(path.join(dir, 'nope'), { taskId: ID })).to.eventually.be.rejected().with.property('code', 'ENOENT')
    })

    it('refuses to overwrite an existing file unless asked to', async () => {
      await store.import(source, { taskId: ID })
      const out = path.join(dir, 'out.bin')
      await fs.writeFile(out, 'precious')

      await expectRejectsNamed(store.export(ID, out), 'OutputExistsError', ['--overwrite', out])
      expect(await fs.readFile(out, 'utf8')).to.equal('precious')

      await store.export(ID, out, { overwrite: true })
      expect(sha256File(await fs.readFile(out))).to.equal(sha256File(content))
      expect(await listDir(dir)).to.deep.equal(['out.bin', 'source.bin', 'store.lock', 'tasks'])
    })

    it('never leaves a partial file at the destination', async () => {
      const out = path.join(dir, 'out.bin')

      // incomplete task
      await createTenPieces()
      await store.put(ID, 0, piece(0))
      await expectRejectsNamed(store.export(ID, out), 'TaskIncompleteError', ['1 of 10'])

      // aborted once the temp file exists
      await store.import(source, { taskId: ID2 })
      const controller = new AbortController()
      const exporting = store.export(ID2, out, { signal: controller.signal })
      controller.abort()
      await expectRejectsNamed(exporting, 'AbortError')

      // corrupt data found while exporting
      await fs.writeFile(path.join(dir, 'tasks', ID2, 'data'), pieceBytes(7, 100), { flag: 'r+' })
      await expectRejectsNamed(store.export(ID2, out), 'PieceDigestMismatchError', ['piece 0'])

      expect(await listDir(dir)).to.deep.equal(['source.bin', 'store.lock', 'tasks'])
    })

    it('streams a complete task piece by piece, and stops before a piece that fails its digest', async () => {
      await store.import(source, { taskId: ID })
      const parts: Uint8Array[] = []
      for await (const p of store.stream(ID)) {
        parts.push(p)
      }
      expect(sha256File(Buffer.concat(parts))).to.equal(sha256File(content))

      // piece 1 of the data file corrupted: piece 0 comes out, then the error, nothing of piece 1
      const task = store.getTask(ID)!
      const data = await fs.open(path.join(dir, 'tasks', ID, 'data'), 'r+')
      await data.write(pieceBytes(7, 100), 0, 100, task.pieceSize + 5)
      await data.close()
      const got: Uint8Array[] = []
      const err = await (async () => {
        for await (const p of store.stream(ID)) {
          got.push(p)
        }
      })().catch(err => err)
      expect(err).to.have.property('name', 'PieceDigestMismatchError')
      expect(err.message).to.include('piece 1')
      expect(got).to.have.length(1)

      // an incomplete task is refused before any byte
      await createTenPieces({ taskId: ID2 })
      await expectRejectsNamed((async () => { for await (const p of store.stream(ID2)) { got.push(p) } })(), 'TaskIncompleteError')
    })

    it('verifies the whole-file digest on export', async () => {
      const task = await store.import(source, { taskId: ID })
      const metadataPath = path.join(dir, 'tasks', ID, 'metadata.json')
      await store.close()

      // a metadata digest that the (intact) pieces do not assemble to
      const json = JSON.parse(await fs.readFile(metadataPath, 'utf8'))
      json.task.digest = `sha256:${'1'.repeat(64)}`
      await fs.writeFile(metadataPath, JSON.stringify(json))
      store = new FsPieceStore({ dir })
      await store.open()

      const out = path.join(dir, 'out.bin')
      await expectRejectsNamed(store.export(ID, out), 'DigestMismatchError', [task.digest ?? 'missing', json.task.digest])
      expect(await listDir(dir)).to.deep.equal(['source.bin', 'store.lock', 'tasks'])

      // the mismatch is remembered: the next export and stream fail before any byte
      await expectRejectsNamed(store.export(ID, out), 'DigestMismatchError', [task.digest ?? 'missing', json.task.digest])
      await expectRejectsNamed((async () => { for await (const p of store.stream(ID)) { expect(p).to.be.undefined() } })(), 'DigestMismatchError')
      expect(await store.assembledDigest(ID)).to.equal(task.digest)
      expect(await listDir(dir)).to.deep.equal(['source.bin', 'store.lock', 'tasks'])
    })

    it('hashes a downloaded task once for its digest, and exports it checking each piece', async () => {
      const digest = sha256File(content)
      await createTenPieces({ taskId: ID, contentLength: content.byteLength, pieceSize: 256 * KiB, digest })
      await expectRejectsNamed(store.assembledDigest(ID), 'TaskIncompleteError', ['0 of 13'])
      for (let i = 0; i < 13; i++) {
        await store.put(ID, i, content.subarray(i * 256 * KiB, (i + 1) * 256 * KiB))
      }
      expect(await store.assembledDigest(ID)).to.equal(digest)

      const out = path.join(dir, 'out.bin')
      await store.export(ID, out)
      expect(sha256File(await fs.readFile(out))).to.equal(digest)
      expect((await fs.stat(out)).mode & 0o777).to.equal(0o644 & ~process.umask())

      // each piece of every export is still checked against its digest
      const data = await fs.open(path.join(dir, 'tasks', ID, 'data'), 'r+')
      await data.write(pieceBytes(7, 10), 0, 10, 12 * 256 * KiB + 3)
      await data.close()
      await expectRejectsNamed(store.export(ID, path.join(dir, 'again.bin')), 'PieceDigestMismatchError', ['piece 12', ID])
      expect(await listDir(dir)).to.deep.equal(['out.bin', 'source.bin', 'store.lock', 'tasks'])
    })

    it('hashes a task with a digest while its pieces arrive, so its digest needs no read back', async () => {
      const digest = sha256File(content)
      const pieceOf = (i: number): Uint8Array => content.subarray(i * 256 * KiB, (i + 1) * 256 * KiB)
      await createTenPieces({ taskId: ID, contentLength: content.byteLength, pieceSize: 256 * KiB, digest })
      for (let i = 0; i < 13; i++) {
        await store.put(ID, i, pieceOf(i))
      }

      // the file changes behind the store's back after the last piece: the
      // digest was taken from the pieces as they came, the export still
      // checks every piece
      const data = await fs.open(path.join(dir, 'tasks', ID, 'data'), 'r+')
      await data.write(pieceBytes(9, 10), 0, 10, 5 * 256 * KiB)
      await data.close()
      expect(await store.assembledDigest(ID)).to.equal(digest)
      await expectRejectsNamed(store.export(ID, path.join(dir, 'out.bin')), 'PieceDigestMismatchError', ['piece 5'])

      // a task without a digest is hashed when asked, from the file
      await createTenPieces({ taskId: ID2, contentLength: content.byteLength, pieceSize: 256 * KiB })
      for (let i = 0; i < 13; i++) {
        await store.put(ID2, i, pieceOf(i))
      }
      const data2 = await fs.open(path.join(dir, 'tasks', ID2, 'data'), 'r+')
      await data2.write(pieceBytes(9, 10), 0, 10, 5 * 256 * KiB)
      await data2.close()
      expect(await store.assembledDigest(ID2)).to.not.equal(digest)
    })

    it('hashes pieces that arrive out of order in order, reading back those ahead of a gap', async () => {
      const digest = sha256File(content)
      const pieceOf = (i: number): Uint8Array => content.subarray(i * 256 * KiB, (i + 1) * 256 * KiB)
      const all = Array.from({ length: 13 }, (_, i) => i)
      const orders: Array<[string, number[], boolean]> = [
        ['reversed, one at a time', [...all].reverse(), false],
        ['odd ones first, one at a time', [...all.filter(i => i % 2 === 1), ...all.filter(i => i % 2 === 0)], false],
        ['shuffled, all at once', [7, 2, 12, 0, 5, 9, 1, 11, 3, 8, 6, 10, 4], true],
        ['in order, all at once', all, true]
      ]

      const s = store
      for (const [name, order, together] of orders) {
        const taskId = taskIdFromUrl({ url: `https://example.com/${encodeURIComponent(name)}` })
        await store.createTask({ taskId, contentLength: content.byteLength, pieceSize: 256 * KiB, digest })
        if (together) {
          await Promise.all(order.map(async i => { await s.put(taskId, i, pieceOf(i)) }))
        } else {
          for (const i of order) {
            await store.put(taskId, i, pieceOf(i))
          }
        }
        expect(await store.assembledDigest(taskId), name).to.equal(digest)
        const out = path.join(dir, 'out.bin')
        await store.export(taskId, out, { overwrite: true })
        expect(sha256File(await fs.readFile(out)), name).to.equal(digest)
      }
    })

    it('refuses to export a data file longer than the content', async () => {
      await store.import(source, { taskId: ID })
      await fs.appendFile(path.join(dir, 'tasks', ID, 'data'), 'trailing')

      await expectRejectsNamed(store.export(ID, path.join(dir, 'out.bin')), 'PieceDigestMismatchError', [`${content.byteLength + 8} bytes, not ${content.byteLength}`])
      expect(await listDir(dir)).to.deep.equal(['source.bin', 'store.lock', 'tasks'])
    })
  })
})
