import { expect } from 'aegir/chai'
import { AnnounceWaiters, holdsMissing } from '../../src/tracker/waiters.ts'
import { Bitfield } from '../../src/utils/bitfield.ts'

function bits (length: number, ...indexes: number[]): Uint8Array {
  const b = new Bitfield(length)
  indexes.forEach(i => { b.set(i) })
  return b.toBytes()
}

/** Resolves to 'woken' or 'timeout' */
async function outcome (p: Promise<void>, started: number, ms: number): Promise<string> {
  await p
  return Date.now() - started < ms - 20 ? 'woken' : 'timeout'
}

describe('tracker/waiters: announces held until a piece their peer lacks appears', () => {
  it('holdsMissing compares bitfields byte by byte, shorter ones as zero-padded', () => {
    expect(holdsMissing(bits(16, 0, 9), bits(16, 0))).to.equal(false)
    expect(holdsMissing(bits(16, 0), bits(16, 0, 9))).to.equal(true)
    expect(holdsMissing(new Uint8Array(0), bits(8, 7))).to.equal(true)
    expect(holdsMissing(bits(16, 15), new Uint8Array(0))).to.equal(false)
    expect(holdsMissing(bits(8), bits(8))).to.equal(false)
  })

  it('wakes a waiter for a piece it lacks, not for one it has or for another task', async () => {
    const w = new AnnounceWaiters(8)
    const started = Date.now()
    const held = outcome(w.wait('t1', bits(8, 0, 1), 500), started, 500)
    expect(w.size).to.equal(1)
    w.notify('t1', [0, 1])
    w.notify('t2', [5])
    expect(w.size).to.equal(1)
    w.notify('t1', [1, 5])
    expect(await held).to.equal('woken')
    expect(w.size).to.equal(0)
  })

  it('wakes on a whole bitfield (an announce) that holds a piece the waiter lacks', async () => {
    const w = new AnnounceWaiters(8)
    const started = Date.now()
    const a = outcome(w.wait('t', bits(8, 2), 500), started, 500)
    const b = outcome(w.wait('t', bits(8, 2, 3), 500), started, 500)
    w.notify('t', bits(8, 2, 3))
    expect(await a).to.equal('woken')
    expect(w.size).to.equal(1, 'the waiter that holds 2 and 3 stays')
    expect(await b).to.equal('timeout')
    expect(w.size).to.equal(0)
  })

  it('answers at the deadline, counts against its cap, and close() wakes everyone', async () => {
    const w = new AnnounceWaiters(2)
    const started = Date.now()
    const timed = outcome(w.wait('t', bits(8), 100), started, 100)
    expect(await timed).to.equal('timeout')
    const x = outcome(w.wait('t', bits(8), 5000), started, 5000)
    const y = outcome(w.wait('u', bits(8), 5000), started, 5000)
    expect(w.canWait()).to.equal(false)
    w.close()
    expect(await x).to.equal('woken')
    expect(await y).to.equal('woken')
    expect(w.canWait()).to.equal(true)
    expect(w.size).to.equal(0)
  })
  it('holds waiters for a task\'s metadata apart from piece waiters, and keeps who stats the origin until when', async () => {
    const w = new AnnounceWaiters(2)
    const started = Date.now()
    const forMeta = outcome(w.waitForMeta('t1', 500), started, 500)
    const forPiece = outcome(w.wait('t1', bits(8), 500), started, 500)
    // a piece does not wake a metadata waiter; the metadata does not wake a piece waiter
    w.notify('t1', bits(8, 3))
    expect(await forPiece).to.equal('woken')
    expect(w.size).to.equal(1)
    w.metaKnown('t2')
    expect(w.size).to.equal(1)
    w.metaKnown('t1')
    expect(await forMeta).to.equal('woken')

    expect(w.statPending('t1', 1000)).to.equal(0)
    w.statStarted('t1', 3000, 1000)
    expect(w.statPending('t1', 1000)).to.equal(2000)
    expect(w.statPending('t1', 3000)).to.equal(0, 'expired')
    w.statStarted('t1', 5000, 3000)
    w.metaKnown('t1')
    expect(w.statPending('t1', 3000)).to.equal(0, 'the metadata came')
    // bounded: a third task is not recorded while two are pending, and is once one expired
    w.statStarted('a', 2000, 1000)
    w.statStarted('b', 2000, 1000)
    w.statStarted('c', 2000, 1000)
    expect(w.statPending('c', 1000)).to.equal(0)
    w.statStarted('c', 4000, 2500)
    expect(w.statPending('c', 2500)).to.equal(1500)
  })
})
