/**
 * Exit codes of the `damselfly` command. Scripts rely on them; the README
 * lists them.
 */
export const EXIT = {
  OK: 0,
  /** a check failed (doctor), or an unexpected error */
  FAILURE: 1,
  /** bad usage or configuration */
  USAGE: 2,
  /** no daemon answers on the control socket / address */
  NO_DAEMON: 3,
  /** the origin answered 404 / 410: no such file */
  ORIGIN_NOT_FOUND: 4,
  /** the downloaded bytes do not match --digest */
  DIGEST_MISMATCH: 5,
  /** the download did not finish within --timeout, or the origin timed out */
  TIMEOUT: 6,
  /** not enough disk space */
  NO_SPACE: 7,
  /** the output file exists (pass --overwrite) */
  OUTPUT_EXISTS: 8,
  /** no peer has the file and back-to-source is disabled (or there is no origin URL) */
  NO_SOURCE: 9,
  /** the origin cannot be reached: refused, unknown host, TLS failure */
  ORIGIN_UNREACHABLE: 10,
  /** the origin answered with another error, or the file changed during the download */
  ORIGIN_ERROR: 11,
  /** interrupted by a signal */
  INTERRUPTED: 130
} as const
