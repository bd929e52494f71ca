/**
 * Test helpers for the registry mirror: a real `docker-registry` (Debian's
 * build of distribution/distribution) on 127.0.0.1 with a temp config and
 * storage dir, OCI image layouts built from random layers, skopeo, and a
 * small forwarder that can tamper with one blob.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import type { ChildProcess } from 'node:child_process'

const run = promisify(execFile)

export const MiB = 1024 * 1024
export const REGISTRY_BIN = '/usr/bin/docker-registry'
export const SKOPEO_BIN = '/usr/bin/skopeo'

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => { resolve(port) })
    })
  })
}

export function sha256 (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

export async function sha256File (file: string): Promise<string> {
  const hash = createHash('sha256')
  const fh = await fs.open(file)
  try {
    for await (const chunk of fh.createReadStream()) {
      hash.update(chunk)
    }
  } finally {
    await fh.close()
  }
  return `sha256:${hash.digest('hex')}`
}

export interface BlobCount {
  /** GET requests answered with 200 or 206 */
  gets: number
  /** body bytes the registry wrote for GETs */
  bytes: number
}

export interface TestRegistry {
  /** http://127.0.0.1:PORT */
  url: string
  /** 127.0.0.1:PORT */
  host: string
  dir: string
  /** the access log so far */
  log(): string
  /** GETs and bytes per blob digest, from the access log */
  blobCounts(): Map<string, BlobCount>
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * Write a docker-registry config into `dir` (storage in `dir/storage`, the
 * access log on, listening on `addr`) and return its path
 */
export async function writeRegistryConfig (dir: string, addr: string, options: { logLevel: string, deletes?: boolean }): Promise<string> {
  const config = path.join(dir, 'config.yml')
  await fs.mkdir(path.join(dir, 'storage'), { recursive: true })
  await fs.writeFile(config, [
    'version: 0.1',
    'log:',
    `  level: ${options.logLevel}`,
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'storage')}`,
    ...(options.deletes === true ? ['  delete:', '    enabled: true'] : []),
    'http:',
    `  addr: ${addr}`,
    ''
  ].join('\n'))
  return config
}

/**
 * Start `docker-registry serve` on a free loopback port with its storage in
 * `dir`. `stop()` ends it; `start()` brings it back on the same port with
 * the same storage.
 */
export async function startRegistry (dir: string): Promise<TestRegistry> {
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const config = await writeRegistryConfig(dir, host, { logLevel: 'warn', deletes: true })
  let out = ''
  let proc: ChildProcess | undefined
  let exited: Promise<void> | undefined

  const registry: TestRegistry = {
    url: `http://${host}`,
    host,
    dir,
    log: () => out,
    blobCounts: () => countBlobs(out),
    start: async () => {
      const p = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
      proc = p
      exited = new Promise(resolve => p.once('close', () => { resolve() }))
      p.stdout!.on('data', (d) => { out += String(d) })
      p.stderr!.on('data', (d) => { out += String(d) })
      const deadline = Date.now() + 20_000
      while (true) {
        if (p.exitCode != null) {
          throw new Error(`docker-registry exited with ${p.exitCode}:\n${out}`)
        }
        const ok = await fetch(`${registry.url}/v2/`).then(r => r.ok, () => false)
        if (ok) {
          return
        }
        if (Date.now() > deadline) {
          p.kill('SIGKILL')
          throw new Error(`docker-registry did not answer on ${host}:\n${out}`)
        }
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    },
    stop: async () => {
      if (proc != null && proc.exitCode == null && proc.signalCode == null) {
        proc.kill('SIGTERM')
        const timer = setTimeout(() => proc?.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
      proc = undefined
    }
  }
  await registry.start()
  return registry
}

/**
 * Per blob digest: GETs with a 2xx answer and the body bytes written, from
 * the combined-format access log lines (`"GET <uri> HTTP/1.1" <status> <bytes>`)
 */
export function countBlobs (log: string): Map<string, BlobCount> {
  const counts = new Map<string, BlobCount>()
  for (const m of log.matchAll(/"GET \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64}) HTTP\/[0-9.]+" (\d{3}) (\d+)/g)) {
    const status = Number(m[2])
    if (status !== 200 && status !== 206) {
      continue
    }
    const c = counts.get(m[1]) ?? { gets: 0, bytes: 0 }
    c.gets++
    c.bytes += Number(m[3])
    counts.set(m[1], c)
  }
  return counts
}

export interface OciBlob {
  digest: string
  size: number
  mediaType: string
}

export interface OciImage {
  /** the OCI layout directory */
  layout: string
  tag: string
  layers: OciBlob[]
  config: OciBlob
  manifest: OciBlob
  /** sum of layer, config and manifest sizes */
  totalBytes: number
}

/**
 * An uncompressed tar with one regular file (a valid image layer)
 */
export function tarOf (name: string, content: Uint8Array): Uint8Array {
  const header = Buffer.alloc(512)
  const put = (s: string, offset: number, length: number): void => { header.write(s, offset, length, 'ascii') }
  const octal = (n: number, length: number): string => n.toString(8).padStart(length - 1, '0') + '\0'
  put(name, 0, 100)
  put(octal(0o644, 8), 100, 8)
  put(octal(0, 8), 108, 8)
  put(octal(0, 8), 116, 8)
  put(octal(content.byteLength, 12), 124, 12)
  put(octal(0, 12), 136, 12)
  put('        ', 148, 8)
  put('0', 156, 1)
  put('ustar\0', 257, 6)
  put('00', 263, 2)
  let sum = 0
  for (const b of header) {
    sum += b
  }
  put(octal(sum, 7) + ' ', 148, 8)
  const padding = (512 - (content.byteLength % 512)) % 512
  return Buffer.concat([header, content, Buffer.alloc(padding), Buffer.alloc(1024)])
}

/**
 * Write an OCI image layout with one gzipped tar layer per entry of
 * `layerSizes` (a file of that many random bytes, so every layer is distinct)
 */
export async function buildOciImage (layout: string, layerSizes: number[], tag = 'v1'): Promise<OciImage> {
  const blobs = path.join(layout, 'blobs', 'sha256')
  await fs.mkdir(blobs, { recursive: true })
  const writeBlob = async (bytes: Uint8Array, mediaType: string): Promise<OciBlob> => {
    const digest = sha256(bytes)
    await fs.writeFile(path.join(blobs, digest.slice(7)), bytes)
    return { digest, size: bytes.byteLength, mediaType }
  }
  const layers: OciBlob[] = []
  const diffIds: string[] = []
  for (const [i, size] of layerSizes.entries()) {
    // gzip (level 1: random bytes do not compress anyway) so skopeo pushes the
    // layer as it is instead of compressing it under another digest
    const tar = tarOf(`layer-${i}.bin`, randomBytes(size))
    diffIds.push(sha256(tar))
    layers.push(await writeBlob(gzipSync(tar, { level: 1 }), 'application/vnd.oci.image.layer.v1.tar+gzip'))
  }
  const config = await writeBlob(Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map((_, i) => ({ created_by: `layer ${i}` }))
  })), 'application/vnd.oci.image.config.v1+json')
  const manifest = await writeBlob(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map(l => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }))
  })), 'application/vnd.oci.image.manifest.v1+json')
  await fs.writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }]
  }))
  const totalBytes = layers.reduce((n, l) => n + l.size, 0) + config.size + manifest.size
  return { layout, tag, layers, config, manifest, totalBytes }
}

