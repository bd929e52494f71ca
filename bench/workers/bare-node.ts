/**
 * A bare libp2p node (TCP + Noise + yamux + identify, nothing else): the
 * baseline for the daemon's memory and start-up time in bench/swarm.ts.
 *
 * Usage: `node bare-node.js [--dial <multiaddr>]`.
 * Prints `listen <addr>`, then `ready` once listening (and `connected` after
 * the optional dial), then idles until SIGTERM/SIGINT.
 */
import '../../src/polyfill.ts'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const dialIndex = process.argv.indexOf('--dial')
const dial = dialIndex === -1 ? undefined : process.argv[dialIndex + 1]

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() }
})

for (const a of node.getMultiaddrs()) {
  process.stdout.write(`listen ${a.toString()}\n`)
}
process.stdout.write('ready\n')

if (dial != null) {
  await node.dial(multiaddr(dial), { signal: AbortSignal.timeout(30_000) })
  process.stdout.write('connected\n')
}

const stop = (): void => {
  Promise.resolve(node.stop()).then(() => process.exit(0), () => process.exit(1))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
