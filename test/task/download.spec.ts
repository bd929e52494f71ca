import '../../src/polyfill.ts'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { createDefaultSources, SourceRegistry } from '../../src/source/index.ts'
import { FsPieceStore } from '../../src/storage/index.ts'
import { Download } from '../../src/task/download.ts'
import { taskIdFromDigest } from '../../src/task/id.ts'
import { NoTrackerReachableError } from '../../src/tracker/errors.ts'
import { Bitfield } from '../../src/utils/bitfield.ts'
import type { DownloadContext } from '../../src/task/download.ts'
import type { AnnounceResult, TrackerPort } from '../../src/task/tracker-port.ts'
import type { TrackerFailureCause } from '../../src/tracker/errors.ts'
import type { FetchResult } from '../../src/transfer/index.ts'

const PIECE = 64 * 1024
const COUNT = 64

/**
 * One parent holding every piece, answering from memory, and a tracker that
 * knows the task: enough to watch which pieces a download asks for first.
 */
function harness (store: FsPieceStore, data: Uint8Array, parentHas = COUNT): { ctx: DownloadContext, requested: number[], taskId: string } {
  const digests = Array.from({ length: COUNT }, (_, i) => createHash('sha256').update(data.subarray(i * PIECE, (i + 1) * PIECE)).digest())
  const taskId = taskIdFromDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`)
  const have = new Bitfield(COUNT)
  for (let i = 0; i < parentHas; i++) {
    have.set(i)
  }
  const requested: number[] = []
  const answer = (): AnnounceResult => ({
    status: 'ok',
    tracker: 'tracker',
    meta: { contentLength: data.byteLength, pieceSize: PIECE },
    digests,
    parents: [{ peerId: 'parent', addrs: [], have: have.clone(), freeUploadSlots: 16 }],
    grant: [],
    intervalMs: 1000
  })
  const tracker: TrackerPort = {
    announce: async () => answer(),
    announceDirect: async () => answer(),
    report: async () => {},
    leave: async () => {},
    reportBadPeer: async () => {}
  }
  const ctx: DownloadContext = {
    store,
    sources: new SourceRegistry(),
    tracker,
    selfPeerId: 'self',
    logger: defaultLogger(),
    onBytes: () => {},
    fetchPieces: async (_peer, _addrs, _taskId, indexes, options): Promise<FetchResult[]> => {
      requested.push(...indexes)
      const results: FetchResult[] = []
      for (const i of indexes) {
        // a little latency so the download keeps a queue of requests
        await new Promise(resolve => setTimeout(resolve, 2))
        await options.onPiece(i, data.slice(i * PIECE, (i + 1) * PIECE), { digest: digests[i] })
        results.push({ index: i, status: 'ok', bytes: PIECE })
      }
      return results
    }
  }
  return { ctx, requested, taskId }
}

/** Pass every announce answer of the harness tracker through `rewrite` */
function rewriteAnswers (ctx: DownloadContext, rewrite: (res: AnnounceResult) => AnnounceResult): void {
  const announce = ctx.tracker.announce.bind(ctx.tracker)
  ctx.tracker = { ...ctx.tracker, announce: async (req, options) => rewrite(await announce(req, options)) }
}

/** What the tracker port throws when every tracker tried failed for `cause` */
function noTrackerAnswered (cause: TrackerFailureCause): NoTrackerReachableError {
  return new NoTrackerReachableError('No tracker of the task answered', [{ peerId: 'tracker', cause, message: cause }])
}

/**
 * A tracker that answers once and then times out, a parent that serves
 * slowly but steadily, and a real file:// origin holding the same bytes
 */
async function silentTrackerHarness (store: FsPieceStore, dir: string, data: Uint8Array, parentHas = COUNT, failure: TrackerFailureCause = 'timeout', msPerPiece = 20): Promise<{ ctx: DownloadContext, originBytes(): number, url: string, taskId: string }> {
  const { ctx, taskId } = harness(store, data, parentHas)
  const file = path.join(dir, 'origin.bin')
  await fs.writeFile(file, data)
  let answered = false
  let originBytes = 0
  const announce = ctx.tracker.announce.bind(ctx.tracker)
  ctx.tracker = {
    ...ctx.tracker,
    announce: async (req, options) => {
      if (!answered) {
        answered = true
        return { ...(await announce(req, options)), intervalMs: 100 }
      }
      throw noTrackerAnswered(failure)
    }
  }
  ctx.sources = createDefaultSources({ onBytes: (n) => { originBytes += n } })
  const fetchPieces = ctx.fetchPieces
  ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
    // one piece every 20 ms: most of the download happens after the tracker fell silent
    await new Promise(resolve => setTimeout(resolve, msPerPiece * indexes.length))
    return fetchPieces(peer, addrs, id, indexes, options)
  }
  return { ctx, originBytes: () => originBytes, url: pathToFileURL(file).href, taskId }
}

/** The pieces `have` lacks: a tracker that grants a peer everything it still needs */
function missingFrom (have: Bitfield | undefined): number[] {
  return Array.from({ length: COUNT }, (_, i) => i).filter(i => have?.get(i) !== true)
}

/** The origin sends one 64 KiB piece every `msPerPiece`; `onRange` hears of each range request */
function slowOrigin (ctx: DownloadContext, msPerPiece: number, onRange: (start: number, end: number) => void): void {
  const readRange = ctx.sources.readRange.bind(ctx.sources)
  ctx.sources.readRange = async function * (url, options) {
    onRange(options.start, options.end)
    for await (const chunk of readRange(url, options)) {
      for (let i = 0; i < chunk.byteLength; i += PIECE) {
        await new Promise(resolve => setTimeout(resolve, msPerPiece))
        yield chunk.subarray(i, i + PIECE)
      }
    }
  }
}

describe('Download', () => {
  let dir: string
  let store: FsPieceStore

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfly-download-'))
    store = new FsPieceStore({ dir })
    await store.open()
  })

  afterEach(async () => {
    await store.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('fetches the pieces just ahead of a streaming reader first, in order, and the rest too', async () => {
    const data = randomBytes(PIECE * COUNT)
    const { ctx, requested, taskId } = harness(store, data)
    const download = new Download(ctx, { taskId })
    const cursor = download.stream(40)
    await download.done
    cursor.close()

    // the first requests are the window from piece 40 in index order
    expect(requested.slice(0, 8)).to.deep.equal([40, 41, 42, 43, 44, 45, 46, 47])
    // every piece came, each once
    expect([...new Set(requested)].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: COUNT }, (_, i) => i))
    const stored = Buffer.concat(await Promise.all(Array.from({ length: COUNT }, async (_, i) => store.get(taskId, i))))
    expect(stored.equals(data)).to.equal(true)
  })

  it('follows the reader as it advances', async () => {
    const data = randomBytes(PIECE * COUNT)
    const { ctx, requested, taskId } = harness(store, data)
    const download = new Download(ctx, { taskId })
    const cursor = download.stream(0)
    let movedAt = -1
    download.addEventListener('progress', (evt) => {
      if (movedAt === -1 && evt.detail.piecesDone >= 4) {
        movedAt = requested.length
        cursor.advance(50)
      }
    })
    await download.done
    cursor.close()

    // once the reader jumped, piece 50 and its neighbours were the next asked
    // for (those not asked for already: beyond the reader's window, pieces
    // go rarest-first in random order, so one may have been picked before)
    expect(movedAt).to.be.within(4, 24)
    const next = [50, 51, 52, 53].filter(i => !requested.slice(0, movedAt).includes(i))
    expect(next).to.not.be.empty()
    expect(requested.slice(movedAt, movedAt + next.length)).to.deep.equal(next)
  })

  it('keeps to the parents, not the origin, while a tracker that answered before is silent', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data, COUNT / 2)
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    // the parent named in the one answer has half the pieces; the rest are
    // unknown while the tracker is silent, but that is not reason enough to
    // read them from the origin yet
    await new Promise(resolve => setTimeout(resolve, 2_500))
    const p = download.progress()
    download.cancel()
    await download.done.catch(() => {})
    expect(p.fromPeers).to.equal(data.byteLength / 2)
    expect(p.fromOrigin).to.equal(0)
    expect(h.originBytes()).to.equal(0)
  })

  it('while a silent tracker only times out and parents still deliver, leaves the origin alone; then takes what no parent has', async () => {
    const data = randomBytes(PIECE * COUNT)
    // the parent has half, 8 pieces every 800 ms: 3.2 s of progress, never a
    // gap as long as the 1 s the tracker may be silent here
    const h = await silentTrackerHarness(store, dir, data, COUNT / 2, 'timeout', 200)
    h.ctx.trackerLostMs = 1_000
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await new Promise(resolve => setTimeout(resolve, 2_000))
    expect(h.originBytes(), 'origin bytes while the parent delivers').to.equal(0)
    await download.done
    const p = download.progress()
    expect(p.fromPeers).to.equal(data.byteLength / 2)
    expect(p.fromOrigin).to.equal(data.byteLength / 2)
  })

  it('when the tracker is gone (dial failures), takes what no parent has from the origin after the wait', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data, COUNT / 2, 'dial-failed', 200)
    h.ctx.trackerLostMs = 1_000
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await new Promise(resolve => setTimeout(resolve, 2_000))
    expect(h.originBytes(), 'origin bytes while the parent delivers').to.be.greaterThan(0)
    await download.done
    expect(download.progress().fromOrigin + download.progress().fromPeers).to.equal(data.byteLength)
  })

  /**
   * A download whose tracker grants it every piece and names no parent
   * (saying the stripe width when `grantStripe` is set); the origin ranges it
   * reads
   */
  async function grantedEverything (grantStripe?: number): Promise<{ ranges: Array<[number, number]>, announces: number, download: Download, data: Uint8Array }> {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    const { ctx: plain } = harness(store, data)
    let announces = 0
    h.ctx.tracker = {
      ...plain.tracker,
      announce: async (req, options) => {
        announces++
        const res = await plain.tracker.announce(req, options)
        return { ...res, parents: [], grant: missingFrom(req.have), grantStripe }
      }
    }
    const ranges: Array<[number, number]> = []
    const readRange = h.ctx.sources.readRange.bind(h.ctx.sources)
    h.ctx.sources.readRange = (url, options) => {
      ranges.push([options.start, options.end])
      return readRange(url, options)
    }
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await download.done
    return { ranges, announces, download, data }
  }

  it('reads a granted stripe of the origin in one range request, confirming the grant between stripes', async () => {
    const { ranges, announces, download, data } = await grantedEverything()
    // 64 pieces in 4 stripes of 16 (as trackers that do not say cut them, for 4 source peers)
    expect(ranges).to.deep.equal([0, 1, 2, 3].map(k => [k * 16 * PIECE, (k + 1) * 16 * PIECE]))
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
    expect(announces).to.be.at.least(4)
  })

  it('reads a grant in the stripes the tracker says it cuts them in', async () => {
    const { ranges, announces, download, data } = await grantedEverything(8)
    // 64 pieces in 8 stripes of 8, not the 16 a tracker that does not say cuts
    expect(ranges).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7].map(k => [k * 8 * PIECE, (k + 1) * 8 * PIECE]))
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
    expect(announces).to.be.at.least(8)
  })

  it('starts the next granted stripe only on an answer to an announce that told the tracker the last stripe was done', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    const { ctx: plain } = harness(store, data)
    // what the tracker was told by the last announce it answered
    let answeredHave: Bitfield | undefined
    h.ctx.tracker = {
      ...plain.tracker,
      // a slow tracker, asked often: an announce is often in flight when a stripe ends
      announce: async (req, options) => {
        const have = req.have?.clone()
        await new Promise(resolve => setTimeout(resolve, 150))
        const res = await plain.tracker.announce(req, options)
        answeredHave = have
        return { ...res, parents: [], intervalMs: 100, grant: missingFrom(have) }
      }
    }
    const ranges: Array<[number, number]> = []
    const confirmedBy: Array<Bitfield | undefined> = []
    // 64 KiB every 30 ms: several announces per stripe
    slowOrigin(h.ctx, 30, (start, end) => {
      ranges.push([start, end])
      confirmedBy.push(answeredHave)
    })
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await download.done
    expect(ranges).to.deep.equal([0, 1, 2, 3].map(k => [k * 16 * PIECE, (k + 1) * 16 * PIECE]))
    // a tracker that was not told a stripe is done still counts it as the
    // grantee's current one, and may give the next stripe to another peer
    for (let k = 1; k < ranges.length; k++) {
      const missing = []
      for (let i = 0; i < ranges[k][0] / PIECE; i++) {
        if (confirmedBy[k]?.get(i) !== true) {
          missing.push(i)
        }
      }
      expect(missing, `stripe ${k} started on an answer to an announce that lacked these pieces`).to.deep.equal([])
    }
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
  })

  it('stops a long origin run once the tracker\'s answer no longer grants it the next piece', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    const { ctx: plain } = harness(store, data)
    let moved = false
    h.ctx.tracker = {
      ...plain.tracker,
      announce: async (req, options) => {
        const res = await plain.tracker.announce(req, options)
        // one source: the whole task is one stripe, until the tracker gives the rest to another peer
        return { ...res, parents: [], intervalMs: 100, grantStripe: COUNT, grant: moved ? [] : missingFrom(req.have) }
      }
    }
    const ranges: Array<[number, number]> = []
    // 64 KiB every 30 ms: ~2 s for the whole task
    slowOrigin(h.ctx, 30, (start, end) => { ranges.push([start, end]) })
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await new Promise(resolve => setTimeout(resolve, 500))
    moved = true
    const atMove = download.progress().fromOrigin
    await new Promise(resolve => setTimeout(resolve, 800))
    const after = download.progress().fromOrigin
    download.cancel()
    await download.done.catch(() => {})
    expect(ranges).to.deep.equal([[0, COUNT * PIECE]])
    expect(atMove, 'read before the move').to.be.greaterThan(0)
    // the next answer (within ~100 ms) stopped the run; reading on would have taken ~26 more pieces
    expect((after - atMove) / PIECE, 'pieces read after the grant moved').to.be.at.most(10)
  })

  it('counts and reports the last piece it read from the origin before it succeeds', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    const { ctx: plain } = harness(store, data)
    const reported = new Set<number>()
    h.ctx.tracker = {
      ...plain.tracker,
      announce: async (req, options) => {
        // a piece whose digest the tracker already knows is told by the announce bitfield
        for (let i = 0; i < COUNT; i++) {
          if (req.have?.get(i) === true) {
            reported.add(i)
          }
        }
        const res = await plain.tracker.announce(req, options)
        return { ...res, parents: [], intervalMs: 100, grant: missingFrom(req.have) }
      },
      report: async (_tracker, _taskId, pieces) => { pieces.forEach(p => reported.add(p.index)) }
    }
    // the store holds the last piece (the task is complete) a while before
    // its put() returns, as when it records the task's completion on disk
    const put = store.put.bind(store)
    h.ctx.store.put = async (taskId, index, bytes, options) => {
      await put(taskId, index, bytes, options)
      if (index === COUNT - 1) {
        await new Promise(resolve => setTimeout(resolve, 500))
      }
    }
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await download.done
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
    expect(reported.size).to.equal(COUNT)
  })

  it('stops reading a granted stripe once the tracker has not heard from it for a while', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    const { ctx: plain } = harness(store, data)
    let answered = false
    h.ctx.tracker = {
      ...plain.tracker,
      // one answer granting every piece, then only timeouts
      announce: async (req, options) => {
        if (answered) {
          throw noTrackerAnswered('timeout')
        }
        answered = true
        const res = await plain.tracker.announce(req, options)
        return { ...res, parents: [], grant: Array.from({ length: COUNT }, (_, i) => i) }
      }
    }
    h.ctx.grantSilenceMs = 300
    h.ctx.trackerLostMs = 1_000
    const ranges: Array<[number, number]> = []
    // a slow origin: 64 KiB every 50 ms
    slowOrigin(h.ctx, 50, (start, end) => { ranges.push([start, end]) })
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await download.done
    // the first stripe (pieces 0-15) was left after ~300 ms, well before its end;
    // the rest came later on the download's own grants
    expect(ranges[0]).to.deep.equal([0, 16 * PIECE])
    expect(ranges[1][0]).to.be.below(15 * PIECE)
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
  })

  it('when the trackers only time out from the start, waits before reading the origin itself', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    h.ctx.tracker = {
      ...h.ctx.tracker,
      announce: async () => {
        throw noTrackerAnswered('timeout')
      }
    }
    h.ctx.trackerLostMs = 1_000
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(h.originBytes(), 'origin body bytes before the wait is over').to.equal(0)
    await download.done
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
  })

  it('goes to the origin at once when no tracker ever answered', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    h.ctx.tracker = { ...h.ctx.tracker, announce: async () => { throw new Error('no tracker elected') } }
    const download = new Download(h.ctx, { taskId: h.taskId, url: h.url })
    const meta = await download.done
    expect(download.progress().fromOrigin).to.equal(data.byteLength)
    const stored = Buffer.concat(await Promise.all(Array.from({ length: meta.pieceCount }, async (_, i) => store.get(h.taskId, i))))
    expect(stored.equals(data)).to.equal(true)
  })

  it('asks the tracker for piece digests only while it lacks some', async () => {
    const data = randomBytes(PIECE * COUNT)
    const h = await silentTrackerHarness(store, dir, data)
    const asked: boolean[] = []
    const { ctx: plain } = harness(store, data)
    h.ctx.tracker = {
      ...plain.tracker,
      announce: async (req, options) => {
        asked.push(req.wantDigests ?? true)
        const res = await plain.tracker.announce(req, options)
        // answered as the tracker does: digests only when asked for
        return { ...res, intervalMs: 100, digests: req.wantDigests === false ? undefined : res.digests }
      }
    }
    const download = new Download(h.ctx, { taskId: h.taskId })
    await download.done
    expect(asked.length).to.be.greaterThan(3)
    expect(asked[0]).to.equal(true)
    // once every digest is known, the announces go without
    expect(asked.slice(1).filter(a => a)).to.have.lengthOf(0)
  })

  it('has one report in flight at a time, batches what finishes meanwhile, and has reported every piece when done', async () => {
    const data = randomBytes(PIECE * COUNT)
    const { ctx, taskId } = harness(store, data)
    // a tracker that does not know the digests yet (as of pieces fresh from
    // the origin): every piece must be reported, not just announced
    const announce = ctx.tracker.announce.bind(ctx.tracker)
    ctx.tracker = { ...ctx.tracker, announce: async (req, options) => ({ ...(await announce(req, options)), digests: undefined }) }
    await store.createTask({ taskId, contentLength: data.byteLength, pieceSize: PIECE, pieceDigests: Array.from({ length: COUNT }, (_, i) => createHash('sha256').update(data.subarray(i * PIECE, (i + 1) * PIECE)).digest('hex')) })
    const fetchPieces = ctx.fetchPieces
    ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
      // one piece every 10 ms: pieces keep finishing while a report is out
      await new Promise(resolve => setTimeout(resolve, 10 * indexes.length))
      return fetchPieces(peer, addrs, id, indexes, options)
    }
    let inFlight = 0
    let most = 0
    const batches: number[][] = []
    ctx.tracker = {
      ...ctx.tracker,
      // a tracker slowed down by load: 250 ms per report
      report: async (_tracker, _taskId, pieces) => {
        inFlight++
        most = Math.max(most, inFlight)
        await new Promise(resolve => setTimeout(resolve, 250))
        batches.push(pieces.map(p => p.index))
        inFlight--
      }
    }
    await new Download(ctx, { taskId }).done
    expect(most).to.equal(1)
    expect(batches.flat().sort((a, b) => a - b)).to.deep.equal(Array.from({ length: COUNT }, (_, i) => i), 'each piece reported once, all before the download ended')
    expect(batches.length).to.be.within(2, 8)
  })

  it('does not report pieces whose digest the tracker gave it: the announces say it holds them', async () => {
    const data = randomBytes(PIECE * COUNT)
    const { ctx, taskId } = harness(store, data)
    const fetchPieces = ctx.fetchPieces
    ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
      await new Promise(resolve => setTimeout(resolve, 10 * indexes.length))
      return fetchPieces(peer, addrs, id, indexes, options)
    }
    const told = new Map<number, number>()
    const reported: number[] = []
    const announce = ctx.tracker.announce.bind(ctx.tracker)
    ctx.tracker = {
      ...ctx.tracker,
      announce: async (req, options) => {
        for (let i = 0; i < COUNT; i++) {
          if (req.have?.get(i) === true && !told.has(i)) {
            told.set(i, 1)
          }
        }
        return { ...(await announce(req, options)), intervalMs: 100 }
      },
      report: async (_tracker, _taskId, pieces) => { reported.push(...pieces.map(p => p.index)) }
    }
    await new Download(ctx, { taskId }).done
    for (const i of reported) {
      told.set(i, 1)
    }
    expect([...told.keys()].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: COUNT }, (_, i) => i), 'every piece told once, by an announce or the last report')
    expect(reported.length).to.be.below(COUNT / 2)
  })

  it('does not busy-loop while an announce is in flight', async () => {
    const data = randomBytes(PIECE * COUNT)
    // the parent holds nothing: the download waits on the tracker
    const { ctx, taskId } = harness(store, data, 0)
    const announce = ctx.tracker.announce.bind(ctx.tracker)
    let announces = 0
    ctx.tracker = {
      ...ctx.tracker,
      announce: async (req, options) => {
        announces++
        await new Promise(resolve => setTimeout(resolve, 400))
        return announce(req, options)
      }
    }
    const download = new Download(ctx, { taskId })
    await new Promise(resolve => setTimeout(resolve, 500))
    // every scheduling step reads the store's have bitfield
    let steps = 0
    const have = store.have.bind(store)
    store.have = (id) => { steps++; return have(id) }
    await new Promise(resolve => setTimeout(resolve, 1_200))
    download.cancel()
    await download.done.catch(() => {})
    expect(announces).to.be.at.least(2)
    // a step per answer (and a few more), not one every 10 ms while waiting
    expect(steps).to.be.below(20)
  })

  it('without a reader, does not fetch in index order', async () => {
    const data = randomBytes(PIECE * COUNT)
    const { ctx, requested } = harness(store, data)
    await new Download(ctx, { taskId: harness(store, data).taskId }).done
    expect(requested.slice(0, 16)).to.not.deep.equal(Array.from({ length: 16 }, (_, i) => i))
  })

  it('asks another parent for a piece as soon as one answers BUSY for it, not when that parent ends the whole request', async () => {
    const data = randomBytes(PIECE * COUNT)
    const { ctx, taskId } = harness(store, data)
    rewriteAnswers(ctx, (res) => {
      const parent = res.parents[0]
      return { ...res, parents: [{ ...parent, peerId: 'b-fast' }, { ...parent, peerId: 'a-slow', have: parent.have.clone() }] }
    })
    // 'a-slow' (first on ties) answers the first index of each request
    // BUSY at once and ends the request only much later; 'b-fast' serves
    // everything. Before, a BUSY piece stayed "in flight" until its whole
    // request ended and was asked of 'b-fast' only in end-game.
    const slowBusy: number[] = []
    const slowFetches: Array<Promise<unknown>> = []
    const fastAsked: number[] = []
    const fetchPieces = ctx.fetchPieces
    ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
      if (peer === 'b-fast') {
        fastAsked.push(...indexes)
        return fetchPieces(peer, addrs, id, indexes, options)
      }
      slowBusy.push(indexes[0])
      options.onAnswer?.({ index: indexes[0], status: 'busy' })
      const slow = new Promise(resolve => setTimeout(resolve, 2000))
      slowFetches.push(slow)
      await slow
      return indexes.map((index): FetchResult => ({ index, status: 'busy' }))
    }

    // a streaming reader at piece 0 makes the picks go in index order, so a
    // piece given back is picked again at once
    const download = new Download(ctx, { taskId })
    const cursor = download.stream(0)
    await download.done
    cursor.close()
    await Promise.all(slowFetches)
    expect(slowBusy).to.not.be.empty('the slow parent was never asked: the test proves nothing')
    // the first BUSY came at the start: b-fast must be asked for that piece
    // among its first requests, not in end-game
    expect(fastAsked.indexOf(slowBusy[0]), `piece ${slowBusy[0]}, answered BUSY by a-slow at the start`).to.be.within(0, 8)
  })

  describe('pipeline (the upstream the tracker names)', () => {
    /** parents 'up' (the upstream, holding nothing yet) and 'other' (holding everything) */
    function pipelined (): { ctx: DownloadContext, taskId: string, data: Uint8Array, asked: Array<{ peer: string, indexes: number[], waitMs?: number }> } {
      const data = randomBytes(COUNT * PIECE)
      const { ctx, taskId } = harness(store, data)
      rewriteAnswers(ctx, (res) => {
        const other = res.parents[0]
        return { ...res, upstream: 'up', parents: [{ ...other, peerId: 'up', have: new Bitfield(COUNT) }, { ...other, peerId: 'other' }] }
      })
      const asked: Array<{ peer: string, indexes: number[], waitMs?: number }> = []
      const fetchPieces = ctx.fetchPieces
      ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
        asked.push({ peer, indexes, waitMs: options.waitMs })
        return fetchPieces(peer, addrs, id, indexes, options)
      }
      return { ctx, taskId, data, asked }
    }

    it('streams every piece from the upstream in index order, asked ahead, and leaves the other parents alone', async () => {
      const { ctx, taskId, data, asked } = pipelined()
      const download = new Download(ctx, { taskId })
      await download.done
      expect(await store.get(taskId, COUNT - 1)).to.deep.equal(data.subarray((COUNT - 1) * PIECE))
      expect(asked.map(a => a.peer)).to.satisfy((peers: string[]) => peers.every(p => p === 'up'), 'only the upstream is asked')
      expect(asked.flatMap(a => a.indexes)).to.deep.equal(Array.from({ length: COUNT }, (_, i) => i))
      expect(asked.every(a => a.waitMs != null && a.waitMs > 0)).to.be.true()
      // several pieces per request stream, not one each
      expect(asked.length).to.be.below(COUNT / 2)
    })

    it('goes to the other parents when the upstream holds its requests and sends nothing', async function () {
      this.timeout(30_000)
      const { ctx, taskId, asked } = pipelined()
      const fetchPieces = ctx.fetchPieces
      ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
        if (peer !== 'up') {
          return fetchPieces(peer, addrs, id, indexes, options)
        }
        asked.push({ peer, indexes, waitMs: options.waitMs })
        // a stuck pipeline: the held requests run out as DONT_HAVE much later
        await new Promise(resolve => setTimeout(resolve, 6_000))
        return indexes.map((index): FetchResult => ({ index, status: 'dont-have' }))
      }
      const started = Date.now()
      const download = new Download(ctx, { taskId })
      await download.done
      const fromOther = asked.filter(a => a.peer === 'other').flatMap(a => a.indexes)
      expect(fromOther.length).to.be.at.least(COUNT - 8)
      // it waited for the upstream a while first, but not for its held requests to run out
      expect(Date.now() - started).to.be.within(2_500, 6_000)
    })

    /**
     * The tracker names 'src' as the source and knows no digest for the first
     * `blindAnswers` answers; 'up' serves each piece with src's attestation
     */
    function attested (blindAnswers: number, sources = ['src'], msPerPiece = 2): { ctx: DownloadContext, taskId: string, data: Uint8Array, asked: Array<{ peer: string, indexes: number[], at: number }>, kept: number[], reported: number[], digestsAt(): number } {
      const { ctx, taskId, data } = pipelined()
      const digests = Array.from({ length: COUNT }, (_, i) => createHash('sha256').update(data.subarray(i * PIECE, (i + 1) * PIECE)).digest())
      let answers = 0
      let digestsAt = Infinity
      rewriteAnswers(ctx, (res) => {
        answers++
        const blind = answers <= blindAnswers
        if (!blind && digestsAt === Infinity) {
          digestsAt = Date.now()
        }
        return { ...res, intervalMs: 100, sources, digests: blind ? Array.from({ length: COUNT }, () => undefined) : res.digests }
      })
      const asked: Array<{ peer: string, indexes: number[], at: number }> = []
      const kept: number[] = []
      const reported: number[] = []
      ctx.keepAttestation = (_id, index, digest, attestation) => {
        expect(digest).to.deep.equal(digests[index])
        expect(attestation.attestor).to.equal('src')
        kept.push(index)
      }
      ctx.tracker = { ...ctx.tracker, report: async (_tracker, _taskId, pieces) => { reported.push(...pieces.map(p => p.index)) } }
      ctx.fetchPieces = async (peer, _addrs, _id, indexes, options): Promise<FetchResult[]> => {
        asked.push({ peer, indexes, at: Date.now() })
        const results: FetchResult[] = []
        for (const i of indexes) {
          await new Promise(resolve => setTimeout(resolve, msPerPiece))
          await options.onPiece(i, data.slice(i * PIECE, (i + 1) * PIECE), { digest: digests[i], attestation: { attestor: 'src', signature: Uint8Array.of(1) } })
          results.push({ index: i, status: 'ok', bytes: PIECE })
        }
        return results
      }
      return { ctx, taskId, data, asked, kept, reported, digestsAt: () => digestsAt }
    }

    it('asks the upstream ahead for pieces whose digest it lacks while the tracker names sources, keeps their attestations, and leaves their reports to the source', async () => {
      // one piece every 10 ms: the download spans several announces
      const { ctx, taskId, data, asked, kept, reported, digestsAt } = attested(1, ['src'], 10)
      const download = new Download(ctx, { taskId })
      await download.done
      expect(await store.get(taskId, 5)).to.deep.equal(data.subarray(5 * PIECE, 6 * PIECE))
      const early = asked.filter(a => a.at < digestsAt()).flatMap(a => a.indexes)
      expect(early.length, 'pieces asked before the tracker had any digest').to.be.at.least(4)
      expect(asked.every(a => a.peer === 'up')).to.be.true()
      expect(kept.length).to.be.at.least(early.length)
      // the tracker has the source's digests by the next answer: the
      // announces say we hold the pieces, only the last few are reported
      expect(reported.filter(i => early.includes(i)), 'early pieces reported').to.deep.equal([])
      expect(reported.length).to.be.below(COUNT / 2)
    })

    it('waits for the tracker\'s digests when it names no source', async () => {
      const { ctx, taskId, asked, digestsAt } = attested(3, [])
      await new Download(ctx, { taskId }).done
      expect(asked.filter(a => a.at < digestsAt())).to.deep.equal([])
    })

    it('after a piece without a usable attestation, asks that upstream only for pieces with known digests for a while', async function () {
      this.timeout(30_000)
      const { ctx, taskId, asked, digestsAt } = attested(4)
      const serve = ctx.fetchPieces
      let refused = false
      ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
        if (!refused) {
          refused = true
          asked.push({ peer, indexes, at: Date.now() })
          return indexes.map((index): FetchResult => ({ index, status: 'unverifiable' }))
        }
        return serve(peer, addrs, id, indexes, options)
      }
      await new Download(ctx, { taskId }).done
      expect(asked.length).to.be.at.least(2)
      expect(asked[1].at, 'the next request waited for the digests').to.be.at.least(digestsAt())
    })

    it('when the tracker names another upstream, asks it at once for the pieces the old one still holds', async function () {
      this.timeout(30_000)
      const { ctx, taskId, asked } = pipelined()
      // the tracker moves 'up' (slow: it holds every request) behind us after a few announces
      let announces = 0
      rewriteAnswers(ctx, (res) => {
        announces++
        const fast = { ...res, intervalMs: 200 }
        return announces < 3 ? fast : { ...fast, upstream: 'next', parents: [...res.parents, { ...res.parents[1], peerId: 'next' }] }
      })
      const fetchPieces = ctx.fetchPieces
      let heldAborted = 0
      ctx.fetchPieces = async (peer, addrs, id, indexes, options) => {
        if (peer !== 'up') {
          return fetchPieces(peer, addrs, id, indexes, options)
        }
        asked.push({ peer, indexes, waitMs: options.waitMs })
        // held until the requests run out, as DONT_HAVE, unless the caller hangs up
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => { resolve(indexes.map((index): FetchResult => ({ index, status: 'dont-have' }))) }, 8_000)
          options.signal?.addEventListener('abort', () => { clearTimeout(timer); heldAborted++; reject(options.signal?.reason) }, { once: true })
        })
      }
      const started = Date.now()
      const download = new Download(ctx, { taskId })
      await download.done
      const heldAtUp = asked.filter(a => a.peer === 'up').flatMap(a => a.indexes)
      expect(heldAtUp).to.not.be.empty()
      const fromNext = asked.filter(a => a.peer === 'next').flatMap(a => a.indexes)
      expect(fromNext).to.include.members(heldAtUp)
      expect(heldAborted).to.equal(asked.filter(a => a.peer === 'up').length)
      // neither the held requests running out (8 s) nor the stall fallback (3 s) was waited for
      expect(Date.now() - started).to.be.below(2_500)
    })
  })
})
