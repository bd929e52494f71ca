import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { FsPieceStore, GC_LOW_WATERMARK, GC_MIN_IDLE_MS, StoreGc, chooseEvictions, chooseForSpace, resolveQuota } from '../../src/storage/index.ts'
import { taskIdFromUrl } from '../../src/task/id.ts'
import type { GcCandidate } from '../../src/storage/index.ts'

const MIN = 60_000
const DAY = 24 * 3600_000
const NOW = 1_000 * DAY

function task (id: string, bytes: number, idleMs: number, inUse = false): GcCandidate {
  return { taskId: id, bytes, lastUsedAt: NOW - idleMs, inUse }
}

describe('store GC policy (chooseEvictions)', () => {
  it('removes nothing under the quota and within the TTL', () => {
    const tasks = [task('a', 50, DAY), task('b', 30, 2 * DAY)]
    expect(chooseEvictions(tasks, { quotaBytes: 100, ttlMs: 30 * DAY }, NOW)).to.deep.equal([])
    expect(chooseEvictions(tasks, { quotaBytes: 0, ttlMs: 0 }, NOW)).to.deep.equal([])
  })

  it('removes every idle task past the TTL, whatever the quota', () => {
    const tasks = [task('old', 10, 31 * DAY), task('new', 10, DAY), task('older', 10, 40 * DAY)]
    expect(chooseEvictions(tasks, { quotaBytes: 0, ttlMs: 30 * DAY }, NOW)).to.deep.equal([
      { taskId: 'old', bytes: 10, reason: 'ttl' },
      { taskId: 'older', bytes: 10, reason: 'ttl' }
    ])
  })

  it('over the quota, removes the least recently used first until under the low watermark', () => {
    // 100 bytes of quota, 130 held: down to 75 means removing 55 or more, oldest first
    const tasks = [task('c', 30, 3 * DAY), task('a', 40, 5 * DAY), task('d', 30, DAY), task('b', 30, 4 * DAY)]
    expect(chooseEvictions(tasks, { quotaBytes: 100, ttlMs: 0 }, NOW)).to.deep.equal([
      { taskId: 'a', bytes: 40, reason: 'quota' },
      { taskId: 'b', bytes: 30, reason: 'quota' }
    ])
    expect(GC_LOW_WATERMARK).to.equal(0.75)
  })

  it('counts TTL removals toward the quota before removing more', () => {
    const tasks = [task('expired', 60, 40 * DAY), task('x', 30, 2 * DAY), task('y', 30, DAY)]
    expect(chooseEvictions(tasks, { quotaBytes: 100, ttlMs: 30 * DAY }, NOW)).to.deep.equal([
      { taskId: 'expired', bytes: 60, reason: 'ttl' }
    ])
  })

  it('never removes a task in use or used in the last minutes, and stops when only those are left', () => {
    const tasks = [task('busy', 80, 50 * DAY, true), task('recent', 80, GC_MIN_IDLE_MS - MIN), task('idle', 10, GC_MIN_IDLE_MS)]
    expect(chooseEvictions(tasks, { quotaBytes: 100, ttlMs: 30 * DAY }, NOW)).to.deep.equal([
      { taskId: 'idle', bytes: 10, reason: 'quota' }
    ])
    // with no minimum idle time, the recent one goes too (after the older one); the busy one never
    expect(chooseEvictions(tasks, { quotaBytes: 100, ttlMs: 30 * DAY, minIdleMs: 0 }, NOW).map(e => e.taskId)).to.deep.equal(['idle', 'recent'])
  })

  it('orders tasks last used at the same time by id, so every node removes the same ones', () => {
    const tasks = [task('b', 50, DAY), task('a', 50, DAY), task('c', 50, DAY)]
    expect(chooseEvictions(tasks, { quotaBytes: 100, ttlMs: 0 }, NOW).map(e => e.taskId)).to.deep.equal(['a', 'b'])
  })
})

