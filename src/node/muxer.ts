/**
 * yamux stream settings of every Damselfly node (and of bench/transfer, which
 * measures the stack as the node runs it).
 */

const MiB = 1024 * 1024

/**
 * The most a stream's receive window grows to: what a sender may have in
 * flight on one stream before the reader consumes it. Data that arrives
 * while the piece client is paused (waiting for its store) is held up to
 * this much per stream, so it bounds a download's memory. yamux's default is
 * 16 MiB. With 4 MiB, 1 GiB over loopback into the store ran faster and
 * smaller (bench/transfer --rows d-tls,e-tls --runs 2: 295 MB/s and 146 MiB
 * child RSS vs 261 MB/s and 160 MiB; verify only 535 vs 527 MB/s). It caps
 * one stream at window ÷ RTT: 400 MB/s at 10 ms, 80 MB/s at 50 ms; a
 * download spreads over several parents.
 */
export const YAMUX_MAX_STREAM_WINDOW = 4 * MiB

/**
 * yamux must buffer at least one full stream window while a reader is paused
 * (notes/libp2p-v3.md P15); the window bounds what is actually held
 */
export const YAMUX_MAX_READ_BUFFER = 32 * MiB

/** the streamOptions to pass to yamux() */
export const YAMUX_STREAM_OPTIONS = Object.freeze({
  maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW,
  maxReadBufferLength: YAMUX_MAX_READ_BUFFER
})
