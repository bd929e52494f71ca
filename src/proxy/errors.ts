/**
 * The request names an upstream registry this proxy may not contact
 */
export class UpstreamNotAllowedError extends Error {
  static name = 'UpstreamNotAllowedError'

  constructor (message = 'This registry is not allowed by the proxy; add its host to proxy.allowHosts') {
    super(message)
    this.name = 'UpstreamNotAllowedError'
  }
}

/**
 * The request names no upstream registry and none is configured
 */
export class NoUpstreamError extends Error {
  static name = 'NoUpstreamError'

  constructor (message = 'No upstream registry for this request; set proxy.registryMirror or send the X-Damselfly-Registry header') {
    super(message)
    this.name = 'NoUpstreamError'
  }
}

/**
 * An upstream registry given in config, a header or `?ns=` is not a valid
 * registry address
 */
export class InvalidUpstreamError extends Error {
  static name = 'InvalidUpstreamError'

  constructor (message = 'The upstream registry is not a valid address; give https://host[:port] or host[:port]') {
    super(message)
    this.name = 'InvalidUpstreamError'
  }
}

/**
 * The upstream registry could not be reached or did not answer in time
 */
export class UpstreamUnavailableError extends Error {
  static name = 'UpstreamUnavailableError'
  public readonly timeout: boolean

  constructor (message = 'The upstream registry could not be reached; check that it is up and reachable from this node', timeout = false, options?: ErrorOptions) {
    super(message, options)
    this.name = 'UpstreamUnavailableError'
    this.timeout = timeout
  }
}

/**
 * A blob's task was dropped (e.g. its digest did not match) while a response
 * was reading it
 */
export class BlobUnavailableError extends Error {
  static name = 'BlobUnavailableError'

  constructor (message = 'The blob is no longer in the local store; request it again') {
    super(message)
    this.name = 'BlobUnavailableError'
  }
}
