import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { DeferredProvides } from '../../src/node/provides.ts'

/** A DeferredProvides on a hand-moved clock, with the node's activity set by the test */
function setup (opts: { quietMs?: number, maxDelayMs?: number, fail?: Set<string> } = {}): {
  provides: DeferredProvides
  sent: string[]
  clock: { now: number }
  node: { bytes: number, running: number }
  step(ms: number): Promise<void>
} {
  const clock = { now: 1_000_000 }
  const node = { bytes: 0, running: 0 }
  const sent: string[] = []
  const provides = new DeferredProvides({
    provide: async (taskId) => {
      if (opts.fail?.has(taskId) === true) {
        throw new Error('no peers')
      }
      sent.push(taskId)
    },
    bytesMoved: () => node.bytes,
    running: () => node.running,
    log: defaultLogger().forComponent('test:provides'),
    quietMs: opts.quietMs ?? 5000,
    maxDelayMs: opts.maxDelayMs ?? 60_000,
    timer: false,
    now: () => clock.now
  })
  return {
    provides,
    sent,
    clock,
    node,
    // advance the clock in 1 s samples, as the timer would
    step: async (ms) => {
      for (let t = 0; t < ms; t += 1000) {
        clock.now += 1000
        await provides.check()
      }
    }
  }
}

describe('node/provides', () => {
  it('provides a finished task once the node has been quiet long enough', async () => {
    const s = setup()
    s.provides.add('a')
    await s.step(4000)
    expect(s.sent).to.deep.equal([])
    await s.step(2000)
    expect(s.sent).to.deep.equal(['a'])
    expect(s.provides.stats()).to.deep.equal({ waiting: 0, provided: 1, failed: 0 })
  })

  it('waits while piece bytes move or a download runs', async () => {
    const s = setup()
    s.provides.add('a')
    for (let i = 0; i < 20; i++) {
      s.node.bytes += 262_144
      await s.step(1000)
    }
    expect(s.sent, 'provided while uploading').to.deep.equal([])
    s.node.running = 1
    await s.step(10_000)
    expect(s.sent, 'provided while a download ran').to.deep.equal([])
    s.node.running = 0
    await s.step(4000)
    expect(s.sent).to.deep.equal([])
    await s.step(2000)
    expect(s.sent).to.deep.equal(['a'])
  })

  it('provides at the latest after the longest delay, busy or not', async () => {
    const s = setup({ maxDelayMs: 30_000 })
    s.node.running = 1
    s.provides.add('a')
    await s.step(10_000)
    s.provides.add('b')
    await s.step(19_000)
    expect(s.sent).to.deep.equal([])
    await s.step(2000)
    expect(s.sent, 'a waited 30 s').to.deep.equal(['a'])
    await s.step(8000)
    expect(s.sent, 'b has waited 29 s').to.deep.equal(['a'])
    await s.step(2000)
    expect(s.sent).to.deep.equal(['a', 'b'])
  })

  it('queues a task once, counts failures and does not retry them', async () => {
    const s = setup({ fail: new Set(['bad']) })
    s.provides.add('a')
    s.provides.add('a')
    s.provides.add('bad')
    expect(s.provides.stats().waiting).to.equal(2)
    await s.step(6000)
    expect(s.sent).to.deep.equal(['a'])
    expect(s.provides.stats()).to.deep.equal({ waiting: 0, provided: 1, failed: 1 })
    await s.step(10_000)
    expect(s.provides.stats().failed).to.equal(1)
  })

  it('provides nothing more once stopped', async () => {
    const s = setup()
    s.provides.add('a')
    s.provides.stop()
    s.provides.add('b')
    await s.step(10_000)
    expect(s.sent).to.deep.equal([])
    expect(s.provides.stats().waiting).to.equal(0)
  })

  it('provides on its own timer', async function () {
    this.timeout(10_000)
    const sent: string[] = []
    const provides = new DeferredProvides({
      provide: async (taskId) => { sent.push(taskId) },
      bytesMoved: () => 0,
      running: () => 0,
      log: defaultLogger().forComponent('test:provides'),
      quietMs: 1500
    })
    try {
      provides.add('a')
      const deadline = Date.now() + 8000
      while (sent.length === 0 && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      expect(sent).to.deep.equal(['a'])
    } finally {
      provides.stop()
    }
  })
})