describe('making room for a new task (chooseForSpace)', () => {
  it('removes the least recently used idle tasks until they free the bytes asked for', () => {
    const tasks = [task('new', 50, DAY), task('old', 30, 3 * DAY), task('mid', 40, 2 * DAY)]
    expect(chooseForSpace(tasks, 60, NOW)).to.deep.equal([
      { taskId: 'old', bytes: 30, reason: 'space' },
      { taskId: 'mid', bytes: 40, reason: 'space' }
    ])
    expect(chooseForSpace(tasks, 0, NOW)).to.deep.equal([])
  })

  it('removes nothing when the idle tasks together would not free enough, and never a task in use or used lately', () => {
    const tasks = [task('busy', 500, 9 * DAY, true), task('recent', 500, MIN), task('idle', 30, DAY)]
    expect(chooseForSpace(tasks, 100, NOW)).to.deep.equal([])
    expect(chooseForSpace(tasks, 30, NOW).map(e => e.taskId)).to.deep.equal(['idle'])
    expect(chooseForSpace(tasks, 100, NOW, 0).map(e => e.taskId)).to.deep.equal(['idle', 'recent'])
  })
})

describe('store quota (resolveQuota)', () => {
  it('takes a byte count as it is and a percentage of the file system', () => {
    expect(resolveQuota(5000, 1e9)).to.equal(5000)
    expect(resolveQuota('80%', 1000)).to.equal(800)
    expect(resolveQuota('12.5%', 1000)).to.equal(125)
  })

  it('refuses anything else, naming the forms it takes', () => {
    expect(() => resolveQuota('150%', 1000)).to.throw(/150%.*50GiB.*80%/)
    expect(() => resolveQuota('lots', 1000)).to.throw(/lots/)
  })
})

