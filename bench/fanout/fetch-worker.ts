/**
 * One plain HTTP download for the fan-out benchmark's baselines: the file
 * straight from the origin, as `curl` would fetch it, with its sha256.
 *
 * Usage: `node fetch-worker.js <url>`
 *
 * Prints `ready`, waits for SIGUSR2 (so N workers start together), then
 * downloads, hashes and prints one line `done {"bytes":…,"sha256":"…","ms":…}`
 * and exits. In netns mode it runs inside a peer's namespace
 * (`ip netns exec <ns> node fetch-worker.js …`).
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import { performance } from 'node:perf_hooks'

async function download (url: string): Promise<{ bytes: number, sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        reject(new Error(`GET ${url} answered ${res.statusCode}`))
        return
      }
      const hash = createHash('sha256')
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        hash.update(chunk)
      })
      res.once('end', () => { resolve({ bytes, sha256: hash.digest('hex') }) })
      res.once('error', reject)
    })
    req.once('error', reject)
  })
}

const url = process.argv[2]

if (url == null) {
  process.stderr.write('usage: node fetch-worker.js <url>\n')
  process.exit(2)
}

process.once('SIGUSR2', () => {
  const started = performance.now()
  download(url).then(({ bytes, sha256 }) => {
    process.stdout.write(`done ${JSON.stringify({ bytes, sha256, ms: performance.now() - started })}\n`)
    process.exit(0)
  }, (err) => {
    process.stderr.write(`fetch failed: ${err.message}\n`)
    process.exit(1)
  })
})
// keep the process alive until the signal comes
const idle = setInterval(() => {}, 60_000)
process.once('exit', () => { clearInterval(idle) })
process.stdout.write('ready\n')
