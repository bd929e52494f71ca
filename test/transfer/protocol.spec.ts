import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { pEvent } from 'p-event'
import { Uint8ArrayList } from 'uint8arraylist'
import { PieceHeader, PieceRequest } from '../../src/pb/piece.ts'
import { PieceWaiters } from '../../src/storage/piece-waiters.ts'
import { requestPieces } from '../../src/transfer/client.ts'
import { SEND_SLICE_BYTES } from '../../src/transfer/constants.ts'
import { encodeFrame, encodeVarint } from '../../src/transfer/framing.ts'
import { handlePieceStream } from '../../src/transfer/server.ts'
import { UploadSlots } from '../../src/transfer/upload-slots.ts'
import { delay, KiB, memoryStreams, MiB, parseAnswers, pieceBytes, readAll, sha256, testSource, yamuxStreams } from './fixtures.ts'
import type { BadPieceReason } from '../../src/transfer/client.ts'
import type { PieceServerContext } from '../../src/transfer/server.ts'
import type { Stream } from '@libp2p/interface'

const TASK = 'sha256:test-task'

function request (taskId: string, indexes: number[]): Uint8Array {
  return encodeFrame(PieceRequest.encode({ taskId, indexes }))
}

/** A fake server: wait for the first request bytes, write `answer` raw */
async function answerOnce (server: Stream, answer: Uint8Array, close = false): Promise<void> {
  await pEvent(server, 'message')
  server.send(answer)

  if (close) {
    await server.close()
  }
}

function serverCtx (source: PieceServerContext['source'], extra: Partial<PieceServerContext> = {}): PieceServerContext {
  return { source, slots: new UploadSlots(16), ...extra }
}

