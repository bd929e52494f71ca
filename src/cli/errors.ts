import { EXIT } from './exit-codes.ts'

/**
 * Exit code by error name; anything else is EXIT.FAILURE
 */
const EXIT_BY_NAME: Record<string, number> = {
  UsageError: EXIT.USAGE,
  ConfigError: EXIT.USAGE,
  InvalidDigestError: EXIT.USAGE,
  InvalidUrlError: EXIT.USAGE,
  DaemonNotRunningError: EXIT.NO_DAEMON,
  SourceNotFoundError: EXIT.ORIGIN_NOT_FOUND,
  SourceUnreachableError: EXIT.ORIGIN_UNREACHABLE,
  SourceForbiddenError: EXIT.ORIGIN_ERROR,
  SourceHttpError: EXIT.ORIGIN_ERROR,
  SourceChangedError: EXIT.ORIGIN_ERROR,
  TaskChangedError: EXIT.ORIGIN_ERROR,
  SourceTruncatedError: EXIT.ORIGIN_ERROR,
  SourceInvalidResponseError: EXIT.ORIGIN_ERROR,
  UnsupportedSchemeError: EXIT.ORIGIN_ERROR,
  LengthRequiredError: EXIT.ORIGIN_ERROR,
  NoSourceError: EXIT.NO_SOURCE,
  DigestMismatchError: EXIT.DIGEST_MISMATCH,
  TimeoutError: EXIT.TIMEOUT,
  DownloadTimeoutError: EXIT.TIMEOUT,
  SourceTimeoutError: EXIT.TIMEOUT,
  InsufficientSpaceError: EXIT.NO_SPACE,
  StorageFullError: EXIT.NO_SPACE,
  OutputExistsError: EXIT.OUTPUT_EXISTS
}

/**
 * The exit code for an error, by its name
 */
export function errorExitCode (err: any): number {
  return EXIT_BY_NAME[err?.name] ?? EXIT.FAILURE
}
