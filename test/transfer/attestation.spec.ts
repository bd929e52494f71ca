import '../../src/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { attestationPayload, PieceAttestations, signPieceDigest, verifyPieceDigest } from '../../src/transfer/attestation.ts'
import { requestPieces } from '../../src/transfer/client.ts'
import { handlePieceStream } from '../../src/transfer/server.ts'
import { UploadSlots } from '../../src/transfer/upload-slots.ts'
import { KiB, memoryStreams, pieceBytes, sha256, testSource } from './fixtures.ts'
import type { PieceAttestation } from '../../src/transfer/attestation.ts'
import type { PieceProof } from '../../src/transfer/index.ts'
import type { PrivateKey, Stream } from '@libp2p/interface'

const TASK = 'a'.repeat(64)
const PIECE = 16 * KiB

interface Signer { key: PrivateKey, id: string }

async function signer (): Promise<Signer> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

describe('transfer: piece digest attestations', function () {
  let source: Signer
  let other: Signer

  before(async function () {
    source = await signer()
    other = await signer()
  })

  describe('sign and verify', function () {
    const digest = sha256(new Uint8Array([1, 2, 3]))

    it('verifies a signature over exactly this task, index and digest', async function () {
      const a = await signPieceDigest(source.key, source.id, TASK, 7, digest)
      expect(a.attestor).to.equal(source.id)
      expect(await verifyPieceDigest(TASK, 7, digest, a)).to.be.true()
    })

    it('rejects it for another task, index, digest or signer, and when cut or empty', async function () {
      const a = await signPieceDigest(source.key, source.id, TASK, 7, digest)
      expect(await verifyPieceDigest('b'.repeat(64), 7, digest, a)).to.be.false()
      expect(await verifyPieceDigest(TASK, 8, digest, a)).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, sha256(new Uint8Array([4])), a)).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest, { ...a, attestor: other.id })).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest, { ...a, signature: a.signature.subarray(1) })).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest, { ...a, signature: new Uint8Array(0) })).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest, { ...a, signature: new Uint8Array(1024) })).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest, { ...a, attestor: 'not a peer id' })).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest, { ...a, attestor: '' })).to.be.false()
      expect(await verifyPieceDigest(TASK, 7, digest.subarray(1), a)).to.be.false()
    })

    it('signs and verifies as the libp2p key does (Ed25519 is deterministic)', async function () {
      const a = await signPieceDigest(source.key, source.id, TASK, 2, digest)
      const payload = attestationPayload(TASK, 2, digest)
      expect(a.signature).to.equalBytes(await source.key.sign(payload))
      expect(await source.key.publicKey.verify(payload, a.signature)).to.be.true()
      // twice: the second call uses the kept key objects
      expect(await verifyPieceDigest(TASK, 2, digest, { attestor: source.id, signature: await source.key.sign(payload) })).to.be.true()
      expect(await verifyPieceDigest(TASK, 2, digest, { attestor: source.id, signature: await source.key.sign(payload) })).to.be.true()
    })

    it('binds task and index unambiguously in the signed bytes', function () {
      // the separator keeps task "ab" + index from reading as task "a" + other bytes
      expect(attestationPayload('ab', 1, digest)).to.not.equalBytes(attestationPayload('a', 1, digest))
      expect(attestationPayload(TASK, 1, digest)).to.not.equalBytes(attestationPayload(TASK, 256, digest))
    })

    it('refuses an index that is no uint32 and a digest that is no sha256', function () {
      expect(() => attestationPayload(TASK, -1, digest)).to.throw(/uint32/)
      expect(() => attestationPayload(TASK, 2 ** 32, digest)).to.throw(/uint32/)
      expect(() => attestationPayload(TASK, 0, digest.subarray(2))).to.throw(/32 bytes/)
    })
  })

  describe('PieceAttestations', function () {
    const d1 = sha256(new Uint8Array([1]))
    const d2 = sha256(new Uint8Array([2]))
    const a: PieceAttestation = { attestor: 'x', signature: new Uint8Array([9]) }

    it('gives an attestation back only for the digest it was kept for', function () {
      const held = new PieceAttestations()
      held.set(TASK, 3, d1, a)
      expect(held.get(TASK, 3, d1)).to.equal(a)
      expect(held.get(TASK, 3, d2)).to.be.undefined()
      expect(held.get(TASK, 4, d1)).to.be.undefined()
      held.forget(TASK)
      expect(held.get(TASK, 3, d1)).to.be.undefined()
    })

    it('keeps at most maxTasks tasks, dropping the least recently touched', function () {
      const held = new PieceAttestations(2)
      held.set('t1', 0, d1, a)
      held.set('t2', 0, d1, a)
      held.set('t1', 1, d1, a)
      held.set('t3', 0, d1, a)
      expect(held.size).to.equal(2)
      expect(held.get('t2', 0, d1)).to.be.undefined()
      expect(held.get('t1', 0, d1)).to.equal(a)
      expect(held.get('t3', 0, d1)).to.equal(a)
      expect(() => new PieceAttestations(0)).to.throw(/positive integers/)
    })

    it('keeps at most maxPieces pieces in all, dropping whole tasks, never the one just touched', function () {
      const held = new PieceAttestations(10, 3)
      held.set('t1', 0, d1, a)
      held.set('t1', 1, d1, a)
      held.set('t2', 0, d1, a)
      // the same piece again is no new piece
      held.set('t2', 0, d2, a)
      expect(held.pieces).to.equal(3)
      held.set('t2', 1, d1, a)
      expect(held.get('t1', 0, d1)).to.be.undefined()
      expect(held.pieces).to.equal(2)
      // one task larger than the bound is kept while it is the latest
      held.set('t2', 2, d1, a)
      held.set('t2', 3, d1, a)
      expect(held.pieces).to.equal(4)
      expect(held.get('t2', 3, d1)).to.equal(a)
      held.forget('t2')
      expect(held.pieces).to.equal(0)
    })
  })

  describe('on the piece protocol (in-memory streams)', function () {
    const streams: Stream[] = []

    afterEach(function () {
      for (const s of streams.splice(0)) {
        s.abort(new Error('test cleanup'))
      }
    })

    /**
     * A server holding 4 pieces, each with the attestation `attest(index)`
     * gives (none when undefined), and a client that knows no digest
     */
    async function fetchUnknown (attest: (index: number, digest: Uint8Array) => Promise<PieceAttestation | undefined>, attestors: Set<string>, options: { known?: boolean, corrupt?: number } = {}): Promise<{ statuses: string[], proofs: Map<number, PieceProof>, bad: number[] }> {
      const base = testSource({ [TASK]: { pieceLength: PIECE, pieceCount: 4 } })
      const attestations = new Map<number, PieceAttestation>()
      for (let i = 0; i < 4; i++) {
        const a = await attest(i, base.digest(TASK, i)!)
        if (a != null) {
          attestations.set(i, a)
        }
      }
      const served = {
        ...base,
        attestation: (_task: string, index: number) => attestations.get(index),
        // a piece whose bytes are not what the digest in its header says
        read: async (task: string, index: number, opts: any) => index === options.corrupt ? new Uint8Array(PIECE).fill(7) : base.read(task, index, opts)
      }
      const [client, server] = await memoryStreams()
      streams.push(client, server)
      void handlePieceStream(server, 'peer-a', { source: served, slots: new UploadSlots(4) })
      const proofs = new Map<number, PieceProof>()
      const bad: number[] = []
      const results = await requestPieces(client, TASK, [0, 1, 2, 3], {
        expected: (i) => ({ length: PIECE, digest: options.known === true ? base.digest(TASK, i)! : new Uint8Array(0), attestors }),
        onPiece: (i, bytes, proof) => {
          expect(bytes).to.equalBytes(pieceBytes(TASK, i, PIECE))
          proofs.set(i, proof)
        },
        onBadPiece: (i) => { bad.push(i) }
      })
      return { statuses: results.map(r => r.status), proofs, bad }
    }

    it('takes a piece whose digest is unknown on a listed source\'s signature, and hands the attestation on', async function () {
      const { statuses, proofs } = await fetchUnknown(async (i, d) => signPieceDigest(source.key, source.id, TASK, i, d), new Set([source.id]))
      expect(statuses).to.deep.equal(['ok', 'ok', 'ok', 'ok'])
      for (const [i, proof] of proofs) {
        expect(proof.digest).to.equalBytes(sha256(pieceBytes(TASK, i, PIECE)))
        expect(proof.attestation?.attestor).to.equal(source.id)
        expect(await verifyPieceDigest(TASK, i, proof.digest, proof.attestation!)).to.be.true()
      }
    })

    it('answers unverifiable, and stays in step, for pieces without an attestation or by a signer it was not told of', async function () {
      // piece 1 has none, piece 2 is signed by a peer that is no source
      const { statuses, proofs, bad } = await fetchUnknown(async (i, d) => i === 1 ? undefined : signPieceDigest(i === 2 ? other.key : source.key, i === 2 ? other.id : source.id, TASK, i, d), new Set([source.id]))
      expect(statuses).to.deep.equal(['ok', 'unverifiable', 'unverifiable', 'ok'])
      expect([...proofs.keys()]).to.deep.equal([0, 3])
      expect(bad).to.deep.equal([])
    })

    it('counts a forged attestation and bytes that do not match the signed digest as bad pieces', async function () {
      // piece 1 claims the source but carries the other key's signature; piece 3's bytes are wrong
      const { statuses, bad } = await fetchUnknown(async (i, d) => i === 1 ? { attestor: source.id, signature: (await signPieceDigest(other.key, other.id, TASK, i, d)).signature } : signPieceDigest(source.key, source.id, TASK, i, d), new Set([source.id]), { corrupt: 3 })
      expect(statuses).to.deep.equal(['ok', 'bad-digest', 'ok', 'bad-digest'])
      expect(bad).to.deep.equal([1, 3])
    })

    it('checks a known digest against the manifest and hands on only attestations of that digest', async function () {
      // piece 2's attestation is of another digest: the manifest decides, nothing is relayed
      const { statuses, proofs } = await fetchUnknown(async (i, d) => signPieceDigest(source.key, source.id, TASK, i, i === 2 ? sha256(d) : d), new Set([source.id]), { known: true })
      expect(statuses).to.deep.equal(['ok', 'ok', 'ok', 'ok'])
      expect(proofs.get(0)?.attestation?.attestor).to.equal(source.id)
      expect(proofs.get(2)?.attestation).to.be.undefined()
    })
  })
})
