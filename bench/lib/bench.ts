import type { Args, FlagSpec } from './args.ts'
import type { Resources } from './proc.ts'

/** One benchmark, run by bench/run.ts */
export interface Bench {
  name: string
  describe: string
  flags: FlagSpec[]
  /** measure, print the tables, write bench/results/<name>-<timestamp>.json; resolves to that path */
  run(args: Args, resources: Resources): Promise<string>
}
