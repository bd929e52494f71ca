/**
 * The per-task piece journal, `pieces.log`: an append-only file of
 * fixed-size records, one per verified, durable piece.
 *
 * Record (40 bytes): piece index (uint32 big-endian), sha256 of the piece
 * (32 bytes), check (the first 4 bytes of sha256 over the preceding 36
 * bytes). A record whose check does not match (a torn or zero-filled tail
 * after a crash) is ignored, and so is a partial record at the end.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import { writeAll } from './fs-utils.ts'
import type { FileHandle } from 'node:fs/promises'

export const RECORD_BYTES = 40

export interface JournalRecord {
  index: number
  digest: string
}

export function encodeRecord (index: number, digest: string): Uint8Array {
  const record = Buffer.alloc(RECORD_BYTES)
  record.writeUInt32BE(index, 0)
  record.write(digest, 4, 32, 'hex')
  createHash('sha256').update(record.subarray(0, 36)).digest().copy(record, 36, 0, 4)
  return record
}

/**
 * Decode every valid record of a journal's bytes.
 */
export function decodeRecords (bytes: Uint8Array): JournalRecord[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const records: JournalRecord[] = []

  for (let offset = 0; offset + RECORD_BYTES <= buf.byteLength; offset += RECORD_BYTES) {
    const body = buf.subarray(offset, offset + 36)
    const check = createHash('sha256').update(body).digest().subarray(0, 4)

    if (check.equals(buf.subarray(offset + 36, offset + RECORD_BYTES))) {
      records.push({ index: body.readUInt32BE(0), digest: body.toString('hex', 4, 36) })
    }
  }

  return records
}

/**
 * Read and decode a journal; a missing file is an empty journal.
 */
export async function readJournal (path: string): Promise<JournalRecord[]> {
  try {
    return decodeRecords(await fs.readFile(path))
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return []
    }

    throw err
  }
}

interface Pending {
  record: Uint8Array
  resolve(): void
  reject(err: Error): void
}

/**
 * An open journal. Appends are group-committed: records queued while a
 * write + fdatasync is under way go out together in the next one, so
 * concurrent puts share fdatasync calls. Writes are positional at the end of
 * the last whole record, so a failed or torn write is overwritten by the next.
 */
export interface JournalOptions {
  beforeCommit?(): Promise<void>
}

export class Journal {
  private readonly handle: FileHandle
  private offset: number
  private queue: Pending[]
  private flushing?: Promise<void>

  private readonly beforeCommit: () => Promise<void>

  private constructor (handle: FileHandle, offset: number, beforeCommit: () => Promise<void>) {
    this.handle = handle
    this.offset = offset
    this.queue = []
    this.beforeCommit = beforeCommit
  }

  /**
   * `beforeCommit` runs before each batch of records is written: the piece
   * store passes the data file's fdatasync, so one sync of the data and one of
   * the journal make a whole batch of pieces durable (group commit) instead
   * of two syncs per piece.
   */
  static async open (path: string, options: JournalOptions = {}): Promise<Journal> {
    const handle = await fs.open(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)

    try {
      const { size } = await handle.stat()
      return new Journal(handle, size - (size % RECORD_BYTES), options.beforeCommit ?? (async () => {}))
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  /**
   * Resolves once the record is durable.
   */
  async append (index: number, digest: string): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.queue.push({ record: encodeRecord(index, digest), resolve, reject })
    })

    this.flushing ??= this.flush().finally(() => { this.flushing = undefined })

    return done
  }

  /**
   * Empty the journal (after its records were folded into metadata).
   */
  async truncate (): Promise<void> {
    await this.idle()
    await this.handle.truncate(0)
    await this.handle.sync()
    this.offset = 0
  }

  /**
   * Wait for queued appends to finish.
   */
  async idle (): Promise<void> {
    while (this.flushing != null) {
      await this.flushing
    }
  }

  async close (): Promise<void> {
    await this.idle()
    await this.handle.close()
  }

  private async flush (): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0)
      const bytes = Buffer.concat(batch.map(p => p.record))

      try {
        await this.beforeCommit()
        await writeAll(this.handle, bytes, this.offset)
        await this.handle.datasync()
        this.offset += bytes.byteLength
        batch.forEach(p => { p.resolve() })
      } catch (err: any) {
        batch.forEach(p => { p.reject(err) })
      }
    }
  }
}
