/**
 * Tunables and wire bounds of the piece protocol. Sizes are bytes, times are
 * milliseconds unless the name says otherwise.
 */

const KiB = 1024
const MiB = 1024 * KiB

/** Protocol name and version; the id is `${protocolPrefix}/piece/1.0.0` */
export const PROTOCOL_NAME = 'piece'
export const PROTOCOL_VERSION = '1.0.0'
export const DEFAULT_PROTOCOL_PREFIX = '/damselfly'

/**
 * Largest PieceRequest frame. 64 varint indexes take ≤ 320 bytes plus a task id
 * of ≤ 1 KiB, so 16 KiB leaves room for future fields while a hostile length
 * prefix can never make us buffer more than this per request.
 */
export const MAX_REQUEST_FRAME_BYTES = 16 * KiB

/**
 * Largest PieceHeader frame: index, status, length and a 32-byte digest need
 * < 64 bytes; the rest is for the (truncated) human-readable message.
 */
export const MAX_HEADER_FRAME_BYTES = KiB

/** Longest `message` the server puts in a header, so the header stays far below MAX_HEADER_FRAME_BYTES */
export const MAX_HEADER_MESSAGE_CHARS = 256

/**
 * Indexes per PieceRequest frame. Bounds the decoder (like gossipsub's
 * DecodeRPCLimits); a frame with more is a protocol violation and aborts the stream.
 */
export const MAX_INDEXES_PER_REQUEST = 64

/**
 * The longest a server holds a requested index it does not have yet
 * (PieceRequest.wait_ms); longer asks are cut to this. Bounds how long a
 * held request keeps the answers behind it waiting.
 */
export const MAX_PIECE_WAIT_MS = 10_000

/** Task ids are content digests or hashes of a URL; 1 KiB of UTF-8 is plenty and keeps frames small */
export const MAX_TASK_ID_BYTES = KiB

/**
 * Requested-but-unanswered indexes per stream. With 1 MiB pieces this is
 * ≤ 16 MiB in flight per stream (reliability.md §e: 8 per peer pair by default,
 * so two streams' worth). Requests beyond this are answered BUSY, not queued.
 * The client never pipelines further than this.
 */
export const DEFAULT_MAX_OUTSTANDING_PER_STREAM = 16

/**
 * Answers (real + BUSY) a server queues per stream before it stops reading
 * requests (stream.pause()). Only a client that ignores the outstanding limit
 * gets here; pausing pushes back on it instead of growing a queue.
 */
export const MAX_QUEUED_ANSWERS_PER_STREAM = 4 * MAX_INDEXES_PER_REQUEST

/**
 * Largest piece we send or accept (Dragonfly clamps piece sizes to
 * [4 MiB, 64 MiB]). A header announcing more is refused before allocating.
 */
export const MAX_PIECE_BYTES = 64 * MiB

/**
 * Bulk data is handed to stream.send() in slices of this size: notes §5.2
 * measured 16 KiB → 145 MB/s, 256 KiB → 428, 1 MiB → 520 on noise+yamux.
 */
export const SEND_SLICE_BYTES = MiB

/**
 * A piece sent on while it arrives (cut-through) goes out in chunks of at
 * least this much (and its rest): each send is a muxer frame and an
 * encryption, and 64 KiB wait ~21 ms on a 25 Mbit/s link
 */
export const FORWARD_MIN_BYTES = 64 * KiB

/**
 * Streams per connection for this protocol (reliability.md §e: "pieces 16").
 * A client uses one stream per fetch() and pipelines within it, so 16 parallel
 * fetches to one peer is already far more than the scheduler asks for.
 */
export const DEFAULT_MAX_INBOUND_STREAMS = 16
export const DEFAULT_MAX_OUTBOUND_STREAMS = 16

