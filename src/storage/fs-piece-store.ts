import '../polyfill.ts'
import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { InvalidParametersError, NotStartedError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { isSha256Hex, normaliseDigest } from '../task/digest.ts'
import { choosePieceSize, pieceCount, pieceRange, validatePieceSize } from '../task/piece-size.ts'
import { bitIsSet } from '../utils/bitfield.ts'
import { DEFAULT_MAX_PIECE_WAITERS, DEFAULT_MAX_READ_HANDLES, DEFAULT_RESERVE_RATIO } from './constants.ts'
import {
  DigestMismatchError,
  InsufficientSpaceError,
  InvalidMetadataError,
  OutputExistsError,
  PieceDigestConflictError,
  PieceDigestMismatchError,
  PieceNotFoundError,
  StorageFullError,
  TaskConflictError,
  TaskIncompleteError,
  TaskNotFoundError
} from './errors.ts'
import { fsyncDir, isDiskFull, randomSuffix, readAll, writeAll, writeFileAtomic } from './fs-utils.ts'
import { Journal, readJournal } from './journal.ts'
import { lockStore } from './lock.ts'
import { TASK_STATES, encodeMetadata, isTaskId, readMetadata } from './metadata.ts'
import { PieceWaiters } from './piece-waiters.ts'
import { scanPieces } from './scan.ts'
import type { GcCandidate } from './gc.ts'
import type { ExportOptions, FsPieceStoreInit, ImportOptions, PieceStore, PutOptions, StoreStats, TaskInit, TaskMetadata, TaskState } from './index.ts'
import type { PieceWaitOptions } from './piece-waiters.ts'
import type { PieceRange } from '../task/piece-size.ts'
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { Hash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'

const DATA_FILE = 'data'
const METADATA_FILE = 'metadata.json'
const JOURNAL_FILE = 'pieces.log'
const EXPORT_TMP_INFIX = '.damselfly-tmp-'
// not a task id, so it never clashes with a task's lock
const CREATE_LOCK = 'create'

interface Writer {
  data: FileHandle
  journal: Journal
}

/**
 * A cached read-only handle on a task's data file. `users` reads are using
 * it; once retired (evicted, task deleted, store closed) it is closed when
 * the last of them finishes.
 */
interface Reader {
  entry: TaskEntry
  handle: Promise<FileHandle>
  users: number
  retired: boolean
  closing?: Promise<void>
}

interface TaskEntry {
  /**
   * In-memory metadata; `pieceDigests` includes digests learned from puts
   */
  task: TaskMetadata
  dir: string

  /**
   * Present pieces, MSB-first
   */
  have: Uint8Array
  present: number
  bytesPresent: number

  /**
   * The `clean` flag the next metadata write records
   */
  clean: boolean

  /**
   * Open data file + journal once the task is opened for writing
   */
  writer?: Promise<Writer>

  /**
   * Read-only handle for serving pieces while there is no writer
   */
  reader?: Reader

  /**
   * Piece writes in progress, by index
   */
  writing: Map<number, Promise<void>>

  /**
   * The last data-file write: piece writes of a task run one at a time
   */
  dataWrite: Promise<void>

  /**
   * Every operation in progress, so delete and close can wait for them
   */
  ops: Set<Promise<unknown>>

  /**
   * The last metadata write; writes are chained so the newest state wins
   */
  metadataWrite: Promise<void>

  /**
   * When a piece was last written or read, or the task exported (epoch ms;
   * after a restart, when its files were last written): what GC orders by
   */
  lastUsedAt: number

  /**
   * Room being made after a write hit a full disk: the writes that hit it
   * at the same time wait for one attempt
   */
  makingRoom?: Promise<boolean>

  /**
   * `sha256:<hex>` of the complete task's bytes, once hashed (by import or
   * assembledDigest). A present piece never changes (any put must match its
   * digest), so it stays true; reads that check each piece against its
   * digest then need not hash the whole file again.
   */
  assembledDigest?: string

  /**
   * A task with a known digest is hashed in order while its pieces arrive
   * (see followPrefix), so its digest is ready when the last one lands
   */
  prefix?: PrefixHash
}

/** The sha256 of a task's first `next` pieces */
interface PrefixHash {
  hash: Hash
  next: number
  /** pieces that arrived ahead of `next`, being read back in order; never rejects */
  reading?: Promise<void>
}

/**
 * Pieces of tasks on the local file system. See index.ts for the on-disk
 * layout and the crash-consistency rules.
 */
export class FsPieceStore implements PieceStore {
  private readonly dir: string
  private readonly tasksDir: string
  private readonly reserveRatio: number
  private readonly maxReadHandles: number
  private readonly makeRoom?: (bytes: number, forTaskId: string) => Promise<number>
  /** releases the store lock (see lock.ts) while the store is open */
  private unlock?: () => Promise<void>
  /** open read handles, least recently used first */
  private readonly readers: Set<Reader>
  private readonly log: Logger
  private readonly tasks: Map<string, TaskEntry>
  private readonly locks: Map<string, Promise<unknown>>
  /** callers waiting for a piece to arrive (whenPresent) */
  private readonly waiters = new PieceWaiters(DEFAULT_MAX_PIECE_WAITERS)
  private status: 'closed' | 'opening' | 'open' | 'closing'
  private opening?: Promise<void>
  private bytesStored: number

  constructor (init: FsPieceStoreInit) {
    const reserveRatio = init.reserveRatio ?? DEFAULT_RESERVE_RATIO
    const maxReadHandles = init.maxReadHandles ?? DEFAULT_MAX_READ_HANDLES

    if (typeof init.dir !== 'string' || init.dir === '') {
      throw new InvalidParametersError('The piece store needs a directory - pass { dir }')
    }

    if (!Number.isFinite(reserveRatio) || reserveRatio < 0) {
      throw new InvalidParametersError(`Invalid reserveRatio ${reserveRatio} - it must be a fraction ≥ 0, e.g. 0.1 for 10 % head room`)
    }

    if (!Number.isSafeInteger(maxReadHandles) || maxReadHandles < 0) {
      throw new InvalidParametersError(`Invalid maxReadHandles ${maxReadHandles} - it must be an integer ≥ 0 (0 opens the data file for every read)`)
    }

    this.dir = path.resolve(init.dir)
    this.tasksDir = path.join(this.dir, 'tasks')
    this.reserveRatio = reserveRatio
    this.maxReadHandles = maxReadHandles
    this.makeRoom = init.makeRoom
    this.readers = new Set()
    this.log = (init.logger ?? defaultLogger()).forComponent('damselfly:storage')
    this.tasks = new Map()
    this.locks = new Map()
    this.status = 'closed'
    this.bytesStored = 0
  }

  readonly [Symbol.toStringTag] = '@damselfly/storage'

  /**
   * Create the directories, load every task and recover the ones that were
   * not closed cleanly.
   */
  async open (options: AbortOptions = {}): Promise<void> {
    if (this.status === 'opening') {
      return this.opening
    }

    if (this.status !== 'closed') {
      return
    }

    this.status = 'opening'
    this.opening = this.load(options).finally(() => { this.opening = undefined })

    return this.opening
  }

  private async load (options: AbortOptions): Promise<void> {
    try {
      await fs.mkdir(this.tasksDir, { recursive: true })
      this.unlock = await lockStore(this.dir)

      for (const name of await fs.readdir(this.tasksDir)) {
        options.signal?.throwIfAborted()

        if (!isTaskId(name)) {
          this.log('ignoring %s in %s - not a task directory', name, this.tasksDir)
          continue
        }

        try {
          await this.loadTask(name)
        } catch (err: any) {
          this.log.error('could not load task %s, leaving it on disk untouched - %e', name, err)
        }
      }

      this.status = 'open'
      this.log('opened %s: %d tasks, %d bytes', this.dir, this.tasks.size, this.bytesStored)
    } catch (err) {
      this.tasks.clear()
      this.bytesStored = 0
      this.status = 'closed'
      await this.unlock?.()
      this.unlock = undefined
      throw err
    }
  }

  /**
   * Wait for operations in progress, fold journals into metadata, mark tasks
   * clean and close files.
   */
  async close (options: AbortOptions = {}): Promise<void> {
    if (this.status === 'opening') {
      await this.opening?.catch(() => {})
    }

    if (this.status !== 'open') {
      return
    }

    this.status = 'closing'
    this.waiters.clear()

    // creates and deletes in progress
    await Promise.allSettled([...this.locks.values()])

    for (const entry of this.tasks.values()) {
      await settle(entry.ops)
      await this.closeReader(entry)

      if (entry.writer == null) {
        continue
      }

      try {
        await this.compact(entry)
      } catch (err) {
        this.log.error('could not mark task %s clean, it will be re-verified on the next open - %e', entry.task.taskId, err)
      }

      await this.closeWriter(entry)
    }

    this.tasks.clear()
    this.bytesStored = 0
    await this.unlock?.().catch((err: Error) => { this.log.error('could not remove the store lock - %e', err) })
    this.unlock = undefined
    this.status = 'closed'
  }

  async createTask (init: TaskInit, options: AbortOptions = {}): Promise<TaskMetadata> {
    this.assertOpen()
    const taskId = validateTaskId(init.taskId)
    validatePieceSize(init.pieceSize)
    const count = pieceCount(init.contentLength, init.pieceSize)
    const digest = init.digest == null ? undefined : normaliseDigest(init.digest)
    const pieceDigests = normalisePieceDigests(init.pieceDigests ?? new Array(count).fill(undefined), count)
    options.signal?.throwIfAborted()

    return this.withLock(taskId, async () => {
      this.assertOpen()
      const existing = this.tasks.get(taskId)

      if (existing != null) {
        return this.resumeTask(existing, init, digest, pieceDigests, options)
      }

      // one create at a time, so that concurrent creates see each other's
      // reservations in the free space check
      return this.withLock(CREATE_LOCK, async () => this.newTask(taskId, init, count, digest, pieceDigests, options))
    })
  }

  private async newTask (taskId: string, init: TaskInit, count: number, digest: string | undefined, pieceDigests: Array<string | undefined>, options: AbortOptions): Promise<TaskMetadata> {
    await this.checkFreeSpace(taskId, init.contentLength)
    options.signal?.throwIfAborted()

    const task: TaskMetadata = {
      taskId,
      contentLength: init.contentLength,
      pieceSize: init.pieceSize,
      pieceCount: count,
      pieceDigests,
      createdAt: Date.now(),
      state: count === 0 ? 'complete' : 'partial',
      ...definedOnly({ url: init.url, digest, etag: init.etag, lastModified: init.lastModified })
    }

    const dir = path.join(this.tasksDir, taskId)
    const entry = newEntry(task, dir, new Uint8Array(Math.ceil(count / 8)), true)

    try {
      await fs.mkdir(dir, { recursive: true })
      const data = await fs.open(path.join(dir, DATA_FILE), 'w', 0o644)

      try {
        // sparse: blocks are allocated as pieces arrive
        await data.truncate(task.contentLength)
        await data.sync()
      } finally {
        await data.close()
      }

      // metadata.json makes the task exist (rule 5), so it goes last
      await this.persist(entry)
      await fsyncDir(this.tasksDir)
    } catch (err) {
      await fs.rm(dir, { recursive: true, force: true }).catch(() => {})

      if (isDiskFull(err)) {
        throw new StorageFullError(`Could not create task ${taskId} in ${this.dir}: the disk is full - free some space and retry`)
      }

      throw err
    }

    this.tasks.set(taskId, entry)
    this.log('created task %s: %d bytes in %d pieces of %d bytes', taskId, task.contentLength, count, task.pieceSize)

    return copyTask(task)
  }

  getTask (taskId: string): TaskMetadata | undefined {
    this.assertOpen()
    const entry = this.tasks.get(taskId)

    return entry == null ? undefined : copyTask(entry.task)
  }

  listTasks (): TaskMetadata[] {
    this.assertOpen()

    return [...this.tasks.values()].map(entry => copyTask(entry.task))
  }

  /**
   * The pieces present, as a bitfield: MSB-first (BitTorrent convention), bit
   * i set when piece i is present; spare bits of the last byte are 0.
   */
  have (taskId: string): Uint8Array {
    return this.entry(taskId).have.slice()
  }

  /**
   * Resolves true once piece `index` is present (at once when it is), false
   * when `timeoutMs` passes first, the signal aborts, the task is deleted or
   * the store closes. For serving a piece that is on its way.
   */
  async whenPresent (taskId: string, index: number, options: PieceWaitOptions): Promise<boolean> {
    if (this.has(taskId, index)) {
      return true
    }
    return this.waiters.wait(taskId, index, options)
  }

  /** Whether the store holds task `taskId` (no copy of its metadata, unlike getTask) */
  hasTask (taskId: string): boolean {
    this.assertOpen()
    return this.tasks.has(taskId)
  }

  /**
   * The hex sha256 of piece `index`, when known; undefined also for an
   * unknown task or index. Cheap: the upload and download paths ask it per
   * piece, where getTask copied the task's whole digest list each time.
   */
  pieceDigest (taskId: string, index: number): string | undefined {
    this.assertOpen()
    return this.tasks.get(taskId)?.task.pieceDigests[index] ?? undefined
  }

  /** The length of piece `index`; undefined for an unknown task or an index out of range */
  pieceLength (taskId: string, index: number): number | undefined {
    this.assertOpen()
    const task = this.tasks.get(taskId)?.task

    if (task == null || !Number.isSafeInteger(index) || index < 0 || index >= task.pieceCount) {
      return undefined
    }

    return pieceRange(index, task.contentLength, task.pieceSize).length
  }

  has (taskId: string, index: number): boolean {
    const entry = this.entry(taskId)

    return Number.isSafeInteger(index) && index >= 0 && index < entry.task.pieceCount && bitIsSet(entry.have, index)
  }

  missing (taskId: string): number[] {
    const entry = this.entry(taskId)
    const missing: number[] = []

    for (let i = 0; i < entry.task.pieceCount; i++) {
      if (!bitIsSet(entry.have, i)) {
        missing.push(i)
      }
    }

    return missing
  }

  isComplete (taskId: string): boolean {
    const entry = this.entry(taskId)

    return entry.present === entry.task.pieceCount
  }

  /**
   * Store a piece. Its sha256 must equal `expectedDigest` and the digest in
   * the task metadata, where these are known; an unknown digest is recorded.
   * Resolves once the piece is durable; storing a present piece again does
   * nothing.
   */
  async put (taskId: string, index: number, bytes: Uint8Array, options: PutOptions = {}): Promise<void> {
    const entry = this.entry(taskId)

    return this.track(entry, this.putPiece(entry, index, bytes, options))
  }

  /**
   * Read a present piece with one positional read into one buffer.
   */
  async get (taskId: string, index: number, options: AbortOptions = {}): Promise<Uint8Array> {
    const entry = this.entry(taskId)

    return this.track(entry, this.readPiece(entry, index, options))
  }

  async read (taskId: string, index: number, options: AbortOptions = {}): Promise<Uint8Array> {
    return this.get(taskId, index, options)
  }

  /**
   * Fill in piece digests learned later (e.g. from the tracker). `digests`
   * has one entry per piece, `undefined`/`null` where unknown.
   */
  async setPieceDigests (taskId: string, digests: Array<string | undefined | null>, options: AbortOptions = {}): Promise<void> {
    const entry = this.entry(taskId)
    options.signal?.throwIfAborted()

    return this.track(entry, this.mergePieceDigests(entry, normalisePieceDigests(digests, entry.task.pieceCount)))
  }

  async setState (taskId: string, state: TaskState, failure?: string, options: AbortOptions = {}): Promise<void> {
    const entry = this.entry(taskId)
    options.signal?.throwIfAborted()

    if (!TASK_STATES.includes(state)) {
      throw new InvalidParametersError(`Invalid task state ${JSON.stringify(state)} - use one of ${TASK_STATES.join(', ')}`)
    }

    if (state === 'complete' && entry.present !== entry.task.pieceCount) {
      throw new InvalidParametersError(`Task ${taskId} cannot be marked complete: it has ${entry.present} of ${entry.task.pieceCount} pieces`)
    }

    entry.task.state = state

    if (state === 'failed') {
      entry.task.failure = failure ?? 'unknown reason'
    } else {
      delete entry.task.failure
    }

    return this.track(entry, this.persist(entry))
  }

  /**
   * Remove a task and its files. Operations in progress on it finish first.
   * Deleting a task that is not in the store does nothing.
   */
  async delete (taskId: string, options: AbortOptions = {}): Promise<void> {
    this.assertOpen()
    options.signal?.throwIfAborted()

    await this.withLock(taskId, async () => {
      const entry = this.tasks.get(taskId)

      if (entry == null) {
        return
      }

      this.tasks.delete(taskId)
      this.waiters.forget(taskId)
      this.bytesStored -= entry.bytesPresent
      await settle(entry.ops)
      await this.closeReader(entry)
      await this.closeWriter(entry)
      await entry.metadataWrite.catch(() => {})

      // without metadata.json the directory is no task (rule 5), so a crash
      // from here on leaves nothing half-deleted behind
      await fs.rm(path.join(entry.dir, METADATA_FILE), { force: true })
      await fsyncDir(entry.dir)
      await fs.rm(entry.dir, { recursive: true, force: true })
      await fsyncDir(this.tasksDir)
      this.log('deleted task %s', taskId)
    })
  }

  /**
   * Copy a local file into the store as a complete task, hashing each piece.
   * The file is read one piece at a time. When `digest` is given the file
   * must match it, or nothing is stored.
   */
  async import (sourcePath: string, options: ImportOptions): Promise<TaskMetadata> {
    this.assertOpen()
    const taskId = validateTaskId(options.taskId)
    const digest = options.digest == null ? undefined : normaliseDigest(options.digest)
    const source = await fs.open(sourcePath, 'r')

    try {
      const stat = await source.stat()

      if (!stat.isFile()) {
        throw new InvalidParametersError(`Cannot import ${sourcePath}: it is not a regular file`)
      }

      const existed = this.tasks.has(taskId)
      await this.createTask({
        taskId,
        contentLength: stat.size,
        pieceSize: options.pieceSize ?? choosePieceSize(stat.size),
        url: options.url,
        digest
      }, options)

      const entry = this.entry(taskId)

      try {
        await this.track(entry, this.importPieces(entry, source, sourcePath, digest, options))
      } catch (err) {
        if (!existed) {
          await this.delete(taskId).catch(err => { this.log.error('could not remove task %s after a failed import - %e', taskId, err) })
        }

        throw err
      }

      return copyTask(entry.task)
    } finally {
      await source.close()
    }
  }

  /**
   * Write a complete task to `destPath`. The kernel copies the data file to
   * a temp file in the destination directory, which is read back, checked
   * piece by piece (and against the whole-file digest, when known and not
   * hashed before), fsynced and renamed into place, so `destPath` never
   * holds a partial or unchecked file.
   */
  async export (taskId: string, destPath: string, options: ExportOptions = {}): Promise<void> {
    const entry = this.entry(taskId)

    return this.track(entry, this.exportTask(entry, path.resolve(destPath), options))
  }

  /**
   * The sha256 of a complete task's bytes in order, as `sha256:<hex>`: read
   * from the data file the first time, remembered after that.
   */
  async assembledDigest (taskId: string, options: AbortOptions = {}): Promise<string> {
    const entry = this.entry(taskId)

    return this.track(entry, this.hashTask(entry, options))
  }

  private async hashTask (entry: TaskEntry, options: AbortOptions): Promise<string> {
    const { task } = entry

    if (entry.present !== task.pieceCount) {
      throw new TaskIncompleteError(`Task ${task.taskId} has ${entry.present} of ${task.pieceCount} pieces - its digest is known once it is complete`)
    }

    // the hash that followed the pieces in is nearly done: let it finish
    while (entry.prefix?.reading != null) {
      await entry.prefix.reading
    }

    if (entry.assembledDigest == null) {
      entry.prefix = undefined
      const whole = createHash('sha256')
      await this.withDataFile(entry, async data => {
        await scanPieces(data, task, (_, piece) => { whole.update(piece) }, options).catch(err => {
          throw options.signal?.aborted === true ? err : new PieceNotFoundError(`Task ${task.taskId}: ${err.message} - delete the task and fetch it again`)
        })
      })
      entry.assembledDigest = `sha256:${whole.digest('hex')}`
    }

    entry.lastUsedAt = Date.now()
    return entry.assembledDigest
  }

  /**
   * Hash a task whose digest is known in order as its pieces are stored, so
   * that checking the digest at the end need not read the whole file back
   * (for a 1 GiB image layer, about a second after its last piece). A piece
   * that arrives in order is hashed from the bytes just stored; pieces that
   * arrived ahead of a gap are read back once it is filled.
   */
  private followPrefix (entry: TaskEntry, index: number, bytes: Uint8Array): void {
    if (entry.task.digest == null || entry.assembledDigest != null) {
      return
    }

    const prefix = entry.prefix ??= { hash: createHash('sha256'), next: 0 }

    if (prefix.reading == null && index === prefix.next) {
      prefix.hash.update(bytes)
      prefix.next++
    }

    this.catchUpPrefix(entry)
  }

  /** Read back the pieces present right after the prefix, or finish it */
  private catchUpPrefix (entry: TaskEntry): void {
    const prefix = entry.prefix
    const { pieceCount } = entry.task

    if (prefix == null || prefix.reading != null) {
      return
    }

    if (prefix.next === pieceCount) {
      entry.assembledDigest = `sha256:${prefix.hash.digest('hex')}`
      entry.prefix = undefined
      return
    }

    if (!bitIsSet(entry.have, prefix.next)) {
      return
    }

    const reading = this.track(entry, (async () => {
      while (prefix.next < pieceCount && bitIsSet(entry.have, prefix.next)) {
        prefix.hash.update(await this.readPiece(entry, prefix.next, {}))
        prefix.next++
      }
    })())

    prefix.reading = reading.then(() => {
      prefix.reading = undefined
      // a piece may have landed right after the loop looked
      this.catchUpPrefix(entry)
    }, err => {
      // the digest is then hashed from the file when it is asked for
      this.log('task %s: could not read piece %d back to hash it in order - %e', entry.task.taskId, prefix.next, err)
      prefix.reading = undefined

      if (entry.prefix === prefix) {
        entry.prefix = undefined
      }
    })
  }

  /**
   * The bytes of a complete task in order, for writing it to a stream
   * (stdout, HTTP): each piece is checked against its digest before it is
   * yielded, so corrupt bytes never leave, and the whole file against the
   * task's digest, when known, at the end.
   */
  async * stream (taskId: string, options: AbortOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
    const entry = this.entry(taskId)
    const { task, present } = entry

    if (present !== task.pieceCount) {
      throw new TaskIncompleteError(`Task ${taskId} has ${present} of ${task.pieceCount} pieces - wait for the download to finish`)
    }

    if (entry.assembledDigest != null && task.digest != null && entry.assembledDigest !== task.digest) {
      throw digestMismatch(task, entry.assembledDigest)
    }

    const check = this.orderedCheck(entry)

    for (let i = 0; i < task.pieceCount; i++) {
      const piece = await this.get(taskId, i, options)
      check.piece(i, piece)
      yield piece
    }

    check.end()
  }

  /**
   * Checks for a complete task's bytes read in order: each piece against its
   * digest, then the whole file against the task's digest, hashed only when
   * no earlier pass did (pieces that match their digests assemble to the
   * digest hashed then)
   */
  private orderedCheck (entry: TaskEntry): { piece(index: number, bytes: Uint8Array): void, end(): void } {
    const { task } = entry
    const whole = task.digest != null && entry.assembledDigest == null ? createHash('sha256') : undefined

    return {
      piece: (index, bytes) => {
        if (sha256(bytes) !== task.pieceDigests[index]) {
          throw new PieceDigestMismatchError(`Stored piece ${index} of task ${task.taskId} is corrupt - delete the task and fetch it again`)
        }

        whole?.update(bytes)
      },
      end: () => {
        if (whole != null) {
          entry.assembledDigest = `sha256:${whole.digest('hex')}`
        }

        if (task.digest != null && entry.assembledDigest !== task.digest) {
          throw digestMismatch(task, entry.assembledDigest)
        }
      }
    }
  }

  stats (): StoreStats {
    return { tasks: this.tasks.size, bytesStored: this.bytesStored }
  }

  /**
   * Every task with the bytes of its verified pieces, its last use, and
   * whether an operation on it (a write, read or export) is in progress
   */
  usage (): GcCandidate[] {
    return [...this.tasks.values()].map(e => ({
      taskId: e.task.taskId,
      bytes: e.bytesPresent,
      lastUsedAt: e.lastUsedAt,
      inUse: e.ops.size > 0 || e.writing.size > 0 || (e.reader?.users ?? 0) > 0
    }))
  }

  private async loadTask (taskId: string): Promise<void> {
    const dir = path.join(this.tasksDir, taskId)
    let file

    try {
      file = await readMetadata(path.join(dir, METADATA_FILE))
    } catch (err: any) {
      if (err.name !== InvalidMetadataError.name) {
        throw err
      }

      file = undefined
      this.log.error('%s - removing the task, it will be fetched again when needed', err.message)
    }

    if (file?.task.taskId !== taskId) {
      // a create or delete that did not finish, or unusable metadata
      this.log('removing incomplete task directory %s', dir)
      await fs.rm(dir, { recursive: true, force: true })
      return
    }

    for (const name of await fs.readdir(dir)) {
      if (name.startsWith(`${METADATA_FILE}.tmp-`)) {
        await fs.rm(path.join(dir, name), { force: true })
      }
    }

    const dataSize = await fs.stat(path.join(dir, DATA_FILE)).then(s => s.size, () => -1)

    if (dataSize !== file.task.contentLength) {
      this.log.error('task %s: data file is %d bytes, expected %d - removing the task', taskId, dataSize, file.task.contentLength)
      await fs.rm(dir, { recursive: true, force: true })
      return
    }

    const { task } = file
    const entry = newEntry(task, dir, new Uint8Array(Math.ceil(task.pieceCount / 8)), file.clean)

    // a present piece always has a digest; anything else is dropped
    for (let i = 0; i < task.pieceCount; i++) {
      if (bitIsSet(file.have, i) && task.pieceDigests[i] != null) {
        setBit(entry.have, i)
      }
    }

    const records = await readJournal(path.join(dir, JOURNAL_FILE))

    for (const { index, digest } of records) {
      const known = task.pieceDigests[index]

      if (index >= task.pieceCount || (known != null && known !== digest)) {
        this.log.error('task %s: ignoring journal record for piece %d that does not match the metadata', taskId, index)
        continue
      }

      task.pieceDigests[index] = digest
      setBit(entry.have, index)
    }

    countPresent(entry)
    entry.lastUsedAt = await lastWrittenAt(dir, task.createdAt)

    if (!file.clean || records.length > 0) {
      await this.recover(entry)
    }

    this.tasks.set(taskId, entry)
    this.bytesStored += entry.bytesPresent
  }

  /**
   * Re-hash every present piece of a task that was not closed cleanly, drop
   * those whose bytes do not match, then compact.
   */
  private async recover (entry: TaskEntry): Promise<void> {
    const { task } = entry
    this.log('task %s was not closed cleanly - verifying its %d present pieces', task.taskId, entry.present)
    const data = await fs.open(path.join(entry.dir, DATA_FILE), 'r')
    let dropped = 0

    try {
      const buffer = Buffer.allocUnsafe(Math.min(task.pieceSize, task.contentLength))

      for (let i = 0; i < task.pieceCount; i++) {
        if (!bitIsSet(entry.have, i)) {
          continue
        }

        const range = pieceRange(i, task.contentLength, task.pieceSize)
        const piece = buffer.subarray(0, range.length)
        const read = await readAll(data, piece, range.start)

        if (read !== range.length || sha256(piece) !== task.pieceDigests[i]) {
          clearBit(entry.have, i)
          dropped++
        }
      }
    } finally {
      await data.close()
    }

    if (dropped > 0) {
      this.log.error('task %s: dropped %d present pieces whose bytes do not match their digest', task.taskId, dropped)
    }

    countPresent(entry)

    try {
      await this.compact(entry)
    } catch (err) {
      // the task stays usable; it is verified again on the next open
      this.log.error('could not mark task %s clean after recovery - %e', task.taskId, err)
    }
  }

  /**
   * Fold the journal into metadata and mark the task clean: metadata with
   * the bitfield (still unclean), truncate the journal, metadata clean.
   */
  private async compact (entry: TaskEntry): Promise<void> {
    const { task } = entry

    if (entry.present === task.pieceCount) {
      task.state = 'complete'
      delete task.failure
    } else if (task.state === 'complete') {
      task.state = 'partial'
    }

    entry.clean = false
    await this.persist(entry)

    if (entry.writer != null) {
      await (await entry.writer).journal.truncate()
    } else {
      await truncateFile(path.join(entry.dir, JOURNAL_FILE))
    }

    entry.clean = true
    await this.persist(entry)
  }

  private async putPiece (entry: TaskEntry, index: number, bytes: Uint8Array, options: PutOptions): Promise<void> {
    const { task } = entry
    entry.lastUsedAt = Date.now()
    const range = pieceRange(index, task.contentLength, task.pieceSize)

    if (!(bytes instanceof Uint8Array) || bytes.byteLength !== range.length) {
      throw new InvalidParametersError(`Piece ${index} of task ${task.taskId} must be ${range.length} bytes, got ${bytes?.byteLength} - send the whole piece`)
    }

    const expected = options.expectedDigest == null ? undefined : normalisePieceDigest(options.expectedDigest, index)
    options.signal?.throwIfAborted()
    // the piece protocol already hashed these bytes against expectedDigest: hashing a 1 MiB piece twice cost ~1 CPU-s/GiB (bench/transfer)
    const digest = options.verified === true && expected != null ? expected : sha256(bytes)
    this.checkDigest(entry, index, digest, expected)

    // one write per piece at a time; a second put of the same piece waits
    // and then finds it present
    for (let inFlight = entry.writing.get(index); inFlight != null; inFlight = entry.writing.get(index)) {
      await inFlight.catch(() => {})
    }

    // a digest may have been learned while waiting
    this.checkDigest(entry, index, digest, expected)

    if (bitIsSet(entry.have, index)) {
      return
    }

    const write = this.writePiece(entry, index, range, bytes, digest, options)
    entry.writing.set(index, write)

    try {
      await write
    } finally {
      entry.writing.delete(index)
    }
  }

  private async writePiece (entry: TaskEntry, index: number, range: PieceRange, bytes: Uint8Array, digest: string, options: AbortOptions): Promise<void> {
    const { task } = entry

    // a full disk gets one chance: other tasks may make room (both writes
    // are positional, so a retry overwrites whatever the first left)
    for (let retried = false; ; retried = true) {
      try {
        const { data, journal } = await this.openWriter(entry)
        options.signal?.throwIfAborted()
        await this.writeData(entry, data, bytes, range.start)
        // resolves once the data file and the record are both synced
        await journal.append(index, digest)
        break
      } catch (err) {
        if (!isDiskFull(err)) {
          throw err
        }

        if (retried || !await this.roomForRest(entry)) {
          throw await this.failForDiskFull(entry, err)
        }

        options.signal?.throwIfAborted()
      }
    }

    // setPieceDigests may have run while the bytes were written; the journal
    // record is then ignored on replay too
    this.checkDigest(entry, index, digest, undefined)
    task.pieceDigests[index] = digest
    this.markPresent(entry, index, range.length)
    this.followPrefix(entry, index, bytes)

    if (entry.present === task.pieceCount && task.state !== 'complete') {
      task.state = 'complete'
      delete task.failure
      this.log('task %s is complete', task.taskId)

      // the state is derived from the pieces, so losing this write is harmless
      await this.persist(entry).catch(err => { this.log.error('could not record task %s as complete - %e', task.taskId, err) })
    }
  }

  /**
   * Write piece bytes after the task's previous piece write. Buffered writes
   * to one file serialise on its inode lock anyway; queueing them here keeps
   * the other threadpool threads free for fdatasync and reads instead of
   * spinning on that lock (perf: ~7 % of the receiver's write time).
   */
  private async writeData (entry: TaskEntry, data: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
    const write = entry.dataWrite.then(async () => { await writeAll(data, bytes, position) })
    entry.dataWrite = write.catch(() => {})

    return write
  }

  private async readPiece (entry: TaskEntry, index: number, options: AbortOptions): Promise<Uint8Array> {
    const { task } = entry
    entry.lastUsedAt = Date.now()
    const range = pieceRange(index, task.contentLength, task.pieceSize)

    if (!bitIsSet(entry.have, index)) {
      throw new PieceNotFoundError(`Task ${task.taskId} does not have piece ${index} - fetch it from another peer`)
    }

    options.signal?.throwIfAborted()
    // not allocUnsafe: small buffers would be views into Node's shared pool
    const buffer = Buffer.allocUnsafeSlow(range.length)
    const read = await this.withDataFile(entry, async data => readAll(data, buffer, range.start))

    if (read !== range.length) {
      throw new PieceNotFoundError(`Task ${task.taskId}: the data file ended inside piece ${index} - delete the task and fetch it again`)
    }

    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
  }

  private async importPieces (entry: TaskEntry, source: FileHandle, sourcePath: string, digest: string | undefined, options: AbortOptions): Promise<void> {
    const { task } = entry
    const whole = createHash('sha256')
    const written: Array<{ index: number, digest: string, length: number }> = []

    try {
      const { data, journal } = await this.openWriter(entry)
      const buffer = Buffer.allocUnsafe(Math.min(task.pieceSize, task.contentLength))

      for (let i = 0; i < task.pieceCount; i++) {
        options.signal?.throwIfAborted()
        const range = pieceRange(i, task.contentLength, task.pieceSize)
        const piece = buffer.subarray(0, range.length)

        if (await readAll(source, piece, range.start) !== range.length) {
          throw new InvalidParametersError(`${sourcePath} became shorter while it was imported - do not modify a file during import`)
        }

        whole.update(piece)
        const pieceDigest = sha256(piece)
        this.checkDigest(entry, i, pieceDigest, undefined)

        if (!bitIsSet(entry.have, i) && !entry.writing.has(i)) {
          await writeAll(data, piece, range.start)
          written.push({ index: i, digest: pieceDigest, length: range.length })
        }
      }

      const actual = `sha256:${whole.digest('hex')}`
      const expected = digest ?? task.digest

      if (expected != null && actual !== expected) {
        throw new DigestMismatchError(`${sourcePath} has digest ${actual} but ${expected} was expected - nothing was stored; check the file and the digest`)
      }

      // pieces become present only after the whole file was checked; the
      // journal syncs the data file before it records them
      await Promise.all(written.map(async p => journal.append(p.index, p.digest)))
      task.digest ??= actual
      // every piece, present before or written now, matched the source's
      entry.assembledDigest = actual
    } catch (err) {
      if (isDiskFull(err)) {
        throw await this.failForDiskFull(entry, err)
      }

      throw err
    }

    for (const p of written) {
      task.pieceDigests[p.index] = p.digest
      this.markPresent(entry, p.index, p.length)
    }

    if (entry.present === task.pieceCount) {
      task.state = 'complete'
      delete task.failure
    }

    await this.persist(entry)
    this.log('imported %s as task %s (%d bytes)', sourcePath, task.taskId, task.contentLength)
  }

  private async exportTask (entry: TaskEntry, dest: string, options: ExportOptions): Promise<void> {
    const { task } = entry
    entry.lastUsedAt = Date.now()

    if (entry.present !== task.pieceCount) {
      throw new TaskIncompleteError(`Task ${task.taskId} has ${entry.present} of ${task.pieceCount} pieces - wait for the download to finish before exporting`)
    }

    if (options.overwrite !== true && await exists(dest)) {
      throw new OutputExistsError(`${dest} exists - pass --overwrite to replace it`)
    }

    const tmp = `${dest}${EXPORT_TMP_INFIX}${randomSuffix()}`
    let out: FileHandle | undefined

    try {
      // the kernel copies the data file (a file system with reflinks shares
      // its blocks instead); then the copy itself is read back and checked,
      // so what lands at dest is exactly what was verified
      options.signal?.throwIfAborted()
      await fs.copyFile(path.join(entry.dir, DATA_FILE), tmp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE)
      out = await fs.open(tmp, 'r+')
      await this.checkCopy(entry, out, options)
      await out.sync()
      await out.close()
      out = undefined

      if (options.overwrite === true) {
        await fs.rename(tmp, dest)
      } else {
        await linkNoClobber(tmp, dest)
      }

      await fsyncDir(path.dirname(dest))
      this.log('exported task %s to %s', task.taskId, dest)
    } catch (err: any) {
      if (isDiskFull(err)) {
        throw new StorageFullError(`Could not export task ${task.taskId} to ${dest}: the disk is full - free some space or choose another destination`)
      }

      throw err
    } finally {
      await out?.close().catch(() => {})
      await fs.rm(tmp, { force: true }).catch(() => {})
    }
  }

  /**
   * Check an exported copy of a complete task: its length, every piece
   * against its digest, and the whole file against the task's digest (hashed
   * only when no earlier pass did)
   */
  private async checkCopy (entry: TaskEntry, copy: FileHandle, options: AbortOptions): Promise<void> {
    const { task } = entry
    const { size } = await copy.stat()

    if (size !== task.contentLength) {
      throw new PieceDigestMismatchError(`The data file of task ${task.taskId} holds ${size} bytes, not ${task.contentLength} - delete the task and fetch it again`)
    }

    const check = this.orderedCheck(entry)

    try {
      await scanPieces(copy, task, check.piece, options)
    } catch (err: any) {
      if (err.name === PieceDigestMismatchError.name || options.signal?.aborted === true) {
        throw err
      }

      throw new PieceNotFoundError(`Task ${task.taskId}: the copy could not be read back: ${err.message} - delete the task and fetch it again`)
    }

    check.end()
  }

  private async mergePieceDigests (entry: TaskEntry, digests: Array<string | undefined>): Promise<void> {
    const { task } = entry

    digests.forEach((digest, i) => {
      const known = task.pieceDigests[i]

      if (digest != null && known != null && digest !== known) {
        throw new PieceDigestConflictError(`Piece ${i} of task ${task.taskId} has digest ${known}, not ${digest} - the digest source disagrees with verified data; do not trust it`)
      }
    })

    let changed = false

    digests.forEach((digest, i) => {
      if (digest != null && task.pieceDigests[i] == null) {
        task.pieceDigests[i] = digest
        changed = true
      }
    })

    if (changed) {
      await this.persist(entry)
    }
  }

  private async resumeTask (entry: TaskEntry, init: TaskInit, digest: string | undefined, pieceDigests: Array<string | undefined>, options: AbortOptions): Promise<TaskMetadata> {
    const { task } = entry

    if (task.contentLength !== init.contentLength || task.pieceSize !== init.pieceSize) {
      throw new TaskConflictError(`Task ${task.taskId} exists with ${task.contentLength} bytes in pieces of ${task.pieceSize}, not ${init.contentLength} bytes in pieces of ${init.pieceSize} - the content changed; delete the task first`)
    }

    if (digest != null && task.digest != null && digest !== task.digest) {
      throw new TaskConflictError(`Task ${task.taskId} exists with digest ${task.digest}, not ${digest} - delete the task first`)
    }

    if (digest != null && task.digest == null) {
      task.digest = digest
    }

    await this.track(entry, this.mergePieceDigests(entry, pieceDigests))
    options.signal?.throwIfAborted()

    return copyTask(task)
  }

  private checkDigest (entry: TaskEntry, index: number, digest: string, expected: string | undefined): void {
    for (const want of [expected, entry.task.pieceDigests[index]]) {
      if (want != null && want !== digest) {
        throw new PieceDigestMismatchError(`Piece ${index} of task ${entry.task.taskId} has sha256 ${digest} but ${want} was expected - it was not stored; fetch it again from another peer`)
      }
    }
  }

  /** Bytes the unfinished tasks will still write (sparse data files reserve nothing) */
  private pendingBytes (): number {
    let pending = 0

    for (const entry of this.tasks.values()) {
      if (entry.task.state !== 'failed') {
        pending += entry.task.contentLength - entry.bytesPresent
      }
    }

    return pending
  }

  /**
   * A write of a task being downloaded hit a full disk (other files filled
   * it since the task was created): make room for what the unfinished tasks
   * still write, as for a new task. Resolves to whether there is room now.
   */
  private async roomForRest (entry: TaskEntry): Promise<boolean> {
    entry.makingRoom ??= (async () => {
      if (this.makeRoom == null) {
        return false
      }

      const needed = Math.ceil(this.pendingBytes() * (1 + this.reserveRatio))
      const free = await this.freeBytes()

      if (free >= needed) {
        // made before this write failed, or files were removed meanwhile
        return true
      }

      const freed = await this.makeRoom(needed - free, entry.task.taskId)
      this.log('task %s: the disk was full, %d bytes made room for its remaining %d', entry.task.taskId, freed, entry.task.contentLength - entry.bytesPresent)
      return freed > 0
    })().finally(() => { entry.makingRoom = undefined })

    return entry.makingRoom
  }

  private async checkFreeSpace (taskId: string, contentLength: number): Promise<void> {
    if (contentLength === 0) {
      return
    }

    // sparse data files reserve nothing, so count what other unfinished
    // tasks will still write as well
    const pending = this.pendingBytes()
    const needed = Math.ceil((contentLength + pending) * (1 + this.reserveRatio))
    let free = await this.freeBytes()

    if (free < needed && this.makeRoom != null && await this.makeRoom(needed - free, taskId) > 0) {
      free = await this.freeBytes()
    }

    if (free < needed) {
      throw new InsufficientSpaceError(`Task ${taskId} needs ${needed} bytes free in ${this.dir} (${contentLength} bytes, ${pending} bytes still to come for other tasks, plus ${Math.round(this.reserveRatio * 100)} % head room) but only ${free} bytes are free - free some space, delete tasks or use another data dir`)
    }
  }

  private async freeBytes (): Promise<number> {
    const { bavail, bsize } = await fs.statfs(this.tasksDir)
    return bavail * bsize
  }

  private async failForDiskFull (entry: TaskEntry, err: any): Promise<StorageFullError> {
    const { task } = entry
    const reason = `disk full (${err.code}) writing to ${entry.dir}`
    task.state = 'failed'
    task.failure = reason
    this.log.error('task %s failed: %s', task.taskId, reason)
    await this.persist(entry).catch(err => { this.log.error('could not record task %s as failed - %e', task.taskId, err) })

    return new StorageFullError(`Could not store task ${task.taskId}: ${reason} - free some space and retry`)
  }

  /**
   * Open the task for writing: record `clean: false`, open the data file and
   * the journal. Done once per task per session.
   */
  private async openWriter (entry: TaskEntry): Promise<Writer> {
    if (entry.writer == null) {
      const writer = (async () => {
        entry.clean = false
        await this.persist(entry)
        const data = await fs.open(path.join(entry.dir, DATA_FILE), 'r+')

        try {
          // group commit: the data file is synced once per batch of journal records
          const journal = await Journal.open(path.join(entry.dir, JOURNAL_FILE), { beforeCommit: async () => { await data.datasync() } })
          await fsyncDir(entry.dir)
          return { data, journal }
        } catch (err) {
          await data.close()
          throw err
        }
      })()

      entry.writer = writer
      writer.catch(() => {
        if (entry.writer === writer) {
          entry.writer = undefined
        }
      })
    }

    return entry.writer
  }

  private async closeWriter (entry: TaskEntry): Promise<void> {
    const writer = entry.writer
    entry.writer = undefined

    if (writer == null) {
      return
    }

    try {
      const { data, journal } = await writer
      await journal.close()
      await data.close()
    } catch (err) {
      this.log.error('could not close the files of task %s - %e', entry.task.taskId, err)
    }
  }

  /**
   * Run `fn` with a handle on the data file: the writer's when the task is
   * open for writing, else the task's cached read-only one.
   */
  private async withDataFile<T> (entry: TaskEntry, fn: (data: FileHandle) => Promise<T>): Promise<T> {
    if (entry.writer != null) {
      return fn((await entry.writer).data)
    }

    const reader = this.acquireReader(entry)

    try {
      return await fn(await reader.handle)
    } finally {
      reader.users--

      if (reader.retired && reader.users === 0) {
        await this.closeReaderHandle(reader)
      }
    }
  }

  /**
   * The task's read handle (opened on first use), marked most recently used
   * and counted as in use; beyond maxReadHandles the least recently used
   * handles are retired.
   */
  private acquireReader (entry: TaskEntry): Reader {
    let reader = entry.reader

    if (reader != null) {
      this.readers.delete(reader)
      this.readers.add(reader)
    } else {
      const created: Reader = { entry, handle: fs.open(path.join(entry.dir, DATA_FILE), 'r'), users: 0, retired: false }
      // a failed open is not cached: the next read tries again
      created.handle.catch(() => { this.retireReader(created) })
      entry.reader = created
      this.readers.add(created)
      reader = created
    }

    reader.users++

    for (const oldest of this.readers) {
      if (this.readers.size <= this.maxReadHandles) {
        break
      }

      this.retireReader(oldest)
    }

    return reader
  }

  /** Stop handing out `reader`; it is closed now if unused, else by its last user */
  private retireReader (reader: Reader): void {
    if (!reader.retired) {
      reader.retired = true
      this.readers.delete(reader)

      if (reader.entry.reader === reader) {
        reader.entry.reader = undefined
      }
    }

    if (reader.users === 0) {
      void this.closeReaderHandle(reader)
    }
  }

  /** Retire the task's read handle and wait until it is closed (no read may be running) */
  private async closeReader (entry: TaskEntry): Promise<void> {
    const reader = entry.reader

    if (reader != null) {
      this.retireReader(reader)
      await reader.closing
    }
  }

  private async closeReaderHandle (reader: Reader): Promise<void> {
    reader.closing ??= reader.handle.then(async data => { await data.close() }, () => {})
      .catch(err => { this.log.error('could not close the data file of task %s - %e', reader.entry.task.taskId, err) })

    return reader.closing
  }

  /**
   * Write metadata.json atomically with the state at the time of writing;
   * writes of one task run one after another.
   */
  private async persist (entry: TaskEntry): Promise<void> {
    const write = entry.metadataWrite.catch(() => {}).then(async () => {
      await writeFileAtomic(path.join(entry.dir, METADATA_FILE), encodeMetadata({
        task: entry.task,
        have: entry.have,
        clean: entry.clean
      }))
    })

    entry.metadataWrite = write

    return write
  }

  private markPresent (entry: TaskEntry, index: number, length: number): void {
    if (!bitIsSet(entry.have, index)) {
      setBit(entry.have, index)
      entry.present++
      entry.bytesPresent += length
      this.waiters.notify(entry.task.taskId, index)

      if (this.tasks.get(entry.task.taskId) === entry) {
        this.bytesStored += length
      }
    }
  }

  private entry (taskId: string): TaskEntry {
    this.assertOpen()
    const entry = this.tasks.get(taskId)

    if (entry == null) {
      throw new TaskNotFoundError(`Task ${taskId} is not in the store at ${this.dir} - create or import it first`)
    }

    return entry
  }

  private assertOpen (): void {
    if (this.status !== 'open') {
      throw new NotStartedError(`The piece store at ${this.dir} is not open - call open() first`)
    }
  }

  private async track<T> (entry: TaskEntry, op: Promise<T>): Promise<T> {
    entry.ops.add(op)

    try {
      return await op
    } finally {
      entry.ops.delete(op)
    }
  }

  private async withLock<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(key) ?? Promise.resolve()).then(fn)
    const tail = run.catch(() => {})
    this.locks.set(key, tail)

    try {
      return await run
    } finally {
      if (this.locks.get(key) === tail) {
        this.locks.delete(key)
      }
    }
  }
}

