/**
 * Piece geometry: how a task of `contentLength` bytes is cut into pieces.
 *
 * Pure functions, no I/O.
 */
import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import { TaskTooLargeError } from './errors.ts'

const KiB = 1024
const MiB = 1024 * KiB

/**
 * The smallest piece `choosePieceSize` picks. A piece is stored and verified
 * whole before it is sent on, so each hop of the download pipeline lags by
 * about one piece on its link: before the pipeline, 256 KiB pieces made 8
 * nodes at 25 Mbit/s finish a 64 MiB file in 26 s against 34 s with 1 MiB
 * pieces. But each piece also costs every node fixed work (a request, a
 * header, a signature check, a store write and its journal record, a read to
 * upload it): with the pipeline, 512 KiB pieces cut the daemons' CPU by
 * 17-30 % against 256 KiB in all but one of six alternated pairs (4 % in
 * that one), which made 8 nodes at 100 Mbit/s on two shared cores finish
 * sooner and 16 at 25 Mbit/s about as fast
 * (bench/fanout, alternated runs; README, Benchmarks).
 */
export const MIN_PIECE_SIZE = 512 * KiB

/**
 * The largest piece size. A piece is read into one buffer and verified as a
 * whole, so this bounds the memory per piece in flight.
 */
export const MAX_PIECE_SIZE = 64 * MiB

/**
 * The most pieces a task may have: 65536 × 64 MiB = 4 TiB. It bounds the
 * have-bitfield (8 KiB) and the per-piece digest list in task metadata.
 */
export const MAX_PIECE_COUNT = 65536

/**
 * The largest task: `MAX_PIECE_COUNT` pieces of `MAX_PIECE_SIZE` bytes.
 */
export const MAX_CONTENT_LENGTH = MAX_PIECE_COUNT * MAX_PIECE_SIZE

/**
 * Choose the piece size for a file of `contentLength` bytes: the next power
 * of two of `ceil(contentLength / 1024)`, clamped to
 * [`MIN_PIECE_SIZE`, `MAX_PIECE_SIZE`].
 *
 * So files up to 512 MiB use 512 KiB pieces, 1 GiB ones 1 MiB pieces, and a
 * file has at most 1024 pieces until it exceeds 64 GiB, after which the
 * piece count grows up to `MAX_PIECE_COUNT`.
 *
 * @throws {InvalidParametersError} when the length is not a non-negative safe integer
 * @throws {TaskTooLargeError} when the file exceeds `MAX_CONTENT_LENGTH`
 */
export function choosePieceSize (contentLength: number): number {
  validateLength(contentLength)

  if (contentLength > MAX_CONTENT_LENGTH) {
    throw tooLarge(contentLength, MAX_PIECE_SIZE)
  }

  const target = Math.ceil(contentLength / KiB)
  let size = MIN_PIECE_SIZE

  while (size < target && size < MAX_PIECE_SIZE) {
    size *= 2
  }

  return size
}

/**
 * The number of pieces of a file: `ceil(contentLength / pieceSize)`. A 0-byte
 * file has 0 pieces.
 *
 * @throws {InvalidParametersError} for a bad length or piece size
 * @throws {TaskTooLargeError} when there would be more than `MAX_PIECE_COUNT` pieces
 */
export function pieceCount (contentLength: number, pieceSize: number): number {
  validateLength(contentLength)
  validatePieceSize(pieceSize)

  const count = Math.ceil(contentLength / pieceSize)

  if (count > MAX_PIECE_COUNT) {
    throw tooLarge(contentLength, pieceSize)
  }

  return count
}

export interface PieceRange {
  /**
   * Offset of the first byte of the piece in the file
   */
  start: number

  /**
   * Offset one past the last byte of the piece (exclusive)
   */
  end: number

  /**
   * `end - start`: `pieceSize` except for a shorter last piece
   */
  length: number
}

/**
 * The byte range of piece `index`.
 *
 * @throws {InvalidParametersError} when the index is not a piece of the file
 */
export function pieceRange (index: number, contentLength: number, pieceSize: number): PieceRange {
  const count = pieceCount(contentLength, pieceSize)

  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    const pieces = count === 0 ? 'no pieces' : `pieces 0 to ${count - 1} of ${pieceSize} bytes`
    throw new InvalidParametersError(`Piece index ${index} is out of range - a file of ${contentLength} bytes has ${pieces}`)
  }

  const start = index * pieceSize
  const end = Math.min(start + pieceSize, contentLength)

  return { start, end, length: end - start }
}

/**
 * Check a piece size received from elsewhere (tracker, metadata): a positive
 * integer no larger than `MAX_PIECE_SIZE`. Sizes below `MIN_PIECE_SIZE` are
 * allowed: small files and tests use them.
 *
 * @throws {InvalidParametersError}
 */
export function validatePieceSize (pieceSize: number): void {
  if (!Number.isSafeInteger(pieceSize) || pieceSize <= 0 || pieceSize > MAX_PIECE_SIZE) {
    throw new InvalidParametersError(`Invalid piece size ${pieceSize} - it must be an integer from 1 to ${MAX_PIECE_SIZE} bytes`)
  }
}

function validateLength (contentLength: number): void {
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) {
    throw new InvalidParametersError(`Invalid content length ${contentLength} - it must be a non-negative integer number of bytes`)
  }
}

function tooLarge (contentLength: number, pieceSize: number): TaskTooLargeError {
  return new TaskTooLargeError(`A file of ${contentLength} bytes needs ${Math.ceil(contentLength / pieceSize)} pieces of ${pieceSize} bytes, more than the limit of ${MAX_PIECE_COUNT} - files up to ${MAX_CONTENT_LENGTH} bytes are supported; split larger files`)
}
