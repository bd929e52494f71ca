import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { pEvent } from 'p-event'
import { Uint8ArrayList } from 'uint8arraylist'
import { PieceHeader, PieceRequest } from '../../src/pb/piece.ts'
import { PieceWaiters } from '../../src/storage/piece-waiters.ts'
import { requestPieces } from '../../src/transfer/client.ts'
import { encodeFrame } from '../../src/transfer/framing.ts'
import { PartialPieces } from '../../src/transfer/partial.ts'
import { handlePieceStream } from '../../src/transfer/server.ts'
import { UploadSlots } from '../../src/transfer/upload-slots.ts'
import { delay, KiB, memoryStreams, parseAnswers, pieceBytes, sha256, testSource } from './fixtures.ts'
import type { BadPieceReason } from '../../src/transfer/client.ts'
import type { FetchResult } from '../../src/transfer/index.ts'
import type { Stream } from '@libp2p/interface'

const TASK = 'sha256:cut-through'
const LENGTH = 512 * KiB
const HALF = LENGTH / 2

interface Line {
  a: { sendFirstHalf(): Promise<void>, sendSecondHalf(): void, abort(): void }
  bFetch: Promise<FetchResult[]>
  bc: Stream
  bStored: number[]
  bytes: Uint8Array
  partials: PartialPieces
  source: ReturnType<typeof testSource>
  forwarded(): number
  streams: Stream[]
}

/**
 * Three nodes in a line, A → B → C. A is a hand-written server that sends
 * piece 0 in two halves when told; B fetches it from A with the real client
 * and serves C with the real server, both sharing B's PartialPieces; C asks
 * B ahead (wait_ms), as a pipeline's next peer does.
 */
async function line (options: { corruptSecondHalf?: boolean } = {}): Promise<Line> {
  const source = testSource({ [TASK]: { pieceLength: LENGTH, pieceCount: 2, have: new Set() } })
  const have = new Set<number>()
  const waiters = new PieceWaiters(16)
  const partials = new PartialPieces()
  const bSource = {
    ...source,
    has: (taskId: string, index: number) => taskId === TASK && have.has(index),
    waitFor: async (taskId: string, index: number, opts: { timeoutMs: number, signal?: AbortSignal }) => waiters.wait(taskId, index, opts)
  }
  const [ab, aServer] = await memoryStreams()
  const [bc, bServer] = await memoryStreams()
  const streams: Stream[] = [ab, aServer, bc, bServer]
  let forwarded = 0
  void handlePieceStream(bServer, 'peer-c', { source: bSource, slots: new UploadSlots(4), partials, onForwarded: () => { forwarded++ } })

  const bytes = pieceBytes(TASK, 0, LENGTH)
  const sent = bytes.slice()
  if (options.corruptSecondHalf === true) {
    sent[HALF + 100] ^= 0x01
  }
  const aRequest = pEvent(aServer, 'message')
  const a = {
    /** header and first half */
    sendFirstHalf: async () => {
      await aRequest
      aServer.send(new Uint8ArrayList(encodeFrame(PieceHeader.encode({ index: 0, status: PieceHeader.Status.OK, length: LENGTH, digest: source.digest(TASK, 0) as Uint8Array<ArrayBuffer> })), sent.subarray(0, HALF)))
    },
    sendSecondHalf: () => { aServer.send(sent.subarray(HALF)) },
    abort: () => { aServer.abort(new Error('A crashed')) }
  }

  const bStored: number[] = []
  const bFetch = requestPieces(ab, TASK, [0], {
    expected: source.expected(TASK),
    partials,
    onPiece: (index) => {
      have.add(index)
      bStored.push(index)
      waiters.notify(TASK, index)
    }
  })

  return { a, bFetch, bc, bStored, bytes, partials, source, forwarded: () => forwarded, streams }
}

