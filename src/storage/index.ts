/**
 * @packageDocumentation
 *
 * The piece store: verified pieces of tasks on local disk.
 *
 * ## On-disk layout
 *
 * ```
 * <dir>/tasks/<taskId>/data            contentLength bytes, sparse; piece i at i × pieceSize
 * <dir>/tasks/<taskId>/metadata.json   TaskMetadata + have-bitfield + `clean` flag
 * <dir>/tasks/<taskId>/pieces.log      journal: 40-byte records (index, sha256, check)
 * <dir>/store.lock                     "<pid> <token>" of the process that has the store open
 * ```
 *
 * One process at a time opens a store (lock.ts): another live process gets
 * StoreLockedError naming the holder's pid; a crashed holder's lock is taken
 * over.
 *
 * `<taskId>` is 64 lowercase hex digits (see task/id.ts), which also keeps
 * ids from naming paths outside the store.
 *
 * ## Crash-consistency rules
 *
 * 1. A piece is present only when its bytes were verified (sha256) AND are
 *    durable: `put` writes the bytes at their offset, fdatasyncs the data
 *    file, then appends the piece's record to the journal and fdatasyncs the
 *    journal. Only then is the piece reported present. Journal appends of
 *    concurrent puts share one fdatasync (group commit).
 * 2. metadata.json is only ever replaced atomically (temp file, fsync,
 *    rename, fsync of the directory); it is rewritten on state changes, not
 *    per piece.
 * 3. Before the first write to a task in a session, metadata is rewritten
 *    with `clean: false`. `close()` folds the journal into metadata
 *    (metadata with the full bitfield and `clean: false`, then the journal
 *    truncated, then metadata with `clean: true`), so a clean task has an
 *    empty journal.
 * 4. `open()` replays metadata + journal; a torn or zero-filled last record
 *    fails its check and is ignored. A task that was not closed cleanly has
 *    every present piece re-hashed, and pieces whose bytes do not match their
 *    digest are dropped, then the task is compacted as in rule 3.
 * 5. A task directory without metadata.json (a crash during create or
 *    delete) is removed on open; delete removes metadata.json first.
 * 6. ENOSPC/EDQUOT during a put first asks `makeRoom` (GC) to remove idle
 *    tasks for what the unfinished ones still need, and retries once; when
 *    that cannot help it marks the task failed (`StorageFullError`) and
 *    leaves the piece absent; other tasks and the store stay usable.
 * 7. Exports go to `<dest>.damselfly-tmp-<random>` (a kernel copy of the
 *    data file, then read back and checked against the piece digests), are
 *    fsynced and then renamed (or hard-linked, when not overwriting) into
 *    place, so `dest` never holds a partial or unchecked file.
 */

import type { AbortOptions, ComponentLogger } from '@libp2p/interface'

export { FsPieceStore, listTasks } from './fs-piece-store.ts'
export { StoreGc, chooseEvictions, chooseForSpace, resolveQuota, quotaBytesFor, EVICTION_REASONS, GC_LOW_WATERMARK, GC_MIN_IDLE_MS, DEFAULT_GC_INTERVAL_MS, DEFAULT_TASK_TTL_MS, DEFAULT_STORAGE_QUOTA } from './gc.ts'
export type { CollectOptions, GcCandidate, GcPolicy, Eviction, StoreGcStats } from './gc.ts'
export * from './errors.ts'
export { StoreLockedError, LOCK_FILE } from './lock.ts'

export type TaskState = 'partial' | 'complete' | 'failed'

export interface TaskMetadata {
  /**
   * 64 lowercase hex digits
   */
  taskId: string

  /**
   * Where the content came from, when known
   */
  url?: string

  /**
   * The whole-file digest, `sha256:<64 hex>`
   */
  digest?: string

  contentLength: number
  pieceSize: number
  pieceCount: number

  /**
   * sha256 of each piece as 64 lowercase hex digits; `undefined` until known
   * (learned from the tracker or from fetching the piece from the origin)
   */
  pieceDigests: Array<string | undefined>

  /**
   * The origin's ETag and Last-Modified headers, to revalidate a cached task
   */
  etag?: string
  lastModified?: string

