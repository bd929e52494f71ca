import '../polyfill.ts'
import { InvalidParametersError } from '@libp2p/interface'
import { UnsupportedSchemeError } from './errors.ts'
import type { ReadRangeOptions, SourceClient, SourceRequestOptions, SourceStat } from './index.ts'

export interface SourceRegistryInit {
  /** Called with the size of every chunk any client received from an origin */
  onBytes?(bytes: number): void
}

/**
 * Picks the client for a URL by its scheme and counts the bytes all clients
 * received from origins (the node's origin egress).
 */
export class SourceRegistry {
  private readonly clients = new Map<string, SourceClient>()
  private readonly onBytes?: (bytes: number) => void
  private received = 0

  constructor (init: SourceRegistryInit = {}) {
    this.onBytes = init.onBytes
  }

  /**
   * Add a client for its schemes; a later client replaces an earlier one for
   * the same scheme. To have its bytes counted, a client calls `countBytes`.
   */
  register (client: SourceClient): void {
    for (const scheme of client.schemes) {
      this.clients.set(scheme.toLowerCase(), client)
    }
  }

  /** Supported schemes, without the colon */
  get schemes (): string[] {
    return [...this.clients.keys()]
  }

  /** Total body bytes received from origins by all clients */
  get bytesReceived (): number {
    return this.received
  }

  /** Adds to `bytesReceived`; handed to clients as their `onBytes` */
  readonly countBytes = (bytes: number): void => {
    this.received += bytes
    this.onBytes?.(bytes)
  }

  /**
   * The client for `url`
   *
   * @throws {InvalidParametersError} if `url` is not an absolute URL
   * @throws {UnsupportedSchemeError} if no client handles its scheme
   */
  forUrl (url: string): SourceClient {
    let parsed: URL

    try {
      parsed = new URL(url)
    } catch {
      throw new InvalidParametersError(`"${url}" is not a valid absolute URL; give a full URL such as https://example.com/file.bin`)
    }

    const scheme = parsed.protocol.slice(0, -1).toLowerCase()
    const client = this.clients.get(scheme)

    if (client == null) {
      throw new UnsupportedSchemeError(`cannot fetch ${url}: the scheme "${scheme}" is not supported; use one of: ${this.schemes.join(', ')}`)
    }

    return client
  }

  async stat (url: string, options?: SourceRequestOptions): Promise<SourceStat> {
    return this.forUrl(url).stat(url, options)
  }

  async * readRange (url: string, options: ReadRangeOptions): AsyncGenerator<Uint8Array, void, undefined> {
    yield * this.forUrl(url).readRange(url, options)
  }

  /** Close every client (idle connections, open handles) */
  async close (): Promise<void> {
    const clients = new Set(this.clients.values())
    await Promise.all([...clients].map(async client => client.close?.()))
  }
}
