import { expect } from 'aegir/chai'
import { storeChecks, trackerChecks } from '../../src/cli/commands/doctor.ts'

describe('doctor: tracker requests', () => {
  const status = (attempts: number, failures: Record<string, number>): any => ({ tracker: { client: { attempts, failures } } })

  it('says nothing before enough requests were made', () => {
    expect(trackerChecks(status(5, { timeout: 5 }))).to.deep.equal([])
    expect(trackerChecks({})).to.deep.equal([])
  })

  it('warns when many requests time out, naming the counts and what to do', () => {
    const [check] = trackerChecks(status(261, { timeout: 179, error: 23, 'dial-failed': 0 }))
    expect(check.level).to.equal('warn')
    expect(check.message).to.include('179 of 261')
    expect(check.fix).to.include('--upload-rate')
  })

  it('is ok when most requests are answered', () => {
    const [check] = trackerChecks(status(100, { timeout: 10, error: 5 }))
    expect(check.level).to.equal('ok')
    expect(check.message).to.equal('85 of 100 answered')
  })
})

describe('doctor: piece store', () => {
  const gc = { quotaBytes: 1000, overQuota: false }

  it('says nothing while the store is within its quota and GC works (or before the node started)', () => {
    expect(storeChecks({ store: { bytesStored: 900, gc } })).to.deep.equal([])
    expect(storeChecks({ store: { bytesStored: 900 } })).to.deep.equal([])
  })

  it('warns when the store is over its quota and when GC could not remove a task, saying what to do', () => {
    const [over] = storeChecks({ store: { bytesStored: 1500, gc: { ...gc, overQuota: true } } })
    expect(over).to.include({ level: 'warn', check: 'store' })
    expect(over.message).to.include('1500').and.include('1000')
    expect(over.fix).to.include('--storage-quota')
    const [failed] = storeChecks({ store: { bytesStored: 900, gc: { ...gc, lastError: 'could not remove task ab: EACCES' } } })
    expect(failed).to.include({ level: 'warn', check: 'store GC' })
    expect(failed.message).to.include('EACCES')
  })
})
