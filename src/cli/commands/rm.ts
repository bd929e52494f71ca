import { TaskNotFoundError } from '../../storage/index.ts'
import { daemonOrStore, formatBytes, print, printJson, withClientOptions } from '../common.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const rmCommand: CommandModule<object, Args> = {
  command: 'rm <task>',
  describe: 'Remove a task from the store (cancelling its download), freeing its disk space',
  builder: (y) => withClientOptions(y)
    .positional('task', { type: 'string', describe: 'Task id (64 hex digits; see `damselfly tasks`)' })
    .option('json', { type: 'boolean', describe: 'Print the result as JSON' })
    .example('$0 rm 3f6c…', 'remove one task; peers fetch it from others or the origin next time') as any,
  handler: async (argv) => {
    const taskId = String(argv.task)
    const removed = await daemonOrStore(argv, async (client) => client.delete<{ taskId: string, bytes: number }>(`/tasks/${taskId}/data`), async (store, config) => {
      const bytes = store.usage().find(t => t.taskId === taskId)?.bytes
      if (bytes == null) {
        throw new TaskNotFoundError(`Task ${taskId} is not in the store at ${config.dataDir} - \`damselfly tasks\` lists the tasks`)
      }
      await store.delete(taskId)
      return { taskId, bytes }
    })
    if (argv.json === true) {
      printJson(removed)
    } else {
      print(`removed ${removed.taskId} (${formatBytes(removed.bytes)})`)
    }
  }
}
