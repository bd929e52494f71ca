/** @type {import('aegir').PartialOptions} */
export default {
  build: { bundle: false },
  test: {
    // swarm and process tests start real nodes; give them room on a loaded 2-core machine
    timeout: 120_000,
    // run every test and report every failure, not just the first
    bail: false
  },
  dependencyCheck: {
    ignore: ['@types/node']
  }
}
