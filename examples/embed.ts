/**
 * Add Damselfly to your own libp2p node and download a file from a swarm.
 *
 * Run: node dist/examples/embed.js <bootstrap multiaddr> <url> <output file>
 *
 * The node needs identify, gossipsub (as `pubsub`) and, for provider
 * records, a kad-dht (as `dht`, which needs ping) speaking the swarm's DHT
 * protocol.
 */
import '../src/polyfill.ts'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { damselfly, kadProtocol } from '../src/index.ts'

const [bootstrap, url, output] = process.argv.slice(2)
if (bootstrap == null || url == null || output == null) {
  process.stderr.write('usage: embed.js <bootstrap multiaddr> <url> <output file>\n')
  process.exit(2)
}

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-embed-'))
const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: 32 * 1024 * 1024 } })],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: kadProtocol('default'), clientMode: false, peerInfoMapper: passthroughMapper }),
    pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, scoreParams: { IPColocationFactorWeight: 0 } }),
    damselfly: damselfly({ dataDir, bootstrap: [bootstrap], heartbeatInterval: 1000 })
  }
})

try {
  const service = node.services.damselfly
  // give the swarm a moment: trackers are elected among the members we hear
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && service.status().members === 0) {
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  // and let the members hear of us: seeds re-register with the trackers we now share
  await new Promise(resolve => setTimeout(resolve, 1000))
  const download = service.get({ url })
  const meta = await download.done
  await service.export(meta.taskId, path.resolve(output), { overwrite: true })
  const p = download.progress()
  process.stdout.write(JSON.stringify({ taskId: meta.taskId, bytes: meta.contentLength, fromPeers: p.fromPeers, fromOrigin: p.fromOrigin }) + '\n')
} finally {
  await node.stop()
  await fs.rm(dataDir, { recursive: true, force: true })
}
