import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The compiled bench directory (dist/bench, or a private build's bench/) */
export function benchDir (): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
}

/**
 * The repository root: the first directory above the compiled file with
 * package.json and bench/
 */
export function repoRoot (): string {
  let dir = benchDir()

  while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'bench'))) {
    const up = path.dirname(dir)

    if (up === dir) {
      throw new Error('Cannot find the repository root above the compiled bench - run the benchmarks from the built tree (npm run build)')
    }

    dir = up
  }

  return dir
}

/** The compiled CLI next to the compiled bench (dist/src/cli/index.js) */
export function cliPath (): string {
  const built = path.join(benchDir(), '..', 'src', 'cli', 'index.js')

  if (fs.existsSync(built)) {
    return built
  }

  const dist = path.join(repoRoot(), 'dist', 'src', 'cli', 'index.js')

  if (fs.existsSync(dist)) {
    return dist
  }

  throw new Error(`The CLI is not built (looked for ${built} and ${dist}) - run npm run build first`)
}

/** A compiled worker script of the benchmarks, e.g. workerPath('bare-node') */
export function workerPath (name: string): string {
  return path.join(benchDir(), 'workers', `${name}.js`)
}
