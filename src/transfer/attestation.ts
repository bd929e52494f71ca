/**
 * Piece digest attestations: the node that reads a piece from the origin
 * signs its sha256 with its libp2p identity key, and every node that passes
 * the piece on relays the signature in the piece header. A receiver that does
 * not know the piece's digest yet (it comes from the tracker, about a second
 * after the source reported it) may then verify the piece against the signed
 * digest, provided the tracker named the signer as a source of the task.
 *
 * That trusts nothing the tracker's digest does not: the tracker records the
 * first digest a peer reports, which for a piece read from the origin is the
 * source's own. A peer in the middle of a pipeline cannot forge one.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto'
import { InvalidParametersError } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { equals as equalBytes } from 'uint8arrays/equals'
import { DIGEST_BYTES, MAX_ATTESTATION_BYTES, MAX_ATTESTED_PIECES, MAX_ATTESTED_TASKS, MAX_ATTESTOR_CHARS } from './constants.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { KeyObject } from 'node:crypto'

/** A signed piece digest, as carried in a PieceHeader */
export interface PieceAttestation {
  /** the signer (string form of its peer id): the source that read the piece from the origin */
  attestor: string
  /** its signature over attestationPayload(taskId, index, digest) */
  signature: Uint8Array
}

const DOMAIN = new TextEncoder().encode('damselfly-piece-digest/1')
const encoder = new TextEncoder()

/** The bytes an attestor signs: domain, task id and index (so a signature fits no other piece), digest */
export function attestationPayload (taskId: string, index: number, digest: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0 || index > 0xffffffff) {
    throw new InvalidParametersError(`piece index must be a uint32, got ${index}`)
  }
  if (digest.byteLength !== DIGEST_BYTES) {
    throw new InvalidParametersError(`a piece digest is ${DIGEST_BYTES} bytes, got ${digest.byteLength}`)
  }
  const task = encoder.encode(taskId)
  const out = new Uint8Array(DOMAIN.byteLength + 1 + task.byteLength + 1 + 4 + DIGEST_BYTES)
  let at = 0
  out.set(DOMAIN, at)
  at += DOMAIN.byteLength + 1
  out.set(task, at)
  at += task.byteLength + 1
  new DataView(out.buffer).setUint32(at, index)
  out.set(digest, at + 4)
  return out
}

/** DER prefixes of an Ed25519 key (RFC 8410): Node's crypto takes the raw key bytes after them */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/**
 * Node KeyObjects of Ed25519 keys, made once: `@libp2p/crypto` builds one from
 * a JWK on every sign or verify. Kept, a sign took 53 µs instead of 112 and a
 * verify 171 instead of 199 on this machine, under load (one of each per
 * piece and node)
 */
const signers = new WeakMap<PrivateKey, KeyObject>()
const verifiers = new Map<string, KeyObject>()
const MAX_CACHED_VERIFIERS = 256

/** Sign piece `index` of `taskId` as read from the origin, with this node's identity key */
export async function signPieceDigest (key: PrivateKey, attestor: string, taskId: string, index: number, digest: Uint8Array): Promise<PieceAttestation> {
  const payload = attestationPayload(taskId, index, digest)
  if (key.type !== 'Ed25519') {
    return { attestor, signature: await key.sign(payload) }
  }
  let signer = signers.get(key)
  if (signer == null) {
    // raw: the 32-byte seed followed by the public key
    signer = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, key.raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
    signers.set(key, signer)
  }
  return { attestor, signature: cryptoSign(null, payload, signer) }
}

/** Verify with a kept KeyObject for Ed25519 peer ids, with the key's own verify for other types */
async function verifyBy (attestor: string, payload: Uint8Array, signature: Uint8Array): Promise<boolean> {
  let verifier = verifiers.get(attestor)
  if (verifier == null) {
    const key = peerIdFromString(attestor).publicKey
    if (key == null) {
      return false
    }
    if (key.type !== 'Ed25519') {
      return key.verify(payload, signature)
    }
    verifier = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key.raw]), format: 'der', type: 'spki' })
    if (verifiers.size >= MAX_CACHED_VERIFIERS) {
      verifiers.clear()
    }
    verifiers.set(attestor, verifier)
  }
  return cryptoVerify(null, payload, verifier, signature)
}

