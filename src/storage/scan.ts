/**
 * Reading a task's bytes in order for hashing: large positional reads, the
 * next one already under way while the current one is hashed, so the disk
 * (or page cache) and the hash overlap instead of taking turns.
 */
import { pieceRange } from '../task/piece-size.ts'
import { readAll } from './fs-utils.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { FileHandle } from 'node:fs/promises'

/** Bytes per read when scanning a file: whole pieces, about this much */
export const SCAN_READ_BYTES = 4 * 1024 * 1024

export interface ScanLayout {
  contentLength: number
  pieceSize: number
}

/**
 * Hand every piece of `file` (laid out as `layout`) to `onPiece`, in order.
 * The bytes passed are valid only during the call. Throws when the file is
 * shorter than the content.
 */
export async function scanPieces (file: FileHandle, layout: ScanLayout, onPiece: (index: number, bytes: Uint8Array) => void, options: AbortOptions = {}): Promise<void> {
  const { contentLength, pieceSize } = layout

  if (contentLength === 0) {
    return
  }

  const piecesPerRead = Math.max(1, Math.floor(SCAN_READ_BYTES / pieceSize))
  const readBytes = Math.min(piecesPerRead * pieceSize, contentLength)
  const buffers = [Buffer.allocUnsafeSlow(readBytes), Buffer.allocUnsafeSlow(readBytes)]
  const pieceCount = Math.ceil(contentLength / pieceSize)

  const readAt = async (first: number, buffer: Buffer): Promise<Uint8Array> => {
    const start = first * pieceSize
    const length = Math.min(readBytes, contentLength - start)
    const read = await readAll(file, buffer.subarray(0, length), start)

    if (read !== length) {
      throw new Error(`the file ended at byte ${start + read}, inside piece ${first + Math.floor(read / pieceSize)}, before the content's ${contentLength} bytes`)
    }

    return buffer.subarray(0, length)
  }

  let next: Promise<Uint8Array> | undefined = readAt(0, buffers[0])

  try {
    for (let first = 0, turn = 0; next != null; first += piecesPerRead, turn ^= 1) {
      options.signal?.throwIfAborted()
      const chunk: Uint8Array = await next
      const following = first + piecesPerRead
      // the other buffer is free: its chunk was handed out in the last turn
      next = following < pieceCount ? readAt(following, buffers[turn ^ 1]) : undefined

      for (let i = first; i < Math.min(following, pieceCount); i++) {
        const range = pieceRange(i, contentLength, pieceSize)
        const offset = range.start - first * pieceSize
        onPiece(i, chunk.subarray(offset, offset + range.length))
      }
    }
  } finally {
    // stopped early (a bad piece, an abort): the read ahead still runs on
    // the caller's handle, so it ends before the caller may close it
    await next?.catch(() => {})
  }
}
