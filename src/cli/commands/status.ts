import { controlClient, formatBytes, formatDuration, print, printJson, withClientOptions } from '../common.ts'
import type { StoreGcStats } from '../../storage/index.ts'
import type { Args } from '../common.ts'
import type { CommandModule } from 'yargs'

export const statusCommand: CommandModule<object, Args> = {
  command: 'status',
  describe: 'Show the running daemon\'s peer id, addresses, swarm, peer and member counts',
  builder: (y) => withClientOptions(y)
    .option('json', { type: 'boolean', describe: 'Print one JSON object' })
    .example('$0 status --json | jq .peers', 'the connected swarm peer count') as any,
  handler: async (argv) => {
    const client = await controlClient(argv)
    const s = await client.get('/status')
    if (argv.json === true) {
      printJson(s)
      return
    }
    print(`peer id      ${s.peerId}`)
    print(`version      damselfly ${s.version} (${s.protocols.join(', ')})`)
    print(`swarm        ${s.swarm} (${s.private === true ? 'private: swarm key' : 'public'})`)
    print(`peers        ${s.peers} connected swarm peers, ${s.members} live members, ${s.connections} connections`)
    print(`uptime       ${formatDuration(s.uptimeMs)}`)
    print(`tracker      ${s.supernode.mode} (${s.supernode.eligible === true ? 'eligible' : 'not eligible'}); tracker for ${s.trackedTasks.length} tasks, ${s.tracker.registrations} registrations, ${s.tracker.redirects} redirects${s.tracker.slowPeersMoved > 0 ? `, ${s.tracker.slowPeersMoved} slow peers moved to a pipeline's end` : ''}`)
    print(`bytes        ${formatBytes(s.bytes.fromPeers)} from peers, ${formatBytes(s.bytes.fromOrigin)} from origins, ${formatBytes(s.bytes.uploaded)} uploaded`)
    print(`pieces       ${s.transfer.piecesDownloaded} fetched from peers (${s.transfer.badPieces} failed verification), ${s.transfer.piecesUploaded} served (${s.transfer.piecesForwarded} sent on while still arriving); ${s.transfer.busyAnswers} requests answered busy (every upload slot taken)`)
    print(`downloads    ${s.downloads.running} running, ${s.downloads.succeeded} done, ${s.downloads.failed} failed`)
    print(`store        ${s.store.tasks} tasks, ${formatBytes(s.store.bytesStored)}${storeGcLine(s.store.gc)}`)
    const provides = s.dht.provides
    print(`dht          ${s.dht.routingTable} peers in the routing table${provides == null ? '' : `; provider records: ${provides.provided} sent, ${provides.waiting} waiting for the node to be quiet, ${provides.failed} failed`}`)
    print(`gossip       ${s.gossip.meshPeers} mesh peers, ${s.gossip.topicPeers} on ${s.gossip.topic}`)
    print('addresses')
    for (const a of s.addresses) {
      print(`  ${a}`)
    }
    if (s.incompatible.length > 0) {
      print('incompatible peers')
      for (const i of s.incompatible) {
        print(`  ${i.peerId}: ${i.protocol} ${i.theirs} (ours ${i.ours})`)
      }
    }
    const failures = Object.entries(s.dialFailures).filter(([, n]) => (n as number) > 0)
    if (failures.length > 0) {
      print(`dial failures ${failures.map(([k, n]) => `${k}=${String(n)}`).join(' ')}`)
    }
    if (s.peers === 0) {
      print('')
      print('No swarm peer. Run `damselfly doctor` to find out why.')
    }
  }
}

/** The store's quota and what GC removed, for the status line */
function storeGcLine (gc: StoreGcStats | undefined): string {
  if (gc == null) {
    return ''
  }
  const quota = gc.quotaBytes > 0 ? `quota ${formatBytes(gc.quotaBytes)}${gc.overQuota ? ' (over it: the rest is in use)' : ''}` : 'no quota'
  return `; ${quota}; GC removed ${gc.evicted} tasks (${formatBytes(gc.evictedBytes)})${gc.lastError != null ? `; last error: ${gc.lastError}` : ''}`
}
