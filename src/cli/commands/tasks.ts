import { controlClient, formatBytes, print, printJson, withClientOptions } from '../common.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const tasksCommand: CommandModule<object, Args> = {
  command: 'tasks',
  describe: 'List the tasks in the running daemon\'s store and their downloads',
  builder: (y) => withClientOptions(y).option('json', { type: 'boolean', describe: 'Print a JSON array' }) as any,
  handler: async (argv) => {
    const client = await controlClient(argv)
    const tasks: any[] = await client.get('/tasks')
    if (argv.json === true) {
      printJson(tasks)
      return
    }
    if (tasks.length === 0) {
      print('No task in the store.')
      return
    }
    for (const t of tasks) {
      const d = t.download
      const have = d != null ? `${d.piecesDone}/${t.pieceCount}` : t.state
      print(`${t.taskId}  ${formatBytes(t.contentLength).padStart(10)}  ${String(have).padEnd(10)} ${d?.state ?? ''}  ${t.url ?? t.digest ?? ''}`)
    }
  }
}
