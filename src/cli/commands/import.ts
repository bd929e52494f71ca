import path from 'node:path'
import { importFile } from '../../task/import.ts'
import { daemonOrStore, formatBytes, print, printJson, withClientOptions } from '../common.ts'
import type { TaskMetadata } from '../../storage/index.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const importCommand: CommandModule<object, Args> = {
  command: 'import <file>',
  describe: 'Add a local file to the store as a complete task, and offer it to the swarm',
  builder: (y) => withClientOptions(y)
    .positional('file', { type: 'string', describe: 'The file to import' })
    .option('url', { type: 'string', describe: 'The URL this file is known by (its task id then comes from the URL)' })
    .option('digest', { type: 'string', describe: 'sha256:<hex> of the file (checked); default: computed when there is no --url' })
    .option('tag', { type: 'string', describe: 'Tag, part of the task id' })
    .option('application', { type: 'string', describe: 'Application, part of the task id' })
    .option('json', { type: 'boolean', describe: 'Print the task as JSON' })
    .example('$0 import model.bin', 'then, on any node: damselfly get sha256:<hex> -O model.bin') as any,
  handler: async (argv) => {
    const file = path.resolve(String(argv.file))
    const request = { url: argv.url as string | undefined, digest: argv.digest as string | undefined, tag: argv.tag as string | undefined, application: argv.application as string | undefined }
    // no daemon: put it in the store; the daemon offers it when it starts
    const meta = await daemonOrStore<TaskMetadata>(argv, async (client) => client.post('/import', { path: file, ...request }), async (store) => importFile(store, file, request))
    if (argv.json === true) {
      printJson(meta)
      return
    }
    print(`imported ${file}: ${formatBytes(meta.contentLength)} in ${meta.pieceCount} pieces`)
    print(`task   ${meta.taskId}`)
    if (meta.digest != null) {
      print(`digest ${meta.digest}`)
      print(`fetch it on any node with: damselfly get ${meta.digest} -O <file>`)
    }
  }
}
