/**
 * One side of a bench/transfer.ts row, in its own process, driven over the
 * IPC channel (`child_process.fork`-style `process.send`).
 *
 * libp2p, the store and the transfer service are imported only by the rows
 * that use them, so the raw TCP rows' memory is that of plain Node.
 *
 * The parent has the data and serves it; the child connects, asks for it and
 * times the transfer from its first request until it holds every byte
 * (verified, and for the store rows durable).
 *
 * - orchestrator → worker: init (WorkerInit), then report, then stop
 * - parent → orchestrator: ready (address to connect to), report
 * - child → orchestrator: start (clock started), stopped (clock stopped), done (ChildDone), report
 */
import '../../src/polyfill.ts'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import { performance, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks'
import { YAMUX_STREAM_OPTIONS } from '../../src/node/muxer.ts'
import { procStatusKiB } from '../lib/proc.ts'
import type { FsPieceStore } from '../../src/storage/index.ts'
import type { PieceSource, PieceTransfer } from '../../src/transfer/index.ts'
import type { Connection, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

/** how the bytes move */
export type Kind = 'tcp' | 'stream' | 'piece'

export interface WorkerInit {
  type: 'init'
  role: 'parent' | 'child'
  kind: Kind
  encrypter?: 'noise' | 'tls'
  /** child: sha256 every received byte (tcp/stream rows) */
  hash?: boolean
  /** child (piece rows): put every piece into an FsPieceStore */
  disk?: boolean
  /** bytes to move */
  size: number
  /** parent (tcp/stream): the file to send; send() / write() size */
  file?: string
  chunk?: number
  /**
   * parent (stream): how to wait when send() returns false. 'event': the
   * 'drain' event (default). 'onDrain': stream.onDrain(), which in
   * `@libp2p/utils` 7.4.1 resolves at once after the first drain (its promise is
   * never reset), so the sender stops waiting and queues without bound.
   */
  drain?: 'event' | 'onDrain'
  /** parent (piece): an FsPieceStore directory holding the task; child: an empty directory for its own store */
  storeDir?: string
  /** piece rows: the manifest (as the child would learn it from a tracker) */
  taskId?: string
  pieceSize?: number
  /** sha256 hex of each piece, computed by the orchestrator from the file */
  pieceDigests?: string[]
  /** whole-file sha256 hex (child of a store row: the stored copy is checked against it after the clock stops) */
  fileSha256?: string
  /** child (piece): concurrent fetches (one stream each) and indexes per fetch */
  streams?: number
  batch?: number
  /** child (piece): receive into a PieceBufferPool (released once stored), as the engine should; false: a fresh buffer per piece */
  pool?: boolean
  /** yamux maxStreamWindowSize of both nodes (default: the node's, src/node/muxer.ts) */
  streamWindow?: number
  /** piece service: requested-but-unanswered indexes per stream */
  outstanding?: number
  /** child: where the parent listens (port for tcp, multiaddr for libp2p) */
  addr?: string
}

export interface ChildDone {
  type: 'done'
  bytes: number
  seconds: number
  cpuSeconds: number
  /** the kernel's share of cpuSeconds */
  sysSeconds: number
  /** sha256 hex of what arrived (tcp/stream with hash), or of the stored copy read back after the clock (piece + disk) */
  sha256?: string
  /** piece rows: pieces verified by the protocol against the manifest */
  piecesOk?: number
  busyAnswers?: number
  /** piece + disk: ms to read the stored copy back and hash it (not timed) */
  checkMs?: number
  /** during the clock: major (mark-compact) GCs, all GCs' pause ms on the main thread, minor page faults */
  gcMajor?: number
  gcMs?: number
  minorFaults?: number
  /** piece rows with a pool: pieces that got an unpooled buffer (pool exhausted) */
  poolUnpooled?: number
  /** piece + disk: ms the receiver waited for one of the DEFAULT_MAX_PENDING_WRITES puts to finish (the disk held the network back) */
  writeWaitMs?: number
  /** VmHWM when the clock stopped (before a store row reads its copy back), KiB */
  hwmKiB?: number
  /** during the clock, sampled every 20 ms: peak V8 heap used and peak ArrayBuffer memory, MiB */
  peakHeapMiB?: number
  peakArrayBuffersMiB?: number
}

export interface WorkerReport {
  type: 'report'
  /** parent: CPU seconds from 'ready' to the report request; child: same as in done */
  cpuSeconds: number
  sysSeconds: number
  hwmKiB?: number
  rssKiB?: number
}

const STREAM_PROTOCOL = '/damselfly-bench/bulk/1.0.0'

function send (msg: unknown): void {
  process.send?.(msg)
}

async function nextMessage<T> (type: string): Promise<T> {
  return new Promise<T>((resolve) => {
    const on = (msg: any): void => {
      if (msg?.type === type) {
        process.off('message', on)
        resolve(msg)
      }
    }
    process.on('message', on)
  })
}

async function createNode (init: WorkerInit, services: Record<string, any> = {}): Promise<Libp2p<any>> {
  const [{ createLibp2p }, { tcp }, { yamux }, encrypter] = await Promise.all([
    import('libp2p'),
    import('@libp2p/tcp'),
    import('@chainsafe/libp2p-yamux'),
    init.encrypter === 'tls' ? import('@libp2p/tls').then(m => m.tls()) : import('@chainsafe/libp2p-noise').then(m => m.noise())
  ])

  return createLibp2p({
    addresses: { listen: init.role === 'parent' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [encrypter],
    // yamux as the node runs it (src/node/muxer.ts) unless --stream-window says otherwise
    streamMuxers: [yamux({ streamOptions: { ...YAMUX_STREAM_OPTIONS, ...(init.streamWindow != null ? { maxStreamWindowSize: init.streamWindow } : {}) } })],
    services
  })
}

/** read [pos, pos + n) of the file into a fresh buffer (each buffer is handed to a send queue) */
async function readChunk (fh: fs.FileHandle, pos: number, n: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(n)
  let done = 0
  while (done < n) {
    const { bytesRead } = await fh.read(buf, done, n - done, pos + done)
    if (bytesRead === 0) {
      throw new Error(`The file ended at ${pos + done} bytes; expected at least ${pos + n}`)
    }
    done += bytesRead
  }
  return buf
}

/** resolve on the stream's next 'drain' event; reject if it closes first */
async function drainEvent (stream: Stream): Promise<void> {
  if (!stream.writableNeedsDrain) {
    return
  }
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      stream.removeEventListener('close', onClose)
      resolve()
    }
    const onClose = (): void => {
      stream.removeEventListener('drain', onDrain)
      reject(new Error('The stream closed while waiting for drain'))
    }
    stream.addEventListener('drain', onDrain, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
}

function sizeRequest (size: number): Uint8Array {
  const req = new Uint8Array(8)
  new DataView(req.buffer).setBigUint64(0, BigInt(size))
  return req
}

// ---------- parent side ----------

async function parentTcp (init: WorkerInit): Promise<{ addr: string, close(): Promise<void> }> {
  const fh = await fs.open(init.file!, 'r')
  const chunk = init.chunk!
  const server = net.createServer((socket) => {
    socket.once('data', (req) => {
      const size = Number(req.readBigUInt64BE(0))
      void (async () => {
        for (let pos = 0; pos < size; pos += chunk) {
          const buf = await readChunk(fh, pos, Math.min(chunk, size - pos))
          if (!socket.write(buf)) {
            await new Promise(resolve => socket.once('drain', resolve))
          }
        }
        socket.end()
      })().catch(err => { socket.destroy(err) })
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port

  return {
    addr: String(port),
    close: async () => {
      server.close()
      await fh.close()
    }
  }
}

async function parentStream (init: WorkerInit): Promise<{ addr: string, close(): Promise<void> }> {
  const fh = await fs.open(init.file!, 'r')
  const chunk = init.chunk!
  const node = await createNode(init)
  await node.handle(STREAM_PROTOCOL, async (stream: Stream) => {
    try {
      const req = await new Promise<Uint8Array>((resolve) => {
        stream.addEventListener('message', (evt) => { resolve(evt.data.subarray()) }, { once: true })
      })
      const size = Number(new DataView(req.buffer, req.byteOffset, req.byteLength).getBigUint64(0))
      for (let pos = 0; pos < size; pos += chunk) {
        const buf = await readChunk(fh, pos, Math.min(chunk, size - pos))
        if (!stream.send(buf)) {
          await (init.drain === 'onDrain' ? stream.onDrain() : drainEvent(stream))
        }
      }
      await stream.close()
    } catch (err: any) {
      stream.abort(err)
    }
  })

  return {
    addr: node.getMultiaddrs()[0].toString(),
    close: async () => {
      await node.stop()
      await fh.close()
    }
  }
}

async function parentPiece (init: WorkerInit): Promise<{ addr: string, close(): Promise<void> }> {
  const [{ FsPieceStore }, { pieceRange }, { pieceTransfer }] = await Promise.all([
    import('../../src/storage/index.ts'), import('../../src/task/piece-size.ts'), import('../../src/transfer/index.ts')
  ])
  const store = new FsPieceStore({ dir: init.storeDir! })
  await store.open()
  const task = store.getTask(init.taskId!)
  if (task == null || !store.isComplete(task.taskId)) {
    throw new Error(`The parent store in ${init.storeDir} does not hold task ${init.taskId} completely`)
  }
  const digests = task.pieceDigests.map(h => h == null ? undefined : Uint8Array.from(Buffer.from(h, 'hex')))
  const source: PieceSource = {
    pieceLength: (taskId, index) => taskId === task.taskId && Number.isInteger(index) && index >= 0 && index < task.pieceCount
      ? pieceRange(index, task.contentLength, task.pieceSize).length
      : undefined,
    has: (taskId, index) => taskId === task.taskId && store.has(taskId, index),
    digest: (_taskId, index) => digests[index],
    read: async (taskId, index, options) => store.get(taskId, index, options)
  }
  const node = await createNode(init, { transfer: pieceTransfer({ source, maxOutstanding: init.outstanding }) })

  return {
    addr: node.getMultiaddrs()[0].toString(),
    close: async () => {
      await node.stop()
      await store.close()
    }
  }
}

// ---------- child side ----------

interface Measure {
  start(): void
  /** stop the clock and CPU count */
  stop(): Timing
}

interface Timing { seconds: number, cpuSeconds: number, sysSeconds: number, gcMajor: number, gcMs: number, minorFaults: number, peakHeapMiB: number, peakArrayBuffersMiB: number, hwmKiB?: number }

function cpuSince (since: NodeJS.CpuUsage): { cpuSeconds: number, sysSeconds: number } {
  const d = process.cpuUsage(since)
  return { cpuSeconds: (d.user + d.system) / 1e6, sysSeconds: d.system / 1e6 }
}

function measure (): Measure {
  let t0 = 0
  let cpu0: NodeJS.CpuUsage = process.cpuUsage()
  let faults0 = 0
  let result: Timing | undefined
  // GC entries are delivered asynchronously; those of the timed window are counted by their start time
  const gcs: Array<{ at: number, ms: number, major: boolean }> = []
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs.push({ at: e.startTime, ms: e.duration, major: (e as any).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR })
    }
  })
  gcObserver.observe({ entryTypes: ['gc'] })
  let peakHeap = 0
  let peakArrayBuffers = 0
  const sampleMemory = (): void => {
    const m = process.memoryUsage()
    peakHeap = Math.max(peakHeap, m.heapUsed)
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers)
  }
  let sampler: ReturnType<typeof setInterval> | undefined
  return {
    start: () => {
      sampler = setInterval(sampleMemory, 20)
      send({ type: 'start' })
      cpu0 = process.cpuUsage()
      faults0 = process.resourceUsage().minorPageFault
      t0 = performance.now()
    },
    stop: () => {
      if (result == null) {
        const t1 = performance.now()
        clearInterval(sampler)
        sampleMemory()
        const minorFaults = process.resourceUsage().minorPageFault - faults0
        const timed = gcs.filter(g => g.at >= t0 && g.at <= t1)
        result = {
          seconds: (t1 - t0) / 1000,
          ...cpuSince(cpu0),
          gcMajor: timed.filter(g => g.major).length,
          gcMs: timed.reduce((sum, g) => sum + g.ms, 0),
          minorFaults,
          peakHeapMiB: peakHeap / 1024 / 1024,
          peakArrayBuffersMiB: peakArrayBuffers / 1024 / 1024,
          // peak RSS while moving the data: the store rows read the copy back afterwards, which must not count
          hwmKiB: procStatusKiB('self', 'VmHWM')
        }
        send({ type: 'stopped' })
      }
      return result
    }
  }
}

async function childTcp (init: WorkerInit, m: Measure): Promise<ChildDone> {
  const size = init.size
  const hash = init.hash === true ? createHash('sha256') : undefined
  let bytes = 0
  const socket = net.connect(Number(init.addr), '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const finished = new Promise<Timing>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      hash?.update(d)
      bytes += d.byteLength
      if (bytes >= size) {
        resolve(m.stop())
      }
    })
    socket.once('error', reject)
    socket.once('close', () => { reject(new Error(`The parent closed the connection after ${bytes} of ${size} bytes`)) })
  })
  m.start()
  socket.write(sizeRequest(size))
  const timing = await finished
  socket.destroy()

  return { type: 'done', bytes, ...timing, sha256: hash?.digest('hex') }
}

