import { controlClient, print, printJson, withClientOptions } from '../common.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const peersCommand: CommandModule<object, Args> = {
  command: 'peers',
  describe: 'List the connected swarm peers',
  builder: (y) => withClientOptions(y)
    .option('json', { type: 'boolean', describe: 'Print a JSON array' })
    .option('members', { type: 'boolean', describe: 'List the members heard through gossip instead' }) as any,
  handler: async (argv) => {
    const client = await controlClient(argv)
    const list: any[] = await client.get(argv.members === true ? '/members' : '/peers')
    if (argv.json === true) {
      printJson(list)
      return
    }
    if (list.length === 0) {
      print(argv.members === true ? 'No member heard yet.' : 'No swarm peer connected. Run `damselfly doctor` to find out why.')
      return
    }
    for (const p of list) {
      if (argv.members === true) {
        print(`${p.peerId}  ${p.live === true ? 'live' : 'silent'}  v${p.version}  ${p.trackerEligible === true ? 'tracker-eligible' : ''}  ${p.addrs.join(' ')}`)
      } else {
        const inc = (p.incompatible ?? []).map((i: any) => `INCOMPATIBLE ${i.protocol} ${i.theirs} (ours ${i.ours})`).join(' ')
        print(`${p.peerId}  ${p.direction}  ${p.version != null ? `v${p.version}` : (p.agent ?? '')}  ${p.addrs.join(' ')} ${inc}`.trimEnd())
      }
    }
  }
}
