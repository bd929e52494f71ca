import fs from 'node:fs/promises'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { loadConfig } from '../../src/config/index.ts'
import { UpstreamPolicy } from '../../src/proxy/upstream.ts'
import { repoRoot } from '../utils/paths.ts'

describe('proxy: config/examples', () => {
  const examples = path.join(repoRoot(), 'config', 'examples')

  it('registry-mirror.yaml is a valid daemon config whose registries the mirror accepts', async () => {
    const config = await loadConfig({ flags: { config: path.join(examples, 'registry-mirror.yaml') } })
    expect(config.proxy.listen).to.equal('127.0.0.1:4782')
    const policy = new UpstreamPolicy(config.proxy)
    expect(policy.resolve({}).origin).to.equal('https://registry-1.docker.io')
    expect(policy.resolve({ ns: 'docker.io' }).origin).to.equal('https://registry-1.docker.io')
    expect(policy.resolve({ ns: 'ghcr.io' }).origin).to.equal('https://ghcr.io')
    expect(policy.resolve({ ns: 'europe-docker.pkg.dev' }).origin).to.equal('https://europe-docker.pkg.dev')
    expect(policy.resolve({ header: 'registry.internal:5000' }).origin).to.equal('http://registry.internal:5000')
  })

  it('the Docker and containerd files point at the default mirror address and name allowed registries', async () => {
    const config = await loadConfig({ flags: { config: path.join(examples, 'registry-mirror.yaml') } })
    const policy = new UpstreamPolicy(config.proxy)
    const docker = JSON.parse(await fs.readFile(path.join(examples, 'docker', 'daemon.json'), 'utf8'))
    expect(docker['registry-mirrors']).to.deep.equal([`http://${config.proxy.listen}`])

    const certs = path.join(examples, 'containerd', 'certs.d')
    const dirs = await fs.readdir(certs)
    expect(dirs).to.include('_default')
    for (const dir of dirs) {
      const toml = await fs.readFile(path.join(certs, dir, 'hosts.toml'), 'utf8')
      expect(toml, dir).to.include(`[host."http://${config.proxy.listen}"]`)
      expect(toml, dir).to.include('capabilities = ["pull", "resolve"]')
      const header = /X-Damselfly-Registry = \["([^"]+)"\]/.exec(toml)
      if (dir !== '_default') {
        expect(header, `${dir}: X-Damselfly-Registry header`).to.not.equal(null)
        expect(policy.resolve({ header: header![1] }).host).to.equal(dir)
      }
    }
  })
})
