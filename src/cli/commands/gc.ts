import { defaultLogger } from '@libp2p/logger'
import { UsageError } from '../../errors.ts'
import { EVICTION_REASONS, GC_MIN_IDLE_MS, StoreGc, quotaBytesFor } from '../../storage/index.ts'
import { daemonOrStore, formatBytes, parseDuration, print, printJson, withClientOptions } from '../common.ts'
import type { GcReport } from '../../node/damselfly.ts'
import type { CollectOptions } from '../../storage/index.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

/** A removal failed: the report is printed, and the command exits non-zero */
class GcRemovalError extends Error {
  static name = 'GcRemovalError'

  constructor (message: string) {
    super(message)
    this.name = 'GcRemovalError'
  }
}

export const gcCommand: CommandModule<object, Args> = {
  command: 'gc',
  describe: 'Remove tasks from the store now: what GC would (past --task-ttl, over --storage-quota) and, with --older-than, every task unused for that long',
  builder: (y) => withClientOptions(y)
    .option('older-than', { type: 'string', describe: 'Also remove tasks not written, read or exported for this long (e.g. 30m, 12h, 7d)' })
    .option('dry-run', { type: 'boolean', describe: 'List what would be removed; remove nothing' })
    .option('json', { type: 'boolean', describe: 'Print the result as JSON' })
    .example('$0 gc --older-than 7d', 'free the space of every task unused for a week')
    .example('$0 gc --dry-run', 'what GC would remove now') as any,
  handler: async (argv) => {
    const options: CollectOptions = { dryRun: argv['dry-run'] === true }
    if (argv['older-than'] != null) {
      options.olderThanMs = parseDuration(String(argv['older-than']), '--older-than')
      if (options.olderThanMs <= 0) {
        throw new UsageError('--older-than must be longer than 0, e.g. 30m or 7d')
      }
    }
    const report = await daemonOrStore<GcReport>(argv, async (client) => client.post('/gc', options), async (store, config) => {
      // no daemon: nothing is being downloaded
      const gc = new StoreGc({
        usage: () => store.usage(),
        downloading: () => false,
        remove: async (taskId) => store.delete(taskId),
        policy: { quotaBytes: await quotaBytesFor(config.storage.quota, config.dataDir), ttlMs: config.storage.taskTtl },
        intervalMs: 0,
        logger: defaultLogger()
      })
      const removed = await gc.run(options)
      return { dryRun: options.dryRun === true, removed, store: store.stats(), gc: gc.stats() }
    })
    if (argv.json === true) {
      printJson(report)
    } else {
      printReport(report)
    }
    if (!report.dryRun && report.gc.lastError != null) {
      throw new GcRemovalError(`GC ${report.gc.lastError} - see the daemon's log, check the data dir's permissions and run \`damselfly gc\` again`)
    }
  }
}

function printReport (r: GcReport): void {
  const bytes = r.removed.reduce((a, e) => a + e.bytes, 0)
  if (r.removed.length === 0) {
    print(`nothing to remove${r.dryRun ? ' (dry run)' : ''}`)
  } else {
    print(`${r.dryRun ? 'would remove' : 'removed'} ${r.removed.length} task${r.removed.length === 1 ? '' : 's'}, ${formatBytes(bytes)}:`)
    for (const e of r.removed) {
      print(`  ${e.taskId}  ${formatBytes(e.bytes).padStart(10)}  ${EVICTION_REASONS[e.reason]}`)
    }
  }
  const quota = r.gc.quotaBytes > 0 ? ` of a ${formatBytes(r.gc.quotaBytes)} quota` : ' (no quota)'
  const left = r.dryRun ? { tasks: r.store.tasks - r.removed.length, bytes: r.store.bytesStored - bytes } : { tasks: r.store.tasks, bytes: r.store.bytesStored }
  print(`the store ${r.dryRun ? 'would hold' : 'holds'} ${left.tasks} task${left.tasks === 1 ? '' : 's'}, ${formatBytes(left.bytes)}${quota}; tasks being downloaded or used in the last ${GC_MIN_IDLE_MS / 60_000} minutes always stay`)
}
