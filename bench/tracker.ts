/**
 * How many registrations per second one tracker answers: a client node
 * announces distinct tasks (each one a new registration with metadata and a
 * grant) to a tracker node over a real libp2p connection on 127.0.0.1, with
 * a fixed number in flight, beside the tracker's soft state alone (no
 * network) as the bound. Both nodes share this process, so the network
 * figure is pessimistic: the client's work is on the same thread.
 */
import '../src/polyfill.ts'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createDamselfly } from '../src/node/index.ts'
import { TrackerState } from '../src/tracker/index.ts'
import { Bitfield } from '../src/utils/bitfield.ts'
import { intFlag } from './lib/args.ts'
import { print, printTable, writeResults } from './lib/output.ts'
import { fmt } from './lib/stats.ts'
import type { Bench } from './lib/bench.ts'

const MiB = 1024 * 1024

function taskIdOf (i: number): string {
  return i.toString(16).padStart(64, '0')
}

const META = { contentLength: 64 * MiB, pieceSize: MiB }

async function stateRate (seconds: number): Promise<number> {
  const state = new TrackerState({ maxTasks: 10_000_000 })
  const have = new Bitfield(64).toBytes()
  const deadline = Date.now() + seconds * 1000
  let n = 0
  while (Date.now() < deadline) {
    for (let k = 0; k < 1000; k++, n++) {
      state.announce('12D3KooWClient', { taskId: taskIdOf(n), meta: META, have, addrs: [], uploadSlots: 16, freeUploadSlots: 16, wantGrant: true, wantDigests: false } as any, Date.now())
    }
  }
  return n / seconds
}

export const trackerBench: Bench = {
  name: 'tracker',
  describe: 'registrations per second one tracker answers over libp2p, vs its soft state alone',
  flags: [
    { name: 'seconds', describe: 'tracker: seconds per measurement (5)' },
    { name: 'in-flight', describe: 'tracker: announces in flight at once (16)' }
  ],
  async run (args) {
    const seconds = intFlag(args, 'seconds', 5)
    const inFlight = intFlag(args, 'in-flight', 16)
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-bench-tracker-'))
    const common = { listen: ['/ip4/127.0.0.1/tcp/0'], control: { listen: '', socket: false }, swarm: { heartbeatInterval: 500 } }
    const tracker = await createDamselfly({ config: { ...common, dataDir: path.join(dir, 't'), supernode: 'always' } })
    const client = await createDamselfly({ config: { ...common, dataDir: path.join(dir, 'c'), supernode: 'never', swarm: { heartbeatInterval: 500, bootstrap: [tracker.libp2p.getMultiaddrs()[0].toString()] } } })
    try {
      const deadline = Date.now() + 30_000
      while (client.status().members === 0 && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      const target = tracker.peerId.toString()
      const have = new Bitfield(64)
      let next = 0
      let ok = 0
      let refused = 0
      let failed = 0
      const end = Date.now() + seconds * 1000
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (Date.now() < end) {
          const i = next++
          try {
            const res = await client.service.tracker.client.announce(target, { taskId: taskIdOf(1_000_000 + i), meta: META, have, uploadSlots: 16, freeUploadSlots: 16, wantGrant: true }, { retries: 0 })
            if (res.status === 'ok') {
              ok++
            } else {
              refused++
            }
          } catch (err: any) {
            if (/busy|refused/i.test(String(err.name) + String(err.message))) {
              refused++
            } else {
              failed++
            }
          }
        }
      }))
      const netRate = ok / seconds
      const pureRate = await stateRate(seconds)
      printTable(`tracker: registrations per second (${seconds} s each, ${inFlight} in flight)`, ['path', 'registrations/s', 'refused/s', 'failed', '÷ soft state alone'], [
        ['soft state alone (no network)', fmt(pureRate), '-', '-', '1.00×'],
        ['over libp2p on 127.0.0.1 (one process)', fmt(netRate), fmt(refused / seconds), String(failed), `${(netRate / pureRate).toFixed(3)}×`]
      ], ['each registration is a new task: metadata, a 64-piece bitfield and a source grant'])
      print(`tracker now tracks ${tracker.service.tracker.stats().tasks} tasks`)
      return await writeResults('tracker', { seconds, inFlight, netRate, pureRate, ok, refused, failed })
    } finally {
      await client.stop()
      await tracker.stop()
      await fs.rm(dir, { recursive: true, force: true })
    }
  }
}
