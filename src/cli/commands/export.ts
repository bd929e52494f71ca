import path from 'node:path'
import { daemonOrStore, print, withClientOptions } from '../common.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const exportCommand: CommandModule<object, Args> = {
  command: 'export <task>',
  describe: 'Write a complete task from the store to a file',
  builder: (y) => withClientOptions(y)
    .positional('task', { type: 'string', describe: 'Task id (64 hex digits; see `damselfly tasks`)' })
    .option('output', { alias: 'O', type: 'string', demandOption: true, describe: 'Where to write the file' })
    .option('overwrite', { type: 'boolean', describe: 'Replace the output file if it exists' }) as any,
  handler: async (argv) => {
    const output = path.resolve(String(argv.output))
    const taskId = String(argv.task)
    await daemonOrStore(argv, async (client) => client.post(`/tasks/${taskId}/export`, { output, overwrite: argv.overwrite === true }), async (store) => {
      await store.export(taskId, output, { overwrite: argv.overwrite === true })
    })
    print(`wrote ${output}`)
  }
}
