import '../../src/polyfill.ts'
import { expect } from 'aegir/chai'
import { UploadSlots } from '../../src/transfer/upload-slots.ts'

describe('transfer: UploadSlots', function () {
  it('hands out up to size slots, then gives up after the wait', async function () {
    const slots = new UploadSlots(2)
    const a = await slots.acquire(0)
    const b = await slots.acquire(0)
    expect(a).to.be.a('function')
    expect(b).to.be.a('function')
    expect(slots.active).to.equal(2)
    const started = Date.now()
    expect(await slots.acquire(50)).to.be.undefined()
    expect(Date.now() - started).to.be.at.least(40)
    a?.()
    a?.() // a second release is harmless
    expect(slots.active).to.equal(1)
    b?.()
    expect(slots.active).to.equal(0)
  })

  it('passes a released slot to the oldest waiter', async function () {
    const slots = new UploadSlots(1)
    const first = await slots.acquire(0)
    const order: string[] = []
    const w1 = slots.acquire(1000).then((r) => { order.push('w1'); return r })
    const w2 = slots.acquire(1000).then((r) => { order.push('w2'); return r })
    first?.()
    const r1 = await w1
    expect(r1).to.be.a('function')
    expect(slots.active).to.equal(1)
    r1?.()
    const r2 = await w2
    r2?.()
    expect(order).to.deep.equal(['w1', 'w2'])
    expect(slots.active).to.equal(0)
  })

  it('stops waiting when aborted', async function () {
    const slots = new UploadSlots(1)
    const held = await slots.acquire(0)
    const controller = new AbortController()
    const waiting = slots.acquire(10_000, { signal: controller.signal })
    controller.abort()
    expect(await waiting).to.be.undefined()
    held?.()
    expect(slots.active).to.equal(0)
  })
})
