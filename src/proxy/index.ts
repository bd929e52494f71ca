/**
 * @packageDocumentation
 *
 * The registry mirror: an HTTP server speaking the OCI distribution API as a
 * pull-through mirror. Blob GETs and HEADs (`/v2/<name>/blobs/sha256:…`, or
 * whatever `rules` match) become Damselfly tasks keyed by their digest and
 * are streamed to the client piece by piece as they arrive, the last bytes
 * only after the whole-file digest matched; a reader's position goes first
 * (a stream cursor), the rest of the blob rarest-first. Blobs of at most
 * 64 KiB that a manifest passed on here named (the image config) are taken
 * from the registry directly, digest checked, and put into the swarm after.
 * Manifests, tags, the /v2/ ping and token flows pass through to the
 * upstream registry unchanged. The upstream is the configured
 * `registryMirror` or is named per request (`X-Damselfly-Registry` header,
 * containerd's `?ns=`) and must be allowed.
 *
 * @example
 *
 * ```ts
 * const mirror = registryMirror(node.service, { listen: '127.0.0.1:4782', registryMirror: 'https://registry-1.docker.io' })
 * await mirror.start()
 * // skopeo copy --src-tls-verify=false docker://127.0.0.1:4782/library/alpine:3 oci:/tmp/alpine:3
 * ```
 */

export { RegistryMirror, registryMirror, PROXY_OUTCOMES } from './proxy.ts'
export type { MirrorNode, RegistryMirrorInit, ProxyOutcome, ProxyStats } from './proxy.ts'
export { UpstreamPolicy, parseRegistryName } from './upstream.ts'
export type { Upstream, UpstreamPolicyInit, RegistryName } from './upstream.ts'
export { parseRange, ifRangeAllows, contentRange } from './range.ts'
export { manifestBlobs, SmallBlobs, IMAGE_MANIFEST_TYPES } from './manifest.ts'
export type { BlobRef } from './manifest.ts'
export type { RangeRequest } from './range.ts'
export * from './constants.ts'
export * from './errors.ts'
