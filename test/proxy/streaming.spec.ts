/**
 * Streaming priority through a real engine: a Range request deep into a blob
 * that a slow seed holds gets its first bytes while the download has only a
 * few pieces, because the pieces at the reader's position are fetched first.
 */
import '../../src/polyfill.ts'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { RegistryMirror } from '../../src/proxy/index.ts'
import { taskId } from '../../src/task/id.ts'
import { TestSwarm, dialAddr, waitFor } from '../utils/nodes.ts'
import { MiB, sha256 } from './registry.ts'
import type { DamselflyNode } from '../../src/node/index.ts'

/** 64 pieces of 1 MiB; at the seed's 4 MiB/s the whole blob takes about 16 s */
const SIZE = 64 * MiB
const UPLOAD_RATE = 4 * MiB

describe('registry mirror: streaming priority', function () {
  this.timeout(180_000)

  const swarm = new TestSwarm()
  let mirror: RegistryMirror | undefined
  let seed: DamselflyNode
  let reader: DamselflyNode
  let blob: Buffer
  let digest: string

  before(async () => {
    const dir = await swarm.tempDir('damselfly-proxy-stream-')
    blob = randomBytes(SIZE)
    digest = sha256(blob)
    const file = path.join(dir, 'blob.bin')
    await fs.writeFile(file, blob)
    seed = await swarm.start({ config: { transfer: { uploadRate: UPLOAD_RATE } } })
    reader = await swarm.start({ config: { swarm: { bootstrap: [dialAddr(seed)] } } })
    await waitFor(() => seed.status().members === 1 && reader.status().members === 1, 60_000, 'the two nodes to see each other')
    await seed.service.import(file, { digest })
    // nothing listens on port 1: every byte must come from the seed
    mirror = new RegistryMirror(reader.service, { listen: '127.0.0.1:0', registryMirror: 'http://127.0.0.1:1' })
    await mirror.start()
  })

  after(async () => {
    await mirror?.stop()
    await swarm.stopAll()
  })

  it('a Range request at piece 48 of 64 gets its first bytes after a few pieces, not after most of the blob; the bytes are right', async () => {
    const id = taskId({ digest })
    const start = 48 * MiB + 1000
    const end = 50 * MiB + 5
    let piecesAtFirstByte = -1
    let stateAtFirstByte = ''
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = http.get(`http://${mirror!.address}/v2/test/img/blobs/${digest}`, { headers: { range: `bytes=${start}-${end - 1}` }, agent: false }, (res) => {
        expect(res.statusCode).to.equal(206)
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => {
          if (chunks.length === 0) {
            const p = reader.service.engine.get(id)?.progress()
            piecesAtFirstByte = p?.piecesDone ?? -1
            stateAtFirstByte = p?.state ?? ''
          }
          chunks.push(c)
        })
        res.on('end', () => { res.complete ? resolve(Buffer.concat(chunks)) : reject(new Error('the body was cut')) })
        res.on('error', reject)
      })
      req.on('error', reject)
    })
    expect(sha256(body)).to.equal(sha256(blob.subarray(start, end)))
    // the first bytes came while the download was still running, after the
    // pieces already in flight when the reader arrived plus the reader's own
    // (rarest-first alone reaches piece 48 after 3/4 of the blob on average)
    expect(stateAtFirstByte, 'download state at the first body byte').to.equal('running')
    expect(piecesAtFirstByte, 'pieces the reader node held at the first body byte').to.be.within(1, 24)
    // the last bytes waited for the whole blob and its digest
    expect(reader.service.store.getTask(id)?.state).to.equal('complete')
  })
})
