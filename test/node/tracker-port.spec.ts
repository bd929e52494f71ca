import '../../src/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { electTrackers } from '../../src/election/index.ts'
import { STANDBY_ANNOUNCE_INTERVAL_MS, TrackerPortAdapter } from '../../src/node/tracker-port.ts'
import type { Tracker } from '../../src/tracker/index.ts'

const TASK = 'a'.repeat(64)

interface Recording {
  tracker: Tracker
  standby: string[]
  elected: string[]
  /** every call to a tracker other than the elected announce, in order: `announce <peer>` or `report <peer> <indexes>` */
  calls: string[]
  /** standby announces fail while this is set */
  failStandby: boolean
}

/** A tracker whose client records what it is asked and answers OK with no parents */
function recordingTracker (): Recording {
  const ok = { status: 'ok', parents: [], grant: [], sources: [], intervalMs: 1000 }
  const rec: Recording = { tracker: undefined as unknown as Tracker, standby: [], elected: [], calls: [], failStandby: false }
  const client = {
    announceElected: async (_taskId: string, eligible: string[]) => {
      const first = electTrackers(TASK, eligible)[0]
      rec.elected.push(first)
      return { tracker: { toString: () => first }, response: ok }
    },
    announce: async (peerId: string, req: { wantGrant?: boolean }) => {
      expect(req.wantGrant).to.equal(false, 'a standby registration never asks for a grant')
      rec.standby.push(peerId)
      rec.calls.push(`announce ${peerId}`)
      if (rec.failStandby) {
        throw new Error('standby unreachable')
      }
      return ok
    },
    leave: async () => {},
    report: async (peerId: string, _taskId: string, pieces: Array<{ index: number }>) => {
      rec.calls.push(`report ${peerId} ${pieces.map(p => p.index).join(',')}`)
    }
  }
  rec.tracker = { client } as unknown as Tracker
  return rec
}

/** let the fire-and-forget standby calls settle */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('node/tracker-port', () => {
  it('registers with the standby tracker at most once per interval, and again after leaving', async () => {
    const peers = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const [, second] = electTrackers(TASK, peers)
    const { tracker, standby, elected } = recordingTracker()
    let now = 1_000_000
    const port = new TrackerPortAdapter({ tracker, eligiblePeers: () => peers, selfAddrs: () => [], uploadSlots: () => 4, freeUploadSlots: () => 4, now: () => now })
    const announce = async (): Promise<void> => { await port.announce({ taskId: TASK, have: undefined, wantGrant: true }) }

    await announce()
    expect(standby).to.deep.equal([second])
    // one announce a second for just under the interval: the standby hears none of them
    for (let i = 0; i < 4; i++) {
      now += 1000
      await announce()
    }
    expect(elected).to.have.length(5)
    expect(standby).to.deep.equal([second])
    now += STANDBY_ANNOUNCE_INTERVAL_MS - 4000
    await announce()
    expect(standby).to.deep.equal([second, second])

    await port.leave(elected[0], TASK)
    await announce()
    expect(standby).to.deep.equal([second, second, second], 'a new download of the task registers with the standby at once')
  })

  it('tells the standby tracker of reported pieces with its next announce, after registering, and again after a failure', async () => {
    const peers = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const [first, second] = electTrackers(TASK, peers)
    const rec = recordingTracker()
    let now = 1_000_000
    const port = new TrackerPortAdapter({ tracker: rec.tracker, eligiblePeers: () => peers, selfAddrs: () => [], uploadSlots: () => 4, freeUploadSlots: () => 4, now: () => now })
    const announce = async (): Promise<void> => { await port.announce({ taskId: TASK, have: undefined, wantGrant: true }); await settle() }
    const report = async (...indexes: number[]): Promise<void> => {
      await port.report(first, TASK, indexes.map(index => ({ index, digest: new Uint8Array(32).fill(index) })))
      await settle()
    }

    await announce()
    await report(0, 1)
    await report(2)
    expect(rec.calls).to.deep.equal([`announce ${second}`, `report ${first} 0,1`, `report ${first} 2`], 'reports go to the first tracker only, at once')

    now += STANDBY_ANNOUNCE_INTERVAL_MS
    await announce()
    expect(rec.calls.slice(3)).to.deep.equal([`announce ${second}`, `report ${second} 0,1,2`], 'the standby hears of them once, after the announce that registers us')

    // a standby that cannot be reached gets the same pieces next time, with the newer ones
    rec.failStandby = true
    await report(3)
    now += STANDBY_ANNOUNCE_INTERVAL_MS
    await announce()
    rec.failStandby = false
    await report(4)
    now += STANDBY_ANNOUNCE_INTERVAL_MS
    await announce()
    expect(rec.calls.slice(5)).to.deep.equal([`report ${first} 3`, `announce ${second}`, `report ${first} 4`, `announce ${second}`, `report ${second} 3,4`])

    // after leaving, nothing is owed to the standby
    await report(5)
    await port.leave(first, TASK)
    now += STANDBY_ANNOUNCE_INTERVAL_MS
    await announce()
    expect(rec.calls.slice(10)).to.deep.equal([`report ${first} 5`, `announce ${second}`])
  })
})
