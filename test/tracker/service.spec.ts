import '../../src/polyfill.ts'
import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { electTrackers } from '../../src/election/index.ts'
import { TrackerRequest, TrackerResponse } from '../../src/pb/tracker.ts'
import { tracker } from '../../src/tracker/index.ts'
import { TrackerService } from '../../src/tracker/tracker.ts'
import { metaOf, taskIdOf } from './helpers.ts'
import { newPeerId } from './memory.ts'
import type { Tracker, TrackerComponents } from '../../src/tracker/index.ts'
import type { Metrics, StreamHandlerOptions } from '@libp2p/interface'

const T = taskIdOf('service')

/** Records what the service registers and counts */
function fakeMetrics (): { metrics: Metrics, counters: Map<string, number>, calculated: Map<string, () => number>, groups: Map<string, Record<string, number>> } {
  const counters = new Map<string, number>()
  const calculated = new Map<string, () => number>()
  const groups = new Map<string, Record<string, number>>()
  const metrics = {
    registerCounter: (name: string) => {
      counters.set(name, 0)
      return { increment: (n = 1) => { counters.set(name, (counters.get(name) ?? 0) + n) }, reset: () => {} }
    },
    registerMetric: (name: string, options: { calculate(): number }) => { calculated.set(name, options.calculate) },
    registerCounterGroup: (name: string) => {
      const values: Record<string, number> = {}
      groups.set(name, values)
      return {
        increment: (v: Record<string, number | true>) => {
          for (const [k, n] of Object.entries(v)) {
            values[k] = (values[k] ?? 0) + (n === true ? 1 : n)
          }
        },
        reset: () => {}
      }
    }
  }
  return { metrics: metrics as unknown as Metrics, counters, calculated, groups }
}

describe('tracker/service', () => {
  let service: Tracker | undefined

  afterEach(async () => {
    await service?.stop()
    service = undefined
  })

  it('handles its protocol with documented stream limits, counts into metrics, and unhandles on stop', async () => {
    const self = await newPeerId()
    const handled: Array<{ protocol: string, options?: StreamHandlerOptions }> = []
    const unhandled: string[] = []
    const { metrics, counters, calculated, groups } = fakeMetrics()
    const components: TrackerComponents = {
      peerId: self,
      registrar: {
        handle: async (protocol, _handler, options) => { handled.push({ protocol, options }) },
        unhandle: async (protocol) => { unhandled.push(protocol) }
      },
      connectionManager: { openConnection: async () => { throw new Error('no network in this test') } },
      logger: defaultLogger(),
      metrics
    }
    service = tracker({ eligiblePeers: () => [self.toString()], protocolPrefix: '/test' })(components)
    expect(service.isStarted()).to.be.false()
    await service.start()
    await service.start()
    expect(service.isStarted()).to.be.true()
    expect(handled).to.deep.equal([{ protocol: '/test/tracker/1.0.0', options: { maxInboundStreams: 16, maxOutboundStreams: 16, runOnLimitedConnection: false } }])

    // this node's own client answers in-process
    const { response } = await service.client.announceElected(T, [self.toString()], { uploadSlots: 2, freeUploadSlots: 1, meta: metaOf(4), wantGrant: true })
    expect(response.grant).to.deep.equal([0, 1, 2, 3])
    expect(counters.get('damselfly_tracker_registrations_total')).to.equal(1)
    expect(counters.get('damselfly_tracker_grants_total')).to.equal(1)
    expect(calculated.get('damselfly_tracker_tasks')?.()).to.equal(1)
    expect(calculated.get('damselfly_tracker_peers')?.()).to.equal(1)
    expect(service.stats()).to.deep.include({ tasks: 1, peers: 1, registrations: 1, grants: 1, requests: 1, inFlight: 0 })
    expect(service.tasks()).to.deep.equal([{ taskId: T, pieceCount: 4, peers: 1, completePeers: 0, grantsOutstanding: 4, digestsKnown: 0, slowPeersMoved: [] }])

    // a remote the client cannot reach is counted by cause
    const remote = await newPeerId()
    await expect(service.client.announce(remote, { taskId: T, uploadSlots: 1, freeUploadSlots: 1 }, { retries: 0 })).to.eventually.be.rejected().with.property('name', 'TrackerDialError')
    expect(groups.get('damselfly_tracker_client_failures_total')).to.deep.equal({ 'dial-failed': 1 })
    expect(service.stats().client.failures['dial-failed']).to.equal(1)

    await service.stop()
    expect(service.isStarted()).to.be.false()
    expect(unhandled).to.deep.equal(['/test/tracker/1.0.0'])
  })

  it('redirects tasks it is not elected for, and counts the redirect', async () => {
    const self = await newPeerId()
    const others = await Promise.all([newPeerId(), newPeerId(), newPeerId()])
    const view = [self, ...others].map(String)
    // find a task this node does not win among four
    let task = T
    for (let i = 0; electTrackers(task, view, 2).includes(self.toString()); i++) {
      task = taskIdOf(`service-${i}`)
    }
    const components: TrackerComponents = {
      peerId: self,
      registrar: { handle: async () => {}, unhandle: async () => {} },
      connectionManager: { openConnection: async () => { throw new Error('no network in this test') } },
      logger: defaultLogger()
    }
    const trackerService = new TrackerService(components, { eligiblePeers: () => view })
    service = trackerService
    await service.start()
    const answer = await trackerService.answer(others[0].toString(), {
      type: TrackerRequest.MessageType.LEAVE,
      taskId: task
    })
    expect(answer.status).to.equal(TrackerResponse.Status.REDIRECT)
    expect(answer.redirect?.peerId).to.equal(electTrackers(task, view, 2)[0])
    expect(service.stats().redirects).to.equal(1)
  })
})