describe('store GC (StoreGc on a real store)', () => {
  let dir: string
  let store: FsPieceStore
  const logger = defaultLogger()

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'damselfly-gc-'))
    store = new FsPieceStore({ dir: path.join(dir, 'store'), logger })
    await store.open()
  })

  afterEach(async () => {
    await store.close().catch(() => {})
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function importTask (name: string, bytes: number): Promise<string> {
    const file = path.join(dir, name)
    await fs.writeFile(file, randomBytes(bytes))
    const taskId = taskIdFromUrl({ url: `https://origin.example/${name}` })
    await store.import(file, { taskId, url: `https://origin.example/${name}` })
    return taskId
  }

  it('removes the least recently used tasks not downloading, their files too, and counts them', async () => {
    const a = await importTask('a.bin', 300_000)
    const b = await importTask('b.bin', 300_000)
    const c = await importTask('c.bin', 300_000)
    // an hour later: b was used 10 minutes ago, a and c not since they were made; c is downloading
    let clock = Date.now() + 60 * MIN
    const removed: string[] = []
    const gc = new StoreGc({
      usage: () => store.usage().map(t => t.taskId === b ? { ...t, lastUsedAt: clock - 10 * MIN } : t),
      downloading: (id) => id === c,
      remove: async (id) => { removed.push(id); await store.delete(id) },
      policy: { quotaBytes: 700_000, ttlMs: 0 },
      intervalMs: 60_000,
      logger,
      now: () => clock
    })
    const first = await gc.run()
    // 900,000 held, quota 700,000, low watermark 525,000: a (oldest) goes, then b, not c
    expect(first.map(e => e.taskId)).to.deep.equal([a, b])
    expect(removed).to.deep.equal([a, b])
    expect(store.getTask(a)).to.equal(undefined)
    expect(store.getTask(c)).to.not.equal(undefined)
    await expect(fs.stat(path.join(dir, 'store', 'tasks', a))).to.eventually.be.rejected.with.property('code', 'ENOENT')
    expect(gc.stats()).to.include({ runs: 1, evicted: 2, evictedBytes: 600_000, overQuota: false })

    clock += 60 * MIN
    expect(await gc.run()).to.deep.equal([])
    expect(gc.stats().runs).to.equal(2)
  })

  it('says it is over the quota when what is left is in use, and keeps a failed removal as its last error', async () => {
    const a = await importTask('a.bin', 200_000)
    const b = await importTask('b.bin', 200_000)
    const gc = new StoreGc({
      usage: () => store.usage(),
      downloading: (id) => id === b,
      remove: async () => { throw new Error('disk went away') },
      policy: { quotaBytes: 100_000, ttlMs: 0, minIdleMs: 0 },
      intervalMs: 60_000,
      logger
    })
    expect(await gc.run()).to.deep.equal([])
    expect(gc.stats().overQuota).to.equal(true)
    expect(gc.stats().lastError).to.include(a).and.include('disk went away')
  })

  it('on demand: --older-than removes idle tasks unused that long (past the TTL named as such), a dry run removes nothing', async () => {
    const a = await importTask('a.bin', 100_000)
    const b = await importTask('b.bin', 100_000)
    const c = await importTask('c.bin', 100_000)
    const d = await importTask('d.bin', 100_000)
    // unused for: a 40 days, b 3 hours, c 2 minutes; d 3 hours but downloading
    const clock = Date.now()
    const idle: Record<string, number> = { [a]: 40 * DAY, [b]: 180 * MIN, [c]: 2 * MIN, [d]: 180 * MIN }
    const removed: string[] = []
    const gc = new StoreGc({
      usage: () => store.usage().map(t => ({ ...t, lastUsedAt: clock - idle[t.taskId] })),
      downloading: (id) => id === d,
      remove: async (id) => { removed.push(id); await store.delete(id) },
      policy: { quotaBytes: 0, ttlMs: 30 * DAY },
      intervalMs: 0,
      logger,
      now: () => clock
    })

    const dry = await gc.run({ olderThanMs: 60 * MIN, dryRun: true })
    expect(dry).to.deep.equal([{ taskId: a, bytes: 100_000, reason: 'ttl' }, { taskId: b, bytes: 100_000, reason: 'older' }])
    expect(removed).to.deep.equal([])
    expect(store.listTasks()).to.have.length(4)
    expect(gc.stats()).to.include({ runs: 0, evicted: 0 })

    // the configured TTL alone takes only a; a longer age limit than the TTL changes nothing
    expect((await gc.run({ olderThanMs: 60 * DAY, dryRun: true })).map(e => e.taskId)).to.deep.equal([a])

    // c was used 2 minutes ago: it stays even when asked for everything older than a minute, as does d
    const done = await gc.run({ olderThanMs: MIN })
    expect(done.map(e => e.taskId)).to.deep.equal([a, b])
    expect(removed).to.deep.equal([a, b])
    expect(store.listTasks().map(t => t.taskId)).to.have.members([c, d])
    expect(gc.stats()).to.include({ runs: 1, evicted: 2, evictedBytes: 200_000 })
  })

  it('skips a task asked for again while the collection ran', async () => {
    const a = await importTask('a.bin', 200_000)
    const b = await importTask('b.bin', 200_000)
    let asked = 0
    const removed: string[] = []
    const gc = new StoreGc({
      usage: () => store.usage(),
      // b: not downloading when the candidates are taken, downloading when its turn comes
      downloading: (id) => id === b && asked++ > 0,
      remove: async (id) => { removed.push(id); await store.delete(id) },
      policy: { quotaBytes: 100_000, ttlMs: 0, minIdleMs: 0 },
      intervalMs: 60_000,
      logger
    })
    await gc.run()
    expect(removed).to.have.members([a])
    expect(store.getTask(b)).to.not.equal(undefined)
  })

  it('after a restart, takes the last use of a task from when its files were last written', async () => {
    const a = await importTask('a.bin', 100_000)
    await store.close()
    // written an hour after it was created (a download that ran on)
    const written = new Date(Date.now() + 3600_000)
    for (const f of await fs.readdir(path.join(dir, 'store', 'tasks', a))) {
      await fs.utimes(path.join(dir, 'store', 'tasks', a, f), written, written)
    }
    store = new FsPieceStore({ dir: path.join(dir, 'store'), logger })
    await store.open()
    const [u] = store.usage()
    expect(u).to.include({ taskId: a, bytes: 100_000, inUse: false })
    expect(Math.abs(u.lastUsedAt - written.getTime())).to.be.below(1000)
    // a read is a use
    const before = Date.now()
    await store.read(a, 0)
    expect(store.usage()[0].lastUsedAt).to.be.within(before, Date.now())
  })
})