  /**
   * Milliseconds since the epoch
   */
  createdAt: number

  state: TaskState

  /**
   * Why the task failed, when `state` is 'failed'
   */
  failure?: string
}

export interface TaskInit {
  taskId: string
  contentLength: number
  pieceSize: number
  url?: string
  digest?: string
  etag?: string
  lastModified?: string
  pieceDigests?: Array<string | undefined | null>
}

export interface PutOptions extends AbortOptions {
  /**
   * sha256 hex the piece must have (e.g. from the tracker's manifest), in
   * addition to any digest already in the task metadata
   */
  expectedDigest?: string

  /**
   * The caller already computed the sha256 of these bytes and found it equal
   * to `expectedDigest` (the piece protocol verifies every piece it
   * receives), so the store does not hash them again
   *
   * @default false
   */
  verified?: boolean
}

export interface ImportOptions extends AbortOptions {
  taskId: string
  url?: string

  /**
   * The whole-file digest; the import fails with `DigestMismatchError` if the
   * file does not match it
   */
  digest?: string

  /**
   * @default choosePieceSize(file size)
   */
  pieceSize?: number
}

export interface ExportOptions extends AbortOptions {
  /**
   * Replace an existing file at the destination
   *
   * @default false
   */
  overwrite?: boolean
}

export interface StoreStats {
  /**
   * Number of tasks in the store
   */
  tasks: number

  /**
   * Bytes of present pieces over all tasks
   */
  bytesStored: number
}

export interface FsPieceStoreInit {
  /**
   * The store's directory; tasks live in `<dir>/tasks/`
   */
  dir: string

  logger?: ComponentLogger

  /**
   * Free space demanded on top of a new task's bytes, as a fraction of them
   *
   * @default 0.1
   */
  reserveRatio?: number

  /**
   * Called when a new task does not fit on the disk, or a piece write finds
   * it full: free at least `bytes` (by removing other tasks, see
   * StoreGc.makeRoom), resolving to the bytes freed; the space is checked or
   * the write tried again after
   */
  makeRoom?(bytes: number, forTaskId: string): Promise<number>

  /**
   * Read-only data-file handles kept open for serving pieces of tasks that
   * are not being written, least recently used closed first
   *
   * @default 64
   */
  maxReadHandles?: number
}

/**
 * Pieces of tasks, verified and durable.
 */
export interface PieceStore {
  open(options?: AbortOptions): Promise<void>
  close(options?: AbortOptions): Promise<void>

  createTask(init: TaskInit, options?: AbortOptions): Promise<TaskMetadata>
  getTask(taskId: string): TaskMetadata | undefined
  hasTask(taskId: string): boolean
  pieceDigest(taskId: string, index: number): string | undefined
  pieceLength(taskId: string, index: number): number | undefined
  listTasks(): TaskMetadata[]
  setPieceDigests(taskId: string, digests: Array<string | undefined | null>, options?: AbortOptions): Promise<void>
  setState(taskId: string, state: TaskState, failure?: string, options?: AbortOptions): Promise<void>
  delete(taskId: string, options?: AbortOptions): Promise<void>

  have(taskId: string): Uint8Array
  has(taskId: string, index: number): boolean
  /** true once piece `index` is present; false after `timeoutMs`, an abort, or when the task goes away */
  whenPresent(taskId: string, index: number, options: AbortOptions & { timeoutMs: number }): Promise<boolean>
  missing(taskId: string): number[]
  isComplete(taskId: string): boolean

  put(taskId: string, index: number, bytes: Uint8Array, options?: PutOptions): Promise<void>
  get(taskId: string, index: number, options?: AbortOptions): Promise<Uint8Array>
  read(taskId: string, index: number, options?: AbortOptions): Promise<Uint8Array>

  import(path: string, options: ImportOptions): Promise<TaskMetadata>
  export(taskId: string, destPath: string, options?: ExportOptions): Promise<void>
  /** `sha256:<hex>` of a complete task's bytes in order (hashed once, then remembered) */
  assembledDigest(taskId: string, options?: AbortOptions): Promise<string>

  stats(): StoreStats
}