describe('transfer: piece protocol on in-memory streams', function () {
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

  it('answers several pipelined request frames in request order with exact bytes', async function () {
    const source = testSource({ [TASK]: { pieceLength: 300 * KiB, pieceCount: 10 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    const served = handlePieceStream(server, 'peer-a', serverCtx(source))

    // three frames written before a single byte is read
    client.send(request(TASK, [3, 1]))
    client.send(request(TASK, [0]))
    client.send(request(TASK, [9, 4, 7]))
    const reading = readAll(client)
    await client.close()
    const answers = parseAnswers(await reading)
    await served

    expect(answers.map(a => a.header.index)).to.deep.equal([3, 1, 0, 9, 4, 7])

    for (const { header, bytes } of answers) {
      expect(header.status).to.equal(PieceHeader.Status.OK)
      expect(header.length).to.equal(300 * KiB)
      expect(bytes).to.equalBytes(pieceBytes(TASK, header.index, 300 * KiB))
      expect(sha256(bytes ?? new Uint8Array())).to.equalBytes(source.digest(TASK, header.index) ?? new Uint8Array())
      expect(header.digest).to.equalBytes(source.digest(TASK, header.index) ?? new Uint8Array())
    }

    expect(server.status).to.equal('closed')
  })

  it('requestPieces pipelines more indexes than fit in one window and verifies every piece', async function () {
    const source = testSource({ [TASK]: { pieceLength: 64 * KiB + 3, pieceCount: 100 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))
    const indexes = Array.from({ length: 100 }, (_, i) => 99 - i)
    const received: number[] = []

    const results = await requestPieces(client, TASK, indexes, {
      expected: source.expected(TASK),
      onPiece: (index, bytes) => {
        expect(sha256(bytes)).to.equalBytes(source.digest(TASK, index) ?? new Uint8Array())
        received.push(index)
      }
    })

    expect(results.map(r => r.status)).to.deep.equal(indexes.map(() => 'ok'))
    expect(results.map(r => r.index)).to.deep.equal(indexes)
    expect(results.every(r => r.bytes === 64 * KiB + 3)).to.be.true()
    expect(received).to.deep.equal(indexes)
  })

  it('holds an index asked with wait_ms until the piece arrives, and answers DONT_HAVE when the wait runs out', async function () {
    const have = new Set([2])
    const waiters = new PieceWaiters(16)
    const source = { ...testSource({ [TASK]: { pieceLength: 10 * KiB, pieceCount: 4, have } }), waitFor: async (taskId: string, index: number, options: { timeoutMs: number, signal?: AbortSignal }) => waiters.wait(taskId, index, options) }
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))

    const started = Date.now()
    const fetching = requestPieces(client, TASK, [1, 2], { expected: source.expected(TASK), onPiece: () => {}, waitMs: 5_000 })
    await delay(150)
    expect(waiters.size).to.equal(1)
    have.add(1)
    waiters.notify(TASK, 1)
    const results = await fetching
    expect(results.map(r => r.status)).to.deep.equal(['ok', 'ok'])
    expect(Date.now() - started).to.be.at.least(140)
    expect(waiters.size).to.equal(0)

    // nothing arrives: DONT_HAVE after the wait, and the index behind it is still answered
    const [client2, server2] = await memoryStreams()
    track(client2, server2)
    void handlePieceStream(server2, 'peer-a', serverCtx(source))
    const results2 = await requestPieces(client2, TASK, [3, 2], { expected: source.expected(TASK), onPiece: () => {}, waitMs: 100 })
    expect(results2.map(r => r.status)).to.deep.equal(['dont-have', 'ok'])

    // without wait_ms the server answers at once, whatever the source can wait for
    const [client3, server3] = await memoryStreams()
    track(client3, server3)
    void handlePieceStream(server3, 'peer-a', serverCtx(source))
    const at = Date.now()
    const results3 = await requestPieces(client3, TASK, [3], { expected: source.expected(TASK), onPiece: () => {} })
    expect(results3.map(r => r.status)).to.deep.equal(['dont-have'])
    expect(Date.now() - at).to.be.below(1_000)
    expect(waiters.size).to.equal(0)
  })

  it('answers DONT_HAVE and UNKNOWN_TASK explicitly', async function () {
    const source = testSource({ [TASK]: { pieceLength: 10 * KiB, pieceCount: 4, have: new Set([0, 2]) } })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))

    client.send(request(TASK, [0, 1, 2, 3]))
    client.send(request('sha256:nobody-knows', [0, 5]))
    const reading = readAll(client)
    await client.close()
    const answers = parseAnswers(await reading)

    expect(answers.map(a => [a.header.index, a.header.status])).to.deep.equal([
      [0, PieceHeader.Status.OK],
      [1, PieceHeader.Status.DONT_HAVE],
      [2, PieceHeader.Status.OK],
      [3, PieceHeader.Status.DONT_HAVE],
      [0, PieceHeader.Status.UNKNOWN_TASK],
      [5, PieceHeader.Status.UNKNOWN_TASK]
    ])

    // and through the client API
    const [client2, server2] = await memoryStreams()
    track(client2, server2)
    void handlePieceStream(server2, 'peer-a', serverCtx(source))
    // each answer reaches onAnswer as it is read, before the next piece's bytes
    const seen: string[] = []
    const results = await requestPieces(client2, TASK, [1, 2], {
      expected: source.expected(TASK),
      onPiece: (index) => { seen.push(`piece ${index}`) },
      onAnswer: (r) => { seen.push(`answer ${r.index} ${r.status}`) }
    })
    expect(results.map(r => r.status)).to.deep.equal(['dont-have', 'ok'])
    expect(seen).to.deep.equal(['answer 1 dont-have', 'piece 2', 'answer 2 ok'])

    const [client3, server3] = await memoryStreams()
    track(client3, server3)
    void handlePieceStream(server3, 'peer-a', serverCtx(source))
    const unknown = await requestPieces(client3, 'sha256:other', [0], { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {} })
    expect(unknown.map(r => r.status)).to.deep.equal(['unknown-task'])
  })

  it('answers BUSY when every upload slot stays taken, and serves again once one frees', async function () {
    const source = testSource({ [TASK]: { pieceLength: 4 * KiB, pieceCount: 4 } })
    const slots = new UploadSlots(1)
    const hold = await slots.acquire(0)
    expect(hold).to.be.a('function')
    let busy = 0

    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source, { slots, slotWaitMs: 50, onBusy: () => { busy++ } }))
    const results = await requestPieces(client, TASK, [0, 1], { expected: source.expected(TASK), onPiece: () => {} })
    expect(results.map(r => r.status)).to.deep.equal(['busy', 'busy'])
    expect(busy).to.equal(2)
    expect(source.reads).to.equal(0)

    // a slot freed during the short wait is used instead of answering BUSY
    const [client2, server2] = await memoryStreams()
    track(client2, server2)
    void handlePieceStream(server2, 'peer-a', serverCtx(source, { slots, slotWaitMs: 2000 }))
    setTimeout(() => { hold?.() }, 100)
    const later = await requestPieces(client2, TASK, [2, 3], { expected: source.expected(TASK), onPiece: () => {} })
    expect(later.map(r => r.status)).to.deep.equal(['ok', 'ok'])
    expect(slots.active).to.equal(0)
  })

  it('answers BUSY for indexes beyond the outstanding limit instead of failing', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 20 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    const served = handlePieceStream(server, 'peer-a', serverCtx(source, { maxOutstanding: 16 }))

    client.send(request(TASK, Array.from({ length: 20 }, (_, i) => i)))
    const reading = readAll(client)
    await client.close()
    const answers = parseAnswers(await reading)
    await served

    expect(answers).to.have.lengthOf(20)
    expect(answers.slice(0, 16).every(a => a.header.status === PieceHeader.Status.OK)).to.be.true()
    expect(answers.slice(16).map(a => a.header.status)).to.deep.equal(Array(4).fill(PieceHeader.Status.BUSY))
    expect(answers[16].header.message).to.match(/More than 16 pieces requested/)
  })

  it('aborts a request whose length prefix claims 1 GiB without allocating it', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 1 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    const before = process.memoryUsage()
    const served = handlePieceStream(server, 'peer-a', serverCtx(source))

    client.send(encodeVarint(1024 * MiB))
    client.send(new Uint8Array(100).fill(7))

    await expect(readAll(client)).to.eventually.be.rejected.with.property('name', 'StreamResetError')
    await served
    const after = process.memoryUsage()

    expect(server.status).to.equal('aborted')
    expect(after.heapUsed - before.heapUsed).to.be.below(100 * MiB)
    expect(after.arrayBuffers - before.arrayBuffers).to.be.below(100 * MiB)
    expect(source.reads).to.equal(0)
  })

  it('rejects a request with more than 64 indexes by aborting the stream', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 100 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    const served = handlePieceStream(server, 'peer-a', serverCtx(source))

    client.send(request(TASK, Array.from({ length: 65 }, (_, i) => i)))

    await expect(readAll(client)).to.eventually.be.rejected.with.property('name', 'StreamResetError')
    await served
    expect(server.status).to.equal('aborted')
    expect(source.reads).to.equal(0)
  })

  it('aborts on a malformed request and on a request without a task id', async function () {
    for (const frame of [encodeFrame(Uint8Array.from([0xff, 0xff, 0xff, 0xff])), request('', [1])]) {
      const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 2 } })
      const [client, server] = await memoryStreams()
      track(client, server)
      const served = handlePieceStream(server, 'peer-a', serverCtx(source))
      client.send(frame)
      await expect(readAll(client)).to.eventually.be.rejected.with.property('name', 'StreamResetError')
      await served
      expect(server.status).to.equal('aborted')
    }
  })

  it('reports a malformed piece header with a clear error', async function () {
    const [client, server] = await memoryStreams()
    track(client, server)

    // a fake server that answers garbage (field 1 as a length-delimited blob that runs off the end)
    void answerOnce(server, encodeFrame(Uint8Array.from([0x0a, 0x40, 0x01])), true)

    const results = await requestPieces(client, TASK, [0, 1], { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {} })
    expect(results.map(r => r.status)).to.deep.equal(['error', 'error'])
    expect(results[0].error).to.have.property('name', 'InvalidMessageError')
    expect(results[0].error?.message).to.match(/Malformed piece header/)
    expect(client.status).to.equal('aborted')
  })

  it('reports a header with an oversized length prefix and an out-of-order answer', async function () {
    for (const answer of [
      encodeVarint(1024 * MiB),
      encodeFrame(PieceHeader.encode({ index: 5, status: PieceHeader.Status.DONT_HAVE }))
    ]) {
      const [client, server] = await memoryStreams()
      track(client, server)
      void answerOnce(server, answer)
      const results = await requestPieces(client, TASK, [0], { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {} })
      expect(results[0].status).to.equal('error')
      expect(results[0].error?.name).to.be.oneOf(['FrameTooLargeError', 'InvalidMessageError'])
    }
  })

  it('marks a corrupted piece bad-digest (against the manifest, not the sender header) and goes on', async function () {
    const source = testSource({ [TASK]: { pieceLength: 100 * KiB, pieceCount: 3 } }, { corrupt: new Set([1]) })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))
    const bad: Array<[number, BadPieceReason]> = []
    const accepted: number[] = []

    const results = await requestPieces(client, TASK, [0, 1, 2], {
      expected: source.expected(TASK),
      onPiece: (index) => { accepted.push(index) },
      onBadPiece: (index, reason) => { bad.push([index, reason]) }
    })

    expect(results.map(r => r.status)).to.deep.equal(['ok', 'bad-digest', 'ok'])
    expect(results[1].error).to.have.property('name', 'BadPieceError')
    expect(accepted).to.deep.equal([0, 2])
    expect(bad).to.deep.equal([[1, 'bad-digest']])
  })

  it('refuses a header announcing more bytes than the piece should have, before reading them', async function () {
    const [client, server] = await memoryStreams()
    track(client, server)
    void answerOnce(server, encodeFrame(PieceHeader.encode({ index: 0, status: PieceHeader.Status.OK, length: 0xffffffff, digest: new Uint8Array(32) })))
    const bad: number[] = []
    const results = await requestPieces(client, TASK, [0, 1], {
      expected: () => ({ length: MiB, digest: new Uint8Array(32) }),
      onPiece: () => { throw new Error('must not be called') },
      onBadPiece: (index) => { bad.push(index) }
    })
    expect(results.map(r => r.status)).to.deep.equal(['bad-digest', 'error'])
    expect(results[0].error?.message).to.match(/announced 4294967295 bytes/)
    expect(bad).to.deep.equal([0])
  })

  it('marks an index error when onPiece throws and carries on with the rest', async function () {
    const source = testSource({ [TASK]: { pieceLength: 8 * KiB, pieceCount: 3 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))
    const results = await requestPieces(client, TASK, [0, 1, 2], {
      expected: source.expected(TASK),
      onPiece: (index) => { if (index === 1) { throw new Error('disk full') } }
    })
    expect(results.map(r => r.status)).to.deep.equal(['ok', 'error', 'ok'])
    expect(results[1].error?.message).to.equal('disk full')
  })

  it('answers ERROR when the store fails, and the client surfaces the reason', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 2 } }, { fail: new Set([0]) })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))
    const results = await requestPieces(client, TASK, [0, 1], { expected: source.expected(TASK), onPiece: () => {} })
    expect(results.map(r => r.status)).to.deep.equal(['error', 'ok'])
    expect(results[0].error?.name).to.equal('RemotePieceError')
    expect(results[0].error?.message).to.match(/disk on fire/)
  })

  it('times out a piece when the server stalls and marks the rest timeout', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 3 } }, { stall: new Set([1]) })
    const [client, server] = await memoryStreams()
    track(client, server)
    const served = handlePieceStream(server, 'peer-a', serverCtx(source))
    const started = Date.now()

    const results = await requestPieces(client, TASK, [0, 1, 2], { expected: source.expected(TASK), onPiece: () => {}, pieceTimeoutMs: () => 300 })

    expect(results.map(r => r.status)).to.deep.equal(['ok', 'timeout', 'timeout'])
    expect(results[1].error).to.have.property('name', 'TimeoutError')
    expect(results[1].error?.message).to.match(/within 300 ms of waiting \(no answer header yet; \d+ ms in all\)/)
    expect(Date.now() - started).to.be.below(5000)
    expect(client.status).to.equal('aborted')
    await served
  })

  it('reports each answer\'s wait for its header and a piece\'s time from header to last byte', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 2 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    void (async () => {
      await pEvent(server, 'message')
      await delay(150)
      server.send(encodeFrame(PieceHeader.encode({ index: 0, status: PieceHeader.Status.DONT_HAVE })))
      server.send(encodeFrame(PieceHeader.encode({ index: 1, status: PieceHeader.Status.OK, length: KiB, digest: new Uint8Array(32) })))
      await delay(100)
      server.send(pieceBytes(TASK, 1, KiB))
      await server.close()
    })()
    const timings: Array<[number, number, number | undefined]> = []
    const results = await requestPieces(client, TASK, [0, 1], {
      expected: source.expected(TASK),
      onPiece: () => {},
      onTiming: (index, headerMs, bodyMs) => { timings.push([index, headerMs, bodyMs]) }
    })
    expect(results.map(r => r.status)).to.deep.equal(['dont-have', 'ok'])
    expect(timings.map(t => t[0])).to.deep.equal([0, 1])
    expect(timings[0][1]).to.be.at.least(140)
    expect(timings[0][2]).to.equal(undefined)
    expect(timings[1][1]).to.be.below(50)
    expect(timings[1][2]).to.be.at.least(90)
  })

  it('a timeout says how much of a started piece arrived', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 1 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    const header = encodeFrame(PieceHeader.encode({ index: 0, status: PieceHeader.Status.OK, length: KiB, digest: new Uint8Array(32) }))
    void answerOnce(server, new Uint8ArrayList(header, new Uint8Array(100)).subarray())
    const results = await requestPieces(client, TASK, [0], { expected: source.expected(TASK), onPiece: () => {}, pieceTimeoutMs: () => 200 })
    expect(results.map(r => r.status)).to.deep.equal(['timeout'])
    expect(results[0].error?.message).to.match(/within 200 ms of waiting \(header after \d+ ms, 100 piece bytes since; \d+ ms in all\)/)
  })

  it('does not count a slow onPiece against the peer timeout', async function () {
    const source = testSource({ [TASK]: { pieceLength: 10 * KiB, pieceCount: 3 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))

    const results = await requestPieces(client, TASK, [0, 1, 2], {
      expected: source.expected(TASK),
      onPiece: async () => { await delay(400) },
      pieceTimeoutMs: () => 300
    })
    expect(results.map(r => r.status)).to.deep.equal(['ok', 'ok', 'ok'])
  })

  it('aborts the stream if the peer does not close it after its last answer', async function () {
    const [client, server] = await memoryStreams()
    track(client, server)
    void answerOnce(server, encodeFrame(PieceHeader.encode({ index: 0, status: PieceHeader.Status.DONT_HAVE })))
    const results = await requestPieces(client, TASK, [0], { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {}, closeGraceMs: 100 })
    expect(results.map(r => r.status)).to.deep.equal(['dont-have'])
    expect(client.status).to.equal('open')
    await delay(300)
    expect(client.status).to.equal('aborted')
  })

  it('rejects with the abort reason when the caller aborts', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 2 } }, { stall: new Set([0]) })
    const [client, server] = await memoryStreams()
    track(client, server)
    void handlePieceStream(server, 'peer-a', serverCtx(source))
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 100)
    await expect(requestPieces(client, TASK, [0, 1], { expected: source.expected(TASK), onPiece: () => {}, signal: controller.signal }))
      .to.eventually.be.rejected.with.property('name', 'AbortError')
    expect(client.status).to.equal('aborted')
  })

  it('validates arguments before touching the stream', async function () {
    const [client, server] = await memoryStreams()
    track(client, server)
    const opts = { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {} }
    await expect(requestPieces(client, TASK, [1, 1], opts)).to.eventually.be.rejected.with.property('name', 'InvalidParametersError')
    await expect(requestPieces(client, TASK, [-1], opts)).to.eventually.be.rejected.with.property('name', 'InvalidParametersError')
    await expect(requestPieces(client, '', [1], opts)).to.eventually.be.rejected.with.property('name', 'InvalidParametersError')
    expect(client.status).to.equal('open')
  })

  it('closes an idle stream on the server after the idle timeout', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 1 } })
    const [client, server] = await memoryStreams()
    track(client, server)
    const started = Date.now()
    await handlePieceStream(server, 'peer-a', serverCtx(source, { idleTimeoutMs: 200 }))
    expect(server.status).to.equal('aborted')
    expect(Date.now() - started).to.be.below(5000)
  })

  describe('flow control (real yamux over an in-memory connection)', function () {
    it('a client that stops reading makes the server wait for drain: memory stays bounded', async function () {
      this.timeout(120_000)
      const pieces = 64
      const source = testSource({ [TASK]: { pieceLength: MiB, pieceCount: pieces } })
      const { client, server, close } = await yamuxStreams()
      cleanups.push(close)

      // watch the server's write side
      let sendFalse = 0
      let maxWriteBuffer = 0
      const send = server.send.bind(server)
      server.send = (data: Uint8Array | Uint8ArrayList): boolean => {
        const ok = send(data)
        sendFalse += ok ? 0 : 1
        maxWriteBuffer = Math.max(maxWriteBuffer, server.writeBufferLength)
        return ok
      }

      void handlePieceStream(server, 'peer-a', serverCtx(source))

      let release!: () => void
      const gate = new Promise<void>(resolve => { release = resolve })
      const digests: Uint8Array[] = []
      const baseline = process.memoryUsage().arrayBuffers
      let peakDuringStall = 0

      const fetching = requestPieces(client, TASK, Array.from({ length: pieces }, (_, i) => i), {
        expected: source.expected(TASK),
        onPiece: async (index, bytes) => {
          digests[index] = sha256(bytes)

          if (index === 0) {
            await gate // the sink stops: the client keeps its queue bounded and pauses
          }
        }
      })

      // let the stall settle, sampling memory
      for (let i = 0; i < 20; i++) {
        await delay(50)
        peakDuringStall = Math.max(peakDuringStall, process.memoryUsage().arrayBuffers - baseline)
      }

      const readDuringStall = source.reads
      const bytesDuringStall = source.bytesRead
      expect(client.readStatus).to.equal('paused')
      release()
      const results = await fetching

      // the server could not run ahead: the window (≤ 16 MiB) + the client queue + one slice
      expect(readDuringStall).to.be.below(pieces / 2)
      expect(bytesDuringStall).to.be.below(32 * MiB)
      expect(sendFalse).to.be.greaterThan(0)
      expect(maxWriteBuffer).to.be.at.most(SEND_SLICE_BYTES + KiB)
      expect(peakDuringStall).to.be.below(48 * MiB)

      expect(results.map(r => r.status)).to.deep.equal(Array(pieces).fill('ok'))

      for (let i = 0; i < pieces; i++) {
        expect(digests[i]).to.equalBytes(source.digest(TASK, i) ?? new Uint8Array())
      }
    })

    it('aborts the stream when the client never resumes (send stall timeout frees the slot)', async function () {
      const source = testSource({ [TASK]: { pieceLength: MiB, pieceCount: 40 } })
      const { client, server, close } = await yamuxStreams()
      cleanups.push(close)
      const slots = new UploadSlots(2)
      const served = handlePieceStream(server, 'peer-a', serverCtx(source, { slots, sendStallTimeoutMs: 300 }))

      client.send(request(TASK, Array.from({ length: 16 }, (_, i) => i)))
      client.pause() // and never read

      await served
      expect(server.status).to.equal('aborted')
      expect(slots.active).to.equal(0)
      expect(source.reads).to.be.below(40)
    })
  })
})
