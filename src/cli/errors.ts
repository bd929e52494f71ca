import { EXIT } from './exit-codes.ts'

/**
 * The exit code for an error, by its name
 */
export function errorExitCode (err: any): number {
  switch (err?.name) {
    case 'UsageError':
    case 'ConfigError':
    case 'InvalidDigestError':
    case 'InvalidUrlError':
      return EXIT.USAGE
    case 'DaemonNotRunningError':
      return EXIT.NO_DAEMON
    case 'SourceNotFoundError':
      return EXIT.ORIGIN_NOT_FOUND
    case 'SourceUnreachableError':
      return EXIT.ORIGIN_UNREACHABLE
    case 'SourceForbiddenError':
    case 'SourceHttpError':
    case 'SourceChangedError':
    case 'SourceTruncatedError':
    case 'SourceInvalidResponseError':
    case 'UnsupportedSchemeError':
    case 'LengthRequiredError':
      return EXIT.ORIGIN_ERROR
    case 'NoSourceError':
      return EXIT.NO_SOURCE
    case 'DigestMismatchError':
      return EXIT.DIGEST_MISMATCH
    case 'TimeoutError':
    case 'DownloadTimeoutError':
    case 'SourceTimeoutError':
      return EXIT.TIMEOUT
    case 'InsufficientSpaceError':
    case 'StorageFullError':
      return EXIT.NO_SPACE
    case 'OutputExistsError':
      return EXIT.OUTPUT_EXISTS
    default:
      return EXIT.FAILURE
  }
}