/**
 * `obj` without its undefined properties, so optional metadata fields are
 * absent rather than present-but-undefined
 */
function definedOnly<T extends Record<string, unknown>> (obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v != null)) as Partial<T>
}

function newEntry (task: TaskMetadata, dir: string, have: Uint8Array, clean: boolean): TaskEntry {
  return {
    task,
    dir,
    have,
    present: 0,
    bytesPresent: 0,
    clean,
    writing: new Map(),
    dataWrite: Promise.resolve(),
    ops: new Set(),
    metadataWrite: Promise.resolve(),
    lastUsedAt: Date.now()
  }
}

/** When a task's files were last written (what stands for its last use after a restart; its creation when none can be read) */
async function lastWrittenAt (dir: string, createdAt: number): Promise<number> {
  const mtimes = await Promise.all([DATA_FILE, METADATA_FILE, JOURNAL_FILE].map(async f => fs.stat(path.join(dir, f)).then(s => s.mtimeMs, () => 0)))
  const last = Math.max(...mtimes)
  return last > 0 ? last : createdAt
}

function countPresent (entry: TaskEntry): void {
  const { task } = entry
  entry.present = 0
  entry.bytesPresent = 0

  for (let i = 0; i < task.pieceCount; i++) {
    if (bitIsSet(entry.have, i)) {
      entry.present++
      entry.bytesPresent += pieceRange(i, task.contentLength, task.pieceSize).length
    }
  }
}

