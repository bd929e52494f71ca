import '../../src/polyfill.ts'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { startOrigin } from '../../src/cli/demo/origin.ts'
import type { DemoOrigin } from '../../src/cli/demo/origin.ts'

describe('demo origin', () => {
  let dir: string
  let origin: DemoOrigin
  const data = randomBytes(100_000)

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-origin-'))
    const file = path.join(dir, 'file.bin')
    await fs.writeFile(file, data)
    origin = await startOrigin(file)
  })

  after(async () => {
    await origin.close()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('serves its file under any query (one file, several task URLs), a range of it, and nothing else', async () => {
    const plain = await fetch(origin.url)
    expect(Buffer.from(await plain.arrayBuffer())).to.deep.equal(data)
    const queried = await fetch(`${origin.url}?warm-up`)
    expect(queried.status).to.equal(200)
    expect(Buffer.from(await queried.arrayBuffer())).to.deep.equal(data)
    const range = await fetch(`${origin.url}?x=1`, { headers: { range: 'bytes=10-19' } })
    expect(range.status).to.equal(206)
    expect(Buffer.from(await range.arrayBuffer())).to.deep.equal(data.subarray(10, 20))
    const other = await fetch(origin.url.replace(/file\.bin$/, 'other.bin'))
    expect(other.status).to.equal(404)
    await other.arrayBuffer()
    expect(origin.bytesSent()).to.equal(2 * data.byteLength + 10)
  })
})
