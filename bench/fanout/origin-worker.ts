/**
 * The HTTP origin of the fan-out benchmark's netns mode, run inside the
 * origin's namespace (`ip netns exec <ns> node origin-worker.js …`): the same
 * server as src/cli/demo/origin.ts (Range, ETag, counted body bytes), but
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
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

const [file, host, portArg] = process.argv.slice(2)

if (file == null || host == null || portArg == null) {
  process.stderr.write('usage: node origin-worker.js <file> <host> <port>\n')
  process.exit(2)
}

const name = 'file.bin'
const size = fs.statSync(file).size
const etag = `"${createHash('sha256').update(`${file}:${size}`).digest('hex').slice(0, 16)}"`
let sent = 0
let requests = 0

const server = http.createServer((req, res) => {
  requests++
  const t0 = Date.now()
  if (req.url !== `/${name}`) {
    res.writeHead(404).end()
    return
  }
  let start = 0
  let end = size - 1
  let status = 200
  const range = req.headers.range
  const ifRange = req.headers['if-range']
  if (range != null && (ifRange == null || ifRange === etag)) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range)
    if (m != null) {
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]))
      } else {
        start = Number(m[1])
        end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
      }
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end()
        return
      }
      status = 206
    }
  }
  const headers: http.OutgoingHttpHeaders = { 'content-length': end - start + 1, etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' }
  if (status === 206) {
    headers['content-range'] = `bytes ${start}-${end}/${size}`
  }
  res.writeHead(status, headers)
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  const stream = fs.createReadStream(file, { start, end, highWaterMark: 1024 * 1024 })
  let body = 0
  stream.on('data', (chunk) => {
    sent += chunk.length
    body += chunk.length
  })
  stream.pipe(res)
  res.on('close', () => {
    stream.destroy()
    process.stdout.write(`served ${JSON.stringify({ t0, t1: Date.now(), start, end, sent: body, remote: req.socket.remoteAddress })}\n`)
  })
})

process.on('SIGUSR2', () => {
  process.stdout.write(`stats ${JSON.stringify({ sent, requests })}\n`)
})
process.once('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})

server.listen(Number(portArg), host, () => {
  const { port } = server.address() as AddressInfo
  process.stdout.write(`listening http://${host}:${port}/${name}\n`)
})
