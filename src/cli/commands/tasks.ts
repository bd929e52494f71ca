import { listTasks } from '../../storage/index.ts'
import { daemonOrStore, formatBytes, formatDuration, print, printJson, withClientOptions } from '../common.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const tasksCommand: CommandModule<object, Args> = {
  command: 'tasks',
  describe: 'List the tasks in the store, when each was last used, and their downloads (through the daemon, or from the data dir when none runs)',
  builder: (y) => withClientOptions(y).option('json', { type: 'boolean', describe: 'Print a JSON array' }) as any,
  handler: async (argv) => {
    const tasks: any[] = await daemonOrStore(argv, async (client) => client.get('/tasks'), async (store) => listTasks(store))
    if (argv.json === true) {
      printJson(tasks)
      return
    }
    if (tasks.length === 0) {
      print('No task in the store.')
      return
    }
    const now = Date.now()
    for (const t of tasks) {
      const d = t.download
      const have = d != null ? `${d.piecesDone}/${t.pieceCount}` : t.state
      const used = t.lastUsedAt == null ? '' : `used ${formatDuration(Math.max(0, now - t.lastUsedAt))} ago`
      print(`${t.taskId}  ${formatBytes(t.contentLength).padStart(10)}  ${String(have).padEnd(10)} ${(d?.state ?? '').padEnd(9)} ${used.padEnd(16)} ${t.url ?? t.digest ?? ''}`)
    }
  }
}