/**
 * Pieces a node uploads at the same time, over all peers and streams; more
 * requests wait DEFAULT_UPLOAD_SLOT_WAIT_MS and are answered BUSY, so the
 * child asks another parent. Few slots keep each upload fast and keep little
 * data queued in the connections' socket buffers, where tracker answers wait
 * behind it: with 16 slots on 25 Mbit/s links, 10 % of tracker requests timed
 * out after 5 s and 16 nodes took 72 s for 64 MiB; with 4, 47 s and almost no
 * timeouts (bench/fanout netns:16:64MiB:25). BitTorrent unchokes 4 peers by
 * default for the same reason. A slot is held only until the piece is queued
 * on its stream, so 4 do not limit fast links (loopback fan-out unchanged).
 */
export const DEFAULT_UPLOAD_SLOTS = 4

/**
 * How long a request waits for a free upload slot before it is answered BUSY.
 * Short, so the client can ask another parent instead of queueing forever.
 */
export const DEFAULT_UPLOAD_SLOT_WAIT_MS = 500

/**
 * Server side: a stream with nothing to answer and no new request for this
 * long is aborted (reliability.md §e: 60 s without piece traffic closes a
 * connection; a stream is cheaper to reopen, so half of that).
 */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 30_000

/**
 * Server side: a send that does not drain for this long (a client that paused
 * and never resumed) aborts the stream, so it cannot hold an upload slot forever.
 */
export const DEFAULT_SEND_STALL_TIMEOUT_MS = 30_000

/**
 * Client side per-piece timeout = max(MIN, PER_MIB × piece MiB)
 * (reliability.md §e, from Kraken's max(4 s, 4 s/MB)).
 */
export const DEFAULT_PIECE_TIMEOUT_MIN_MS = 5_000
export const DEFAULT_PIECE_TIMEOUT_PER_MIB_MS = 4_000

/**
 * Client receive queue: pause the stream above HIGH, resume below LOW
 * (notes §5.3: 2 MiB / 512 KiB kept a 25 MB/s sink at the memory of a fast one).
 */
export const RECEIVE_HIGH_WATER_BYTES = 2 * MiB
export const RECEIVE_LOW_WATER_BYTES = 512 * KiB

/**
 * Read buffer we allow the muxer to hold for a paused piece stream. After
 * pause(), data already granted by the window (yamux: up to 16 MiB) still
 * arrives and waits in the stream's read buffer, which resets the stream above
 * its 4 MiB default (notes P15). The receive window bounds it anyway, so the
 * client raises the limit on its own piece streams to 2 × that window.
 */
export const PAUSED_READ_BUFFER_BYTES = 32 * MiB

/**
 * After the last answer the server closes the stream; if it does not within
 * this time the client aborts it so a misbehaving peer cannot pin a stream.
 */
export const DEFAULT_CLOSE_GRACE_MS = 5_000

/** Server request queue: requests are tiny, so pause reading early */
export const REQUEST_HIGH_WATER_BYTES = 64 * KiB
export const REQUEST_LOW_WATER_BYTES = 16 * KiB

/** sha256 digest size */
export const DIGEST_BYTES = 32

/**
 * Token bucket default burst when none is given: 100 ms worth of the rate, at
 * least 64 KiB. Small enough that a limit holds from the first second, large
 * enough that timers (≥ 1 ms) do not cap high rates.
 */
export const DEFAULT_BURST_SECONDS = 0.1
export const MIN_BURST_BYTES = 64 * KiB

/** Longest attestor peer id (string form) a piece header may carry; Ed25519 ids are 52 characters */
export const MAX_ATTESTOR_CHARS = 128

/** Largest attestation signature a piece header may carry; Ed25519 signatures are 64 bytes */
export const MAX_ATTESTATION_BYTES = 512

/**
 * Tasks, and pieces in all, whose attestations a node keeps
 * (PieceAttestations): ~250 bytes a piece, so at most ~64 MB. A task's
 * attestations matter while a swarm fetches it; a node fetching more than
 * this at once relays fewer of them, and the peers behind it wait for the
 * tracker's digests instead.
 */
export const MAX_ATTESTED_TASKS = 64
export const MAX_ATTESTED_PIECES = 256 * KiB
