import { enable } from '@libp2p/logger'
import { nodeConfig, print, withNodeOptions } from '../common.ts'
import { EXIT } from '../exit-codes.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const daemonCommand: CommandModule<object, Args> = {
  command: 'daemon',
  describe: 'Run a node: join the swarm, serve pieces and the control API',
  builder: (y) => withNodeOptions(y)
    .example('$0 daemon --bootstrap /ip4/10.0.0.1/tcp/4780/p2p/12D3KooW…', 'join a swarm')
    .example('$0 daemon --swarm-key /etc/damselfly/swarm.key --swarm lab', 'join a private swarm') as any,
  handler: async (argv) => {
    if (process.env.DEBUG == null) {
      // failures (dial classes, bad peers, incompatible versions) are logged even without DEBUG
      enable('damselfly:*:error')
    }
    const config = await nodeConfig(argv)
    const started = Date.now()
    // loaded here, not at the top: the other commands start without libp2p
    const { Daemon } = await import('../../daemon/daemon.ts')
    const daemon = await Daemon.start({ config })
    const node = daemon.node
    const status = node.status()
    print(`damselfly ${status.version} daemon started in ${Date.now() - started} ms`)
    print(`peer id  ${status.peerId}`)
    print(`swarm    ${status.swarm}${status.private ? ' (private)' : ''}`)
    for (const a of status.addresses) {
      print(`listen   ${a}`)
    }
    if (daemon.controlAddress != null) {
      print(`control  http://${daemon.controlAddress}`)
    }
    if (daemon.socket != null) {
      print(`socket   ${daemon.socket}`)
    }
    if (daemon.proxy.address != null) {
      print(`mirror   http://${daemon.proxy.address} (registry mirror)`)
    } else if (daemon.proxyError != null) {
      print(`warning  registry mirror off: ${daemon.proxyError}`)
    }
    node.service.addEventListener('swarm:peer-count', (evt) => { print(`peers    ${evt.detail}`) })
    node.service.addEventListener('swarm:incompatible-peer', (evt) => {
      const i = evt.detail
      print(`warning  peer ${i.peerId} speaks ${i.protocol} ${i.theirs}, we speak ${i.ours}: incompatible`)
    })

    await new Promise<void>((resolve) => {
      let signals = 0
      const onSignal = (sig: NodeJS.Signals): void => {
        signals++
        if (signals > 1) {
          print(`${sig} again: exiting now`)
          process.exit(EXIT.INTERRUPTED)
        }
        print(`${sig}: stopping (send it again to force)`)
        daemon.stop().then(resolve, (err) => {
          print(`stop failed: ${err.message}`)
          process.exit(EXIT.FAILURE)
        })
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    })
    print('stopped')
  }
}
