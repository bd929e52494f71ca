import { expect } from 'aegir/chai'
import { PieceWaiters } from '../../src/storage/piece-waiters.ts'

describe('storage/piece-waiters', () => {
  it('wakes the waiters of one piece only, and forgets them', async () => {
    const waiters = new PieceWaiters(8)
    const a = waiters.wait('t', 1, { timeoutMs: 5_000 })
    const b = waiters.wait('t', 1, { timeoutMs: 5_000 })
    const other = waiters.wait('t', 2, { timeoutMs: 5_000 })
    const otherTask = waiters.wait('u', 1, { timeoutMs: 5_000 })
    expect(waiters.size).to.equal(4)

    waiters.notify('t', 1)
    expect(await a).to.be.true()
    expect(await b).to.be.true()
    expect(waiters.size).to.equal(2)

    waiters.forget('t')
    expect(await other).to.be.false()
    expect(waiters.size).to.equal(1)

    waiters.clear()
    expect(await otherTask).to.be.false()
    expect(waiters.size).to.equal(0)
  })

  it('gives up after the timeout or an abort', async () => {
    const waiters = new PieceWaiters(8)
    const started = Date.now()
    expect(await waiters.wait('t', 0, { timeoutMs: 40 })).to.be.false()
    expect(Date.now() - started).to.be.at.least(35)

    const controller = new AbortController()
    const waiting = waiters.wait('t', 0, { timeoutMs: 5_000, signal: controller.signal })
    controller.abort()
    expect(await waiting).to.be.false()
    expect(await waiters.wait('t', 0, { timeoutMs: 5_000, signal: controller.signal })).to.be.false()
    expect(waiters.size).to.equal(0)
    // a notify after the wait ended changes nothing
    waiters.notify('t', 0)
    expect(waiters.size).to.equal(0)
  })

  it('answers false at once beyond its bound, or for a wait of 0 ms', async () => {
    const waiters = new PieceWaiters(2)
    const held = [waiters.wait('t', 0, { timeoutMs: 5_000 }), waiters.wait('t', 1, { timeoutMs: 5_000 })]
    expect(await waiters.wait('t', 2, { timeoutMs: 5_000 })).to.be.false()
    expect(await waiters.wait('t', 0, { timeoutMs: 0 })).to.be.false()
    expect(waiters.size).to.equal(2)
    waiters.notify('t', 0)
    waiters.notify('t', 1)
    expect(await Promise.all(held)).to.deep.equal([true, true])
  })
})
