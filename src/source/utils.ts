import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import { DAMSELFLY_VERSION } from '../version.ts'
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

/**
 * `damselfly/<version>`
 */
export function defaultUserAgent (): string {
  return `${USER_AGENT_PRODUCT}/${DAMSELFLY_VERSION}`
}
