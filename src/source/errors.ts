/**
 * Errors of the back-to-source clients. Callers branch on `err.name` (the CLI
 * maps names to exit codes), never on the message. Messages say what went
 * wrong, for which URL, and what to do about it.
 */

/**
 * The URL's scheme has no registered client
 */
export class UnsupportedSchemeError extends Error {
  static name = 'UnsupportedSchemeError'

  constructor (message = 'This URL scheme is not supported; use one of the supported schemes') {
    super(message)
    this.name = 'UnsupportedSchemeError'
  }
}

/**
 * The origin did not say how long the file is (no Content-Length, no
 * Content-Range total). Damselfly needs the length up front to cut the file
 * into pieces.
 */
export class LengthRequiredError extends Error {
  static name = 'LengthRequiredError'

  constructor (message = 'The origin did not report the file length; serve the file with a Content-Length header') {
    super(message)
    this.name = 'LengthRequiredError'
  }
}

/**
 * The file at the origin is not the version the download started with (its
 * ETag or Last-Modified changed). No bytes of the new version were returned.
 */
export class SourceChangedError extends Error {
  static name = 'SourceChangedError'

  constructor (message = 'The file changed at the origin during the download; start the download again') {
    super(message)
    this.name = 'SourceChangedError'
  }
}

/**
 * HTTP 404/410, or a file that does not exist
 */
export class SourceNotFoundError extends Error {
  static name = 'SourceNotFoundError'

  constructor (message = 'The file was not found at the origin; check the URL') {
    super(message)
    this.name = 'SourceNotFoundError'
  }
}

/**
 * HTTP 401/403, or a file we may not read
 */
export class SourceForbiddenError extends Error {
  static name = 'SourceForbiddenError'

  constructor (message = 'The origin refused access to the file; check the credentials sent with the request') {
    super(message)
    this.name = 'SourceForbiddenError'
  }
}

/**
 * Any other HTTP status that is not retried (4xx), or a 5xx/408/429 that
 * persisted through every retry. `status` holds the HTTP status code.
 */
export class SourceHttpError extends Error {
  static name = 'SourceHttpError'
  public readonly status?: number

  constructor (message = 'The origin answered with an HTTP error', status?: number) {
    super(message)
    this.name = 'SourceHttpError'
    this.status = status
  }
}

/**
 * The origin could not be reached: connection refused or reset, DNS failure,
 * no route to host, TLS failure. `cause` holds the underlying error.
 */
export class SourceUnreachableError extends Error {
  static name = 'SourceUnreachableError'

  constructor (message = 'The origin could not be reached; check the host name, port and network', options?: ErrorOptions) {
    super(message, options)
    this.name = 'SourceUnreachableError'
  }
}

/**
 * Connecting, waiting for response headers, or waiting for the next chunk of
 * the body took longer than the timeout
 */
export class SourceTimeoutError extends Error {
  static name = 'SourceTimeoutError'

  constructor (message = 'The origin did not answer in time; check that it is up or raise the timeout', options?: ErrorOptions) {
    super(message, options)
    this.name = 'SourceTimeoutError'
  }
}

/**
 * The response (or file) ended before the requested range was complete
 */
export class SourceTruncatedError extends Error {
  static name = 'SourceTruncatedError'

  constructor (message = 'The origin sent fewer bytes than requested; try again') {
    super(message)
    this.name = 'SourceTruncatedError'
  }
}

/**
 * The origin answered with something that contradicts HTTP or the request:
 * a Content-Range for other bytes than asked, an unparseable length
 */
export class SourceInvalidResponseError extends Error {
  static name = 'SourceInvalidResponseError'

  constructor (message = 'The origin sent an invalid response; report this to whoever runs the origin') {
    super(message)
    this.name = 'SourceInvalidResponseError'
  }
}