/**
 * Whether `attestation` is `attestor`'s valid signature of `digest` for piece
 * `index` of `taskId`. False (never a throw) for a malformed peer id, a key
 * type that does not embed its public key, oversized fields or a bad signature.
 */
export async function verifyPieceDigest (taskId: string, index: number, digest: Uint8Array, attestation: PieceAttestation): Promise<boolean> {
  if (attestation.attestor.length === 0 || attestation.attestor.length > MAX_ATTESTOR_CHARS ||
    attestation.signature.byteLength === 0 || attestation.signature.byteLength > MAX_ATTESTATION_BYTES || digest.byteLength !== DIGEST_BYTES) {
    return false
  }
  try {
    return await verifyBy(attestation.attestor, attestationPayload(taskId, index, digest), attestation.signature)
  } catch {
    return false
  }
}

/**
 * The attestations a node holds for the pieces it can serve: its own (pieces
 * it read from the origin) and those it received and verified, to relay.
 * Only recent tasks are kept (an attestation matters while a swarm fetches
 * the task; afterwards every peer gets digests from the tracker): beyond
 * `maxTasks` tasks or `maxPieces` pieces in all, the least recently touched
 * task goes first.
 */
export class PieceAttestations {
  readonly maxTasks: number
  readonly maxPieces: number
  readonly #tasks = new Map<string, Map<number, { digest: Uint8Array, attestation: PieceAttestation }>>()
  #pieces = 0

  constructor (maxTasks = MAX_ATTESTED_TASKS, maxPieces = MAX_ATTESTED_PIECES) {
    if (!Number.isSafeInteger(maxTasks) || maxTasks < 1 || !Number.isSafeInteger(maxPieces) || maxPieces < 1) {
      throw new InvalidParametersError(`maxTasks and maxPieces must be positive integers, got ${maxTasks} and ${maxPieces}`)
    }
    this.maxTasks = maxTasks
    this.maxPieces = maxPieces
  }

  /** The attestation of piece `index` of `taskId`, if one is held for exactly this digest */
  get (taskId: string, index: number, digest: Uint8Array): PieceAttestation | undefined {
    const entry = this.#tasks.get(taskId)?.get(index)
    return entry != null && equalBytes(entry.digest, digest) ? entry.attestation : undefined
  }

  /** Keep `attestation` of `digest` for piece `index` of `taskId` (it replaces one held before) */
  set (taskId: string, index: number, digest: Uint8Array, attestation: PieceAttestation): void {
    let pieces = this.#tasks.get(taskId)
    if (pieces == null) {
      pieces = new Map()
    } else {
      // most recently used last
      this.#tasks.delete(taskId)
    }
    this.#tasks.set(taskId, pieces)
    if (!pieces.has(index)) {
      this.#pieces++
    }
    pieces.set(index, { digest: Uint8Array.from(digest), attestation })
    for (const [oldest, held] of this.#tasks) {
      if (oldest === taskId || (this.#tasks.size <= this.maxTasks && this.#pieces <= this.maxPieces)) {
        break
      }
      this.#tasks.delete(oldest)
      this.#pieces -= held.size
    }
  }

  /** Drop a task's attestations (the task was deleted) */
  forget (taskId: string): void {
    this.#pieces -= this.#tasks.get(taskId)?.size ?? 0
    this.#tasks.delete(taskId)
  }

  /** Tasks with attestations held */
  get size (): number {
    return this.#tasks.size
  }

  /** Pieces with an attestation held, over all tasks */
  get pieces (): number {
    return this.#pieces
  }
}
