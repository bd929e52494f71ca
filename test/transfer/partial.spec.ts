import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { Uint8ArrayList } from 'uint8arraylist'
import { PartialPieces } from '../../src/transfer/partial.ts'
import { delay, pieceBytes } from './fixtures.ts'
import type { PartialPiece } from '../../src/transfer/partial.ts'

const TASK = 'sha256:partial-task'
const LENGTH = 1000
const PROOF = { digest: new Uint8Array(32) }

/** Collect a reader's chunks in the background; `got` grows as they come */
function collect (piece: PartialPiece, minBytes: number, signal?: AbortSignal): { got: Uint8Array[], done: Promise<Error | undefined> } {
  const chunks = piece.chunks({ minBytes, signal })
  expect(chunks).to.not.be.undefined()
  const got: Uint8Array[] = []
  const done = (async () => {
    try {
      for await (const chunk of chunks!) {
        got.push(chunk.subarray())
      }
      return undefined
    } catch (err: any) {
      return err as Error
    }
  })()
  return { got, done }
}

const total = (chunks: Uint8Array[]): number => chunks.reduce((n, c) => n + c.byteLength, 0)

describe('transfer: partial pieces (cut-through)', function () {
  it('hands a reader the bytes as they arrive, but the chunk that completes the piece only once it is verified', async function () {
    const partials = new PartialPieces()
    const buffer = new Uint8Array(LENGTH)
    const bytes = pieceBytes(TASK, 0, LENGTH)
    const piece = partials.begin(TASK, 0, buffer, LENGTH, PROOF)!
    const reader = collect(piece, 1)

    buffer.set(bytes.subarray(0, 300))
    piece.progress(300)
    await delay(5)
    expect(total(reader.got)).to.equal(300)

    buffer.set(bytes.subarray(300), 300)
    piece.progress(LENGTH)
    await delay(5)
    // all in, not verified yet: the last 700 bytes wait
    expect(total(reader.got)).to.equal(300)
    expect(partials.get(TASK, 0)).to.equal(piece)

    piece.verified()
    expect(await reader.done).to.be.undefined()
    expect(new Uint8ArrayList(...reader.got).subarray()).to.equalBytes(bytes)
    // an ended piece leaves the registry: the store serves it from now on
    expect(partials.get(TASK, 0)).to.be.undefined()
    expect(partials.size).to.equal(0)
    expect(piece.chunks({ minBytes: 1 })).to.be.undefined()
  })

  it('gives a reader that comes late the bytes that arrived before it, and keeps its copy when the receive buffer is reused', async function () {
    const partials = new PartialPieces()
    const buffer = new Uint8Array(LENGTH)
    const bytes = pieceBytes(TASK, 1, LENGTH)
    const piece = partials.begin(TASK, 1, buffer, LENGTH, PROOF)!
    buffer.set(bytes.subarray(0, 600))
    piece.progress(600)
    const reader = collect(piece, 1)
    buffer.set(bytes.subarray(600), 600)
    piece.progress(LENGTH)
    piece.verified()
    // the receiver's pool reuses the buffer before the reader got around to sending
    buffer.fill(0xee)
    expect(await reader.done).to.be.undefined()
    expect(new Uint8ArrayList(...reader.got).subarray()).to.equalBytes(bytes)
  })

  it('holds chunks back until minBytes are there, except the rest of the piece', async function () {
    const partials = new PartialPieces()
    const buffer = new Uint8Array(LENGTH)
    const piece = partials.begin(TASK, 2, buffer, LENGTH, PROOF)!
    const reader = collect(piece, 400)

    for (const filled of [100, 200, 300]) {
      piece.progress(filled)
    }
    await delay(5)
    expect(reader.got).to.have.length(0)
    piece.progress(450)
    await delay(5)
    expect(reader.got.map(c => c.byteLength)).to.deep.equal([450])
    piece.progress(700)
    piece.progress(LENGTH)
    piece.verified()
    expect(await reader.done).to.be.undefined()
    // 250 more arrived, under minBytes; the 550 left then go in one once verified
    expect(reader.got.map(c => c.byteLength)).to.deep.equal([450, 550])
  })

  it('fails every reader with the receiver\'s error and never hands out the last chunk of a piece that failed', async function () {
    const partials = new PartialPieces()
    const buffer = new Uint8Array(LENGTH)
    const piece = partials.begin(TASK, 3, buffer, LENGTH, PROOF)!
    const a = collect(piece, 1)
    const b = collect(piece, 1)
    piece.progress(500)
    await delay(5)
    piece.progress(LENGTH)
    await delay(5)
    piece.fail(new Error('bad digest here'))
    piece.verified()

    for (const reader of [a, b]) {
      expect((await reader.done)?.message).to.equal('bad digest here')
      expect(total(reader.got)).to.equal(500)
    }
    expect(piece.state).to.equal('failed')
    expect(partials.get(TASK, 3)).to.be.undefined()
  })

  it('stops a reader on abort without touching the piece or its other readers', async function () {
    const partials = new PartialPieces()
    const buffer = new Uint8Array(LENGTH)
    const piece = partials.begin(TASK, 4, buffer, LENGTH, PROOF)!
    const controller = new AbortController()
    const aborted = collect(piece, 1, controller.signal)
    const other = collect(piece, 1)
    controller.abort(new Error('downstream went away'))
    expect((await aborted.done)?.message).to.equal('downstream went away')
    piece.progress(LENGTH)
    piece.verified()
    expect(await other.done).to.be.undefined()
    expect(total(other.got)).to.equal(LENGTH)
  })

  it('keeps one partial per piece, wakes waiters when a piece begins, and times waits out', async function () {
    const partials = new PartialPieces()
    const waiting = partials.waitFor(TASK, 5, { timeoutMs: 5_000 })
    const first = partials.begin(TASK, 5, new Uint8Array(10), 10, PROOF)
    expect(first).to.not.be.undefined()
    expect(await waiting).to.be.true()
    expect(partials.begin(TASK, 5, new Uint8Array(10), 10, PROOF)).to.be.undefined()
    expect(await partials.waitFor(TASK, 5, { timeoutMs: 10 })).to.be.true()
    expect(await partials.waitFor(TASK, 6, { timeoutMs: 10 })).to.be.false()
    first!.fail(new Error('gone'))
    // the piece may arrive again on another stream
    expect(partials.begin(TASK, 5, new Uint8Array(10), 10, PROOF)).to.not.be.undefined()
  })

  it('ignores progress that goes backwards or past the end, and turns a verify of an incomplete piece into a failure', async function () {
    const partials = new PartialPieces()
    const piece = partials.begin(TASK, 7, new Uint8Array(LENGTH), LENGTH, PROOF)!
    const reader = collect(piece, 1)
    piece.progress(600)
    piece.progress(500)
    piece.progress(LENGTH + 1)
    await delay(5)
    expect(total(reader.got)).to.equal(600)
    piece.verified()
    expect((await reader.done)?.message).to.match(/declared verified with 600 of 1000 bytes/)
    expect(piece.state).to.equal('failed')
  })
})
