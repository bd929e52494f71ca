/**
 * What one new connection costs: a dial, the security handshake, the muxer
 * and a hang-up between two libp2p nodes on 127.0.0.1 in this process (CPU
 * of both ends), with our `directTls` beside `@libp2p/tls` and Noise. Nodes
 * open connections while a download runs (a parent they were not connected
 * to), so this is paid on the busy path too. The encrypters take turns in
 * rounds, so a change in the machine's load touches all of them alike.
 */
import '../src/polyfill.ts'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p } from 'libp2p'
import { directTls } from '../src/node/tls.ts'
import { intFlag } from './lib/args.ts'
import { print, printTable, writeResults } from './lib/output.ts'
import type { Bench } from './lib/bench.ts'
import type { ConnectionEncrypter } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

type Encrypter = (components: any) => ConnectionEncrypter

const ROWS: Array<{ name: string, make(): Encrypter }> = [
  { name: '@libp2p/tls (the library)', make: () => tls() },
  { name: 'directTls (ours)', make: () => directTls() },
  { name: 'noise', make: () => noise() }
]

/** Connections per encrypter before the timed ones (JIT warm-up) */
const WARM_UP = 20

async function pair (make: () => Encrypter): Promise<[Libp2p, Libp2p]> {
  const node = async (): Promise<Libp2p> => createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [make()],
    streamMuxers: [yamux()],
    // one peer dials many times a second: keep the inbound rate limit out of the way
    connectionManager: { inboundConnectionThreshold: 1_000_000 }
  })
  return [await node(), await node()]
}

/** `n` connections from a to b, one after another; CPU ms and wall ms of each */
async function connect (a: Libp2p, b: Libp2p, n: number): Promise<{ cpuMs: number, wallMs: number }> {
  const addr = b.getMultiaddrs()[0]
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    await a.dial(addr)
    await a.hangUp(b.peerId)
  }
  const cpu = process.cpuUsage(cpu0)
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 }
}

export const connectBench: Bench = {
  name: 'connect',
  describe: 'CPU of one new connection (dial, handshake, muxer, hang-up; both ends): directTls vs @libp2p/tls and Noise',
  flags: [
    { name: 'connections', describe: 'connect: timed connections per encrypter, in 4 rounds (400)' }
  ],
  async run (args) {
    const total = intFlag(args, 'connections', 400)
    const rounds = 4
    const perRound = Math.max(1, Math.round(total / rounds))
    const pairs = await Promise.all(ROWS.map(async r => pair(r.make)))
    try {
      const sums = ROWS.map(() => ({ cpuMs: 0, wallMs: 0, n: 0 }))
      for (const [a, b] of pairs) {
        await connect(a, b, WARM_UP)
      }
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < ROWS.length; i++) {
          const m = await connect(pairs[i][0], pairs[i][1], perRound)
          sums[i].cpuMs += m.cpuMs
          sums[i].wallMs += m.wallMs
          sums[i].n += perRound
        }
        print(`  · round ${round + 1}/${rounds}: ${perRound} connections each`)
      }
      const per = sums.map(s => ({ cpuMs: s.cpuMs / s.n, wallMs: s.wallMs / s.n, n: s.n }))
      const library = per[0].cpuMs
      printTable(`connect: one connection between two nodes on 127.0.0.1 (one process), ${per[0].n} each`, ['encrypter', 'CPU ms per connection (both ends)', 'wall ms', '÷ @libp2p/tls CPU'], ROWS.map((r, i) => [
        r.name, per[i].cpuMs.toFixed(2), per[i].wallMs.toFixed(2), `${(per[i].cpuMs / library).toFixed(2)}×`
      ]), [`after ${WARM_UP} connections each to warm up; the encrypters take turns in ${rounds} rounds`])
      return await writeResults('connect', { rows: ROWS.map((r, i) => ({ name: r.name, ...per[i] })) })
    } finally {
      await Promise.all(pairs.flat().map(async n => n.stop()))
    }
  }
}
