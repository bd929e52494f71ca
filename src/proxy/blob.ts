/**
 * Serving a task's bytes while its download runs: wait for the task's
 * metadata, then for each piece of a byte range in order, reading it from
 * the store as soon as it is there. The last bytes of every response wait
 * until the download has verified the whole-file digest, so a blob whose
 * bytes do not match is never sent complete.
 */
import { pieceRange } from '../task/piece-size.ts'
import { BlobUnavailableError } from './errors.ts'
import type { TaskMetadata } from '../storage/index.ts'
import type { Download } from '../task/download.ts'

/**
 * The part of the piece store a blob response reads
 */
export interface BlobStore {
  getTask(taskId: string): TaskMetadata | undefined
  has(taskId: string, index: number): boolean
  read(taskId: string, index: number, options?: { signal?: AbortSignal }): Promise<Uint8Array>
}

export interface WaitOptions {
  signal: AbortSignal
  /** re-check the store this often without an event, in ms */
  pollMs: number
}

/**
 * Resolves at the download's next progress or state event, after `pollMs`,
 * or when `signal` aborts, whichever comes first. The listeners are attached
 * synchronously, so a check made just before cannot miss an event.
 */
async function nextChange (download: Download, options: WaitOptions): Promise<void> {
  await new Promise<void>(resolve => {
    const finish = (): void => {
      clearTimeout(timer)
      download.removeEventListener('progress', finish)
      download.removeEventListener('state', finish)
      options.signal.removeEventListener('abort', finish)
      resolve()
    }
    const timer = setTimeout(finish, options.pollMs)
    download.addEventListener('progress', finish)
    download.addEventListener('state', finish)
    options.signal.addEventListener('abort', finish)
  })
  options.signal.throwIfAborted()
}

function ended (download: Download): boolean {
  return download.state === 'failed' || download.state === 'cancelled'
}

/**
 * The task's metadata once the download knows it (from the store, the
 * tracker or an origin stat).
 *
 * @throws {Error} the download's error when it fails first
 * @throws {BlobUnavailableError} after `timeoutMs` without metadata
 */
export async function waitForMetadata (download: Download, store: BlobStore, options: WaitOptions & { timeoutMs: number }): Promise<TaskMetadata> {
  const taskId = download.request.taskId
  const deadline = Date.now() + options.timeoutMs
  while (true) {
    options.signal.throwIfAborted()
    if (ended(download)) {
      await download.done
    }
    const meta = store.getTask(taskId)
    if (meta != null) {
      return meta
    }
    if (download.state === 'succeeded') {
      throw new BlobUnavailableError(`task ${taskId} finished but is no longer in the store; request it again`)
    }
    if (Date.now() > deadline) {
      throw new BlobUnavailableError(`the download of task ${taskId} learned nothing about the file in ${Math.round(options.timeoutMs / 1000)} s (no tracker knows it and the origin gave no length); check the registry and the swarm (damselfly doctor)`)
    }
    await nextChange(download, options)
  }
}

/**
 * Wait until piece `index` is in the store
 */
async function waitForPiece (download: Download, store: BlobStore, index: number, options: WaitOptions): Promise<void> {
  const taskId = download.request.taskId
  while (true) {
    options.signal.throwIfAborted()
    if (ended(download)) {
      await download.done
    }
    if (store.getTask(taskId) == null) {
      throw new BlobUnavailableError(`task ${taskId} was dropped from the store while it was being served; request it again`)
    }
    if (store.has(taskId, index)) {
      return
    }
    if (download.state === 'succeeded') {
      throw new BlobUnavailableError(`task ${taskId} finished without piece ${index}; request it again`)
    }
    await nextChange(download, options)
  }
}

/**
 * Yields bytes [start, end) of the download's task, piece by piece in order
 * as they arrive. While it reads, a stream cursor tells the download which
 * piece it needs next, so the pieces just ahead of it are fetched first and
 * in order; the cursor is closed however the generator ends (finished,
 * consumer gone, error). The last chunk is yielded only after
 * `download.done` resolved (the whole-file digest, when the task has one,
 * matched); when it rejects the generator throws its error instead, so the
 * caller can cut the response short.
 */
export async function * readRange (download: Download, store: BlobStore, meta: TaskMetadata, start: number, end: number, options: WaitOptions): AsyncGenerator<Uint8Array, void, undefined> {
  const taskId = download.request.taskId
  if (end <= start) {
    await download.done
    return
  }
  const first = Math.floor(start / meta.pieceSize)
  const last = Math.floor((end - 1) / meta.pieceSize)
  const cursor = download.stream(first)
  try {
    for (let i = first; i <= last; i++) {
      cursor.advance(i)
      await waitForPiece(download, store, i, options)
      let bytes: Uint8Array
      try {
        bytes = await store.read(taskId, i, { signal: options.signal })
      } catch (err) {
        if (ended(download)) {
          await download.done
        }
        throw err
      }
      const range = pieceRange(i, meta.contentLength, meta.pieceSize)
      const chunk = bytes.subarray(Math.max(start, range.start) - range.start, Math.min(end, range.end) - range.start)
      if (i === last) {
        // held back until the whole file is verified; nothing more to prioritise
        cursor.close()
        await download.done
      }
      yield chunk
    }
  } finally {
    cursor.close()
  }
}
