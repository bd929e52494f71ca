/**
 * readRange's stream cursor: opened at the first piece of the range, moved
 * to each piece as the reader needs it, closed on every way out (finished,
 * consumer gone, client aborted, download failed). A scripted download and
 * store stand in for the engine, so every call is seen.
 */
import { expect } from 'aegir/chai'
import { readRange } from '../../src/proxy/blob.ts'
import type { BlobStore } from '../../src/proxy/blob.ts'
import type { TaskMetadata } from '../../src/storage/index.ts'
import type { Download, StreamCursor } from '../../src/task/download.ts'

const PIECE = 16
const PIECES = 10
const LENGTH = PIECE * PIECES - 5

function pieceBytes (i: number): Uint8Array {
  const len = Math.min(PIECE, LENGTH - i * PIECE)
  return Uint8Array.from({ length: len }, (_, k) => (i * PIECE + k) % 251)
}

const whole = Buffer.concat(Array.from({ length: PIECES }, (_, i) => pieceBytes(i)))

/**
 * A download whose pieces arrive when the test says so; it records what
 * the cursors are told
 */
class ScriptedDownload extends EventTarget {
  public readonly request = { taskId: 'task-1' }
  public state: Download['state'] = 'running'
  public readonly done: Promise<TaskMetadata>
  public readonly calls: string[] = []
  public open = 0
  private readonly resolve: (m: TaskMetadata) => void
  private readonly reject: (err: Error) => void

  constructor (private readonly store: ScriptedStore) {
    super()
    const { promise, resolve, reject } = Promise.withResolvers<TaskMetadata>()
    promise.catch(() => {})
    this.done = promise
    this.resolve = resolve
    this.reject = reject
  }

  stream (from: number): StreamCursor {
    this.calls.push(`stream ${from}`)
    this.open++
    let closed = false
    return {
      advance: (i) => { this.calls.push(`advance ${i}`) },
      close: () => {
        if (!closed) {
          closed = true
          this.open--
          this.calls.push('close')
        }
      }
    }
  }

  arrive (i: number): void {
    this.store.pieces.add(i)
    this.dispatchEvent(new CustomEvent('progress'))
  }

  succeed (): void {
    this.state = 'succeeded'
    this.resolve(META)
    this.dispatchEvent(new CustomEvent('state'))
  }

  fail (err: Error): void {
    this.state = 'failed'
    this.reject(err)
    this.dispatchEvent(new CustomEvent('state'))
  }
}

const META = { taskId: 'task-1', contentLength: LENGTH, pieceSize: PIECE, pieceCount: PIECES } as unknown as TaskMetadata

class ScriptedStore implements BlobStore {
  public readonly pieces = new Set<number>()
  getTask (): TaskMetadata { return META }
  has (_id: string, i: number): boolean { return this.pieces.has(i) }
  async read (_id: string, i: number): Promise<Uint8Array> { return pieceBytes(i) }
}

/** read a generator to its end; resolves to the number of chunks */
async function drain (gen: AsyncGenerator<Uint8Array>): Promise<number> {
  let n = 0
  for await (const chunk of gen) {
    n += chunk.byteLength > 0 ? 1 : 0
  }
  return n
}

async function tick (): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 5))
}

describe('proxy: readRange and the stream cursor', () => {
  let store: ScriptedStore
  let download: ScriptedDownload
  let controller: AbortController

  beforeEach(() => {
    store = new ScriptedStore()
    download = new ScriptedDownload(store)
    controller = new AbortController()
  })

  const read = (start: number, end: number): AsyncGenerator<Uint8Array> =>
    readRange(download as unknown as Download, store, META, start, end, { signal: controller.signal, pollMs: 10_000 })

  it('a range deep in the blob: the cursor starts at its first piece, follows the reader in order, and is closed at the end; the bytes are right', async () => {
    const start = 6 * PIECE + 3
    const end = 9 * PIECE + 2
    const chunks: Uint8Array[] = []
    const reading = (async () => {
      for await (const c of read(start, end)) {
        chunks.push(c)
      }
    })()
    await tick()
    expect(download.calls).to.deep.equal(['stream 6', 'advance 6'])
    expect(download.open).to.equal(1)
    // out of order arrivals do not let the reader skip ahead
    download.arrive(7)
    await tick()
    expect(chunks).to.have.length(0)
    download.arrive(6)
    await tick()
    expect(chunks).to.have.length(2)
    expect(download.calls.slice(-1)).to.deep.equal(['advance 8'])
    download.arrive(9)
    download.arrive(8)
    await tick()
    // piece 9 is the last of the range: held back until the digest matched, the cursor already closed
    expect(chunks).to.have.length(3)
    expect(download.open).to.equal(0)
    download.succeed()
    await reading
    expect(download.calls).to.deep.equal(['stream 6', 'advance 6', 'advance 7', 'advance 8', 'advance 9', 'close'])
    expect(Buffer.concat(chunks).equals(whole.subarray(start, end))).to.equal(true)
  })

  it('the client goes away while the reader waits: the cursor is closed', async () => {
    const reading = drain(read(0, LENGTH))
    await tick()
    download.arrive(0)
    await tick()
    expect(download.open).to.equal(1)
    controller.abort(new Error('client gone'))
    await expect(reading).to.eventually.be.rejected()
    expect(download.open).to.equal(0)
    expect(download.calls.at(-1)).to.equal('close')
  })

  it('the consumer stops early (response destroyed between chunks): the cursor is closed', async () => {
    download.arrive(0)
    download.arrive(1)
    const gen = read(0, LENGTH)
    expect((await gen.next()).done).to.equal(false)
    expect(download.open).to.equal(1)
    await gen.return(undefined)
    expect(download.open).to.equal(0)
  })

  it('the download fails: the reader throws its error and the cursor is closed', async () => {
    const reading = drain(read(3 * PIECE, LENGTH))
    await tick()
    expect(download.open).to.equal(1)
    download.fail(new Error('digest mismatch'))
    await expect(reading).to.eventually.be.rejectedWith('digest mismatch')
    expect(download.open).to.equal(0)
  })

  it('an empty range opens no cursor', async () => {
    download.succeed()
    expect(await drain(read(5, 5))).to.equal(0)
    expect(download.calls).to.deep.equal([])
  })
})
