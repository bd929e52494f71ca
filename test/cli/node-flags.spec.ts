import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import { promisify } from 'node:util'
import { expect } from 'aegir/chai'
import { CLI_NODE_FLAGS } from '../../src/cli/node-flags.ts'
import { DAMSELFLY_VERSION } from '../../src/version.ts'
import { startDaemon, stopAll } from '../utils/cli.ts'
import { cliPath } from '../utils/paths.ts'
import type { DaemonProcess } from '../utils/cli.ts'

const run = promisify(execFile)

describe('cli: node flags', () => {
  const daemons: DaemonProcess[] = []

  after(async () => {
    await stopAll(daemons)
  })

  it('the compiled CLI\'s shebang carries CLI_NODE_FLAGS, and the file runs through it', async () => {
    const text = await fs.readFile(cliPath(), 'utf8')
    const shebang = text.slice(0, text.indexOf('\n'))
    expect(shebang).to.equal(`#!/usr/bin/env -S node ${CLI_NODE_FLAGS.join(' ')}`)
    // run as npm's bin link runs it: the kernel reads the shebang (the build makes the file executable)
    const { stdout } = await run(cliPath(), ['--version'])
    expect(stdout.trim()).to.equal(DAMSELFLY_VERSION)
  })

  it('daemons started by the demo helper run with the flags', async function () {
    if (process.platform !== 'linux') {
      this.skip()
    }
    const d = await startDaemon()
    daemons.push(d)
    const argv = (await fs.readFile(`/proc/${d.proc.pid}/cmdline`, 'utf8')).split('\0')
    for (const flag of CLI_NODE_FLAGS) {
      expect(argv.indexOf(flag)).to.be.greaterThan(0).and.lessThan(argv.indexOf(cliPath()))
    }
  })
})
