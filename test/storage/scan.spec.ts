import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'aegir/chai'
import { SCAN_READ_BYTES, scanPieces } from '../../src/storage/scan.ts'
import { pieceBytes } from './fixtures/piece-bytes.ts'
import type { FileHandle } from 'node:fs/promises'

const KiB = 1024

describe('storage/scan', () => {
  let dir: string
  let file: FileHandle | undefined

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-scan-'))
  })

  afterEach(async () => {
    await file?.close()
    file = undefined
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function open (content: Uint8Array): Promise<FileHandle> {
    const p = path.join(dir, 'data')
    await fs.writeFile(p, content)
    file = await fs.open(p, 'r')
    return file
  }

  async function collect (content: Uint8Array, pieceSize: number, contentLength = content.byteLength): Promise<Buffer[]> {
    const handle = await open(content)
    const pieces: Buffer[] = []
    const indexes: number[] = []
    await scanPieces(handle, { contentLength, pieceSize }, (i, bytes) => {
      indexes.push(i)
      // the bytes are only valid during the call
      pieces.push(Buffer.from(bytes))
    })
    expect(indexes).to.deep.equal(pieces.map((_, i) => i))
    return pieces
  }

  // sizes around every boundary: one read, several reads, a short last piece
  // and a short last read, and pieces larger than one read
  const cases: Array<[string, number, number]> = [
    ['empty', 0, 16 * KiB],
    ['one byte', 1, 16 * KiB],
    ['less than a piece', 1000, 16 * KiB],
    ['exactly one piece', 16 * KiB, 16 * KiB],
    ['one read exactly', SCAN_READ_BYTES, 16 * KiB],
    ['one read and a byte', SCAN_READ_BYTES + 1, 16 * KiB],
    ['several reads, a short last piece', 3 * SCAN_READ_BYTES + 5000, 16 * KiB],
    ['pieces that do not divide a read', 2 * SCAN_READ_BYTES + 777, 3 * 1000 * KiB],
    ['pieces larger than one read', 2 * SCAN_READ_BYTES + 123, SCAN_READ_BYTES + 4 * KiB]
  ]

  for (const [name, length, pieceSize] of cases) {
    it(`hands out every piece in order: ${name}`, async () => {
      const content = pieceBytes(length % 251, length)
      const pieces = await collect(content, pieceSize)

      expect(pieces).to.have.length(Math.ceil(length / pieceSize))
      pieces.forEach((p, i) => {
        expect(p.byteLength).to.equal(Math.min(pieceSize, length - i * pieceSize))
      })
      expect(Buffer.concat(pieces).equals(Buffer.from(content))).to.be.true()
    })
  }

  it('reads only the content when the file is longer', async () => {
    const content = pieceBytes(3, 100 * KiB)
    const pieces = await collect(content, 16 * KiB, 40 * KiB)

    expect(Buffer.concat(pieces).equals(Buffer.from(content.subarray(0, 40 * KiB)))).to.be.true()
  })

  it('fails naming the piece where a short file ends', async () => {
    const handle = await open(pieceBytes(4, SCAN_READ_BYTES + 20 * KiB))
    const seen: number[] = []

    await expect(scanPieces(handle, { contentLength: 2 * SCAN_READ_BYTES, pieceSize: 16 * KiB }, i => { seen.push(i) }))
      .to.eventually.be.rejected().with.property('message').that.matches(/ended at byte \d+, inside piece 257, before the content's/)
    // the whole first read came out before the short one was found
    expect(seen).to.have.length(SCAN_READ_BYTES / (16 * KiB))
  })

  it('stops at an error of the callback, after the read ahead has ended', async () => {
    const handle = await open(pieceBytes(5, 4 * SCAN_READ_BYTES))
    const seen: number[] = []

    await expect(scanPieces(handle, { contentLength: 4 * SCAN_READ_BYTES, pieceSize: SCAN_READ_BYTES }, i => {
      seen.push(i)
      if (i === 1) {
        throw new Error('bad piece')
      }
    })).to.eventually.be.rejectedWith('bad piece')
    expect(seen).to.deep.equal([0, 1])
    // closing right away is safe: no read is still running on the handle
    await handle.close()
    file = undefined
  })

  it('stops when aborted', async () => {
    const handle = await open(pieceBytes(6, 3 * SCAN_READ_BYTES))
    const controller = new AbortController()
    const seen: number[] = []

    await expect(scanPieces(handle, { contentLength: 3 * SCAN_READ_BYTES, pieceSize: SCAN_READ_BYTES }, i => {
      seen.push(i)
      controller.abort()
    }, { signal: controller.signal })).to.eventually.be.rejected().with.property('name', 'AbortError')
    expect(seen).to.deep.equal([0])
  })
})
