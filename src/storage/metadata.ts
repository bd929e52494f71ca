/**
 * metadata.json: (de)serialisation and validation.
 */
import fs from 'node:fs/promises'
import { isSha256Hex, normaliseDigest } from '../task/digest.ts'
import { pieceCount } from '../task/piece-size.ts'
import { MAX_METADATA_BYTES } from './constants.ts'
import { InvalidMetadataError, UnsupportedMetadataVersionError } from './errors.ts'
import type { TaskMetadata, TaskState } from './index.ts'

const FORMAT_VERSION = 1
export const TASK_STATES: readonly TaskState[] = ['partial', 'complete', 'failed']
const TASK_ID_RE = /^[0-9a-f]{64}$/
const OPTIONAL_STRINGS = ['url', 'digest', 'etag', 'lastModified', 'failure'] as const

export interface MetadataFile {
  task: TaskMetadata

  /**
   * Pieces known present when the file was written (MSB-first bitfield)
   */
  have: Uint8Array

  /**
   * False while the task is open for writing
   */
  clean: boolean
}

interface MetadataJson {
  version: number
  clean: boolean
  have: string
  task: Omit<TaskMetadata, 'pieceDigests'> & { pieceDigests: Array<string | null> }
}

export function isTaskId (s: unknown): s is string {
  return typeof s === 'string' && TASK_ID_RE.test(s)
}

export function encodeMetadata (file: MetadataFile): string {
  const json: MetadataJson = {
    version: FORMAT_VERSION,
    clean: file.clean,
    have: Buffer.from(file.have).toString('base64'),
    task: { ...file.task, pieceDigests: file.task.pieceDigests.map(d => d ?? null) }
  }

  return JSON.stringify(json)
}

/**
 * Parse and validate metadata.json.
 *
 * @throws {Error} saying what is wrong when the content is not valid metadata
 */
export function decodeMetadata (text: string): MetadataFile {
  const json = JSON.parse(text)

  if (typeof json?.version === 'number' && json.version > FORMAT_VERSION) {
    throw new UnsupportedMetadataVersionError(`metadata format ${json.version} is newer than the supported ${FORMAT_VERSION} - upgrade Damselfly or use another data dir`)
  }

  if (json?.version !== FORMAT_VERSION) {
    throw new Error(`unknown metadata version ${json?.version}`)
  }

  if (typeof json.clean !== 'boolean') {
    throw new Error('invalid clean flag')
  }

  const task = decodeTask(json.task)
  const have = Buffer.from(typeof json.have === 'string' ? json.have : '', 'base64')

  if (have.byteLength !== Math.ceil(task.pieceCount / 8)) {
    throw new Error('invalid have bitfield')
  }

  return { task, have: new Uint8Array(have), clean: json.clean }
}

function decodeTask (t: any): TaskMetadata {
  if (t == null || typeof t !== 'object' || !isTaskId(t.taskId)) {
    throw new Error('missing or invalid taskId')
  }

  const count = pieceCount(t.contentLength, t.pieceSize)

  if (t.pieceCount !== count) {
    throw new Error(`pieceCount ${t.pieceCount} does not match contentLength and pieceSize`)
  }

  if (!Array.isArray(t.pieceDigests) || t.pieceDigests.length !== count || !t.pieceDigests.every((d: unknown) => d == null || isSha256Hex(d))) {
    throw new Error('invalid pieceDigests')
  }

  if (!TASK_STATES.includes(t.state) || typeof t.createdAt !== 'number') {
    throw new Error('invalid state or createdAt')
  }

  const task: TaskMetadata = {
    taskId: t.taskId,
    contentLength: t.contentLength,
    pieceSize: t.pieceSize,
    pieceCount: count,
    pieceDigests: t.pieceDigests.map((d: string | null) => d?.toLowerCase() ?? undefined),
    createdAt: t.createdAt,
    state: t.state
  }

  for (const key of OPTIONAL_STRINGS) {
    if (t[key] == null) {
      continue
    }

    if (typeof t[key] !== 'string') {
      throw new Error(`invalid ${key}`)
    }

    task[key] = key === 'digest' ? normaliseDigest(t[key]) : t[key]
  }

  return task
}

/**
 * Read metadata.json; `undefined` when the file does not exist.
 */
export async function readMetadata (path: string): Promise<MetadataFile | undefined> {
  let handle

  try {
    handle = await fs.open(path, 'r')
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return undefined
    }

    throw err
  }

  try {
    const { size } = await handle.stat()

    if (size > MAX_METADATA_BYTES) {
      throw new InvalidMetadataError(`Invalid metadata in ${path}: it is ${size} bytes, more than the limit of ${MAX_METADATA_BYTES}`)
    }

    const text = await handle.readFile('utf8')

    try {
      return decodeMetadata(text)
    } catch (err: any) {
      if (err.name === UnsupportedMetadataVersionError.name) {
        throw new UnsupportedMetadataVersionError(`${path}: ${err.message}`)
      }

      throw new InvalidMetadataError(`Invalid metadata in ${path}: ${err.message}`)
    }
  } finally {
    await handle.close()
  }
}