async function childStream (init: WorkerInit, m: Measure): Promise<ChildDone> {
  const size = init.size
  const hash = init.hash === true ? createHash('sha256') : undefined
  const { multiaddr } = await import('@multiformats/multiaddr')
  const node = await createNode(init)
  try {
    const conn = await node.dial(multiaddr(init.addr!), { signal: AbortSignal.timeout(30_000) })
    let bytes = 0
    m.start()
    const stream = await conn.newStream(STREAM_PROTOCOL)
    stream.send(sizeRequest(size))
    for await (const chunk of stream) {
      const bufs = chunk instanceof Uint8Array ? [chunk] : chunk
      for (const b of bufs) {
        hash?.update(b)
        bytes += b.byteLength
      }
      if (bytes >= size) {
        break
      }
    }
    const timing = m.stop()
    await stream.close().catch(() => {})
    if (bytes < size) {
      throw new Error(`The stream ended after ${bytes} of ${size} bytes`)
    }

    return { type: 'done', bytes, ...timing, sha256: hash?.digest('hex') }
  } finally {
    await node.stop()
  }
}

async function childPiece (init: WorkerInit, m: Measure): Promise<ChildDone> {
  const [{ FsPieceStore }, { pieceRange }, { pieceTransfer, PieceBufferPool }, { multiaddr }] = await Promise.all([
    import('../../src/storage/index.ts'), import('../../src/task/piece-size.ts'), import('../../src/transfer/index.ts'), import('@multiformats/multiaddr')
  ])
  const { DEFAULT_MAX_PENDING_WRITES } = await import('../../src/task/constants.ts')
  const taskId = init.taskId!
  const pieceDigests = init.pieceDigests!
  const count = pieceDigests.length
  const expected = pieceDigests.map((hex, i) => ({
    length: pieceRange(i, init.size, init.pieceSize!).length,
    digest: Uint8Array.from(Buffer.from(hex, 'hex'))
  }))
  let store: FsPieceStore | undefined
  if (init.disk === true) {
    store = new FsPieceStore({ dir: init.storeDir! })
    await store.open()
    await store.createTask({ taskId, contentLength: init.size, pieceSize: init.pieceSize!, digest: `sha256:${init.fileSha256!}`, pieceDigests })
  }
  const node = await createNode(init, { transfer: pieceTransfer({ source: emptySource, maxOutstanding: init.outstanding }) })

  try {
    const transfer: PieceTransfer = node.services.transfer
    const conn: Connection = await node.dial(multiaddr(init.addr!), { signal: AbortSignal.timeout(30_000) })
    const queue = Array.from({ length: count }, (_, i) => i)
    const batch = init.batch ?? 64
    let bytes = 0
    let piecesOk = 0
    let busyAnswers = 0
    let writeWaitMs = 0
    // as the download engine does: the protocol verified the piece, the
    // write runs beside the stream, at most DEFAULT_MAX_PENDING_WRITES wait
    const writes = new Set<Promise<void>>()
    // pieces held: the pending writes, the one waiting for room, one being received per stream
    const pool = init.pool === false ? undefined : new PieceBufferPool({ bufferBytes: init.pieceSize!, maxBuffers: DEFAULT_MAX_PENDING_WRITES + 1 + (init.streams ?? 1) })
    const onPiece = async (index: number, piece: Uint8Array): Promise<void> => {
      bytes += piece.byteLength
      if (store == null) {
        pool?.release(piece)
        return
      }
      try {
        if (writes.size >= DEFAULT_MAX_PENDING_WRITES) {
          const t = performance.now()
          while (writes.size >= DEFAULT_MAX_PENDING_WRITES) {
            await Promise.race(writes)
          }
          writeWaitMs += performance.now() - t
        }
      } catch (err) {
        pool?.release(piece)
        throw err
      }
      const write: Promise<void> = store.put(taskId, index, piece, { expectedDigest: pieceDigests[index], verified: true })
        .finally(() => {
          writes.delete(write)
          pool?.release(piece)
        })
      writes.add(write)
    }
    const lane = async (): Promise<void> => {
      while (queue.length > 0) {
        const indexes = queue.splice(0, batch)
        const results = await transfer.fetch(conn, taskId, indexes, { expected: (i) => expected[i], onPiece, pool })
        let busy = false
        for (const r of results) {
          if (r.status === 'ok') {
            piecesOk++
          } else if (r.status === 'busy') {
            busyAnswers++
            busy = true
            queue.push(r.index)
          } else {
            throw new Error(`Piece ${r.index}: ${r.status}${r.error != null ? ` - ${r.error.message}` : ''}`)
          }
        }
        if (busy) {
          await new Promise(resolve => setTimeout(resolve, 10))
        }
      }
    }

    m.start()
    await Promise.all(Array.from({ length: init.streams ?? 1 }, lane))
    await Promise.all(writes)
    const timing = m.stop()
    if (piecesOk !== count || bytes !== init.size) {
      throw new Error(`Got ${piecesOk} of ${count} pieces, ${bytes} of ${init.size} bytes`)
    }

    let sha256: string | undefined
    let checkMs: number | undefined
    if (store != null) {
      // after the clock: read the stored copy back through the store and hash it
      const t = performance.now()
      const hash = createHash('sha256')
      for (let i = 0; i < count; i++) {
        hash.update(await store.get(taskId, i))
      }
      sha256 = hash.digest('hex')
      checkMs = performance.now() - t
    }

    return { type: 'done', bytes, ...timing, sha256, piecesOk, busyAnswers, checkMs, poolUnpooled: pool?.stats().unpooled, writeWaitMs: store != null ? writeWaitMs : undefined }
  } finally {
    await node.stop()
    await store?.close()
  }
}

