import '../../src/polyfill.ts'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { pEvent } from 'p-event'
import { PieceHeader } from '../../src/pb/piece.ts'
import { FsPieceStore } from '../../src/storage/index.ts'
import { PieceBufferPool } from '../../src/transfer/buffer-pool.ts'
import { requestPieces } from '../../src/transfer/client.ts'
import { encodeFrame } from '../../src/transfer/framing.ts'
import { handlePieceStream } from '../../src/transfer/server.ts'
import { UploadSlots } from '../../src/transfer/upload-slots.ts'
import { delay, KiB, memoryStreams, pieceBytes, sha256, testSource, yamuxStreams } from './fixtures.ts'
import type { Stream } from '@libp2p/interface'

const TASK = 'sha256:test-task'
const STORE_TASK = 'a'.repeat(64)

describe('transfer: PieceBufferPool', function () {
  it('reuses a released buffer and hands out prefixes for short pieces', function () {
    const pool = new PieceBufferPool({ bufferBytes: 1000, maxBuffers: 2 })
    const a = pool.acquire(1000)
    expect(a.byteLength).to.equal(1000)
    a.fill(7)
    pool.release(a)

    const b = pool.acquire(10)
    expect(b.byteLength).to.equal(10)
    expect(b.buffer).to.equal(a.buffer)
    expect(pool.stats()).to.deep.equal({ created: 1, leased: 1, free: 0, unpooled: 0 })
  })

  it('never leases one buffer twice: beyond maxBuffers it allocates unpooled buffers', function () {
    const pool = new PieceBufferPool({ bufferBytes: 100, maxBuffers: 2 })
    const leased = [pool.acquire(100), pool.acquire(100), pool.acquire(100), pool.acquire(100)]
    // no two leases share memory
    leased.forEach((b, i) => { b.fill(i + 1) })
    leased.forEach((b, i) => { expect(b.every(x => x === i + 1)).to.be.true() })
    expect(pool.stats()).to.deep.equal({ created: 2, leased: 2, free: 0, unpooled: 2 })

    // releasing an unpooled buffer is a no-op; pooled ones come back
    leased.forEach(b => { pool.release(b) })
    expect(pool.stats()).to.deep.equal({ created: 2, leased: 0, free: 2, unpooled: 2 })
  })

  it('gives a piece larger than its buffers an unpooled buffer', function () {
    const pool = new PieceBufferPool({ bufferBytes: 100, maxBuffers: 2 })
    const big = pool.acquire(101)
    expect(big.byteLength).to.equal(101)
    expect(pool.stats()).to.deep.equal({ created: 0, leased: 0, free: 0, unpooled: 1 })
  })

  it('throws on a second release of the same buffer, and ignores foreign buffers', function () {
    const pool = new PieceBufferPool({ bufferBytes: 100, maxBuffers: 1 })
    const a = pool.acquire(50)
    pool.release(a)
    expect(() => { pool.release(a) }).to.throw(/released twice/)
    pool.release(new Uint8Array(100))
    expect(pool.stats()).to.deep.equal({ created: 1, leased: 0, free: 1, unpooled: 0 })
  })

  it('rejects nonsense sizes', function () {
    expect(() => new PieceBufferPool({ bufferBytes: 0, maxBuffers: 1 })).to.throw(/bufferBytes/)
    expect(() => new PieceBufferPool({ bufferBytes: 10, maxBuffers: -1 })).to.throw(/maxBuffers/)
    expect(() => new PieceBufferPool({ bufferBytes: 10, maxBuffers: 1 }).acquire(-1)).to.throw(/Cannot acquire/)
  })
})

