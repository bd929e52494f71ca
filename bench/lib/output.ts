import fs from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from './paths.ts'

/** Write one line to stdout (benchmarks report on stdout, progress on stderr) */
export function print (line = ''): void {
  process.stdout.write(`${line}\n`)
}

/** Progress notes go to stderr so stdout holds only the tables */
export function progress (line: string): void {
  process.stderr.write(`  · ${line}\n`)
}

/**
 * Print a table with aligned columns; numeric-looking cells are right-aligned
 */
export function printTable (title: string, headers: string[], rows: string[][], notes: string[] = []): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const isNumeric = (s: string): boolean => /^[-–+]?[\d.]/.test(s) || s === '–'
  const line = (cells: string[]): string => cells.map((c, i) => {
    const cell = c ?? ''
    return isNumeric(cell) && i > 0 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])
  }).join(' | ')

  print()
  print(title)
  print(line(headers))
  print(widths.map(w => '-'.repeat(w)).join('-|-'))
  for (const r of rows) {
    print(line(r))
  }
  for (const n of notes) {
    print(`  ${n}`)
  }
}

/**
 * Write a benchmark's results to bench/results/<name>-<timestamp>.json and
 * return the path
 */
export async function writeResults (name: string, data: unknown): Promise<string> {
  const dir = path.join(repoRoot(), 'bench', 'results')
  await fs.mkdir(dir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = path.join(dir, `${name}-${stamp}.json`)
  await fs.writeFile(file, JSON.stringify(data, null, 2) + '\n')

  return file
}