describe('transfer: cut-through forwarding on in-memory streams', function () {
  const streams: Stream[] = []

  afterEach(function () {
    for (const s of streams.splice(0)) {
      s.abort(new Error('test cleanup'))
    }
  })

  it('sends a piece on while it arrives, the last chunk once it is verified, with the header it came with', async function () {
    const l = await line()
    streams.push(...l.streams)
    // C asks B before B has anything, and reads raw bytes as they come
    const received = new Uint8ArrayList()
    l.bc.addEventListener('message', (evt) => { received.append(evt.data) })
    l.bc.send(encodeFrame(PieceRequest.encode({ taskId: TASK, indexes: [0], waitMs: 5_000 })))
    await l.bc.close()
    await delay(20)
    expect(received.byteLength).to.equal(0)

    await l.a.sendFirstHalf()
    await delay(50)
    // the first half went on before B had the piece
    expect(l.bStored).to.deep.equal([])
    expect(received.byteLength).to.be.greaterThan(HALF)
    expect(received.byteLength).to.be.lessThan(HALF + 1024)

    l.a.sendSecondHalf()
    const results = await l.bFetch
    expect(results.map(r => r.status)).to.deep.equal(['ok'])
    await pEvent(l.bc, 'close')
    const answers = parseAnswers(received)
    expect(answers).to.have.length(1)
    expect(answers[0].header.status).to.equal(PieceHeader.Status.OK)
    expect(answers[0].header.digest).to.equalBytes(l.source.digest(TASK, 0) ?? new Uint8Array())
    expect(sha256(answers[0].bytes ?? new Uint8Array())).to.equalBytes(sha256(l.bytes))
    expect(l.forwarded()).to.equal(1)
    expect(l.partials.size).to.equal(0)
  })

  it('a piece that fails verification at the relay is never completed downstream, and the downstream blames nobody', async function () {
    const l = await line({ corruptSecondHalf: true })
    streams.push(...l.streams)
    const bad: BadPieceReason[] = []
    let pieces = 0
    const cFetch = requestPieces(l.bc, TASK, [0], {
      expected: l.source.expected(TASK),
      waitMs: 5_000,
      onPiece: () => { pieces++ },
      onBadPiece: (_, reason) => { bad.push(reason) }
    })
    await delay(20)
    await l.a.sendFirstHalf()
    await delay(20)
    l.a.sendSecondHalf()

    const bResults = await l.bFetch
    expect(bResults.map(r => r.status)).to.deep.equal(['bad-digest'])
    const cResults: FetchResult[] = await cFetch
    expect(cResults.map(r => r.status)).to.deep.equal(['error'])
    expect(pieces).to.equal(0)
    expect(bad).to.deep.equal([])
    expect(l.forwarded()).to.equal(0)
    expect(l.partials.size).to.equal(0)
  })

  it('aborts the downstream stream when the piece stops arriving at the relay', async function () {
    const l = await line()
    streams.push(...l.streams)
    let pieces = 0
    const cFetch = requestPieces(l.bc, TASK, [0], { expected: l.source.expected(TASK), waitMs: 5_000, onPiece: () => { pieces++ } })
    await delay(20)
    await l.a.sendFirstHalf()
    await delay(20)
    l.a.abort()

    expect((await l.bFetch).map(r => r.status)).to.deep.equal(['error'])
    expect((await cFetch).map(r => r.status)).to.deep.equal(['error'])
    expect(pieces).to.equal(0)
    expect(l.partials.size).to.equal(0)
  })

  it('serves a stored piece from the store and one no one sends with DONT_HAVE, as before', async function () {
    const l = await line()
    streams.push(...l.streams)
    await l.a.sendFirstHalf()
    l.a.sendSecondHalf()
    expect((await l.bFetch).map(r => r.status)).to.deep.equal(['ok'])
    // piece 0 is stored now; piece 1 never arrives
    const results = await requestPieces(l.bc, TASK, [0, 1], { expected: l.source.expected(TASK), waitMs: 100, onPiece: () => {} })
    expect(results.map(r => r.status)).to.deep.equal(['ok', 'dont-have'])
    expect(l.forwarded()).to.equal(0)
  })
})
