import { expect } from 'aegir/chai'
import {
  compareValidators,
  describeChange,
  formatRange,
  ifRangeValue,
  parseContentLength,
  parseContentRange,
  parseUnsatisfiedRangeTotal
} from '../../src/source/http-headers.ts'

describe('source/http-headers', () => {
  it('parseContentRange reads first, last and total', () => {
    expect(parseContentRange('bytes 0-0/1234')).to.deep.equal({ start: 0, last: 0, total: 1234 })
    expect(parseContentRange('bytes 100-199/*')).to.deep.equal({ start: 100, last: 199, total: undefined })
    expect(parseContentRange('Bytes 5-9/10')).to.deep.equal({ start: 5, last: 9, total: 10 })
  })

  it('parseContentRange rejects malformed and impossible ranges', () => {
    for (const value of [undefined, '', 'bytes */100', 'bytes 5-4/10', 'bytes 0-10/10', 'items 0-1/2', 'bytes 0-1/2, 4-5/6', 'bytes -1-2/3']) {
      expect(parseContentRange(value)).to.equal(undefined, String(value))
    }
  })

  it('parseUnsatisfiedRangeTotal reads the length of a 416', () => {
    expect(parseUnsatisfiedRangeTotal('bytes */0')).to.equal(0)
    expect(parseUnsatisfiedRangeTotal('bytes */77')).to.equal(77)
    expect(parseUnsatisfiedRangeTotal('bytes 0-1/2')).to.be.undefined()
  })

  it('parseContentLength accepts plain integers only', () => {
    expect(parseContentLength('0')).to.equal(0)
    expect(parseContentLength('4294967297')).to.equal(4294967297)
    expect(parseContentLength(undefined)).to.be.undefined()
    expect(parseContentLength('-1')).to.be.undefined()
    expect(parseContentLength('1e3')).to.be.undefined()
  })

  it('formatRange makes the end inclusive', () => {
    expect(formatRange(0, 1)).to.equal('bytes=0-0')
    expect(formatRange(100, 200)).to.equal('bytes=100-199')
  })

  it('ifRangeValue prefers a strong ETag, then Last-Modified, then a weak ETag', () => {
    const lastModified = 'Mon, 01 Jan 2024 00:00:00 GMT'
    expect(ifRangeValue({ etag: '"a"', lastModified })).to.equal('"a"')
    expect(ifRangeValue({ etag: 'W/"a"', lastModified })).to.equal(lastModified)
    expect(ifRangeValue({ etag: 'W/"a"' })).to.equal('W/"a"')
    expect(ifRangeValue({})).to.be.undefined()
    expect(ifRangeValue(undefined)).to.be.undefined()
  })

  it('compareValidators tells same, changed and unknown apart', () => {
    expect(compareValidators({ etag: '"a"' }, { etag: '"a"' })).to.equal('same')
    expect(compareValidators({ etag: '"a"' }, { etag: 'W/"a"' })).to.equal('same')
    expect(compareValidators({ etag: '"a"' }, { etag: '"b"' })).to.equal('changed')
    expect(compareValidators({ lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' }, { lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' })).to.equal('same')
    expect(compareValidators({ etag: '"a"', lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' }, { lastModified: 'Tue, 02 Jan 2024 00:00:00 GMT' })).to.equal('changed')
    expect(compareValidators({ etag: '"a"' }, {})).to.equal('unknown')
  })

  it('describeChange names both versions', () => {
    expect(describeChange({ etag: '"a"' }, { etag: '"b"' })).to.equal('ETag "a" → "b"')
    expect(describeChange({ etag: '"a"' }, {})).to.equal('ETag "a" → none')
  })
})
