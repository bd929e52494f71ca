/**
 * Sort a failed dial into the classes an operator can act on, with the cause
 * in plain words and the fix. Used by the joiner's logs, the metrics and
 * `damselfly doctor`.
 */
export type DialFailureClass = 'refused' | 'timeout' | 'swarm-key' | 'version' | 'no-route' | 'wrong-peer' | 'other'

export const DIAL_FAILURE_CLASSES: DialFailureClass[] = ['refused', 'timeout', 'swarm-key', 'version', 'no-route', 'wrong-peer', 'other']

export interface DialFailure {
  class: DialFailureClass
  /** what happened, in plain words */
  cause: string
  /** what to do about it */
  fix: string
}

export interface ClassifyContext {
  /** this node runs a private swarm (has a swarm key) */
  privateSwarm: boolean
}

function codesOf (err: any): string[] {
  const codes: string[] = []
  const seen = new Set<unknown>()
  const walk = (e: any, depth: number): void => {
    if (e == null || depth > 5 || seen.has(e)) {
      return
    }
    seen.add(e)
    if (typeof e.code === 'string') {
      codes.push(e.code)
    }
    if (typeof e.name === 'string') {
      codes.push(e.name)
    }
    if (typeof e.message === 'string') {
      const m = /\b(E[A-Z]{4,})\b/.exec(e.message)
      if (m != null) {
        codes.push(m[1])
      }
    }
    walk(e.cause, depth + 1)
    if (Array.isArray(e.errors)) {
      e.errors.forEach((x: unknown) => { walk(x, depth + 1) })
    }
  }
  walk(err, 0)
  return codes
}

export function classifyDialError (err: unknown, ctx: ClassifyContext): DialFailure {
  const codes = codesOf(err)
  const has = (...c: string[]): boolean => c.some(x => codes.includes(x))
  const message = String((err as Error)?.message ?? err)

  if (has('ECONNREFUSED')) {
    return {
      class: 'refused',
      cause: 'the connection was refused: nothing listens on that address and port',
      fix: 'start the node there, or check the port in the multiaddr and any firewall'
    }
  }
  if (has('EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'NoValidAddressesError')) {
    return {
      class: 'no-route',
      cause: 'there is no route to that address (unreachable network or unknown host)',
      fix: 'check the address, DNS and routing between the hosts'
    }
  }
  if (has('UnexpectedPeerError', 'InvalidPeerIdError') || /peer id/i.test(message)) {
    return {
      class: 'wrong-peer',
      cause: 'a different peer answered at that address than the /p2p/ id names',
      fix: 'update the bootstrap multiaddr with the peer id the node prints at start'
    }
  }
  if (has('UnsupportedProtocolError') || /could not negotiate|protocol selection failed/i.test(message)) {
    return {
      class: 'version',
      cause: 'the remote does not speak a compatible protocol version',
      fix: 'run the same major version of Damselfly on both nodes'
    }
  }
  if (has('EncryptionFailedError', 'ECONNRESET', 'InvalidCryptoExchangeError') || /encrypt|handshake|noise/i.test(message)) {
    return ctx.privateSwarm
      ? {
          class: 'swarm-key',
          cause: 'the handshake failed: the remote is not in this private swarm (different swarm key, or no key)',
          fix: 'give both nodes the same swarm key file (--swarm-key), made once with `damselfly keygen --swarm-key FILE`'
        }
      : {
          class: 'swarm-key',
          cause: 'the handshake failed: the remote is probably in a private swarm and needs its swarm key',
          fix: 'start this node with that swarm\'s key file (--swarm-key FILE)'
        }
  }
  if (has('TimeoutError', 'AbortError', 'ETIMEDOUT') || /timed? ?out/i.test(message)) {
    return ctx.privateSwarm
      ? {
          class: 'timeout',
          cause: 'the dial timed out: the host did not answer, or it is not in this private swarm (a pnet mismatch stalls the handshake)',
          fix: 'check that the node runs and is reachable, and that it has the same swarm key'
        }
      : {
          class: 'timeout',
          cause: 'the dial timed out: the host did not answer in time',
          fix: 'check that the node runs and that no firewall drops packets to that port'
        }
  }
  return {
    class: 'other',
    cause: `the dial failed: ${message}`,
    fix: 'run with DEBUG=damselfly:*,libp2p:connection-manager* for details'
  }
}

/** How long the raw TCP probe of refineDialFailure waits */
const TCP_PROBE_TIMEOUT_MS = 2000

/**
 * A timed-out dial in a private swarm is ambiguous: the host may be down, or
 * it may accept the TCP connection and stall the handshake because its
 * swarm key differs (pnet fails silently, and with TLS it often ends as a
 * timeout). A plain TCP connect tells them apart.
 */
export async function refineDialFailure (addr: string, failure: DialFailure, ctx: ClassifyContext): Promise<DialFailure> {
  if (failure.class !== 'timeout') {
    return failure
  }
  const m = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d+)/.exec(addr)
  if (m == null) {
    return failure
  }
  const { connect } = await import('node:net')
  const open = await new Promise<boolean>(resolve => {
    const socket = connect({ host: m[2], port: Number(m[3]), timeout: TCP_PROBE_TIMEOUT_MS })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => { resolve(false) })
  })
  if (!open) {
    return failure
  }
  return ctx.privateSwarm
    ? {
        class: 'swarm-key',
        cause: 'the host accepts connections but the handshake stalls: it is not in this private swarm (different swarm key, or no key)',
        fix: 'give both nodes the same swarm key file (--swarm-key), made once with `damselfly keygen --swarm-key FILE`'
      }
    : {
        class: 'swarm-key',
        cause: 'the host accepts connections but the handshake stalls: it is probably in a private swarm and needs its swarm key',
        fix: 'start this node with that swarm\'s key file (--swarm-key FILE)'
      }
}
