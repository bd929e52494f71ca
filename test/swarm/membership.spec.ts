import { expect } from 'aegir/chai'
import { FULL_RATE_SWARM_SIZE, MAX_HEARTBEAT_INTERVAL_MS, SAME_RUN_TOLERANCE_MS } from '../../src/swarm/constants.ts'
import { heartbeatInterval, supersedes } from '../../src/swarm/membership.ts'

/** a heartbeat as its member sent it: seq, and ms since the member started */
function hb (seq: number, uptimeMs: number, intervalMs = 5000): { seq: bigint, uptimeMs: bigint, intervalMs: number } {
  return { seq: BigInt(seq), uptimeMs: BigInt(uptimeMs), intervalMs }
}

describe('swarm/membership: which heartbeat of a member counts', () => {
  // the member started at t = 1_000_000 ms; we heard its seq 3 (uptime 10 s) 50 ms after it was sent
  const prev = { hb: hb(3, 10_000), lastHeard: 1_010_050 }

  it('a newer heartbeat of the same run replaces the older one', () => {
    expect(supersedes(prev, hb(4, 15_000), 1_015_040)).to.equal(true)
  })

  it('a duplicate does not', () => {
    expect(supersedes(prev, hb(3, 10_000), 1_010_300)).to.equal(false)
  })

  it('an older heartbeat delivered late does not (the first one, sent before the member listened, with no address)', () => {
    // seq 2 was sent 300 ms after the start and heard at once; seq 1 (sent at 100 ms) arrives after it
    const second = { hb: hb(2, 300), lastHeard: 1_000_350 }
    for (const delay of [300, 2_000, 9_000]) {
      expect(supersedes(second, hb(1, 100), 1_000_100 + delay)).to.equal(false, `delay ${delay} ms`)
    }
  })

  it('a restarted member (seq and uptime from zero) replaces its old run', () => {
    // down for 12 s, then its first heartbeat of the new run
    expect(supersedes(prev, hb(1, 100), 1_010_050 + 12_000)).to.equal(true)
    // even a restart soon after the last heartbeat, once the implied start moved by more than the tolerance
    expect(supersedes(prev, hb(1, 100), 1_000_000 + SAME_RUN_TOLERANCE_MS + 1_000)).to.equal(true)
  })

  it('a late heartbeat of an older run does not replace the newer run', () => {
    // the member restarted at 1_070_000; its old run's seq 13 (uptime 60 s) arrives after the new run's seq 2
    const restarted = { hb: hb(2, 5_000), lastHeard: 1_075_050 }
    expect(supersedes(restarted, hb(13, 60_000), 1_075_500)).to.equal(false)
  })

  it('with heartbeat intervals longer than the tolerance, a run is matched within one interval', () => {
    const slow = { hb: hb(2, 60_000, 60_000), lastHeard: 1_060_000 }
    expect(supersedes(slow, hb(1, 100, 60_000), 1_000_100 + 30_000)).to.equal(false)
  })
})

describe('swarm/membership: the heartbeat interval grows with the swarm', () => {
  it('is the configured interval up to FULL_RATE_SWARM_SIZE nodes', () => {
    for (let n = 1; n <= FULL_RATE_SWARM_SIZE; n++) {
      expect(heartbeatInterval(5000, n)).to.equal(5000)
      expect(heartbeatInterval(100, n)).to.equal(100)
    }
  })

  it('grows in proportion beyond it: twice the nodes, twice the interval', () => {
    expect(heartbeatInterval(5000, 2 * FULL_RATE_SWARM_SIZE)).to.equal(10_000)
    expect(heartbeatInterval(5000, 10 * FULL_RATE_SWARM_SIZE)).to.equal(50_000)
    expect(heartbeatInterval(1000, FULL_RATE_SWARM_SIZE + 1)).to.equal(Math.round(1000 * (FULL_RATE_SWARM_SIZE + 1) / FULL_RATE_SWARM_SIZE))
  })

  it('keeps the whole swarm at about FULL_RATE_SWARM_SIZE heartbeats per configured interval, until the cap', () => {
    for (const base of [100, 1000, 5000, 30_000]) {
      for (let n = FULL_RATE_SWARM_SIZE; n <= 2000; n += 7) {
        const interval = heartbeatInterval(base, n)
        if (interval < MAX_HEARTBEAT_INTERVAL_MS) {
          const perBase = n * base / interval
          expect(perBase).to.be.closeTo(FULL_RATE_SWARM_SIZE, 0.01 * FULL_RATE_SWARM_SIZE)
        }
      }
    }
  })

  it('never falls below the configured interval, never rises above what receivers accept, and never shrinks as the swarm grows', () => {
    const wrong: string[] = []
    for (const base of [100, 777, 5000, 300_000, MAX_HEARTBEAT_INTERVAL_MS]) {
      let prev = 0
      for (let n = 1; n <= 5000; n++) {
        const interval = heartbeatInterval(base, n)
        if (interval < Math.min(base, MAX_HEARTBEAT_INTERVAL_MS) || interval > MAX_HEARTBEAT_INTERVAL_MS || interval < prev) {
          wrong.push(`base ${base} ms, ${n} nodes: ${interval} ms after ${prev} ms`)
        }
        prev = interval
      }
    }
    expect(wrong).to.deep.equal([])
  })
})
