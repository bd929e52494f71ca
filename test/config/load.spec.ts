import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { parse } from 'yaml'
import { configSchema, loadConfig, parseByteSize } from '../../src/config/index.ts'
import { repoRoot } from '../utils/paths.ts'

describe('config', () => {
  let dir: string
  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-config-')) })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  async function file (text: string): Promise<string> {
    const f = path.join(dir, 'c.yaml')
    await fs.writeFile(f, text)
    return f
  }

  async function rejects (p: Promise<unknown>): Promise<Error> {
    try {
      await p
    } catch (err: any) {
      return err
    }
    throw new Error('expected a rejection')
  }

  it('config/default.yaml equals the built-in defaults, key for key', async () => {
    const text = await fs.readFile(path.join(repoRoot(), 'config', 'default.yaml'), 'utf8')
    expect(configSchema.parse(parse(text))).to.deep.equal(configSchema.parse({}))
  })

  it('defaults: fixed ports, loopback control, home data dir', async () => {
    const c = await loadConfig({ env: { HOME: '/home/u' } })
    expect(c.listen).to.deep.equal(['/ip4/0.0.0.0/tcp/4780'])
    expect(c.control.listen).to.equal('127.0.0.1:4781')
    expect(c.dataDir).to.equal('/home/u/.damselfly')
    expect(c.swarm.name).to.equal('default')
    expect(c.supernode).to.equal('auto')
    expect(c.pipeline).to.equal(true)
    expect(c.sourcePeers).to.equal(1)
  })

  it('sourcePeers: by file, env or flag, a whole number from 1 to 64', async () => {
    const f = await file('sourcePeers: 3\n')
    expect((await loadConfig({ flags: { config: f }, cwd: dir })).sourcePeers).to.equal(3)
    expect((await loadConfig({ env: { DAMSELFLY_SOURCE_PEERS: '4' } })).sourcePeers).to.equal(4)
    expect((await loadConfig({ flags: { 'source-peers': 64 } })).sourcePeers).to.equal(64)
    for (const bad of ['0', '65', '1.5']) {
      const err = await rejects(loadConfig({ env: { DAMSELFLY_SOURCE_PEERS: bad } }))
      expect(err.message, bad).to.include('sourcePeers').and.include('DAMSELFLY_SOURCE_PEERS')
    }
    expect((await rejects(loadConfig({ env: { DAMSELFLY_SOURCE_PEERS: 'many' } }))).message).to.include('DAMSELFLY_SOURCE_PEERS').and.include('not a number')
  })

  it('pipeline: off by file, env or flag', async () => {
    const f = await file('pipeline: false\n')
    expect((await loadConfig({ flags: { config: f }, cwd: dir })).pipeline).to.equal(false)
    expect((await loadConfig({ env: { DAMSELFLY_PIPELINE: 'false' } })).pipeline).to.equal(false)
    expect((await loadConfig({ flags: { pipeline: false } })).pipeline).to.equal(false)
    expect((await rejects(loadConfig({ env: { DAMSELFLY_PIPELINE: 'sometimes' } }))).message).to.include('DAMSELFLY_PIPELINE')
  })

  it('precedence: flags > env > file > defaults', async () => {
    const f = await file('swarm:\n  name: from-file\n  heartbeatInterval: 1234\nsupernode: never\nquic: true\n')
    const c = await loadConfig({
      flags: { config: f, swarm: 'from-flag' },
      env: { DAMSELFLY_SWARM: 'from-env', DAMSELFLY_SUPERNODE: 'always', DAMSELFLY_LISTEN: '/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2' },
      cwd: dir
    })
    expect(c.swarm.name).to.equal('from-flag')
    expect(c.supernode).to.equal('always')
    expect(c.swarm.heartbeatInterval).to.equal(1234)
    expect(c.quic).to.equal(true)
    expect(c.listen).to.deep.equal(['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
  })

  it('the config file can come from DAMSELFLY_CONFIG; relative paths resolve against cwd', async () => {
    await file('dataDir: ./data\nswarm:\n  keyFile: keys/swarm.key\n')
    const c = await loadConfig({ env: { DAMSELFLY_CONFIG: 'c.yaml' }, cwd: dir })
    expect(c.dataDir).to.equal(path.join(dir, 'data'))
    expect(c.swarm.keyFile).to.equal(path.join(dir, 'keys/swarm.key'))
  })

  it('an unknown key is named with its path', async () => {
    const f = await file('swarm:\n  nmae: x\n')
    const err = await rejects(loadConfig({ flags: { config: f } }))
    expect(err.name).to.equal('ConfigError')
    expect(err.message).to.include('swarm.nmae').and.include('unknown key').and.include(f)
  })

  it('a bad port names the key and the flag it came from', async () => {
    const err = await rejects(loadConfig({ flags: { control: '127.0.0.1:99999' } }))
    expect(err.name).to.equal('ConfigError')
    expect(err.message).to.include('--control').and.include('control.listen').and.include('0-65535')
  })

  it('a bad enum lists the allowed values and names the env var', async () => {
    const err = await rejects(loadConfig({ env: { DAMSELFLY_SUPERNODE: 'sometimes' } }))
    expect(err.message).to.include('DAMSELFLY_SUPERNODE').and.include('"auto", "always", "never"')
  })

  it('a bad multiaddr, a bad boolean and a bad number are named', async () => {
    expect((await rejects(loadConfig({ flags: { bootstrap: ['not-an-addr'] } }))).message).to.include('swarm.bootstrap.0')
    expect((await rejects(loadConfig({ env: { DAMSELFLY_MDNS: 'maybe' } }))).message).to.include('DAMSELFLY_MDNS').and.include('boolean')
    expect((await rejects(loadConfig({ flags: { 'heartbeat-interval': 'soon' } }))).message).to.include('--heartbeat-interval')
    expect((await rejects(loadConfig({ flags: { 'heartbeat-interval': 5 } }))).message).to.include('swarm.heartbeatInterval')
  })

  it('an unreadable or invalid config file is a clear error', async () => {
    expect((await rejects(loadConfig({ flags: { config: path.join(dir, 'missing.yaml') } }))).message).to.include('cannot be read').and.include('ENOENT')
    const f = await file('swarm: [unclosed\n')
    expect((await rejects(loadConfig({ flags: { config: f } }))).message).to.include('not valid YAML')
    const g = await file('- a\n- b\n')
    expect((await rejects(loadConfig({ flags: { config: g } }))).message).to.include('mapping')
  })

  it('sizes with units', () => {
    expect(parseByteSize('0')).to.equal(0)
    expect(parseByteSize('512KiB')).to.equal(512 * 1024)
    expect(parseByteSize('20MB')).to.equal(20_000_000)
    expect(parseByteSize('1.5GiB')).to.equal(1.5 * 1024 ** 3)
    expect(parseByteSize('100M/s')).to.equal(100 * 1024 ** 2)
    expect(parseByteSize('fast')).to.equal(undefined)
    expect(parseByteSize('10XB')).to.equal(undefined)
  })

  it('rates given as strings are validated with the key path', async () => {
    const c = await loadConfig({ flags: { 'upload-rate': '10MiB' } })
    expect(c.transfer.uploadRate).to.equal(10 * 1024 * 1024)
    const err = await rejects(loadConfig({ flags: { 'upload-rate': 'lots' } }))
    expect(err.message).to.include('transfer.uploadRate').and.include('--upload-rate')
  })

  it('the mirror\'s direct-blob limit comes from a flag, the environment or the file, as a size', async () => {
    expect((await loadConfig({})).proxy.directBlobMaxBytes).to.equal(64 * 1024)
    expect((await loadConfig({ flags: { 'proxy-direct-blob-max': '1MiB' } })).proxy.directBlobMaxBytes).to.equal(1024 * 1024)
    expect((await loadConfig({ env: { DAMSELFLY_PROXY_DIRECT_BLOB_MAX: '0' } })).proxy.directBlobMaxBytes).to.equal(0)
    const err = await rejects(loadConfig({ flags: { 'proxy-direct-blob-max': 'small' } }))
    expect(err.message).to.include('proxy.directBlobMaxBytes').and.include('--proxy-direct-blob-max')
  })
})
