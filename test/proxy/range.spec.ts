import { expect } from 'aegir/chai'
import { contentRange, ifRangeAllows, parseRange } from '../../src/proxy/range.ts'

describe('proxy: Range requests', () => {
  const L = 1000

  it('no header, another unit, several ranges or a malformed spec: the whole body', () => {
    for (const h of [undefined, '', 'items=0-5', 'bytes=0-1,5-6', 'bytes=5-2', 'bytes=abc', 'bytes=-', 'bytes', 'bytes=1.5-3', `bytes=0-${'9'.repeat(30)}`]) {
      expect(parseRange(h, L), String(h)).to.deep.equal({ kind: 'full' })
    }
  })

  it('bytes=a-b, clamped to the end', () => {
    expect(parseRange('bytes=0-0', L)).to.deep.equal({ kind: 'partial', start: 0, end: 1 })
    expect(parseRange('bytes=10-19', L)).to.deep.equal({ kind: 'partial', start: 10, end: 20 })
    expect(parseRange('bytes=990-5000', L)).to.deep.equal({ kind: 'partial', start: 990, end: 1000 })
    expect(parseRange(' Bytes = 3-4 ', L)).to.deep.equal({ kind: 'partial', start: 3, end: 5 })
  })

  it('bytes=a- to the end', () => {
    expect(parseRange('bytes=0-', L)).to.deep.equal({ kind: 'partial', start: 0, end: 1000 })
    expect(parseRange('bytes=999-', L)).to.deep.equal({ kind: 'partial', start: 999, end: 1000 })
  })

  it('bytes=-n: the last n bytes, all of them when n exceeds the length', () => {
    expect(parseRange('bytes=-5', L)).to.deep.equal({ kind: 'partial', start: 995, end: 1000 })
    expect(parseRange('bytes=-5000', L)).to.deep.equal({ kind: 'partial', start: 0, end: 1000 })
  })

  it('unsatisfiable: starting at or past the end, -0, any suffix of an empty body', () => {
    expect(parseRange('bytes=1000-', L)).to.deep.equal({ kind: 'unsatisfiable' })
    expect(parseRange('bytes=1000-2000', L)).to.deep.equal({ kind: 'unsatisfiable' })
    expect(parseRange('bytes=-0', L)).to.deep.equal({ kind: 'unsatisfiable' })
    expect(parseRange('bytes=-5', 0)).to.deep.equal({ kind: 'unsatisfiable' })
    expect(parseRange('bytes=0-', 0)).to.deep.equal({ kind: 'unsatisfiable' })
  })

  it('If-Range: only an equal strong entity tag keeps the range', () => {
    const etag = '"sha256:ab"'
    expect(ifRangeAllows(undefined, etag)).to.equal(true)
    expect(ifRangeAllows('"sha256:ab"', etag)).to.equal(true)
    expect(ifRangeAllows('W/"sha256:ab"', etag)).to.equal(false)
    expect(ifRangeAllows('"sha256:cd"', etag)).to.equal(false)
    expect(ifRangeAllows('Wed, 21 Oct 2015 07:28:00 GMT', etag)).to.equal(false)
  })

  it('Content-Range of a 206', () => {
    expect(contentRange(10, 20, 1000)).to.equal('bytes 10-19/1000')
    expect(contentRange(0, 1, 1)).to.equal('bytes 0-0/1')
  })
})
