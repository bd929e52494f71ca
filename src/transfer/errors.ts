/**
 * Errors of the piece protocol. Generic cases reuse `@libp2p/interface` errors
 * (TimeoutError, AbortError, InvalidParametersError, InvalidMessageError,
 * ProtocolError, NotStartedError); the classes below are specific to transfer.
 */

/** A length prefix announced a frame larger than the protocol allows; the stream is aborted before allocating */
export class FrameTooLargeError extends Error {
  static name = 'FrameTooLargeError'

  constructor (message = 'Length-prefixed frame exceeds the protocol maximum; the peer is misbehaving or speaks another protocol version') {
    super(message)
    this.name = 'FrameTooLargeError'
  }
}

/** The stream ended in the middle of a frame or before every requested index was answered */
export class UnexpectedEndOfStreamError extends Error {
  static name = 'UnexpectedEndOfStreamError'

  constructor (message = 'The peer closed the stream before answering every requested piece; request the rest from another peer') {
    super(message)
    this.name = 'UnexpectedEndOfStreamError'
  }
}

/** The received piece does not hash to the digest from the task's manifest */
export class BadPieceError extends Error {
  static name = 'BadPieceError'

  constructor (message = 'Piece digest does not match the expected sha256; the piece was dropped, block or report the peer') {
    super(message)
    this.name = 'BadPieceError'
  }
}

/** The peer answered ERROR for a piece; the message is the peer's own reason */
export class RemotePieceError extends Error {
  static name = 'RemotePieceError'

  constructor (message = 'The peer failed to read the piece; request it from another peer') {
    super(message)
    this.name = 'RemotePieceError'
  }
}
