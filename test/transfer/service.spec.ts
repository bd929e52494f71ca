import '../../src/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { expect } from 'aegir/chai'
import { pieceTransfer } from '../../src/transfer/index.ts'
import { KiB, sha256, testSource } from './fixtures.ts'
import type { BadPieceEvent, PieceMovedEvent, PieceSource, PieceTransfer, PieceTransferComponents, PieceTransferInit } from '../../src/transfer/index.ts'
import type { Connection, Metrics, PeerId, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'

const TASK = 'sha256:service-task'

interface MockNode {
  peerId: PeerId
  service: PieceTransfer
  handlers: Map<string, { handler: StreamHandler, options?: StreamHandlerOptions }>
  /** connections this node opened, by remote peer */
  dialled: PeerId[]
}

/** Two services wired through in-memory stream pairs: no libp2p node, just the components the service uses */
async function mockNodes (initA: Partial<PieceTransferInit>, sourceB: PieceSource, initB: Partial<PieceTransferInit> = {}, metricsA?: Metrics): Promise<[MockNode, MockNode]> {
  const nodes: MockNode[] = []

  const connectionTo = (from: MockNode, to: MockNode): Connection => ({
    remotePeer: to.peerId,
    newStream: async (protocol: string) => {
      const entry = to.handlers.get(protocol)

      if (entry == null) {
        throw Object.assign(new Error(`Protocol selection failed - could not negotiate ${protocol}`), { name: 'UnsupportedProtocolError' })
      }

      const [outbound, inbound] = await streamPair()
      void entry.handler(inbound, connectionTo(to, from))
      return outbound
    }
  }) as unknown as Connection

  for (const init of [initA, { source: sourceB, ...initB }]) {
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const handlers = new Map<string, { handler: StreamHandler, options?: StreamHandlerOptions }>()
    const node: MockNode = { peerId, handlers, dialled: [], service: undefined as unknown as PieceTransfer }
    const components: PieceTransferComponents = {
      registrar: {
        handle: async (protocol, handler, options) => { handlers.set(protocol, { handler, options }) },
        unhandle: async (protocol) => { handlers.delete(protocol) }
      },
      connectionManager: {
        openConnection: async (peer) => {
          node.dialled.push(peer)
          const target = nodes.find(n => n.peerId.equals(peer))

          if (target == null) {
            throw new Error('no such peer')
          }

          return connectionTo(node, target)
        }
      },
      logger: defaultLogger(),
      metrics: nodes.length === 0 ? metricsA : undefined
    }
    node.service = pieceTransfer({ source: testSource({}), ...init })(components)
    nodes.push(node)
  }

  await Promise.all(nodes.map(async n => n.service.start()))
  return [nodes[0], nodes[1]]
}

describe('transfer: PieceTransfer service (mock components)', function () {
  const services: PieceTransfer[] = []

  afterEach(async function () {
    for (const s of services.splice(0, services.length)) {
      await s.stop()
    }
  })

  it('registers the protocol with documented stream limits and unregisters on stop', async function () {
    const [a, b] = await mockNodes({}, testSource({}))
    services.push(a.service)
    expect(a.service.protocol).to.equal('/damselfly/piece/1.0.0')
    expect(Object.prototype.toString.call(a.service)).to.equal('[object @damselfly/transfer]')
    const entry = a.handlers.get('/damselfly/piece/1.0.0')
    expect(entry?.options).to.deep.include({ maxInboundStreams: 16, maxOutboundStreams: 16, runOnLimitedConnection: false })
    expect(a.service.isStarted()).to.be.true()
    await b.service.stop()
    await b.service.stop() // idempotent
    expect(b.handlers.size).to.equal(0)
    expect(b.service.isStarted()).to.be.false()
  })

  it('honours a custom protocol prefix', async function () {
    const [a, b] = await mockNodes({ protocolPrefix: '/acme' }, testSource({}), { protocolPrefix: '/acme' })
    services.push(a.service, b.service)
    expect(a.service.protocol).to.equal('/acme/piece/1.0.0')
    expect([...b.handlers.keys()]).to.deep.equal(['/acme/piece/1.0.0'])
  })

  it('refuses to fetch before start', async function () {
    const [a, b] = await mockNodes({}, testSource({}))
    services.push(b.service)
    await a.service.stop()
    await expect(a.service.fetch(b.peerId, TASK, [0], { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {} }))
      .to.eventually.be.rejected.with.property('name', 'NotStartedError')
  })

  it('fetches by PeerId, emits events on both sides and counts', async function () {
    const source = testSource({ [TASK]: { pieceLength: 200 * KiB, pieceCount: 5 } }, { corrupt: new Set([3]) })
    const [a, b] = await mockNodes({}, source)
    services.push(a.service, b.service)
    const downloaded: PieceMovedEvent[] = []
    const uploaded: PieceMovedEvent[] = []
    const bad: BadPieceEvent[] = []
    a.service.addEventListener('transfer:piece-downloaded', (e) => downloaded.push(e.detail))
    a.service.addEventListener('transfer:bad-piece', (e) => bad.push(e.detail))
    b.service.addEventListener('transfer:piece-uploaded', (e) => uploaded.push(e.detail))
    const stored = new Map<number, Uint8Array>()

    const results = await a.service.fetch(b.peerId, TASK, [0, 1, 2, 3, 4], {
      expected: source.expected(TASK),
      onPiece: (index, bytes) => { stored.set(index, bytes) }
    })

    expect(a.dialled.map(p => p.toString())).to.deep.equal([b.peerId.toString()])
    expect(results.map(r => r.status)).to.deep.equal(['ok', 'ok', 'ok', 'bad-digest', 'ok'])

    for (const [index, bytes] of stored) {
      expect(sha256(bytes)).to.equalBytes(source.digest(TASK, index) ?? new Uint8Array())
    }

    expect(downloaded.map(e => e.index)).to.deep.equal([0, 1, 2, 4])
    expect(downloaded.every(e => e.peer.equals(b.peerId) && e.taskId === TASK && e.bytes === 200 * KiB)).to.be.true()
    expect(bad).to.have.lengthOf(1)
    expect(bad[0].peer.equals(b.peerId)).to.be.true()
    expect(bad[0]).to.deep.include({ taskId: TASK, index: 3, reason: 'bad-digest' })
    // the uploader sent all five (it cannot know piece 3 is corrupt)
    expect(uploaded.map(e => e.index)).to.deep.equal([0, 1, 2, 3, 4])
    expect(uploaded[0].peer.equals(a.peerId)).to.be.true()

    expect(a.service.stats()).to.deep.include({ piecesDownloaded: 4, bytesDownloaded: 4 * 200 * KiB, badPieces: 1 })
    expect(b.service.stats()).to.deep.include({ piecesUploaded: 5, bytesUploaded: 5 * 200 * KiB, activeUploads: 0 })
  })

  it('fetches over a given connection and counts busy answers', async function () {
    const source = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 2 } })
    const [a, b] = await mockNodes({}, source, { uploadSlots: 1, uploadSlotWaitMs: 20 })
    services.push(a.service, b.service)
    const connection = await (async () => {
      // a Connection-shaped object, as libp2p would hand to the scheduler
      const conn: Connection = { remotePeer: b.peerId, newStream: async (protocol: string) => { const [o, i] = await streamPair(); void b.handlers.get(protocol)?.handler(i, { remotePeer: a.peerId } as unknown as Connection); return o } } as unknown as Connection
      return conn
    })()
    // occupy the only upload slot with a stalled read on another stream
    const stalled = testSource({ [TASK]: { pieceLength: KiB, pieceCount: 2 } }, { stall: new Set([0]) })
    const [c, d] = await mockNodes({}, stalled, { uploadSlots: 1, uploadSlotWaitMs: 20 })
    services.push(c.service, d.service)
    const hung = c.service.fetch(d.peerId, TASK, [0], { expected: stalled.expected(TASK), onPiece: () => {}, signal: AbortSignal.timeout(3000) }).catch(() => {})
    const busy = await c.service.fetch(d.peerId, TASK, [1], { expected: stalled.expected(TASK), onPiece: () => {} })
    expect(busy.map(r => r.status)).to.deep.equal(['busy'])
    expect(d.service.stats()).to.deep.include({ busyAnswers: 1, activeUploads: 1 })

    const ok = await a.service.fetch(connection, TASK, [0, 1], { expected: source.expected(TASK), onPiece: () => {} })
    expect(ok.map(r => r.status)).to.deep.equal(['ok', 'ok'])
    expect(a.dialled).to.deep.equal([])

    await d.service.stop() // aborts the stalled upload
    await hung
    expect(d.service.stats().activeUploads).to.equal(0)
  })

  it('records every answer\'s header wait and every piece\'s receive time in histograms', async function () {
    const observed = new Map<string, number[]>()
    const metrics = {
      registerCounter: () => ({ increment: () => {}, reset: () => {} }),
      registerMetric: () => {},
      registerHistogram: (name: string) => ({ observe: (v: number) => { observed.set(name, [...(observed.get(name) ?? []), v]) }, reset: () => {}, timer: () => () => {} })
    } as unknown as Metrics
    const source = testSource({ [TASK]: { pieceLength: 10 * KiB, pieceCount: 4, have: new Set([0, 1, 2]) } })
    const [a, b] = await mockNodes({}, source, {}, metrics)
    services.push(a.service, b.service)
    const results = await a.service.fetch(b.peerId, TASK, [0, 1, 2, 3], { expected: source.expected(TASK), onPiece: () => {} })
    expect(results.map(r => r.status)).to.deep.equal(['ok', 'ok', 'ok', 'dont-have'])
    // seconds, one per answer / one per piece
    expect(observed.get('damselfly_transfer_answer_wait_seconds')).to.have.lengthOf(4)
    expect(observed.get('damselfly_transfer_piece_receive_seconds')).to.have.lengthOf(3)
    expect([...observed.values()].flat().every(v => v >= 0 && v < 5)).to.be.true()
  })

  it('returns [] for no indexes without opening a stream', async function () {
    const [a, b] = await mockNodes({}, testSource({}))
    services.push(a.service, b.service)
    expect(await a.service.fetch(b.peerId, TASK, [], { expected: () => ({ length: 1, digest: new Uint8Array(32) }), onPiece: () => {} })).to.deep.equal([])
    expect(a.dialled).to.deep.equal([])
  })
})
