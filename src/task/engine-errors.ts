/**
 * No peer can give the task and the origin may not (or cannot) be used
 */
export class NoSourceError extends Error {
  static name = 'NoSourceError'

  constructor (message = 'No peer has the file and back-to-source is not possible') {
    super(message)
    this.name = 'NoSourceError'
  }
}

/**
 * The download was cancelled
 */
export class DownloadCancelledError extends Error {
  static name = 'DownloadCancelledError'

  constructor (message = 'The download was cancelled') {
    super(message)
    this.name = 'DownloadCancelledError'
  }
}

/**
 * The task's content is not what this node had of it (the origin changed)
 */
export class TaskChangedError extends Error {
  static name = 'TaskChangedError'

  constructor (message = 'The file changed at the origin') {
    super(message)
    this.name = 'TaskChangedError'
  }
}
