/**
 * Errors shared by every module. Module-specific errors live in
 * `<module>/errors.ts`; callers branch on `err.name`, never on the message.
 */

/**
 * A configuration value is invalid. The message names the key path and what
 * is allowed.
 */
export class ConfigError extends Error {
  static name = 'ConfigError'

  constructor (message = 'Invalid configuration') {
    super(message)
    this.name = 'ConfigError'
  }
}

/**
 * A command was used wrongly (bad flag, missing argument)
 */
export class UsageError extends Error {
  static name = 'UsageError'

  constructor (message = 'Invalid usage') {
    super(message)
    this.name = 'UsageError'
  }
}

/**
 * No daemon answers on the control socket or address
 */
export class DaemonNotRunningError extends Error {
  static name = 'DaemonNotRunningError'

  constructor (message = 'No Damselfly daemon is running') {
    super(message)
    this.name = 'DaemonNotRunningError'
  }
}
