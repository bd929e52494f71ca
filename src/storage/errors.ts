/**
 * No task with this id is in the store.
 */
export class TaskNotFoundError extends Error {
  static name = 'TaskNotFoundError'

  constructor (message = 'Task not found - create or import it first') {
    super(message)
    this.name = 'TaskNotFoundError'
  }
}

/**
 * A task already exists with a different length or piece size.
 */
export class TaskConflictError extends Error {
  static name = 'TaskConflictError'

  constructor (message = 'The task exists with a different geometry - delete it first') {
    super(message)
    this.name = 'TaskConflictError'
  }
}

/**
 * The file system does not have room for a new task (checked up front).
 */
export class InsufficientSpaceError extends Error {
  static name = 'InsufficientSpaceError'

  constructor (message = 'Not enough free disk space for the task - free some space or use another data dir') {
    super(message)
    this.name = 'InsufficientSpaceError'
  }
}

/**
 * A write failed because the disk or quota is full (ENOSPC/EDQUOT).
 */
export class StorageFullError extends Error {
  static name = 'StorageFullError'

  constructor (message = 'The disk is full - free some space and retry the task') {
    super(message)
    this.name = 'StorageFullError'
  }
}

/**
 * The bytes of a piece do not hash to the digest expected for it. Nothing was
 * written.
 */
export class PieceDigestMismatchError extends Error {
  static name = 'PieceDigestMismatchError'

  constructor (message = 'Piece digest mismatch - the bytes were not stored; fetch the piece again from another peer') {
    super(message)
    this.name = 'PieceDigestMismatchError'
  }
}

/**
 * A piece digest learned later contradicts the one already known.
 */
export class PieceDigestConflictError extends Error {
  static name = 'PieceDigestConflictError'

  constructor (message = 'Piece digest conflicts with the known digest') {
    super(message)
    this.name = 'PieceDigestConflictError'
  }
}

/**
 * The piece is not (yet) in the store.
 */
export class PieceNotFoundError extends Error {
  static name = 'PieceNotFoundError'

  constructor (message = 'Piece not found') {
    super(message)
    this.name = 'PieceNotFoundError'
  }
}

/**
 * The whole-file digest of the content is not the expected one.
 */
export class DigestMismatchError extends Error {
  static name = 'DigestMismatchError'

  constructor (message = 'Digest mismatch') {
    super(message)
    this.name = 'DigestMismatchError'
  }
}

/**
 * The task is missing pieces, so it cannot be exported.
 */
export class TaskIncompleteError extends Error {
  static name = 'TaskIncompleteError'

  constructor (message = 'The task is not complete - finish the download first') {
    super(message)
    this.name = 'TaskIncompleteError'
  }
}

/**
 * The export destination exists and overwriting was not asked for.
 */
export class OutputExistsError extends Error {
  static name = 'OutputExistsError'

  constructor (message = 'The output file exists - pass --overwrite to replace it') {
    super(message)
    this.name = 'OutputExistsError'
  }
}

/**
 * A task's metadata.json could not be parsed or is inconsistent.
 */
export class InvalidMetadataError extends Error {
  static name = 'InvalidMetadataError'

  constructor (message = 'Invalid task metadata') {
    super(message)
    this.name = 'InvalidMetadataError'
  }
}

/**
 * A task's metadata was written by a newer version of Damselfly. The task is
 * left on disk untouched.
 */
export class UnsupportedMetadataVersionError extends Error {
  static name = 'UnsupportedMetadataVersionError'

  constructor (message = 'The task metadata was written by a newer version - upgrade Damselfly or use another data dir') {
    super(message)
    this.name = 'UnsupportedMetadataVersionError'
  }
}