function digestMismatch (task: TaskMetadata, actual: string | undefined): Error {
  return new DigestMismatchError(`Task ${task.taskId} assembles to ${actual} but its digest is ${task.digest} - delete the task and fetch it again`)
}

function copyTask (task: TaskMetadata): TaskMetadata {
  return { ...task, pieceDigests: [...task.pieceDigests] }
}

function setBit (bits: Uint8Array, i: number): void {
  bits[i >> 3] |= 0x80 >> (i & 7)
}

function clearBit (bits: Uint8Array, i: number): void {
  bits[i >> 3] &= ~(0x80 >> (i & 7))
}

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function validateTaskId (taskId: string): string {
  if (!isTaskId(taskId)) {
    throw new InvalidParametersError(`Invalid task id ${JSON.stringify(taskId)} - expected 64 lowercase hex digits, as made by taskId()`)
  }

  return taskId
}

function normalisePieceDigest (digest: string, index: number): string {
  if (!isSha256Hex(digest)) {
    throw new InvalidParametersError(`Invalid digest ${JSON.stringify(digest)} for piece ${index} - expected 64 hex digits of sha256`)
  }

  return digest.toLowerCase()
}

function normalisePieceDigests (digests: Array<string | undefined | null>, count: number): Array<string | undefined> {
  if (!Array.isArray(digests) || digests.length !== count) {
    throw new InvalidParametersError(`Expected ${count} piece digests, got ${digests?.length} - pass one entry per piece, undefined where unknown`)
  }

  return digests.map((d, i) => d == null ? undefined : normalisePieceDigest(d, i))
}

