/**
 * Runs the benchmarks: `node dist/bench/run.js [name...] [--options]`
 * (default: all, in sequence). Each prints its tables of ratios and raw
 * numbers and writes bench/results/<name>-<timestamp>.json.
 *
 * Benchmarks never assert timing; they fail only when a copy is wrong or a
 * process does not do its job.
 */
import '../src/polyfill.ts'
import { connectBench } from './connect.ts'
import { fanoutBench } from './fanout.ts'
import { parseArgs, UsageError } from './lib/args.ts'
import { print } from './lib/output.ts'
import { Resources } from './lib/proc.ts'
import { mirrorBench } from './mirror.ts'
import { swarmBench } from './swarm.ts'
import { trackerBench } from './tracker.ts'
import { transferBench } from './transfer.ts'
import type { FlagSpec } from './lib/args.ts'
import type { Bench } from './lib/bench.ts'

const BENCHES: Bench[] = [swarmBench, transferBench, connectBench, trackerBench, fanoutBench, mirrorBench]

function allFlags (): FlagSpec[] {
  const flags = new Map<string, FlagSpec>([['help', { name: 'help', describe: 'show this help', boolean: true }]])
  for (const b of BENCHES) {
    for (const f of b.flags) {
      if (!flags.has(f.name)) {
        flags.set(f.name, f)
      }
    }
  }
  return [...flags.values()]
}

function usage (): string {
  return [
    'usage: npm run bench -- [name...] [--option value ...]',
    '',
    'benchmarks (default: all):',
    ...BENCHES.map(b => `  ${b.name.padEnd(10)} ${b.describe}`),
    '',
    'options:',
    ...allFlags().map(f => `  --${f.name.padEnd(18)} ${f.describe}`)
  ].join('\n')
}

async function main (): Promise<number> {
  const args = parseArgs(process.argv.slice(2), allFlags())
  if (args.flags.has('help')) {
    print(usage())
    return 0
  }
  const unknown = args.names.filter(n => !BENCHES.some(b => b.name === n))
  if (unknown.length > 0) {
    throw new UsageError(`Unknown benchmark ${unknown.join(', ')} - choose from ${BENCHES.map(b => b.name).join(', ')}`)
  }
  const selected = args.names.length === 0 ? BENCHES : BENCHES.filter(b => args.names.includes(b.name))
  const resources = new Resources()
  const onSignal = (sig: NodeJS.Signals): void => {
    resources.cleanupSync()
    process.stderr.write(`${sig}: stopped; child processes and temp files removed\n`)
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', () => { resources.cleanupSync() })

  let failed = 0
  for (const bench of selected) {
    const started = Date.now()
    print(`\n=== ${bench.name} ===`)
    try {
      const file = await bench.run(args, resources)
      print(`\n${bench.name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s; results in ${file}`)
    } catch (err: any) {
      failed++
      process.stderr.write(`\n${bench.name} FAILED: ${err?.stack ?? err}\n`)
    } finally {
      await resources.cleanup()
    }
  }
  return failed === 0 ? 0 : 1
}

main().then(code => { process.exitCode = code }, (err) => {
  process.stderr.write(`${err instanceof UsageError ? err.message : err?.stack ?? err}\n\n${usage()}\n`)
  process.exitCode = 2
})
