/**
 * Paths served through the swarm unless configured otherwise: blob GETs and
 * HEADs by sha256 digest. Content-addressed, so the task id comes from the
 * digest and one layer pulled from any registry or mirror is one task.
 */
export const DEFAULT_PROXY_RULES: readonly string[] = Object.freeze(['/v2/.+/blobs/sha256:[0-9a-f]{64}$'])

/**
 * Header naming the upstream registry of one request (`https://ghcr.io` or
 * `ghcr.io`), as containerd's hosts.toml `[host."…".header]` can send it
 */
export const REGISTRY_HEADER = 'x-damselfly-registry'

/**
 * Query parameter containerd adds to every request it sends to a mirror
 * host: the registry the image belongs to (`?ns=docker.io`)
 */
export const NS_PARAM = 'ns'

/**
 * Docker Hub's name in image references and its API host
 */
export const DOCKER_HUB_NAMES: readonly string[] = Object.freeze(['docker.io', 'index.docker.io', 'registry-1.docker.io'])
export const DOCKER_HUB_API = 'https://registry-1.docker.io'

/**
 * Wait for the upstream's response headers, in ms. Registries answer
 * manifests and token redirects in well under a second; 30 s covers a slow
 * registry without holding a client for minutes on a dead one.
 */
export const DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS = 30_000

/**
 * Longest silence while streaming a forwarded body, in ms
 */
export const DEFAULT_UPSTREAM_BODY_TIMEOUT_MS = 60_000

/**
 * How often a blob response waiting for its next piece re-checks the store
 * when no download event arrived, in ms. Events wake it at once; the poll
 * only covers pieces written by another download of the same task.
 */
export const DEFAULT_PIECE_POLL_MS = 250

/**
 * How often a blob request waiting for its task's metadata re-checks the
 * store, in ms. The download fires no event when it learns the metadata (from
 * the tracker or an origin stat), so this poll alone decides how soon the
 * response starts: a map lookup every 50 ms costs nothing and saves up to a
 * piece-poll interval per blob.
 */
export const DEFAULT_METADATA_POLL_MS = 50

/**
 * Blobs up to this size, when an image manifest this mirror passed on named
 * them, are fetched from the registry directly (whole, digest checked before
 * the first byte is sent) instead of through the swarm, in bytes. An image
 * config is a few KiB and clients fetch it on its own (skopeo after the
 * layers): as a swarm task it waited 1-5 s for tracker round trips on a
 * loaded swarm, for bytes the registry serves in a millisecond. 0 sends every
 * blob through the swarm.
 */
export const DEFAULT_DIRECT_BLOB_MAX_BYTES = 64 * 1024

/** Manifest bodies up to this size are read for blob sizes (the distribution spec's manifest limit) */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/** Small blobs whose size the mirror remembers from manifests */
export const MAX_REMEMBERED_SMALL_BLOBS = 10_000

/**
 * A blob request gives up when its download learned nothing (no task
 * metadata) for this long, in ms: the download's own timeouts (tracker
 * retries, origin stat with retries) are shorter, so this only stops a hang.
 */
export const DEFAULT_METADATA_TIMEOUT_MS = 120_000

/**
 * Headers that describe one connection, never forwarded (RFC 9110 §7.6.1),
 * plus the ones this proxy consumes itself
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = Object.freeze([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  REGISTRY_HEADER
])
