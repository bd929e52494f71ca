/**
 * Flags for the Node process that runs the CLI, and so the daemon.
 *
 * `--heap-growing-percent=200`: after a full collection V8 lets the old
 * generation grow to 3× what survived before it starts the next one. By
 * default it picks that factor from its measured GC and allocation speeds,
 * and for a daemon moving pieces it often picked ~1.6: ~36 MiB survived and
 * the limit came out ~23 MiB above. `--trace-incremental-marking` then showed
 * the next marking start ~0.5 s after each collection with most of that room
 * still free; as we read V8, the buffers allocated outside the heap since the
 * last full collection (socket reads, pieces read for uploads: tens of MB/s)
 * count against it, and marking starts once what is left is smaller than the
 * young generation. So it went on for the rest of the download: up to 15
 * full collections, each ~40–100 ms of CPU.
 * In the fan-out bench at 8 nodes and 100 Mbit/s (`--trace-gc`, and the GC
 * column of its table) this hit one or two daemons in 17 of 24 runs;
 * `--max-semi-space-size=8`, `--no-memory-reducer` and
 * `--incremental-marking-soft-trigger=50` did not stop it, this flag did
 * (at most one full collection per daemon in 4 runs, peak RSS unchanged).
 *
 * The CLI's shebang line carries the same flags (test/cli/node-flags.spec.ts
 * holds them equal); code that starts the CLI with `process.execPath` puts
 * them before the script.
 */
export const CLI_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=200']
