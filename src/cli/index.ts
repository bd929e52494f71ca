#!/usr/bin/env -S node --heap-growing-percent=200
import '../polyfill.ts'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { DAMSELFLY_VERSION } from '../version.ts'
import { daemonCommand } from './commands/daemon.ts'
import { demoCommand } from './commands/demo.ts'
import { doctorCommand } from './commands/doctor.ts'
import { exportCommand } from './commands/export.ts'
import { gcCommand } from './commands/gc.ts'
import { getCommand } from './commands/get.ts'
import { importCommand } from './commands/import.ts'
import { keygenCommand } from './commands/keygen.ts'
import { peersCommand } from './commands/peers.ts'
import { rmCommand } from './commands/rm.ts'
import { statusCommand } from './commands/status.ts'
import { tasksCommand } from './commands/tasks.ts'
import { errorExitCode } from './errors.ts'
import { EXIT } from './exit-codes.ts'

/** errors whose message says it all: no stack trace */
const EXPECTED = new Set(['UsageError', 'ConfigError', 'DaemonNotRunningError', 'DaemonRunningError', 'IdentityError', 'ControlApiError', 'DownloadCancelledError', 'DaemonBusyError', 'TaskNotFoundError', 'TaskIncompleteError', 'PieceNotFoundError'])

async function main (): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('damselfly')
    .version(DAMSELFLY_VERSION)
    .command(getCommand)
    .command(daemonCommand)
    .command(demoCommand)
    .command(statusCommand)
    .command(tasksCommand)
    .command(peersCommand)
    .command(doctorCommand)
    .command(importCommand)
    .command(exportCommand)
    .command(rmCommand)
    .command(gcCommand)
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
  if (EXPECTED.has(err?.name) || errorExitCode(err) !== EXIT.FAILURE) {
    process.stderr.write(` ✖ ${err.message}\n`)
  } else {
    process.stderr.write(` ✖ ${err?.stack ?? String(err)}\n`)
  }
  process.exit(errorExitCode(err))
})
