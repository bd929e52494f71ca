/**
 * Which upstream registry a request goes to, and whether it may: the
 * configured mirror, or a registry named per request (header or containerd's
 * `?ns=`) that is on the allow-list. Pure, no I/O.
 */
import { DOCKER_HUB_API, DOCKER_HUB_NAMES } from './constants.ts'
import { InvalidUpstreamError, NoUpstreamError, UpstreamNotAllowedError } from './errors.ts'

export interface Upstream {
  /** `scheme://host[:port]`, no trailing slash */
  origin: string
  /** `host[:port]`, lowercase, default port omitted: what the allow-list is matched against */
  host: string
}

export interface RegistryName {
  /** set when the name carried one (`http://…`) */
  scheme?: 'http' | 'https'
  /** `host[:port]`, lowercase, default port omitted */
  host: string
}

const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$/i

/**
 * Parse a registry given as `https://host[:port]`, `http://host[:port]` or a
 * bare `host[:port]` (as in image references and containerd's `ns`).
 * Docker Hub's names (`docker.io`, `index.docker.io`) become its API host.
 *
 * @throws {InvalidUpstreamError}
 */
export function parseRegistryName (value: string, what = 'registry'): RegistryName {
  const raw = value.trim()
  let url: URL
  let scheme: 'http' | 'https' | undefined
  if (raw.includes('://')) {
    try {
      url = new URL(raw)
    } catch {
      throw new InvalidUpstreamError(`${what} "${value}" is not a valid URL; give https://host[:port] or host[:port]`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidUpstreamError(`${what} "${value}" must be an http:// or https:// URL`)
    }
    if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
      throw new InvalidUpstreamError(`${what} "${value}" must be only scheme://host[:port], with no path, query or credentials (the registry API lives at /v2/)`)
    }
    scheme = url.protocol === 'http:' ? 'http' : 'https'
  } else {
    if (!HOST_PORT.test(raw)) {
      throw new InvalidUpstreamError(`${what} "${value}" is not a host[:port]; give e.g. ghcr.io or 127.0.0.1:5000`)
    }
    url = new URL(`https://${raw}`)
  }
  const host = url.host.toLowerCase()
  if (DOCKER_HUB_NAMES.includes(host)) {
    return { scheme: 'https', host: new URL(DOCKER_HUB_API).host }
  }
  return { scheme, host }
}

interface AllowEntry {
  /** hostname, or the suffix after `*.` */
  hostname: string
  wildcard: boolean
  port: string
  scheme?: 'http' | 'https'
  text: string
}

function splitHost (host: string): { hostname: string, port: string } {
  const m = /^(.*?)(?::(\d+))?$/.exec(host)!
  return { hostname: m[1], port: m[2] ?? '' }
}

export interface UpstreamPolicyInit {
  /** the registry requests go to when they name none (`https://registry-1.docker.io`) */
  registryMirror?: string | null
  /** further registries requests may name: `host[:port]`, `*.domain`, or a URL to fix the scheme (`http://10.0.0.5:5000`) */
  allowHosts?: string[]
}

export interface ResolveRequest {
  /** the X-Damselfly-Registry header */
  header?: string
  /** containerd's `?ns=` query parameter */
  ns?: string
}

/**
 * Resolves the upstream of each request. Never an open proxy: a request may
 * only reach the configured mirror or a host on the allow-list.
 */
export class UpstreamPolicy {
  public readonly mirror?: Upstream
  private readonly allowed: AllowEntry[]

  /**
   * @throws {InvalidUpstreamError} when the mirror or an allow-list entry is invalid
   */
  constructor (init: UpstreamPolicyInit = {}) {
    if (init.registryMirror != null && init.registryMirror !== '') {
      const m = parseRegistryName(init.registryMirror, 'proxy.registryMirror')
      this.mirror = { origin: `${m.scheme ?? 'https'}://${m.host}`, host: m.host }
    }
    this.allowed = (init.allowHosts ?? []).map(text => {
      const wildcard = text.trim().startsWith('*.')
      const name = parseRegistryName(wildcard ? text.trim().slice(2) : text, 'proxy.allowHosts entry')
      const { hostname, port } = splitHost(name.host)
      return { hostname, port, wildcard, scheme: name.scheme, text }
    })
  }

  /**
   * The upstream of a request
   *
   * @throws {NoUpstreamError} the request names none and no mirror is configured
   * @throws {InvalidUpstreamError} the named registry is not a valid address
   * @throws {UpstreamNotAllowedError} the named registry is neither the mirror nor allowed
   */
  resolve (request: ResolveRequest): Upstream {
    const named = [request.header, request.ns].find(v => v != null && v.trim() !== '')
    if (named == null) {
      if (this.mirror == null) {
        throw new NoUpstreamError('this request names no registry and the proxy has no proxy.registryMirror; set it, or send the X-Damselfly-Registry header (containerd sends ?ns=<registry>)')
      }
      return this.mirror
    }
    const name = parseRegistryName(named, 'the requested registry')
    if (this.mirror != null && name.host === this.mirror.host) {
      return name.scheme == null ? this.mirror : { origin: `${name.scheme}://${name.host}`, host: name.host }
    }
    const entry = this.allowed.find(e => matches(e, name.host))
    if (entry == null) {
      const allowed = [this.mirror?.host, ...this.allowed.map(e => e.text)].filter(v => v != null)
      throw new UpstreamNotAllowedError(`registry ${name.host} is not allowed by this proxy (allowed: ${allowed.length === 0 ? 'none' : allowed.join(', ')}); add it to proxy.allowHosts to mirror it`)
    }
    return { origin: `${name.scheme ?? entry.scheme ?? 'https'}://${name.host}`, host: name.host }
  }
}

function matches (entry: AllowEntry, host: string): boolean {
  const { hostname, port } = splitHost(host)
  if (port !== entry.port) {
    return false
  }
  return entry.wildcard ? hostname.endsWith(`.${entry.hostname}`) : hostname === entry.hostname
}