export interface SkopeoResult {
  code: number
  stdout: string
  stderr: string
  ms: number
}

/**
 * Run skopeo; resolves with its exit code and output (never rejects on a
 * non-zero exit)
 */
export async function skopeo (args: string[], timeoutMs = 300_000): Promise<SkopeoResult> {
  const started = Date.now()
  try {
    const { stdout, stderr } = await run(SKOPEO_BIN, ['--insecure-policy', ...args], { timeout: timeoutMs, maxBuffer: 16 * MiB })
    return { code: 0, stdout, stderr, ms: Date.now() - started }
  } catch (err: any) {
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(err.message), ms: Date.now() - started }
  }
}

/**
 * Push an OCI layout to `host` (plain http) as `<repo>:<tag>`
 */
export async function pushImage (image: OciImage, host: string, repo: string): Promise<void> {
  const res = await skopeo(['copy', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, `docker://${host}/${repo}:${image.tag}`])
  if (res.code !== 0) {
    throw new Error(`skopeo could not push to ${host}: ${res.stderr}`)
  }
}

/**
 * Pull `<repo>:<tag>` from `host` (plain http) into an OCI layout at `dest`
 */
export async function pullImage (host: string, repo: string, tag: string, dest: string): Promise<SkopeoResult> {
  return skopeo(['copy', '--src-tls-verify=false', `docker://${host}/${repo}:${tag}`, `oci:${dest}:${tag}`])
}

