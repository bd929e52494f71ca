import '../polyfill.ts'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidParametersError } from '@libp2p/interface'
import { USER_AGENT_PRODUCT } from './constants.ts'

/**
 * Check a [start, end) byte range given by a caller
 *
 * @throws {InvalidParametersError} if the range is not a valid [start, end)
 */
export function validateRange (url: string, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new InvalidParametersError(`invalid byte range [${start}, ${end}) for ${url}: start and end must be integers with 0 <= start <= end (end is exclusive)`)
  }
}

let userAgent: string | undefined

/**
 * `damselfly/<version>`, the version read once from the package.json of this
 * package (found by walking up from this file, which works from src/, dist/
 * and test builds alike)
 */
export function defaultUserAgent (): string {
  if (userAgent != null) {
    return userAgent
  }

  let version = 'unknown'
  let dir = dirname(fileURLToPath(import.meta.url))

  for (let depth = 0; depth < 8; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))

      if (pkg.name === USER_AGENT_PRODUCT && typeof pkg.version === 'string') {
        version = pkg.version
        break
      }
    } catch {
      // no readable package.json here, look further up
    }

    const parent = dirname(dir)

    if (parent === dir) {
      break
    }

    dir = parent
  }

  userAgent = `${USER_AGENT_PRODUCT}/${version}`
  return userAgent
}
