/**
 * A cheap duplicate key for gossipsub messages.
 *
 * gossipsub checks a message's signature before it looks the message up in
 * its seen-cache, so each of the up to D copies that mesh peers forward was
 * verified again: an ed25519 check per copy, the largest single item in an
 * idle swarm's CPU profile. With a fast id, gossipsub drops a copy whose id
 * it already cached before verifying it.
 *
 * Safe under gossipsub's StrictSign policy (the default, and ours): a fast id
 * is cached only after the message carrying it passed validation, and a valid
 * message's `from` is the key that signed it, so a forger cannot make a real
 * message look like one already seen. The id is `from` and `seqno`, the same
 * fields StrictSign's message id is made of.
 */
import { toString } from 'uint8arrays/to-string'

/** the fields of gossipsub's RPC.Message this reads */
export interface GossipRpcMessage {
  from?: Uint8Array
  seqno?: Uint8Array
}

/**
 * The fast id of `msg`: its sender and sequence number. A message lacking
 * either gets a key no signed message has (it fails validation under
 * StrictSign, so it is never cached).
 */
export function gossipFastMsgId (msg: GossipRpcMessage): string {
  if (msg.from == null || msg.seqno == null) {
    return 'unsigned'
  }

  // base64url has no ':', so the split is unambiguous
  return `${toString(msg.from, 'base64url')}:${toString(msg.seqno, 'base64url')}`
}