export interface FakeRegistry {
  url: string
  host: string
  /** requests seen, as `METHOD path` */
  requests: string[]
  close(): Promise<void>
}

export interface FakeRegistryOptions {
  /** GETs of these blobs are answered with the first body byte changed (same length, same headers) */
  tamperDigests?: string[]
  /**
   * Require `Authorization: Bearer <token>` on /v2/ requests, answering 401
   * with a WWW-Authenticate challenge whose realm (`/token` on this server)
   * hands the token out
   */
  token?: string
}

/**
 * An HTTP server posing as a registry in front of a real one (`target`):
 * forwards every request, and can tamper with one blob or demand a bearer
 * token like Docker Hub, GHCR and others do
 */
export async function startFakeRegistry (target: string, options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const requests: string[] = []
  let self = ''
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    if (options.token != null) {
      if (req.url?.startsWith('/token') === true) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ token: options.token, access_token: options.token }))
        return
      }
      if (req.headers.authorization !== `Bearer ${options.token}`) {
        const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] })
        res.writeHead(401, {
          'content-type': 'application/json',
          'content-length': String(body.length),
          'www-authenticate': `Bearer realm="${self}/token",service="fake-registry",scope="repository:test/img:pull"`,
          'docker-distribution-api-version': 'registry/2.0'
        })
        res.end(body)
        return
      }
    }
    const headers = { ...req.headers, host: new URL(target).host }
    delete headers.authorization
    const upstream = http.request(new URL(req.url ?? '/', target), { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      const tamper = req.method === 'GET' && (options.tamperDigests ?? []).some(d => (req.url ?? '').endsWith(`/blobs/${d}`))
      let flipped = false
      up.on('data', (chunk: Buffer) => {
        if (tamper && !flipped && chunk.byteLength > 0) {
          chunk = Buffer.from(chunk)
          chunk[0] ^= 0xff
          flipped = true
        }
        res.write(chunk)
      })
      up.on('end', () => { res.end() })
      up.on('error', () => { res.destroy() })
    })
    upstream.on('error', () => { res.destroy() })
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  self = `http://127.0.0.1:${port}`
  return {
    url: self,
    host: `127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}

export interface HttpAnswer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  /** the body ended normally (not cut off) */
  complete: boolean
  error?: Error
}

/**
 * One HTTP request with node:http; a body cut short is reported as
 * `complete: false` (with the bytes that did arrive), and a connection closed
 * before any answer as status 0, not thrown
 */
export async function httpRequest (url: string, options: { method?: string, headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      let settled = false
      const finish = (complete: boolean, error?: Error): void => {
        if (!settled) {
          settled = true
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete, error })
        }
      }
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { finish(res.complete) })
      res.on('aborted', () => { finish(false, new Error('aborted')) })
      res.on('error', (err) => { finish(false, err) })
      res.on('close', () => { finish(res.complete) })
    })
    // no answer at all (the connection was closed before any header)
    req.on('error', (err) => { resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false, error: err }) })
    req.end()
  })
}

/**
 * Read the blobs of a pulled OCI layout and return their digests (as
 * computed from the bytes) in file-name order
 */
export async function layoutBlobDigests (layout: string): Promise<Array<{ name: string, actual: string }>> {
  const dir = path.join(layout, 'blobs', 'sha256')
  const out: Array<{ name: string, actual: string }> = []
  for (const name of (await fs.readdir(dir)).sort()) {
    out.push({ name: `sha256:${name}`, actual: await sha256File(path.join(dir, name)) })
  }
  return out
}
