import { expect } from 'aegir/chai'
import { trackerChecks } from '../../src/cli/commands/doctor.ts'

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
