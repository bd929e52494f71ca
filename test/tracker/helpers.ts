import '../../src/polyfill.ts'
import { createHash } from 'node:crypto'
import { Bitfield } from '../../src/utils/bitfield.ts'
import type { AnnounceInput, TaskMetaInfo } from '../../src/tracker/state.ts'

export const MiB = 1024 * 1024

/** A valid task id (64 lowercase hex) derived from a name */
export function taskIdOf (name: string): string {
  return createHash('sha256').update(`task:${name}`).digest('hex')
}

/** A deterministic 32-byte "piece digest" */
export function digestOf (name: string, index: number): Uint8Array {
  return createHash('sha256').update(`${name}/${index}`).digest()
}

/** Metadata of a task with `pieces` pieces of 1 MiB, the last one 5 bytes short */
export function metaOf (pieces: number): TaskMetaInfo {
  return { contentLength: pieces * MiB - 5, pieceSize: MiB }
}

/** Bitfield bytes of `length` pieces with `indexes` set */
export function haveOf (length: number, indexes: Iterable<number> = []): Uint8Array {
  const b = new Bitfield(length)
  for (const i of indexes) {
    b.set(i)
  }
  return b.toBytes()
}

/** Integers in [start, end) */
export function range (start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i)
}

/** An announce with sensible defaults */
export function announceOf (taskId: string, extra: Partial<AnnounceInput> = {}): AnnounceInput {
  return {
    taskId,
    have: new Uint8Array(0),
    addrs: [],
    uploadSlots: 8,
    freeUploadSlots: 8,
    version: '0.1.0',
    wantGrant: false,
    wantDigests: false,
    ...extra
  }
}
