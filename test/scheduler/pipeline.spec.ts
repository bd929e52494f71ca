import { expect } from 'aegir/chai'
import { DEFAULT_PIPELINE_MAX_DEPTH, DEFAULT_PIPELINE_MIN_DEPTH } from '../../src/scheduler/constants.ts'
import { DeliveryRate, pipelineDepth } from '../../src/scheduler/pipeline.ts'

const MiB = 1024 * 1024

describe('pipelineDepth', () => {
  it('starts at the minimum before any measurement', () => {
    expect(pipelineDepth(undefined, MiB)).to.equal(DEFAULT_PIPELINE_MIN_DEPTH)
    expect(pipelineDepth(0, MiB)).to.equal(DEFAULT_PIPELINE_MIN_DEPTH)
    expect(pipelineDepth(NaN, MiB)).to.equal(DEFAULT_PIPELINE_MIN_DEPTH)
  })

  it('covers half a second of the rate plus one piece, within the bounds', () => {
    // a share of a 25 Mbit/s link: 0.4 MB/s → 1 + 1
    expect(pipelineDepth(400_000, MiB)).to.equal(2)
    // a whole 25 Mbit/s link: 3.1 MB/s → ceil(1.49) + 1
    expect(pipelineDepth(3_125_000, MiB)).to.equal(3)
    // 100 Mbit/s: 12.5 MB/s → ceil(5.96) + 1
    expect(pipelineDepth(12_500_000, MiB)).to.equal(7)
    // loopback
    expect(pipelineDepth(500e6, MiB)).to.equal(DEFAULT_PIPELINE_MAX_DEPTH)
    // smaller pieces need more of them for the same time
    expect(pipelineDepth(3_125_000, 256 * 1024)).to.equal(7)
  })

  it('is monotonic in the rate and always within [min, max]', () => {
    let last = 0
    for (let rate = 1; rate < 1e10; rate *= 1.7) {
      for (const piece of [16 * 1024, MiB, 64 * MiB]) {
        const d = pipelineDepth(rate, piece, { minDepth: 1, maxDepth: 12 })
        expect(d).to.be.within(1, 12)
      }
      const d = pipelineDepth(rate, MiB)
      expect(d).to.be.at.least(last)
      last = d
    }
    expect(last).to.equal(DEFAULT_PIPELINE_MAX_DEPTH)
  })

  it('rejects impossible options', () => {
    expect(() => pipelineDepth(1, MiB, { minDepth: 0 })).to.throw().with.property('name', 'InvalidParametersError')
    expect(() => pipelineDepth(1, MiB, { minDepth: 3, maxDepth: 2 })).to.throw().with.property('name', 'InvalidParametersError')
    expect(() => pipelineDepth(1, 0)).to.throw().with.property('name', 'InvalidParametersError')
    expect(() => pipelineDepth(1, MiB, { targetMs: 0 })).to.throw().with.property('name', 'InvalidParametersError')
  })
})

describe('DeliveryRate', () => {
  it('knows nothing until a piece arrives after requests went out', () => {
    const r = new DeliveryRate()
    expect(r.bytesPerS).to.equal(undefined)
    // a piece with no busy() before it has no start to measure from
    r.delivered(MiB, 1000)
    expect(r.bytesPerS).to.equal(undefined)
  })

  it('measures the gaps between pieces while busy', () => {
    const r = new DeliveryRate(1)
    r.busy(1000)
    r.delivered(MiB, 1500)
    expect(r.bytesPerS).to.equal(MiB * 2)
    r.delivered(MiB, 1750)
    expect(r.bytesPerS).to.equal(MiB * 4)
  })

  it('does not count idle time against the parent', () => {
    const r = new DeliveryRate(1)
    r.busy(0)
    r.delivered(MiB, 100)
    r.idle()
    // ten seconds with nothing asked, then a request answered in 100 ms
    r.busy(10_100)
    r.delivered(MiB, 10_200)
    expect(r.bytesPerS).to.equal(MiB * 10)
  })

  it('moves towards a new rate by its weight', () => {
    const r = new DeliveryRate(0.5)
    r.busy(0)
    r.delivered(1000, 1000) // 1000 B/s
    r.delivered(3000, 2000) // 3000 B/s
    expect(r.bytesPerS).to.equal(2000)
  })

  it('rejects a weight outside (0, 1]', () => {
    expect(() => new DeliveryRate(0)).to.throw().with.property('name', 'InvalidParametersError')
    expect(() => new DeliveryRate(1.5)).to.throw().with.property('name', 'InvalidParametersError')
  })
})
