/**
 * The HTTP origin of the fan-out benchmark's netns mode, run inside the
 * origin's namespace (`ip netns exec <ns> node origin-worker.js …`): the
 * demo's origin (src/cli/demo/origin.ts: Range, ETag, counted body bytes),
 * listening on the namespace's address.
 *
 * Usage: `node origin-worker.js <file> <host> <port>`
 *
 * Prints `listening <url>`. On SIGUSR2 it prints
 * `stats {"sent":<body bytes sent>,"requests":<n>}`, so the benchmark reads
 * the egress without any traffic over the capped links. After each request
 * it prints `served {"t0":…,"t1":…,"start":…,"end":…,"sent":…,"remote":"…"}`
 * (epoch ms, byte range, body bytes sent, client address), to show how the
 * peers read the origin.
 */
import { startOrigin } from '../../src/cli/demo/origin.ts'

const [file, host, portArg] = process.argv.slice(2)

if (file == null || host == null || portArg == null) {
  process.stderr.write('usage: node origin-worker.js <file> <host> <port>\n')
  process.exit(2)
}

const origin = await startOrigin(file, {
  host,
  port: Number(portArg),
  onServed: (record) => { process.stdout.write(`served ${JSON.stringify(record)}\n`) }
})

process.on('SIGUSR2', () => {
  process.stdout.write(`stats ${JSON.stringify({ sent: origin.bytesSent(), requests: origin.requests() })}\n`)
})
process.once('SIGTERM', () => {
  origin.close().then(() => process.exit(0), () => process.exit(1))
})

process.stdout.write(`listening ${origin.url}\n`)
