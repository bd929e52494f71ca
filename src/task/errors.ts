/**
 * A content digest is not of the form `sha256:<64 hex digits>`.
 */
export class InvalidDigestError extends Error {
  static name = 'InvalidDigestError'

  constructor (message = 'Invalid digest - expected "sha256:" followed by 64 hex digits') {
    super(message)
    this.name = 'InvalidDigestError'
  }
}

/**
 * A task URL could not be parsed.
 */
export class InvalidUrlError extends Error {
  static name = 'InvalidUrlError'

  constructor (message = 'Invalid URL - pass an absolute URL such as https://example.com/file') {
    super(message)
    this.name = 'InvalidUrlError'
  }
}

/**
 * A file needs more than `MAX_PIECE_COUNT` pieces of `MAX_PIECE_SIZE` bytes.
 */
export class TaskTooLargeError extends Error {
  static name = 'TaskTooLargeError'

  constructor (message = 'The file is too large to be split into pieces') {
    super(message)
    this.name = 'TaskTooLargeError'
  }
}
