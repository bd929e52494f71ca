import '../../src/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { electTrackers } from '../../src/election/index.ts'
import { STANDBY_ANNOUNCE_INTERVAL_MS, TrackerPortAdapter } from '../../src/node/tracker-port.ts'
import type { Tracker } from '../../src/tracker/index.ts'

const TASK = 'a'.repeat(64)

/** A tracker whose client records what it is asked and answers OK with no parents */
function recordingTracker (): { tracker: Tracker, standby: string[], elected: string[] } {
  const standby: string[] = []
  const elected: string[] = []
  const ok = { status: 'ok', parents: [], grant: [], intervalMs: 1000 }
  const client = {
    announceElected: async (_taskId: string, eligible: string[]) => {
      const first = electTrackers(TASK, eligible)[0]
      elected.push(first)
      return { tracker: { toString: () => first }, response: ok }
    },
    announce: async (peerId: string, req: { wantGrant?: boolean }) => {
      expect(req.wantGrant).to.equal(false, 'a standby registration never asks for a grant')
      standby.push(peerId)
      return ok
    },
    leave: async () => {},
    report: async () => {}
  }
  return { tracker: { client } as unknown as Tracker, standby, elected }
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
})
