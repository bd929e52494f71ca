import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'aegir/chai'
import { CLI_NODE_FLAGS } from '../../src/cli/node-flags.ts'
import { startDaemon, stopAll } from '../utils/cli.ts'
import { cliPath } from '../utils/paths.ts'
import type { DaemonProcess } from '../utils/cli.ts'

const run = promisify(execFile)

/**
 * Module hooks that append every module URL the process resolves to a file
 * (synchronously, from the hooks' thread, so nothing is lost at exit)
 */
const HOOKS = `import { appendFileSync } from 'node:fs'
let file
export function initialize (data) { file = data.file }
export async function resolve (specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(file, result.url + '\\n')
  return result
}
`

/** What only a libp2p node or the daemon needs: loading any of it costs about a second */
const HEAVY = [
  '/node_modules/libp2p/',
  '/node_modules/@libp2p/tcp/',
  '/node_modules/@libp2p/kad-dht/',
  '/node_modules/@chainsafe/libp2p-yamux/',
  '/node_modules/@libp2p/gossipsub/',
  '/dist/src/node/create.js',
  '/dist/src/daemon/daemon.js'
]

describe('cli: start-up loads no libp2p unless a node runs in the process', () => {
  let dir: string
  let preload: string
  const daemons: DaemonProcess[] = []

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-startup-'))
    const hooks = path.join(dir, 'hooks.mjs')
    await fs.writeFile(hooks, HOOKS)
    preload = path.join(dir, 'preload.mjs')
    await fs.writeFile(preload, `import { register } from 'node:module'
register(${JSON.stringify(new URL(`file://${hooks}`).href)}, { data: { file: process.env.RECORD_MODULES } })
`)
  })

  after(async () => {
    await stopAll(daemons)
    await fs.rm(dir, { recursive: true, force: true })
  })

  /** the module URLs a `node <args>` run resolved */
  async function modulesOf (args: string[], name: string): Promise<{ urls: string[], stdout: string }> {
    const record = path.join(dir, `${name}.modules`)
    const { stdout } = await run(process.execPath, [...CLI_NODE_FLAGS, '--import', preload, ...args], {
      env: { ...process.env, DEBUG: '', RECORD_MODULES: record }
    }).catch(err => err)
    const urls = (await fs.readFile(record, 'utf8')).split('\n').filter(Boolean)
    return { urls, stdout }
  }

  function heavyIn (urls: string[]): string[] {
    return urls.filter(u => HEAVY.some(h => u.includes(h)))
  }

  it('the recorder sees libp2p where it is loaded', async () => {
    const { urls } = await modulesOf(['--input-type=module', '-e', `await import(${JSON.stringify(path.join(path.dirname(cliPath()), '..', 'node', 'create.js'))})`], 'control')
    expect(heavyIn(urls)).to.not.be.empty()
  })

  it('--version, and a command that finds no daemon', async () => {
    const version = await modulesOf([cliPath(), '--version'], 'version')
    expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+/)
    // every command's module is loaded to parse the arguments
    expect(version.urls.some(u => u.endsWith('/dist/src/cli/commands/doctor.js'))).to.be.true()
    expect(heavyIn(version.urls)).to.deep.equal([])

    const status = await modulesOf([cliPath(), 'status', '--control', '127.0.0.1:9'], 'status')
    expect(heavyIn(status.urls)).to.deep.equal([])
  })

  it('get, status and tasks through a running daemon', async () => {
    const d = await startDaemon()
    daemons.push(d)
    const file = path.join(dir, 'small.bin')
    await fs.writeFile(file, Buffer.alloc(100_000, 7))
    const out = path.join(dir, 'out.bin')

    const get = await modulesOf([cliPath(), 'get', `file://${file}`, '-O', out, '--control', d.control, '--no-progress'], 'get')
    expect(await fs.readFile(out)).to.deep.equal(await fs.readFile(file))
    expect(heavyIn(get.urls)).to.deep.equal([])

    for (const cmd of ['status', 'tasks']) {
      const r = await modulesOf([cliPath(), cmd, '--control', d.control], cmd)
      expect(r.stdout).to.not.equal('')
      expect(heavyIn(r.urls)).to.deep.equal([])
    }
  })
})
