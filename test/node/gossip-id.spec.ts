import { expect } from 'aegir/chai'
import { gossipFastMsgId } from '../../src/node/gossip-id.ts'

describe('node/gossip-id', () => {
  const from = Uint8Array.from([0, 36, 8, 1, 18, 32, 7, 7])
  const seqno = Uint8Array.from([0, 0, 1, 2, 3, 4, 5, 6])

  it('gives every forwarded copy of a message one id', () => {
    expect(gossipFastMsgId({ from, seqno })).to.equal(gossipFastMsgId({ from: from.slice(), seqno: seqno.slice() }))
  })

  it('tells messages of one sender apart by sequence number', () => {
    const next = seqno.slice()
    next[7]++
    expect(gossipFastMsgId({ from, seqno })).to.not.equal(gossipFastMsgId({ from, seqno: next }))
  })

  it('tells senders apart, even when the bytes would run together', () => {
    // a naive concatenation of from and seqno would give these two one id
    expect(gossipFastMsgId({ from: Uint8Array.from([1, 2]), seqno: Uint8Array.from([3]) }))
      .to.not.equal(gossipFastMsgId({ from: Uint8Array.from([1]), seqno: Uint8Array.from([2, 3]) }))
  })

  it('keys unsigned messages apart from every signed one', () => {
    expect(gossipFastMsgId({ seqno })).to.equal('unsigned')
    expect(gossipFastMsgId({ from })).to.equal('unsigned')
    expect(gossipFastMsgId({ from, seqno })).to.not.equal('unsigned')
  })
})
