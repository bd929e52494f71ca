import { createHash } from 'node:crypto'
import { expect } from 'aegir/chai'
import { normaliseDigest, parseDigest } from '../../src/task/digest.ts'
import { DEFAULT_FILTERED_QUERY_PARAMS, normaliseUrl, taskId, taskIdFromDigest, taskIdFromUrl } from '../../src/task/id.ts'

const HEX = 'ab'.repeat(32)
const HEX_RE = /^[0-9a-f]{64}$/

function id (url: string, extra: Partial<Parameters<typeof taskIdFromUrl>[0]> = {}): string {
  return taskIdFromUrl({ url, ...extra })
}

function expectThrowsNamed (fn: () => unknown, name: string, mentions?: string): void {
  let error: any

  try {
    fn()
  } catch (err) {
    error = err
  }

  expect(error, 'expected an error').to.be.an('error')
  expect(error.name).to.equal(name)

  if (mentions != null) {
    expect(error.message).to.include(mentions)
  }
}

describe('task/digest', () => {
  it('parses sha256 digests and normalises them to lowercase', () => {
    expect(parseDigest(`sha256:${HEX}`)).to.deep.equal({ algorithm: 'sha256', hex: HEX })
    expect(parseDigest(`SHA256:${HEX.toUpperCase()}`)).to.deep.equal({ algorithm: 'sha256', hex: HEX })
    expect(normaliseDigest(`Sha256:${HEX.toUpperCase()}`)).to.equal(`sha256:${HEX}`)
  })

  for (const bad of ['', HEX, `sha256:${HEX.slice(1)}`, `sha256:${HEX}0`, `sha512:${HEX}`, `sha256:${'g'.repeat(64)}`, `sha256-${HEX}`, `sha256: ${HEX}`]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}… with InvalidDigestError naming the value and the expected form`, () => {
      expectThrowsNamed(() => parseDigest(bad), 'InvalidDigestError', JSON.stringify(bad))
      expectThrowsNamed(() => parseDigest(bad), 'InvalidDigestError', 'sha256:')
    })
  }

  it('rejects non-strings with InvalidDigestError', () => {
    expectThrowsNamed(() => parseDigest(undefined as any), 'InvalidDigestError')
    expectThrowsNamed(() => parseDigest(42 as any), 'InvalidDigestError')
  })
})

describe('task/id', () => {
  describe('URL normalisation', () => {
    it('produces 64 lowercase hex digits', () => {
      expect(id('https://example.com/a')).to.match(HEX_RE)
    })

    it('is deterministic', () => {
      expect(id('https://example.com/a?x=1')).to.equal(id('https://example.com/a?x=1'))
    })

    it('removes S3 presigned URL params', () => {
      const base = 'https://bucket.s3.amazonaws.com/layer.tar?versionId=3'
      const signed = `${base}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok`
      const resigned = `${base}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=OTHER&X-Amz-Date=20240202T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=cafebabe`
      const v2 = `${base}&AWSAccessKeyId=AKIA&Signature=abc%3D&Expires=1700000000`

      expect(id(signed)).to.equal(id(base))
      expect(id(resigned)).to.equal(id(base))
      expect(id(v2)).to.equal(id(base))
      expect(normaliseUrl(signed)).to.equal(base)
    })

    it('removes GCS, OSS and Azure SAS signature params', () => {
      const base = 'https://storage.example.com/obj'
      const gcs = `${base}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=c&X-Goog-Date=d&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=s&GoogleAccessId=g`
      const oss = `${base}?OSSAccessKeyId=k&Expires=1&Signature=s&security-token=t`
      const sas = `${base}?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01&st=2024-01-01&spr=https&sig=abc&sr=b&skoid=1&sktid=2&skt=3&ske=4&sks=b&skv=5`

      expect(id(gcs)).to.equal(id(base))
      expect(id(oss)).to.equal(id(base))
      // ss and srt are account-SAS params we do not filter by default
      expect(normaliseUrl(sas)).to.equal(`${base}?srt=o&ss=b`)
    })

    it('matches filtered param names case-insensitively and percent-decoded', () => {
      const base = 'https://example.com/f'
      expect(id(`${base}?x-amz-signature=1&X-AMZ-DATE=2&%58-Amz-Expires=3`)).to.equal(id(base))
    })

    it('lists every documented provider param in DEFAULT_FILTERED_QUERY_PARAMS', () => {
      for (const name of ['X-Amz-Signature', 'X-Amz-Security-Token', 'AWSAccessKeyId', 'Signature', 'Expires', 'X-Goog-Signature', 'GoogleAccessId', 'OSSAccessKeyId', 'security-token', 'sig', 'se', 'st', 'sp', 'sv', 'sr', 'spr', 'skoid', 'sktid', 'skt', 'ske', 'sks', 'skv']) {
        expect(DEFAULT_FILTERED_QUERY_PARAMS).to.include(name)
      }
    })

    it('removes user-supplied filtered params in addition to the defaults', () => {
      const base = 'https://example.com/f?keep=1'
      expect(id(`${base}&token=abc`, { filteredQueryParams: ['Token'] })).to.equal(id(base))
      expect(id(`${base}&token=abc&X-Amz-Signature=1`, { filteredQueryParams: ['token'] })).to.equal(id(base))
      expect(id(`${base}&token=abc`)).to.not.equal(id(base))
    })

    it('ignores query param order but keeps the order of repeated names', () => {
      expect(id('https://example.com/f?b=2&a=1&c=3')).to.equal(id('https://example.com/f?c=3&a=1&b=2'))
      expect(normaliseUrl('https://example.com/f?b=2&a=1&b=1')).to.equal('https://example.com/f?a=1&b=2&b=1')
      expect(id('https://example.com/f?a=1&a=2')).to.not.equal(id('https://example.com/f?a=2&a=1'))
      expect(id('https://example.com/f?a=1&a=1')).to.not.equal(id('https://example.com/f?a=1'))
    })

    it('distinguishes different param values', () => {
      expect(id('https://example.com/f?v=1')).to.not.equal(id('https://example.com/f?v=2'))
      expect(id('https://example.com/f?v=1')).to.not.equal(id('https://example.com/f'))
    })

    it('drops an empty query and empty pairs', () => {
      expect(id('https://example.com/f?')).to.equal(id('https://example.com/f'))
      expect(id('https://example.com/f?&a=1&&')).to.equal(id('https://example.com/f?a=1'))
      expect(id('https://example.com/f?X-Amz-Signature=x')).to.equal(id('https://example.com/f'))
      expect(normaliseUrl('https://example.com/f?X-Amz-Signature=x')).to.equal('https://example.com/f')
    })

    it('lowercases scheme and host but not the path', () => {
      expect(id('HTTPS://Example.COM/File')).to.equal(id('https://example.com/File'))
      expect(id('https://example.com/File')).to.not.equal(id('https://example.com/file'))
      expect(normaliseUrl('S3://My-Bucket/Key')).to.equal('s3://my-bucket/Key')
    })

    it('drops default ports and keeps others', () => {
      expect(id('http://example.com:80/f')).to.equal(id('http://example.com/f'))
      expect(id('https://example.com:443/f')).to.equal(id('https://example.com/f'))
      expect(id('https://example.com:8443/f')).to.not.equal(id('https://example.com/f'))
      expect(id('http://example.com:443/f')).to.not.equal(id('http://example.com/f'))
      expect(id('https://example.com:80/f')).to.not.equal(id('https://example.com/f'))
    })

    it('drops the fragment and credentials', () => {
      expect(id('https://example.com/f#part')).to.equal(id('https://example.com/f'))
      expect(id('https://user:pw@example.com/f')).to.equal(id('https://example.com/f'))
    })

    it('distinguishes different hosts, schemes and paths', () => {
      const ids = new Set([
        id('https://example.com/a'),
        id('https://example.com/b'),
        id('https://example.com/a/'),
        id('http://example.com/a'),
        id('https://mirror.example.com/a')
      ])
      expect(ids.size).to.equal(5)
    })

    it('throws InvalidUrlError naming the URL', () => {
      for (const bad of ['', 'not a url', '/relative/path', 'example.com/f', 'http://']) {
        expectThrowsNamed(() => id(bad), 'InvalidUrlError', JSON.stringify(bad))
      }
    })
  })

  describe('tag, application and range', () => {
    const url = 'https://example.com/f'

    it('are part of the id', () => {
      const ids = new Set([
        id(url),
        id(url, { tag: 'v1' }),
        id(url, { tag: 'v2' }),
        id(url, { application: 'ci' }),
        id(url, { range: '0-99' }),
        id(url, { range: '100-199' }),
        id(url, { tag: 'v1', application: 'ci' })
      ])
      expect(ids.size).to.equal(7)
    })

    it('are not confused with each other', () => {
      expect(id(url, { tag: 'x' })).to.not.equal(id(url, { application: 'x' }))
      expect(id(url, { tag: 'x' })).to.not.equal(id(url, { range: 'x' }))
    })

    it('treat empty values as absent', () => {
      expect(id(url, { tag: '', application: '', range: '' })).to.equal(id(url))
    })

    it('accept a range with or without the bytes= prefix', () => {
      expect(id(url, { range: 'bytes=0-99' })).to.equal(id(url, { range: '0-99' }))
    })
  })

  describe('digest-derived ids', () => {
    const digest = `sha256:${HEX}`

    it('produce 64 lowercase hex digits that differ from the digest itself', () => {
      expect(taskIdFromDigest(digest)).to.match(HEX_RE)
      expect(taskIdFromDigest(digest)).to.not.equal(HEX)
    })

    it('depend on the normalised digest alone', () => {
      expect(taskIdFromDigest(`SHA256:${HEX.toUpperCase()}`)).to.equal(taskIdFromDigest(digest))
      expect(taskIdFromDigest(`sha256:${'cd'.repeat(32)}`)).to.not.equal(taskIdFromDigest(digest))
    })

    it('are equal across URLs, mirrors and tags', () => {
      const a = taskId({ digest, url: 'https://registry-1.docker.io/v2/library/alpine/blobs/x' })
      const b = taskId({ digest, url: 'https://mirror.example.com/v2/library/alpine/blobs/x', tag: 'other' })
      const c = taskId({ digest })

      expect(a).to.equal(b)
      expect(a).to.equal(c)
      expect(a).to.equal(taskIdFromDigest(digest))
      expect(a).to.not.equal(taskId({ url: 'https://mirror.example.com/v2/library/alpine/blobs/x' }))
    })

    it('do not collide with a URL id', () => {
      expect(taskIdFromDigest(digest)).to.not.equal(id(digest))
    })

    it('throw InvalidDigestError for a bad digest', () => {
      expectThrowsNamed(() => taskIdFromDigest('md5:abc'), 'InvalidDigestError', 'md5:abc')
      expectThrowsNamed(() => taskId({ digest: 'sha256:xyz', url: 'https://example.com/f' }), 'InvalidDigestError')
    })
  })

  describe('taskId()', () => {
    it('uses the URL when no digest is given', () => {
      expect(taskId({ url: 'https://example.com/f', tag: 't' })).to.equal(id('https://example.com/f', { tag: 't' }))
      expect(taskId({ url: 'https://example.com/f', digest: '' })).to.equal(id('https://example.com/f'))
    })

    it('throws InvalidParametersError without url and digest', () => {
      expectThrowsNamed(() => taskId({}), 'InvalidParametersError')
    })

    it('is the sha256 of a versioned canonical string', () => {
      const expected = createHash('sha256').update(`damselfly-task-id/1\ndigest:sha256:${HEX}`).digest('hex')
      expect(taskIdFromDigest(`sha256:${HEX}`)).to.equal(expected)
    })
  })
})
