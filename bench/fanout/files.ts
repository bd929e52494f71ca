import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'

const CHUNK = 4 * 1024 * 1024

/** Write `size` random bytes to `file`; resolves to their sha256 (hex) */
export async function writeRandomFile (file: string, size: number): Promise<string> {
  const hash = createHash('sha256')
  const fh = await fs.promises.open(file, 'w')
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const chunk = randomBytes(Math.min(CHUNK, size - off))
      hash.update(chunk)
      await fh.write(chunk)
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

export async function sha256File (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk)
  }
  return hash.digest('hex')
}
