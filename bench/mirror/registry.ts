/**
 * The registry of the mirror benchmark: Debian's `docker-registry` as a child
 * process of the bench (on 127.0.0.1, or inside a namespace), with its
 * access log read from its output to count what it served.
 */
import { REGISTRY_BIN, writeRegistryConfig } from '../../test/proxy/registry.ts'
import { inNamespace } from '../fanout/netns.ts'
import type { Guard } from '../fanout/guard.ts'
import type { Resources, Watched } from '../lib/proc.ts'

/** Time the registry may take to listen */
const REGISTRY_START_MS = 30_000

/** One access-log line of a blob or manifest request */
export interface AccessLine {
  method: string
  path: string
  status: number
  bytes: number
  userAgent: string
  /** performance.now() when the line reached the bench (the response had ended) */
  at: number
}

export interface Served {
  /** body bytes of 2xx blob GETs */
  blobBytes: number
  blobGets: number
  /** per digest: GETs and bytes */
  perBlob: Record<string, { gets: number, bytes: number, byAgent: Record<string, number> }>
  manifestGets: number
  /** every request by method and status, e.g. `HEAD 200` */
  requests: Record<string, number>
}

const LINE = /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[0-9.]+" (\d{3}) (\d+) "[^"]*" "([^"]*)"/

export class BenchRegistry {
  private constructor (private readonly w: Watched, public readonly host: string) {}

  /**
   * Start the registry listening on `host:port` with its storage under
   * `dir`; `ns` runs it inside that network namespace
   */
  static async start (dir: string, host: string, port: number, ns: string | undefined, resources: Resources, guard: Guard): Promise<BenchRegistry> {
    const config = await writeRegistryConfig(dir, `${host}:${port}`, { logLevel: 'info' })
    const [cmd, args] = ns == null ? [REGISTRY_BIN, ['serve', config]] : inNamespace(ns, REGISTRY_BIN, ['serve', config])
    const w = resources.spawnWatched(cmd, args)
    guard.track(w.proc)
    await w.waitFor(/listening on/, REGISTRY_START_MS)
    return new BenchRegistry(w, `${host}:${port}`)
  }

  get url (): string {
    return `http://${this.host}`
  }

  /** access-log lines so far */
  lines (): AccessLine[] {
    const out: AccessLine[] = []
    for (const { at, line } of this.w.lines()) {
      const m = LINE.exec(line)
      if (m != null) {
        out.push({ method: m[1], path: m[2], status: Number(m[3]), bytes: Number(m[4]), userAgent: m[5], at })
      }
    }
    return out
  }

  /** what the registry served in `lines` */
  static served (lines: AccessLine[]): Served {
    const s: Served = { blobBytes: 0, blobGets: 0, perBlob: {}, manifestGets: 0, requests: {} }
    for (const l of lines) {
      const key = `${l.method} ${l.status}`
      s.requests[key] = (s.requests[key] ?? 0) + 1
      const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(l.path)?.[1]
      if (l.method === 'GET' && blob != null && l.status >= 200 && l.status < 300) {
        s.blobBytes += l.bytes
        s.blobGets++
        const b = s.perBlob[blob] ?? { gets: 0, bytes: 0, byAgent: {} }
        b.gets++
        b.bytes += l.bytes
        const agent = l.userAgent.split('/')[0]
        b.byAgent[agent] = (b.byAgent[agent] ?? 0) + l.bytes
        s.perBlob[blob] = b
      } else if (l.method === 'GET' && l.path.includes('/manifests/')) {
        s.manifestGets++
      }
    }
    return s
  }

  async stop (resources: Resources): Promise<void> {
    await resources.stop(this.w.proc)
  }
}
