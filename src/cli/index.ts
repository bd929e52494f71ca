#!/usr/bin/env node
import '../polyfill.ts'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { DAMSELFLY_VERSION } from '../version.ts'
import { daemonCommand } from './commands/daemon.ts'
import { doctorCommand } from './commands/doctor.ts'
import { keygenCommand } from './commands/keygen.ts'
import { peersCommand } from './commands/peers.ts'
import { statusCommand } from './commands/status.ts'
import { errorExitCode } from './errors.ts'

const EXPECTED = new Set(['UsageError', 'ConfigError', 'DaemonNotRunningError', 'DaemonRunningError', 'IdentityError', 'ControlApiError'])

async function main (): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('damselfly')
    .version(DAMSELFLY_VERSION)
    .command(daemonCommand)
    .command(statusCommand)
    .command(peersCommand)
    .command(doctorCommand)
    .command(keygenCommand)
    .demandCommand(1, 'name a command; see `damselfly --help`')
    .strict()
    .recommendCommands()
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .fail((msg, err, y) => {
      if (err != null) {
        throw err
      }
      process.stderr.write(`${y.help() as unknown as string ?? ''}`)
      process.stderr.write(` ✖ ${msg}\n`)
      process.exit(2)
    })
    .parseAsync()
}

main().catch((err: any) => {
  if (EXPECTED.has(err?.name)) {
    process.stderr.write(` ✖ ${err.message}\n`)
  } else {
    process.stderr.write(` ✖ ${err?.stack ?? String(err)}\n`)
  }
  process.exit(errorExitCode(err))
})
