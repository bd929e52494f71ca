/**
 * Small file system helpers for durable writes.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { FileHandle } from 'node:fs/promises'

/**
 * Write all of `bytes` at `position` (a positional write may be short).
 */
export async function writeAll (handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0

  while (written < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.byteLength - written, position + written)
    written += bytesWritten
  }
}

/**
 * Fill `buffer` from `position`; returns the number of bytes read, less than
 * the buffer only at the end of the file.
 */
export async function readAll (handle: FileHandle, buffer: Uint8Array, position: number): Promise<number> {
  let read = 0

  while (read < buffer.byteLength) {
    const { bytesRead } = await handle.read(buffer, read, buffer.byteLength - read, position + read)

    if (bytesRead === 0) {
      break
    }

    read += bytesRead
  }

  return read
}

/**
 * fsync a directory so that entries created, renamed or removed in it are
 * durable.
 */
export async function fsyncDir (dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')

  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * A random suffix for temp file names.
 */
export function randomSuffix (): string {
  return randomBytes(6).toString('hex')
}

/**
 * Replace `file` atomically: write a temp file next to it, fsync it, rename
 * it over `file`, fsync the directory. A crash leaves the old or the new
 * content, never a mix; a failed write leaves no temp file behind.
 */
export async function writeFileAtomic (file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file)
  const tmp = `${file}.tmp-${randomSuffix()}`

  try {
    const handle = await fs.open(tmp, 'w', 0o644)

    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }

    await fs.rename(tmp, file)
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {})
    throw err
  }

  await fsyncDir(dir)
}

/**
 * Whether an error means the disk or the user's quota is full.
 */
export function isDiskFull (err: any): boolean {
  return err?.code === 'ENOSPC' || err?.code === 'EDQUOT'
}
