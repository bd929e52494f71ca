import { MAX_SOURCE_PEERS } from '../scheduler/constants.ts'

/**
 * One table of the settings that can be given as a command-line flag or an
 * environment variable, with the config key each one sets. The CLI, the
 * config loader and the README's configuration table all come from it.
 */
export interface CliOption {
  /** long flag name, without dashes */
  flag: string
  /** environment variable */
  env: string
  /** dotted config key path */
  key: string
  type: 'string' | 'boolean' | 'number' | 'array'
  describe: string
}

export const NODE_OPTIONS: CliOption[] = [
  { flag: 'config', env: 'DAMSELFLY_CONFIG', key: '', type: 'string', describe: 'YAML config file (see config/default.yaml)' },
  { flag: 'data-dir', env: 'DAMSELFLY_DATA_DIR', key: 'dataDir', type: 'string', describe: 'Data directory: identity, store, control socket' },
  { flag: 'listen', env: 'DAMSELFLY_LISTEN', key: 'listen', type: 'array', describe: 'libp2p listen multiaddr (repeatable; env: comma-separated)' },
  { flag: 'announce', env: 'DAMSELFLY_ANNOUNCE', key: 'announce', type: 'array', describe: 'Multiaddr to announce instead of the listen addresses (repeatable)' },
  { flag: 'bootstrap', env: 'DAMSELFLY_BOOTSTRAP', key: 'swarm.bootstrap', type: 'array', describe: 'Bootstrap multiaddr with /p2p/<peer id> (repeatable)' },
  { flag: 'swarm', env: 'DAMSELFLY_SWARM', key: 'swarm.name', type: 'string', describe: 'Swarm name' },
  { flag: 'swarm-key', env: 'DAMSELFLY_SWARM_KEY', key: 'swarm.keyFile', type: 'string', describe: 'Pre-shared key file of a private swarm' },
  { flag: 'mdns', env: 'DAMSELFLY_MDNS', key: 'swarm.mdns', type: 'boolean', describe: 'Discover and dial peers on the LAN by mDNS' },
  { flag: 'heartbeat-interval', env: 'DAMSELFLY_HEARTBEAT_INTERVAL', key: 'swarm.heartbeatInterval', type: 'number', describe: 'Membership heartbeat interval in ms (swarms of more than 8 nodes: longer, in proportion)' },
  { flag: 'quic', env: 'DAMSELFLY_QUIC', key: 'quic', type: 'boolean', describe: 'Also listen on QUIC' },
  { flag: 'supernode', env: 'DAMSELFLY_SUPERNODE', key: 'supernode', type: 'string', describe: 'Tracker role: auto | always | never' },
  { flag: 'pipeline', env: 'DAMSELFLY_PIPELINE', key: 'pipeline', type: 'boolean', describe: 'As tracker, have peers stream pieces along a pipeline (--no-pipeline: the mesh)' },
  { flag: 'source-peers', env: 'DAMSELFLY_SOURCE_PEERS', key: 'sourcePeers', type: 'number', describe: `As tracker, how many peers may read a task from the origin at once (1-${MAX_SOURCE_PEERS})` },
  { flag: 'control', env: 'DAMSELFLY_CONTROL', key: 'control.listen', type: 'string', describe: 'Control API HOST:PORT on loopback ("" to disable)' },
  { flag: 'upload-rate', env: 'DAMSELFLY_UPLOAD_RATE', key: 'transfer.uploadRate', type: 'string', describe: 'Upload limit in bytes/s (e.g. 50MiB; 0 = none)' },
  { flag: 'upload-slots', env: 'DAMSELFLY_UPLOAD_SLOTS', key: 'transfer.uploadSlots', type: 'number', describe: 'Pieces this node uploads at once, over all peers' },
  { flag: 'download-rate', env: 'DAMSELFLY_DOWNLOAD_RATE', key: 'transfer.downloadRate', type: 'string', describe: 'Download limit in bytes/s (0 = none)' },
  { flag: 'storage-quota', env: 'DAMSELFLY_STORAGE_QUOTA', key: 'storage.quota', type: 'string', describe: 'Most bytes the store\'s tasks may hold (e.g. 50GiB, or 80% of the disk; 0 = none): above it the least recently used tasks not in use are removed' },
  { flag: 'task-ttl', env: 'DAMSELFLY_TASK_TTL', key: 'storage.taskTtl', type: 'number', describe: 'Remove a task not used for this many ms (0 = never)' },
  { flag: 'gc-interval', env: 'DAMSELFLY_GC_INTERVAL', key: 'storage.gcInterval', type: 'number', describe: 'Run GC of the store every this many ms (0 = never)' },
  { flag: 'proxy', env: 'DAMSELFLY_PROXY', key: 'proxy.listen', type: 'string', describe: 'Registry mirror HOST:PORT ("" to disable)' },
  { flag: 'registry-mirror', env: 'DAMSELFLY_REGISTRY_MIRROR', key: 'proxy.registryMirror', type: 'string', describe: 'Upstream registry of the mirror, e.g. https://registry-1.docker.io' },
  { flag: 'proxy-allow-host', env: 'DAMSELFLY_PROXY_ALLOW_HOSTS', key: 'proxy.allowHosts', type: 'array', describe: 'Registry a mirror request may name: host[:port], *.domain or http://host:port (repeatable; env: comma-separated)' },
  { flag: 'proxy-direct-blob-max', env: 'DAMSELFLY_PROXY_DIRECT_BLOB_MAX', key: 'proxy.directBlobMaxBytes', type: 'string', describe: 'Blobs a manifest names as at most this size (e.g. 64KiB) come straight from the registry, digest checked; 0 = all through the swarm' },
  { flag: 'proxy-rule', env: 'DAMSELFLY_PROXY_RULES', key: 'proxy.rules', type: 'array', describe: 'Regex over the request path sent through the swarm (repeatable; replaces the default)' }
]
