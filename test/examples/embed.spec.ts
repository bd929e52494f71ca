import '../../src/polyfill.ts'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { startOrigin } from '../../src/cli/demo/origin.ts'
import { TestSwarm, dialAddr } from '../utils/nodes.ts'
import type { DemoOrigin } from '../../src/cli/demo/origin.ts'

const example = fileURLToPath(new URL('../../examples/embed.js', import.meta.url))

describe('examples/embed: a libp2p program of its own with the Damselfly service', () => {
  const t = new TestSwarm()
  let origin: DemoOrigin | undefined

  afterEach(async () => {
    await t.stopAll()
    await origin?.close()
  })

  it('joins a running swarm and downloads a file from it', async () => {
    const dir = await t.tempDir()
    const file = path.join(dir, 'file.bin')
    const bytes = randomBytes(8 * 1024 * 1024)
    await fs.writeFile(file, bytes)
    origin = await startOrigin(file)

    const seed = await t.start()
    await seed.service.get({ url: origin.url }).done
    const egressBefore = origin.bytesSent()

    const out = path.join(dir, 'out.bin')
    const child = spawn(process.execPath, [example, dialAddr(seed), origin.url, out], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += String(d) })
    child.stderr.on('data', (d) => { stderr += String(d) })
    const code = await new Promise<number | null>(resolve => child.on('close', resolve))
    expect(code, stderr).to.equal(0)

    const result = JSON.parse(stdout.trim().split('\n').pop()!)
    expect(createHash('sha256').update(await fs.readFile(out)).digest('hex')).to.equal(createHash('sha256').update(bytes).digest('hex'))
    expect(result.fromPeers).to.equal(bytes.byteLength)
    expect(origin.bytesSent() - egressBefore).to.be.lessThan(1024, 'only the metadata probe went to the origin')
  })
})
