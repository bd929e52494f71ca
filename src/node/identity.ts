import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { generateKey } from '@libp2p/pnet'
import { ConfigError } from '../errors.ts'
import { IdentityError } from './errors.ts'
import type { PrivateKey } from '@libp2p/interface'

export const IDENTITY_FILE = 'identity.key'

/**
 * Load the node's private key from `<dataDir>/identity.key`, creating it
 * (Ed25519, mode 0600) on first start, so a node keeps its peer id across
 * restarts.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  const file = path.join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await fs.readFile(file)
  } catch (err: any) {
    if (err.code !== 'ENOENT') {
      throw new IdentityError(`cannot read the node identity ${file} (${err.code}); fix its permissions or move it away to make a new identity`)
    }
  }
  if (bytes != null) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err: any) {
      throw new IdentityError(`${file} is not a Damselfly identity key (${err.message}); move it away to make a new identity (the peer id will change)`)
    }
  }
  await fs.mkdir(dataDir, { recursive: true })
  const key = await generateKeyPair('Ed25519')
  await writeFileAtomic(file, privateKeyToProtobuf(key), 0o600)
  return key
}

/**
 * Write a new identity key to a file (`damselfly keygen`)
 */
export async function writeIdentity (file: string, options: { force?: boolean } = {}): Promise<PrivateKey> {
  await refuseOverwrite(file, options.force)
  const key = await generateKeyPair('Ed25519')
  await fs.mkdir(path.dirname(file), { recursive: true })
  await writeFileAtomic(file, privateKeyToProtobuf(key), 0o600)
  return key
}

/**
 * Write a new swarm (pre-shared) key for a private swarm
 */
export async function writeSwarmKey (file: string, options: { force?: boolean } = {}): Promise<void> {
  await refuseOverwrite(file, options.force)
  const key = new Uint8Array(95)
  generateKey(key)
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true })
  await writeFileAtomic(file, key, 0o600)
}

const SWARM_KEY_RE = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-fA-F]{64}\s*$/

/**
 * Read and check a swarm key file; the error names the file and the fix
 */
export async function readSwarmKey (file: string): Promise<Uint8Array> {
  let bytes: Uint8Array
  try {
    bytes = await fs.readFile(file)
  } catch (err: any) {
    throw new ConfigError(`swarm.keyFile: cannot read swarm key ${file} (${err.code ?? err.message}); check the path, or make one with \`damselfly keygen --swarm-key ${file}\``)
  }
  if (!SWARM_KEY_RE.test(new TextDecoder().decode(bytes))) {
    throw new ConfigError(`swarm.keyFile: ${file} is not a swarm key (expected "/key/swarm/psk/1.0.0/", "/base16/" and 64 hex digits); make one with \`damselfly keygen --swarm-key FILE\``)
  }
  return bytes
}

async function refuseOverwrite (file: string, force?: boolean): Promise<void> {
  if (force === true) {
    return
  }
  try {
    await fs.access(file)
  } catch {
    return
  }
  throw new ConfigError(`${file} already exists; pass --force to replace it (a replaced identity changes the peer id; a replaced swarm key locks out nodes with the old one)`)
}

async function writeFileAtomic (file: string, data: Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`
  const fh = await fs.open(tmp, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await fs.rename(tmp, file)
}
