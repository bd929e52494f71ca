import path from 'node:path'
import { loadConfig } from '../../config/index.ts'
import { UsageError } from '../../errors.ts'
import { print } from '../common.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const keygenCommand: CommandModule<object, Args> = {
  command: 'keygen',
  describe: 'Make a node identity, or a swarm key for a private swarm',
  builder: (y) => y
    .option('swarm-key', { type: 'string', describe: 'Write a new pre-shared swarm key to FILE (give every node of the swarm a copy)' })
    .option('identity', { type: 'string', describe: 'Write a new node identity to FILE (default: <data-dir>/identity.key)' })
    .option('data-dir', { type: 'string', describe: 'Data directory whose identity to create [env DAMSELFLY_DATA_DIR]' })
    .option('force', { type: 'boolean', describe: 'Replace an existing file' })
    .example('$0 keygen --swarm-key /etc/damselfly/swarm.key', 'a key for a private swarm')
    .example('$0 keygen --data-dir /var/lib/damselfly', 'a node identity (peer id) for that data dir') as any,
  handler: async (argv) => {
    const force = argv.force === true
    // key code loads when a key is made, not with every command
    const { IDENTITY_FILE, writeIdentity, writeSwarmKey } = await import('../../node/identity.ts')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    if (argv['swarm-key'] != null) {
      if (argv.identity != null) {
        throw new UsageError('give either --swarm-key or --identity, not both')
      }
      const file = path.resolve(String(argv['swarm-key']))
      await writeSwarmKey(file, { force })
      print(`swarm key written to ${file}`)
      print('Copy it to every node of the swarm and start them with --swarm-key FILE.')
      return
    }
    let file: string
    if (argv.identity != null) {
      file = path.resolve(String(argv.identity))
    } else {
      const config = await loadConfig({ flags: { 'data-dir': argv['data-dir'] }, env: process.env })
      file = path.join(config.dataDir, IDENTITY_FILE)
    }
    const key = await writeIdentity(file, { force })
    print(`identity written to ${file}`)
    print(`peer id ${peerIdFromPrivateKey(key).toString()}`)
  }
}
