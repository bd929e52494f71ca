import '../../src/polyfill.ts'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { wholeBody } from '../../src/cli/commands/get.ts'
import { startOrigin } from '../../src/cli/demo/origin.ts'
import { runCli, startDaemon, stopAll } from '../utils/cli.ts'
import type { DemoOrigin } from '../../src/cli/demo/origin.ts'
import type { DaemonProcess } from '../utils/cli.ts'
import type { AddressInfo } from 'node:net'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** a `get` that must not find a daemon: its own data dir and a control port nobody listens on */
function embeddedArgs (dataDir: string): string[] {
  return ['--data-dir', dataDir, '--control', '127.0.0.1:1', '--listen', '/ip4/127.0.0.1/tcp/0']
}

describe('damselfly get', function () {
  const daemons: DaemonProcess[] = []
  let dir: string
  let origin: DemoOrigin
  let bytes: Buffer
  const servers: http.Server[] = []

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-get-'))
    bytes = randomBytes(3 * 1024 * 1024 + 123)
    await fs.writeFile(path.join(dir, 'file.bin'), bytes)
    origin = await startOrigin(path.join(dir, 'file.bin'))
  })

  afterEach(async () => {
    await stopAll(daemons)
    await origin.close()
    for (const s of servers.splice(0)) {
      s.closeAllConnections()
      await new Promise(resolve => s.close(resolve))
    }
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('with no daemon: an embedded node downloads; output sha256 equal', async () => {
    const out = path.join(dir, 'out.bin')
    const r = await runCli(['get', origin.url, '-O', out, ...embeddedArgs(path.join(dir, 'node'))])
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.include('via embedded')
    expect(sha256(await fs.readFile(out))).to.equal(sha256(bytes))
  })

  it('through the daemon; two concurrent gets of one URL download it once', async () => {
    const d = await startDaemon()
    daemons.push(d)
    const [a, b] = await Promise.all([
      runCli(['get', origin.url, '-O', path.join(dir, 'a.bin'), '--data-dir', d.dataDir, '--json']),
      runCli(['get', origin.url, '-O', path.join(dir, 'b.bin'), '--data-dir', d.dataDir, '--json'])
    ])
    expect(a.code, a.stderr).to.equal(0)
    expect(b.code, b.stderr).to.equal(0)
    expect(JSON.parse(a.stdout).via).to.equal('daemon')
    expect(sha256(await fs.readFile(path.join(dir, 'a.bin')))).to.equal(sha256(bytes))
    expect(sha256(await fs.readFile(path.join(dir, 'b.bin')))).to.equal(sha256(bytes))
    // one download: the origin sent the file once (plus a one-byte range probe per stat)
    expect(origin.bytesSent()).to.be.at.most(bytes.byteLength + 16)
  })

  it('-O - writes the verified file to stdout, with a daemon and without; the summary goes to stderr; a reader that stops early is no error', async () => {
    const embedded = await runCli(['get', origin.url, '-O', '-', ...embeddedArgs(path.join(dir, 'node'))])
    expect(embedded.code, embedded.stderr).to.equal(0)
    expect(sha256(embedded.stdoutBytes)).to.equal(sha256(bytes))
    expect(embedded.stderr).to.include('stdout: 3.0 MiB').and.include('via embedded')

    const d = await startDaemon()
    daemons.push(d)
    const viaDaemon = await runCli(['get', origin.url, '-O', '-', '--data-dir', d.dataDir])
    expect(viaDaemon.code, viaDaemon.stderr).to.equal(0)
    expect(sha256(viaDaemon.stdoutBytes)).to.equal(sha256(bytes))
    expect(viaDaemon.stderr).to.include('via daemon')

    // the task is in the daemon's store now: a reader that takes 64 KiB and closes the pipe
    const head = await runCli(['get', origin.url, '-O', '-', '--data-dir', d.dataDir], { closeStdoutAfter: 64 * 1024 })
    expect(head.code, head.stderr).to.equal(0)
    expect(head.stderr).to.not.include('Error')
    expect(head.stderr).to.include('the reader closed stdout')

    const both = await runCli(['get', origin.url, '-O', '-', '--json', '--data-dir', d.dataDir])
    expect(both.code).to.equal(2)
    expect(both.stderr).to.include('-O -').and.include('--json')
    expect(await fs.readdir(dir)).to.not.include('-')
  })

  it('-O - through a daemon: a body cut short, or broken off, fails naming the bytes received and the partial stdout', async () => {
    async function drain (chunks: AsyncIterable<Uint8Array>): Promise<number> {
      let n = 0
      for await (const c of chunks) {
        n += c.byteLength
      }
      return n
    }
    async function * parts (sizes: number[], fail?: Error): AsyncGenerator<Uint8Array> {
      for (const n of sizes) {
        yield new Uint8Array(n)
      }
      if (fail != null) {
        throw fail
      }
    }
    expect(await drain(wholeBody(parts([10, 20]), 30))).to.equal(30)
    const short = await drain(wholeBody(parts([10, 5]), 30)).catch(err => err)
    expect(short.name).to.equal('TransferError')
    expect(short.message).to.include('sent 15 of the file\'s 30 bytes').and.include('partial file')
    const broken = await drain(wholeBody(parts([10], new Error('aborted')), 30)).catch(err => err)
    expect(broken.message).to.include('sent 10 of the file\'s 30 bytes').and.include('(aborted;')
  })

  it('a wrong --digest exits 5 naming both digests and leaves no output file', async () => {
    const out = path.join(dir, 'out.bin')
    const wrong = `sha256:${'ab'.repeat(32)}`
    const r = await runCli(['get', origin.url, '-O', out, '--digest', wrong, ...embeddedArgs(path.join(dir, 'node'))])
    expect(r.code).to.equal(5)
    expect(r.stderr).to.include(wrong).and.include(`sha256:${sha256(bytes)}`)
    await expect(fs.stat(out)).to.eventually.be.rejected()
    expect((await fs.readdir(dir)).filter(f => f.startsWith('out.bin'))).to.deep.equal([])
  })

  it('origin 404, unreachable and timeout each have their own exit code and message', async () => {
    const node = path.join(dir, 'node')
    const missing = await runCli(['get', origin.url.replace('file.bin', 'nope.bin'), '-O', path.join(dir, 'o1'), ...embeddedArgs(node)])
    expect(missing.code).to.equal(4)
    expect(missing.stderr).to.match(/404|not found/i)

    const closed = http.createServer()
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise(resolve => closed.close(resolve))
    const unreachable = await runCli(['get', `http://127.0.0.1:${port}/f`, '-O', path.join(dir, 'o2'), ...embeddedArgs(node)])
    expect(unreachable.code).to.equal(10)
    expect(unreachable.stderr).to.match(/refused|reach/i)

    const hang = http.createServer(() => {})
    servers.push(hang)
    await new Promise<void>(resolve => hang.listen(0, '127.0.0.1', resolve))
    const hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/f`
    const slow = await runCli(['get', hangUrl, '-O', path.join(dir, 'o3'), '--timeout', '3s', ...embeddedArgs(node)])
    expect(slow.code).to.equal(6)
    expect(slow.stderr).to.include('--timeout')
  })

  it('refuses to overwrite without --overwrite (exit 8), and bad usage exits 2', async () => {
    const out = path.join(dir, 'exists.bin')
    await fs.writeFile(out, 'keep me')
    const r = await runCli(['get', origin.url, '-O', out, ...embeddedArgs(path.join(dir, 'node'))])
    expect(r.code).to.equal(8)
    expect(r.stderr).to.include('--overwrite')
    expect(await fs.readFile(out, 'utf8')).to.equal('keep me')

    const bad = await runCli(['get', 'ftp://x/y', '-O', path.join(dir, 'x')])
    expect(bad.code).to.equal(2)
    expect(bad.stderr).to.include('ftp:')
    const badDigest = await runCli(['get', origin.url, '-O', path.join(dir, 'x'), '--digest', 'md5:123'])
    expect(badDigest.code).to.equal(2)
    expect(badDigest.stderr).to.include('sha256:')
  })
})
