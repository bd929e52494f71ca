/**
 * Registry mirror benchmark (issue 6): N nodes pull one multi-layer image at
 * once with skopeo, each through its own daemon's registry mirror, against N
 * pulls at once straight from the registry (Debian's docker-registry), side
 * by side in every run.
 *
 * loopback: the registry, the daemons and the skopeos on 127.0.0.1.
 *
 * netns: the registry in one network namespace, each daemon with its skopeo
 * in another (skopeo reaches its mirror over the namespace's loopback), every
 * link capped with tc tbf at B each way (bench/fanout/netns.ts; needs root,
 * ip, tc; skipped otherwise). The registry's uplink is the bottleneck of the
 * direct pulls.
 *
 * Per mode, median and min–max over runs: time until the last pull
 * completes, p50, the ratio to the direct pulls, the registry's blob bytes
 * (from its access log) ÷ image size, and the time until the first byte of
 * the biggest layer left the mirrors. Every blob of every pull is checked
 * against its digest. Writes bench/results/mirror-<time>.json, which also
 * holds every mirror request's timing and the registry's GETs per blob.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { buildOciImage } from '../test/proxy/registry.ts'
import { Guard } from './fanout/guard.ts'
import { netnsUnavailable, removeStale } from './fanout/netns.ts'
import { boolFlag, intFlag, listFlag, stringFlag, UsageError } from './lib/args.ts'
import { print, printTable, progress, writeResults } from './lib/output.ts'
import { repoRoot } from './lib/paths.ts'
import { fmt, fmtBytes, fmtRange, MiB, summarize } from './lib/stats.ts'
import { LoopbackMirrorCluster, NetnsMirrorCluster } from './mirror/cluster.ts'
import { directRound, mirrorRound, REPO } from './mirror/measure.ts'
import type { Args } from './lib/args.ts'
import type { Bench } from './lib/bench.ts'
import type { Resources } from './lib/proc.ts'
import type { Summary } from './lib/stats.ts'
import type { MirrorCluster } from './mirror/cluster.ts'
import type { PullRound } from './mirror/measure.ts'
import type { OciImage } from '../test/proxy/registry.ts'

type Mode = 'loopback' | 'netns'

/** Goal of issue 6: the registry serves the image about once for all N pulls */
const GOAL_REGISTRY_RATIO = 1.05

interface Options {
  modes: Mode[]
  nodes: number
  /** layer sizes in bytes */
  layers: number[]
  runs: number
  netnsRuns: number
  /** pull straight from the registry in the first run only (the baseline barely varies; netns direct pulls take minutes) */
  directOnce: boolean
  rateMbit: number
  timeoutS: number
  debug: string
  extraArgs: string[]
  nodeOptions: string
  logDir?: string
}

interface ModeResult {
  mode: Mode
  rateMbit?: number
  /** S/B: image size ÷ link rate, the least time one node needs over its own link (netns) */
  boundS?: number
  direct: PullRound[]
  mirror: PullRound[]
  failures: string[]
  skipped?: string
}

function options (args: Args): Options {
  const modes = listFlag(args, 'mirror-modes', ['loopback', 'netns'])
  for (const m of modes) {
    if (m !== 'loopback' && m !== 'netns') {
      throw new UsageError(`--mirror-modes takes loopback and/or netns, got "${m}"`)
    }
  }
  const layers = listFlag(args, 'mirror-layers', ['64', '48', '40', '32', '24']).map(s => {
    const n = Number(s)
    if (!Number.isFinite(n) || n <= 0) {
      throw new UsageError(`--mirror-layers takes layer sizes in MiB, comma-separated, got "${s}"`)
    }
    return Math.round(n * MiB)
  })
  const debug = stringFlag(args, 'daemon-debug', '')
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  return {
    modes: modes as Mode[],
    nodes: intFlag(args, 'mirror-nodes', 8, 2),
    layers,
    runs: intFlag(args, 'runs', 3),
    netnsRuns: intFlag(args, 'mirror-netns-runs', 1),
    directOnce: boolFlag(args, 'mirror-direct-once'),
    rateMbit: intFlag(args, 'mirror-rate', 100),
    timeoutS: intFlag(args, 'mirror-timeout', 600),
    debug,
    extraArgs: stringFlag(args, 'daemon-args', '').split(/\s+/).filter(Boolean),
    nodeOptions: stringFlag(args, 'daemon-node-options', ''),
    logDir: boolFlag(args, 'keep-logs') || debug !== '' ? path.join(repoRoot(), 'bench', 'results', `mirror-logs-${stamp}`) : undefined
  }
}

