/**
 * The node identity file exists but cannot be used
 */
export class IdentityError extends Error {
  static name = 'IdentityError'

  constructor (message = 'The node identity cannot be loaded') {
    super(message)
    this.name = 'IdentityError'
  }
}
