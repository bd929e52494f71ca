import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The repository root, found by walking up from the compiled test file (the
 * build puts tests under dist/test/...)
 */
export function repoRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'config'))) {
    const up = path.dirname(dir)
    if (up === dir) {
      throw new Error('cannot find the repository root')
    }
    dir = up
  }
  return dir
}

/**
 * The compiled CLI entry point
 */
export function cliPath (): string {
  const root = repoRoot()
  const built = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'index.js')
  return fs.existsSync(built) ? built : path.join(root, 'dist', 'src', 'cli', 'index.js')
}
