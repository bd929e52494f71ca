import { expect } from 'aegir/chai'
import { runCli } from '../utils/cli.ts'

describe('damselfly demo', () => {
  it('runs a small swarm and ends with the summary line a script can read', async () => {
    const r = await runCli(['demo', '--nodes', '3', '--size', '4MiB'], { timeoutMs: 180_000 })
    expect(r.code, r.stderr + r.stdout).to.equal(0)
    const last = r.stdout.trim().split('\n').pop() ?? ''
    const m = /^origin egress: (\d+\.\d+)x of file size; from peers: (\d+\.\d)%; slowest node: (\d+\.\d+)s$/.exec(last)
    expect(m, last).to.not.equal(null)
    expect(Number(m![1])).to.be.at.most(2)
    expect(r.stdout).to.not.include('MISMATCH')
  })
})
