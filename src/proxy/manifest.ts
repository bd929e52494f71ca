/**
 * What the mirror learns from the image manifests it passes through: the
 * digest and size of each blob an image references, so that a blob too small
 * to gain from the swarm (the image config, a few KiB) can be fetched from
 * the registry directly instead of as a swarm task. Pure, no I/O.
 */

/** Manifest media types that list blobs (config and layers); indexes list manifests */
export const IMAGE_MANIFEST_TYPES: readonly string[] = Object.freeze([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json'
])

const DIGEST = /^sha256:[0-9a-f]{64}$/

export interface BlobRef {
  digest: string
  size: number
}

/**
 * The config and layers an image manifest references, or [] when the body is
 * not an image manifest (an index, another media type, malformed JSON)
 */
export function manifestBlobs (body: Uint8Array, contentType: string | undefined): BlobRef[] {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase()
  if (!IMAGE_MANIFEST_TYPES.includes(type)) {
    return []
  }
  let doc: any
  try {
    doc = JSON.parse(Buffer.from(body).toString('utf8'))
  } catch {
    return []
  }
  const refs: BlobRef[] = []
  for (const d of [doc?.config, ...(Array.isArray(doc?.layers) ? doc.layers : [])]) {
    if (typeof d?.digest === 'string' && DIGEST.test(d.digest) && Number.isSafeInteger(d.size) && d.size >= 0) {
      refs.push({ digest: d.digest, size: d.size })
    }
  }
  return refs
}

/**
 * Sizes of small blobs seen in manifests, at most `maxEntries` (the oldest
 * are forgotten first)
 */
export class SmallBlobs {
  private readonly sizes = new Map<string, number>()

  constructor (private readonly maxBytes: number, private readonly maxEntries: number) {}

  /** remember the blobs of `refs` that are at most maxBytes */
  learn (refs: BlobRef[]): void {
    for (const { digest, size } of refs) {
      if (size > this.maxBytes) {
        continue
      }
      this.sizes.delete(digest)
      this.sizes.set(digest, size)
      if (this.sizes.size > this.maxEntries) {
        this.sizes.delete(this.sizes.keys().next().value!)
      }
    }
  }

  /** the size of a small blob seen in a manifest, if any */
  size (digest: string): number | undefined {
    return this.sizes.get(digest)
  }
}
