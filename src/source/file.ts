import '../polyfill.ts'
import { open, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { AbortError, InvalidParametersError } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { LOG_NAMESPACE } from './constants.ts'
import { SourceChangedError, SourceForbiddenError, SourceNotFoundError, SourceTruncatedError } from './errors.ts'
import { compareValidators, describeChange } from './http-headers.ts'
import { validateRange } from './utils.ts'
import type { Validator } from './http-headers.ts'
import type { ReadRangeOptions, SourceClient, SourceClientInit, SourceRequestOptions, SourceStat } from './index.ts'
import type { Logger } from '@libp2p/interface'
import type { Stats } from 'node:fs'

/**
 * Reads files from `file://` URLs on this machine. The ETag is derived from
 * mtime and size (as nginx does), so a rewritten file is detected.
 */
export class FileSource implements SourceClient {
  readonly schemes = ['file']
  private readonly log: Logger
  private readonly onBytes?: (bytes: number) => void

  constructor (init: SourceClientInit = {}) {
    this.log = (init.logger ?? defaultLogger()).forComponent(`${LOG_NAMESPACE}:file`)
    this.onBytes = init.onBytes
  }

  async stat (url: string, options: SourceRequestOptions = {}): Promise<SourceStat> {
    const path = toPath(url)
    throwIfAborted(url, options)

    let stats: Stats

    try {
      stats = await stat(path)
    } catch (err: any) {
      throw mapFsError(err, url)
    }

    checkRegularFile(stats, url)

    return {
      url,
      finalUrl: url,
      contentLength: stats.size,
      ...validatorOf(stats),
      acceptRanges: true
    }
  }

  async * readRange (url: string, options: ReadRangeOptions): AsyncGenerator<Uint8Array, void, undefined> {
    const path = toPath(url)
    validateRange(url, options.start, options.end)
    throwIfAborted(url, options)

    const { start, end } = options

    let handle

    try {
      handle = await open(path, 'r')
    } catch (err: any) {
      throw mapFsError(err, url)
    }

    try {
      const stats = await handle.stat()
      checkRegularFile(stats, url)
      const actual = validatorOf(stats)

      if (options.validator != null && compareValidators(options.validator, actual) === 'changed') {
        throw new SourceChangedError(`the file at ${url} changed during the download (${describeChange(options.validator, actual)}); start the download again`)
      }

      // an empty range must not reach createReadStream, which would read to the end of the file
      if (start === end) {
        return
      }

      if (end > stats.size) {
        throw new SourceTruncatedError(`${url} has ${stats.size} bytes, fewer than the requested range [${start}, ${end}) needs; stat it and start the download again`)
      }

      let position = start

      for await (const chunk of handle.createReadStream({ start, end: end - 1, autoClose: false, signal: options.signal }) as AsyncIterable<Buffer>) {
        this.onBytes?.(chunk.byteLength)
        position += chunk.byteLength
        yield chunk
      }

      if (position !== end) {
        throw new SourceTruncatedError(`${url} ended at byte ${position}, before the end of the range [${start}, ${end}); it was probably truncated while being read - start the download again`)
      }
    } catch (err: any) {
      if (options.signal?.aborted === true) {
        throw new AbortError(`reading ${url} was aborted`)
      }

      throw mapFsError(err, url)
    } finally {
      await handle.close().catch(err => {
        this.log.error('could not close %s - %e', url, err)
      })
    }
  }
}

function toPath (url: string): string {
  try {
    return fileURLToPath(url)
  } catch (err: any) {
    throw new InvalidParametersError(`cannot read ${url}: ${err.message}; give a local file URL such as file:///srv/data/file.bin`)
  }
}

function throwIfAborted (url: string, options: SourceRequestOptions): void {
  if (options.signal?.aborted === true) {
    throw new AbortError(`reading ${url} was aborted`)
  }
}

function checkRegularFile (stats: Stats, url: string): void {
  if (!stats.isFile()) {
    throw new SourceNotFoundError(`${url} is not a regular file (a directory or device); give the URL of a file`)
  }
}

/** Shaped like nginx's ETag (hex mtime, hex size), with the mtime in ms to catch quick rewrites */
function validatorOf (stats: Stats): Validator {
  return {
    etag: `"${Math.floor(stats.mtimeMs).toString(16)}-${stats.size.toString(16)}"`,
    lastModified: stats.mtime.toUTCString()
  }
}

/**
 * Map an fs error to the errors the http client throws for the same cases;
 * other errors (EIO, EMFILE...) pass through unchanged
 */
function mapFsError (err: any, url: string): Error {
  if (!(err instanceof Error)) {
    return new Error(String(err))
  }

  const code = (err as NodeJS.ErrnoException).code

  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new SourceNotFoundError(`${url} does not exist (${code}); check the path`)
  }

  if (code === 'EACCES' || code === 'EPERM') {
    return new SourceForbiddenError(`no permission to read ${url} (${code}); check the file's permissions and the user Damselfly runs as`)
  }

  if (code === 'EISDIR') {
    return new SourceNotFoundError(`${url} is a directory; give the URL of a file`)
  }

  return err
}
