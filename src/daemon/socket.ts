/**
 * Where a daemon's control API socket lives: what every CLI command needs to
 * find the daemon, without loading the daemon.
 */
import path from 'node:path'

export const SOCKET_FILE = 'damselfly.sock'

export function socketPath (dataDir: string): string {
  return path.join(dataDir, SOCKET_FILE)
}
