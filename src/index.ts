/**
 * @packageDocumentation
 *
 * Damselfly: peer-to-peer file distribution on js-libp2p. Each piece of a
 * file leaves its origin about once; the nodes share pieces among
 * themselves, verified by sha256.
 *
 * @example Start a node
 *
 * ```ts
 * import { createDamselfly } from 'damselfly'
 *
 * const node = await createDamselfly({ config: { dataDir: '/var/lib/damselfly', swarm: { bootstrap: ['/ip4/10.0.0.1/tcp/4780/p2p/12D3Koo…'] } } })
 * console.log(node.status().peers)
 * ```
 */
import './polyfill.ts'

export { createDamselfly, damselfly, Damselfly, kadProtocol, directTls } from './node/index.ts'
export type { CreateDamselflyOptions, DamselflyNode, DamselflyInit, DamselflyComponents, DamselflyEvents, NodeStatus, SupernodeMode, GetRequest, DirectTlsStats } from './node/index.ts'
export type { Download, DownloadProgress, DownloadState } from './task/download.ts'
export type { ImportRequest } from './task/import.ts'
export { loadConfig, parseConfig } from './config/index.ts'
export type { NodeConfig, NodeConfigInput } from './config/index.ts'
export { DAMSELFLY_VERSION, PROTOCOL_VERSIONS } from './version.ts'