describe('transfer: requestPieces with a PieceBufferPool', function () {
  const cleanups: Array<() => Promise<void> | void> = []

  afterEach(async function () {
    for (const cleanup of cleanups.splice(0, cleanups.length)) {
      await cleanup()
    }
  })

  function track (...streams: Stream[]): void {
    cleanups.push(() => {
      for (const s of streams) {
        s.abort(new Error('test cleanup'))
      }
    })
  }

  it('a reused buffer never corrupts a stored piece: 8 slow puts pending, every stored piece equals its source', async function () {
    this.timeout(120_000)
    const pieceLength = 64 * KiB
    const pieceCount = 200
    const source = testSource({ [TASK]: { pieceLength, pieceCount } })
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-pool-'))
    cleanups.push(async () => { await fs.rm(dir, { recursive: true, force: true }) })
    const store = new FsPieceStore({ dir })
    await store.open()
    cleanups.push(async () => { await store.close() })
    const digests = Array.from({ length: pieceCount }, (_, i) => Buffer.from(source.digest(TASK, i) ?? []).toString('hex'))
    await store.createTask({ taskId: STORE_TASK, contentLength: pieceLength * pieceCount, pieceSize: pieceLength, pieceDigests: digests })

    const { client, server, close } = await yamuxStreams()
    cleanups.push(close)
    void handlePieceStream(server, 'peer-a', { source, slots: new UploadSlots(16) })
    // fewer buffers than pieces held, so buffers are reused and the pool also runs dry
    const pool = new PieceBufferPool({ bufferBytes: pieceLength, maxBuffers: 6 })
    const writes = new Set<Promise<void>>()
    const seen = new Set<ArrayBufferLike>()
    let maxLeased = 0

    const results = await requestPieces(client, TASK, Array.from({ length: pieceCount }, (_, i) => i), {
      expected: source.expected(TASK),
      pool,
      onPiece: async (index, bytes) => {
        seen.add(bytes.buffer)
        maxLeased = Math.max(maxLeased, pool.stats().leased)

        while (writes.size >= 8) {
          await Promise.race(writes)
        }

        // as the engine: the put runs beside the stream; a delay before it
        // keeps the buffer busy while later pieces arrive
        const write: Promise<void> = delay(index % 3)
          .then(async () => { await store.put(STORE_TASK, index, bytes, { expectedDigest: digests[index], verified: true }) })
          .finally(() => {
            writes.delete(write)
            pool.release(bytes)
          })
        writes.add(write)
      }
    })
    await Promise.all(writes)

    expect(results.every(r => r.status === 'ok')).to.be.true()
    expect(store.isComplete(STORE_TASK)).to.be.true()
    expect(pool.stats().leased).to.equal(0)
    expect(pool.stats().created).to.equal(6)
    expect(pool.stats().unpooled).to.be.greaterThan(0)
    expect(maxLeased).to.equal(6)
    // reused: far fewer distinct buffers than pieces
    expect(seen.size).to.be.lessThan(pieceCount)

    for (let i = 0; i < pieceCount; i++) {
      const stored = await store.get(STORE_TASK, i)
      expect(stored).to.equalBytes(pieceBytes(TASK, i, pieceLength))
    }
  })

  it('takes back the buffer of a piece that fails verification, and of a stream that fails mid-piece', async function () {
    const source = testSource({ [TASK]: { pieceLength: 32 * KiB, pieceCount: 3 } }, { corrupt: new Set([1]) })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', { source, slots: new UploadSlots(16) })
    const pool = new PieceBufferPool({ bufferBytes: 32 * KiB, maxBuffers: 4 })
    const stored: Uint8Array[] = []

    const results = await requestPieces(client, TASK, [0, 1, 2], {
      expected: source.expected(TASK),
      pool,
      onPiece: (index, bytes) => {
        stored.push(sha256(bytes))
        pool.release(bytes)
      }
    })

    expect(results.map(r => r.status)).to.deep.equal(['ok', 'bad-digest', 'ok'])
    expect(stored).to.deep.equal([source.digest(TASK, 0), source.digest(TASK, 2)])
    expect(pool.stats().leased).to.equal(0)

    // the server dies in the middle of a piece
    const [client2, server2] = await memoryStreams()
    track(client2, server2)
    const stalling = testSource({ [TASK]: { pieceLength: 32 * KiB, pieceCount: 1 } })
    void (async () => {
      await pEvent(server2, 'message')
      const bytes = await stalling.read(TASK, 0, {})
      server2.send(encodeFrame(PieceHeader.encode({ index: 0, status: PieceHeader.Status.OK, length: bytes.byteLength, digest: sha256(bytes) as Uint8Array<ArrayBuffer> })))
      server2.send(bytes.subarray(0, 1000))
      await delay(20)
      server2.abort(new Error('crashed mid-piece'))
    })()
    const failed = await requestPieces(client2, TASK, [0], {
      expected: stalling.expected(TASK),
      pool,
      onPiece: () => { throw new Error('must not be called') }
    })
    expect(failed[0].status).to.equal('error')
    expect(pool.stats().leased).to.equal(0)
  })
})
