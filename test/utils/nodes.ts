import '../../src/polyfill.ts'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createDamselfly } from '../../src/node/index.ts'
import type { NodeConfigInput } from '../../src/config/index.ts'
import type { CreateDamselflyOptions, DamselflyNode } from '../../src/node/index.ts'

/** The membership heartbeat interval of test nodes, ms (short, so swarms converge quickly) */
export const TEST_HEARTBEAT_MS = 500

export interface TestNodeOptions extends Omit<CreateDamselflyOptions, 'config'> {
  config?: Partial<NodeConfigInput>
}

/**
 * Starts real Damselfly nodes on 127.0.0.1 with their own temp data dirs and
 * stops them (and removes the dirs) in `stopAll()`.
 */
export class TestSwarm {
  public readonly nodes: DamselflyNode[] = []
  private readonly dirs: string[] = []

  async tempDir (prefix = 'damselfly-test-'): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
    this.dirs.push(dir)
    return dir
  }

  async start (options: TestNodeOptions = {}): Promise<DamselflyNode> {
    const dataDir = options.config?.dataDir ?? await this.tempDir()
    const config: NodeConfigInput = {
      listen: ['/ip4/127.0.0.1/tcp/0'],
      ...options.config,
      dataDir,
      swarm: { heartbeatInterval: TEST_HEARTBEAT_MS, maxRejoinInterval: 2000, ...options.config?.swarm },
      connections: { inboundPerSecondPerHost: 1000, dialTimeout: 3000, ...options.config?.connections }
    }
    const node = await createDamselfly({ ...options, config })
    this.nodes.push(node)
    return node
  }

  async stopAll (): Promise<void> {
    await Promise.allSettled(this.nodes.splice(0).map(async n => n.stop()))
    await Promise.allSettled(this.dirs.splice(0).map(async d => fs.rm(d, { recursive: true, force: true })))
  }
}

export function dialAddr (node: DamselflyNode): string {
  const addr = node.libp2p.getMultiaddrs().find(a => a.toString().includes('/tcp/'))
  if (addr == null) {
    throw new Error('node has no tcp address')
  }
  return addr.toString()
}

/**
 * Wait until `fn` returns true, polling; throws naming `what` after `ms`
 */
export async function waitFor (fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) {
      return
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}
