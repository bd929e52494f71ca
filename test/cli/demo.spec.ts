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

  it('--origin-rate caps the origin\'s upload: plain HTTP then needs N × S ÷ the rate; a bad rate is a usage error', async () => {
    const r = await runCli(['demo', '--nodes', '3', '--size', '2MiB', '--origin-rate', '2MiB', '--json'], { timeoutMs: 180_000 })
    expect(r.code, r.stderr + r.stdout).to.equal(0)
    const result = JSON.parse(r.stdout)
    // 3 × 2 MiB at 2 MiB/s: 3 s, less the bucket's first burst (64 KiB)
    expect(result.plainHttpSeconds).to.be.at.least(2.8)
    expect(result.originEgressRatio).to.be.at.most(1.1)
    expect(result.perNode.every((p: any) => p.sha256ok)).to.equal(true)

    const bad = await runCli(['demo', '--origin-rate', 'fast'])
    expect(bad.code).to.equal(2)
    expect(bad.stderr).to.include('--origin-rate')
  })
})