/** the child serves nothing */
const emptySource: PieceSource = {
  pieceLength: () => undefined,
  has: () => false,
  digest: () => undefined,
  read: async () => { throw new Error('This bench child has no pieces') }
}

function memory (): { hwmKiB?: number, rssKiB?: number } {
  return { hwmKiB: procStatusKiB('self', 'VmHWM'), rssKiB: procStatusKiB('self', 'VmRSS') }
}

async function main (): Promise<void> {
  const init = await nextMessage<WorkerInit>('init')

  if (init.role === 'parent') {
    const serve = { tcp: parentTcp, stream: parentStream, piece: parentPiece }[init.kind]
    const server = await serve(init)
    const cpu0 = process.cpuUsage()
    send({ type: 'ready', addr: server.addr })
    await nextMessage('report')
    const report: WorkerReport = { type: 'report', ...cpuSince(cpu0), ...memory() }
    send(report)
    await nextMessage('stop')
    await server.close()
  } else {
    const m = measure()
    const fetchAll = { tcp: childTcp, stream: childStream, piece: childPiece }[init.kind]
    const done = await fetchAll(init, m)
    send(done)
    await nextMessage('report')
    const report: WorkerReport = { type: 'report', cpuSeconds: done.cpuSeconds, sysSeconds: done.sysSeconds, ...memory(), ...(done.hwmKiB != null ? { hwmKiB: done.hwmKiB } : {}) }
    send(report)
    await nextMessage('stop')
  }
  process.disconnect?.()
}

main().catch((err) => {
  send({ type: 'error', message: err?.stack ?? String(err) })
  process.exitCode = 1
  process.disconnect?.()
})
