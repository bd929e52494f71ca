import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { normaliseDigest } from './digest.ts'
import { taskId as computeTaskId } from './id.ts'
import type { FsPieceStore, TaskMetadata } from '../storage/index.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface ImportRequest {
  /** the URL the file is known by (its task id then comes from the URL) */
  url?: string
  /** the file's whole-file digest; computed when neither url nor digest is given */
  digest?: string
  tag?: string
  application?: string
}

/**
 * Add a local file to the store as a complete task. Its id comes from the
 * digest when one is given (or computed, when there is no URL either), so
 * `damselfly get sha256:<hex>` on any node finds it; else from the URL.
 */
export async function importFile (store: FsPieceStore, path: string, request: ImportRequest = {}, options: AbortOptions = {}): Promise<TaskMetadata> {
  let digest = request.digest != null ? normaliseDigest(request.digest) : undefined
  if (digest == null && request.url == null) {
    digest = `sha256:${await sha256File(path, options)}`
  }
  const id = computeTaskId({ url: request.url, digest, tag: request.tag, application: request.application })
  return store.import(path, { taskId: id, url: request.url, digest, signal: options.signal })
}

export async function sha256File (path: string, options: AbortOptions = {}): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of fs.createReadStream(path, { highWaterMark: 1024 * 1024, signal: options.signal })) {
    hash.update(chunk)
  }
  return hash.digest('hex')
}