async function settle (ops: Set<Promise<unknown>>): Promise<void> {
  while (ops.size > 0) {
    await Promise.allSettled([...ops])
  }
}

async function exists (file: string): Promise<boolean> {
  return fs.lstat(file).then(() => true, (err) => {
    if (err.code === 'ENOENT') {
      return false
    }

    throw err
  })
}

async function truncateFile (file: string): Promise<void> {
  let handle: FileHandle

  try {
    handle = await fs.open(file, 'r+')
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return
    }

    throw err
  }

  try {
    await handle.truncate(0)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Move `tmp` to `dest` unless `dest` exists, atomically where the file
 * system supports hard links (link fails with EEXIST instead of replacing).
 * The caller removes `tmp` afterwards.
 */
async function linkNoClobber (tmp: string, dest: string): Promise<void> {
  try {
    await fs.link(tmp, dest)
  } catch (err: any) {
    if (err.code === 'EEXIST') {
      throw new OutputExistsError(`${dest} exists - pass --overwrite to replace it`)
    }

    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(err.code)) {
      throw err
    }

    if (await exists(dest)) {
      throw new OutputExistsError(`${dest} exists - pass --overwrite to replace it`)
    }

    await fs.rename(tmp, dest)
  }
}

/** The store's tasks with when each was last written, read or exported (epoch ms) */
export function listTasks (store: FsPieceStore): Array<TaskMetadata & { lastUsedAt?: number }> {
  const used = new Map(store.usage().map(u => [u.taskId, u.lastUsedAt]))
  return store.listTasks().map(t => ({ ...t, lastUsedAt: used.get(t.taskId) }))
}