async function pushImage (cluster: MirrorCluster, image: OciImage, resources: Resources): Promise<void> {
  const [cmd, args] = cluster.skopeoAtRegistry(['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, `docker://${cluster.registryHost}/${REPO}:${image.tag}`])
  const w = resources.spawnWatched(cmd, args)
  if (await w.exited !== 0) {
    throw new Error(`skopeo could not push the image to ${cluster.registryHost}:\n${w.output()}`)
  }
}

function note (r: PullRound, label: string): string {
  const big = r.biggestFirstByteS == null ? '' : `, biggest layer's first byte at ${fmt(Math.max(...r.biggestFirstByteS), 1)} s`
  const cpu = r.daemonCpuS == null ? '' : `, daemons used ${fmt(r.daemonCpuS.reduce((a, b) => a + b, 0), 0)} CPU s and answered ${r.tracker?.requests} tracker requests`
  return `  ${label}: last ${fmt(r.lastS, 1)} s, p50 ${fmt(r.p50S, 1)} s, registry served ${fmt(r.registryRatio, 2)}× the image in ${r.served.blobGets} blob GETs${big}${cpu}${r.ok ? '' : `; FAILED: ${r.errors.join('; ')}`}`
}

async function runMode (mode: Mode, tag: number, image: OciImage, o: Options, resources: Resources, guard: Guard): Promise<ModeResult> {
  const runs = mode === 'netns' ? o.netnsRuns : o.runs
  const result: ModeResult = { mode, direct: [], mirror: [], failures: [] }
  if (mode === 'netns') {
    const why = netnsUnavailable()
    if (why != null) {
      result.skipped = why
      progress(`netns skipped: ${why}`)
      return result
    }
    result.rateMbit = o.rateMbit
    result.boundS = image.totalBytes * 8 / (o.rateMbit * 1e6)
  }
  const dir = await resources.tempDir(`damselfly-bench-mirror-${mode}-`)
  let cluster: MirrorCluster | undefined
  try {
    cluster = mode === 'netns'
      ? await NetnsMirrorCluster.start(dir, o.nodes, o.rateMbit, tag, resources, guard)
      : await LoopbackMirrorCluster.start(dir, resources, guard)
    if (cluster instanceof NetnsMirrorCluster) {
      progress(`netns: lab ${cluster.lab.names()[0]} + ${o.nodes + 1} namespaces, links capped at ${o.rateMbit} Mbit/s each way (S/B ${fmt(result.boundS, 1)} s)`)
    }
    await pushImage(cluster, image, resources)
    for (let r = 0; r < runs; r++) {
      const round = {
        nodes: o.nodes,
        image,
        timeoutMs: o.timeoutS * 1000,
        debug: o.debug,
        extraArgs: o.extraArgs,
        nodeOptions: o.nodeOptions,
        onProgress: (line: string) => { progress(`  ${line}`) }
      }
      if (r === 0 || !o.directOnce) {
        progress(`${mode} run ${r + 1}/${runs}: ${o.nodes} pulls straight from the registry`)
        try {
          const d = await directRound(cluster, { ...round, dir: path.join(dir, `direct-${r + 1}`) }, resources)
          result.direct.push(d)
          progress(note(d, 'direct'))
        } catch (err: any) {
          result.failures.push(`direct run ${r + 1}: ${err.message}`)
          progress(`  direct run ${r + 1} FAILED: ${err.message}`)
        }
      }
      progress(`${mode} run ${r + 1}/${runs}: ${o.nodes} fresh daemons, one pull through each mirror`)
      try {
        const m = await mirrorRound(cluster, { ...round, dir: path.join(dir, `mirror-${r + 1}`), logDir: o.logDir == null ? undefined : path.join(o.logDir, mode, `run-${r + 1}`) }, resources)
        result.mirror.push(m)
        progress(note(m, 'mirror'))
      } catch (err: any) {
        result.failures.push(`mirror run ${r + 1}: ${err.message}`)
        progress(`  mirror run ${r + 1} FAILED: ${err.message}`)
      }
      await fs.promises.rm(path.join(dir, `mirror-${r + 1}`), { recursive: true, force: true })
    }
  } catch (err: any) {
    result.failures.push(err.message)
    progress(`${mode} FAILED: ${err.message}`)
  } finally {
    await cluster?.close().catch(() => {})
    await resources.removeDir(dir)
  }
  return result
}

function s (rounds: PullRound[], f: (r: PullRound) => number): Summary {
  return summarize(rounds.map(f))
}

function describeMode (r: ModeResult, nodes: number): string {
  return r.mode === 'netns' ? `netns ${nodes} nodes, ${r.rateMbit} Mbit/s` : `loopback ${nodes} nodes`
}

function report (results: ModeResult[], image: OciImage, o: Options): void {
  const rows: string[][] = []
  for (const r of results.filter(x => x.direct.length + x.mirror.length > 0)) {
    const directLast = summarize(r.direct.map(x => x.lastS)).median
    for (const [label, rounds] of [['direct', r.direct], ['mirror', r.mirror]] as const) {
      if (rounds.length === 0) {
        continue
      }
      const ratio = s(rounds, x => x.lastS / directLast)
      rows.push([
        describeMode(r, o.nodes),
        label,
        String(rounds.length),
        fmtRange(s(rounds, x => x.lastS), 1, ' s'),
        fmtRange(s(rounds, x => x.p50S), 1, ' s'),
        label === 'direct' ? '1.00×' : fmtRange(ratio, 2, '×'),
        r.boundS == null ? '–' : fmtRange(s(rounds, x => x.lastS / r.boundS!), 2, '×'),
        fmtRange(s(rounds, x => x.registryRatio), 3, '×'),
        label === 'mirror' ? `${rounds.every(x => x.registryRatio <= GOAL_REGISTRY_RATIO) ? 'ok' : 'MISS'} (≤ ${GOAL_REGISTRY_RATIO}×)` : '–',
        label === 'mirror' ? fmtRange(s(rounds, x => Math.max(...x.biggestFirstByteS!)), 1, ' s') : '–',
        rounds.every(x => x.ok) ? 'ok' : 'FAILED'
      ])
    }
  }
  const biggest = Math.max(...image.layers.map(l => l.size))
  printTable(`registry mirror: ${o.nodes} pulls of a ${fmtBytes(image.totalBytes)} image (${image.layers.length} layers) at once (median (min–max) over runs)`, [
    'setup', 'pulls', 'runs', 'last pull done', 'p50', 'last ÷ direct', 'last ÷ S/B', 'registry bytes ÷ image', 'goal', `first byte of the ${fmtBytes(biggest)} layer`, 'every layer sha256'
  ], rows, [
    'direct = each node pulls with skopeo straight from the registry; mirror = fresh daemons, each node pulls through its own mirror (same run).',
    'last pull done = seconds from the start until the last of the pulls exited; registry bytes = body bytes of blob GETs in its access log.',
    'first byte = seconds from the start until the biggest layer\'s first body byte left the slowest mirror (streaming: before the layer is whole).',
    'S/B = image size ÷ link rate (netns): the least time one node needs to receive the image over its own link.'
  ])

  const layerRows: string[][] = []
  for (const r of results.filter(x => x.mirror.length > 0)) {
    for (const [i, layer] of [...image.layers, image.config].entries()) {
      const gets = r.mirror.map(x => x.proxyRequests!.flatMap(reqs => reqs.filter(q => q.method === 'GET' && q.path.endsWith(`/blobs/${layer.digest}`))))
      layerRows.push([
        describeMode(r, o.nodes),
        layer === image.config ? 'config' : `layer ${i + 1}`,
        fmtBytes(layer.size),
        fmtRange(s(r.mirror, x => (x.served.perBlob[layer.digest]?.bytes ?? 0) / layer.size), 2, '×'),
        fmtRange(s(r.mirror, x => x.served.perBlob[layer.digest]?.gets ?? 0), 0),
        fmtRange(summarize(gets.flat().map(q => q.arrivedMs / 1000)), 1, ' s'),
        fmtRange(summarize(gets.flat().map(q => (q.firstByteMs ?? NaN) / 1000)), 1, ' s'),
        fmtRange(summarize(gets.flat().map(q => q.totalMs / 1000)), 1, ' s')
      ])
    }
  }
  printTable('registry mirror: per blob, mirror pulls (median (min–max) over runs; request times over all nodes and runs)', [
    'setup', 'blob', 'size', 'registry bytes ÷ size', 'registry GETs', 'GET arrived at', 'first byte after', 'served in'
  ], layerRows, [
    'GET arrived at = seconds from the start of the pulls until skopeo asked the mirror for the blob; first byte after / served in = from that request.'
  ])

  for (const r of results) {
    if (r.skipped != null) {
      print(`\n${r.mode}: skipped - ${r.skipped}`)
    }
    for (const f of r.failures) {
      print(`\n${r.mode} FAILURE: ${f}`)
    }
  }
}

async function run (args: Args, resources: Resources): Promise<string> {
  const o = options(args)
  const guard = new Guard()
  guard.install()
  try {
    if (o.modes.includes('netns') && netnsUnavailable() == null) {
      const stale = removeStale()
      if (stale.length > 0) {
        progress(`removed ${stale.length} namespaces/links left by earlier benchmark processes`)
      }
    }
    const imageDir = await resources.tempDir('damselfly-bench-mirror-image-')
    progress(`building an OCI image of ${o.layers.length} layers (${o.layers.map(l => fmt(l / MiB, 0)).join(', ')} MiB of random bytes)`)
    const image = await buildOciImage(path.join(imageDir, 'layout'), o.layers)
    const results: ModeResult[] = []
    for (const [i, mode] of o.modes.entries()) {
      results.push(await runMode(mode, i + 1, image, o, resources, guard))
    }
    await resources.removeDir(imageDir)

    report(results, image, o)
    if (o.logDir != null) {
      print(`\ndaemon logs: ${o.logDir}`)
    }
    const file = await writeResults('mirror', {
      nodes: o.nodes,
      cpus: os.cpus().length,
      loadavg: os.loadavg(),
      image: { layers: image.layers.map(l => ({ digest: l.digest, size: l.size })), config: image.config.size, totalBytes: image.totalBytes },
      options: { ...o, layers: o.layers },
      results
    })
    const failed = results.some(r => r.failures.length > 0 || [...r.direct, ...r.mirror].some(x => !x.ok))
    if (failed) {
      throw new Error(`some pulls failed or pulled wrong bytes (details above and in ${file})`)
    }
    return file
  } finally {
    guard.cleanupSync()
    guard.uninstall()
  }
}

export const mirrorBench: Bench = {
  name: 'mirror',
  describe: 'N nodes pull one multi-layer image at once through their registry mirrors vs straight from the registry (loopback, netns)',
  flags: [
    { name: 'mirror-modes', describe: 'mirror: loopback and/or netns, comma-separated (loopback,netns; netns needs root and is skipped otherwise)' },
    { name: 'mirror-nodes', describe: 'mirror: nodes pulling at once (8)' },
    { name: 'mirror-layers', describe: 'mirror: layer sizes in MiB, comma-separated (64,48,40,32,24 = 208 MiB)' },
    { name: 'mirror-direct-once', describe: 'mirror: pull straight from the registry in the first run only', boolean: true },
    { name: 'mirror-netns-runs', describe: 'mirror: runs in netns mode (1); loopback takes --runs (3)' },
    { name: 'mirror-rate', describe: 'mirror: netns link rate each way, Mbit/s (100)' },
    { name: 'mirror-timeout', describe: 'mirror: seconds one pull may take (600)' }
  ],
  run
}
