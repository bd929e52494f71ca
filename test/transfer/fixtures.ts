import '../../src/polyfill.ts'
import { createHash } from 'node:crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddrConnectionPair, streamPair } from '@libp2p/utils'
import { pEvent } from 'p-event'
import { Uint8ArrayList } from 'uint8arraylist'
import { PieceHeader } from '../../src/pb/piece.ts'
import { readVarintPrefix } from '../../src/transfer/framing.ts'
import type { ExpectedPiece, PieceSource } from '../../src/transfer/index.ts'
import type { AbortOptions, Stream, StreamMuxer } from '@libp2p/interface'

export const KiB = 1024
export const MiB = 1024 * KiB

export function sha256 (bytes: Uint8Array | Uint8ArrayList): Uint8Array {
  const hash = createHash('sha256')

  for (const buf of bytes instanceof Uint8Array ? [bytes] : bytes) {
    hash.update(buf)
  }

  return hash.digest()
}

/**
 * Deterministic piece content, generated on demand so a test can move 64 MiB
 * without holding it all in memory (memory assertions stay meaningful).
 */
export function pieceBytes (taskId: string, index: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  const seed = createHash('sha256').update(`${taskId}/${index}`).digest()

  for (let offset = 0; offset < length; offset += seed.byteLength) {
    out.set(seed.subarray(0, Math.min(seed.byteLength, length - offset)), offset)
    seed[offset % seed.byteLength] ^= (offset >>> 5) & 0xff
  }

  return out
}

export interface TestTask {
  pieceLength: number
  pieceCount: number
  /** indexes this node holds; default all */
  have?: Set<number>
}

export interface TestSourceOptions {
  /** flip a byte of these pieces when read */
  corrupt?: Set<number>
  /** read() of these indexes never resolves (until aborted) */
  stall?: Set<number>
  /** read() rejects for these */
  fail?: Set<number>
}

export interface TestSource extends PieceSource {
  reads: number
  bytesRead: number
  expected(taskId: string): (index: number) => ExpectedPiece
}

/** An in-memory PieceSource with generated content and precomputed digests */
export function testSource (tasks: Record<string, TestTask>, options: TestSourceOptions = {}): TestSource {
  const digests = new Map<string, Uint8Array[]>()

  for (const [taskId, task] of Object.entries(tasks)) {
    const list: Uint8Array[] = []

    for (let i = 0; i < task.pieceCount; i++) {
      list.push(sha256(pieceBytes(taskId, i, task.pieceLength)))
    }

    digests.set(taskId, list)
  }

  const source: TestSource = {
    reads: 0,
    bytesRead: 0,
    pieceLength (taskId, index) {
      const task = tasks[taskId]
      return task == null ? undefined : task.pieceLength
    },
    has (taskId, index) {
      const task = tasks[taskId]
      return task != null && index < task.pieceCount && (task.have == null || task.have.has(index))
    },
    digest (taskId, index) {
      return digests.get(taskId)?.[index]
    },
    async read (taskId, index, opts: AbortOptions) {
      source.reads++

      if (options.stall?.has(index) === true) {
        await pEvent(opts.signal ?? new EventTarget(), 'abort')
        throw new Error('aborted')
      }

      if (options.fail?.has(index) === true) {
        throw new Error('disk on fire')
      }

      const bytes = pieceBytes(taskId, index, tasks[taskId].pieceLength)

      if (options.corrupt?.has(index) === true) {
        bytes[bytes.byteLength >> 1] ^= 0x01
      }

      source.bytesRead += bytes.byteLength
      return bytes
    },
    expected (taskId) {
      return (index) => ({ length: tasks[taskId].pieceLength, digest: digests.get(taskId)?.[index] ?? new Uint8Array(32) })
    }
  }

  return source
}

/** The in-memory stream pair from `@libp2p/utils` (no muxer flow control: pause() does not slow the sender) */
export async function memoryStreams (): Promise<[client: Stream, server: Stream]> {
  return streamPair()
}

export interface YamuxStreams {
  client: Stream
  server: Stream
  close(): Promise<void>
}

/**
 * A real yamux session over an in-memory connection: real window-based flow
 * control (pause() stops window updates), without TCP or noise.
 */
export async function yamuxStreams (): Promise<YamuxStreams> {
  const [outbound, inbound] = multiaddrConnectionPair({ capacity: 64 })
  const factory = yamux({ streamOptions: { maxReadBufferLength: 32 * MiB } })()
  const clientMuxer: StreamMuxer = factory.createStreamMuxer(outbound)
  const serverMuxer: StreamMuxer = factory.createStreamMuxer(inbound)
  const [client, server] = await Promise.all([
    clientMuxer.createStream(),
    pEvent<'stream', CustomEvent<Stream>>(serverMuxer, 'stream').then(evt => evt.detail)
  ])

  return {
    client,
    server,
    close: async () => {
      clientMuxer.abort(new Error('test done'))
      serverMuxer.abort(new Error('test done'))
      outbound.abort(new Error('test done'))
      inbound.abort(new Error('test done'))
    }
  }
}

export interface ParsedAnswer {
  header: PieceHeader
  bytes?: Uint8Array
}

/** Parse a whole server answer stream (headers + piece bytes), as a test oracle */
export function parseAnswers (data: Uint8ArrayList): ParsedAnswer[] {
  const answers: ParsedAnswer[] = []
  const list = new Uint8ArrayList(data)

  while (list.byteLength > 0) {
    const prefix = readVarintPrefix(list, 1024, 'header')

    if (prefix == null) {
      throw new Error('truncated header prefix')
    }

    const header = PieceHeader.decode(list.sublist(prefix.bytes, prefix.bytes + prefix.value))
    list.consume(prefix.bytes + prefix.value)
    const answer: ParsedAnswer = { header }

    if (header.status === PieceHeader.Status.OK) {
      answer.bytes = list.subarray(0, header.length)
      list.consume(header.length)
    }

    answers.push(answer)
  }

  return answers
}

/** Read everything the remote writes until it closes */
export async function readAll (stream: Stream): Promise<Uint8ArrayList> {
  const out = new Uint8ArrayList()

  for await (const chunk of stream) {
    out.append(chunk)
  }

  return out
}

export async function delay (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
