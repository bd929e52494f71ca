/** Pieces per request to a parent (one stream carries them pipelined) */
export const DEFAULT_PIECES_PER_REQUEST = 4

/**
 * Pieces ahead of a streaming reader (the registry mirror) fetched in index
 * order before the rest; past them, rarest-first keeps peers on different
 * pieces
 */
export const DEFAULT_STREAM_WINDOW = 8

/** Verified pieces waiting to be written; beyond it the receiving stream pauses (memory: this many pieces) */
export const DEFAULT_MAX_PENDING_WRITES = 8

/** Most bytes of piece buffers one download keeps for reuse */
export const DEFAULT_POOL_BYTES = 32 * 1024 * 1024

/**
 * Concurrent origin range requests of one download. One: the grant is
 * confirmed with the tracker before each run, so a stripe another peer took
 * over meanwhile is not fetched twice; several source peers still read the
 * origin in parallel.
 */
export const DEFAULT_ORIGIN_CONCURRENCY = 1

/**
 * Most pieces in one origin range request a download makes on its own (no
 * tracker grant): a tracker that comes back finds at most this much in flight.
 * Tracker grants are read a stripe at a time.
 */
export const DEFAULT_ORIGIN_RUN_PIECES = 4

/** How long reports of finished pieces are batched before they go to the tracker */
export const DEFAULT_REPORT_DELAY_MS = 100

/** With nothing to do, announce again this soon (not waiting a whole interval) to learn of new pieces */
export const DEFAULT_IDLE_ANNOUNCE_MS = 100

/**
 * An idle download (nothing to fetch, nothing in flight) asks the tracker to
 * hold its announce this long until a piece it lacks appears (a long poll;
 * trackers cap it at MAX_ANNOUNCE_WAIT_MS). It then hears of a new piece
 * within a report's round trip instead of polling every DEFAULT_IDLE_ANNOUNCE_MS.
 */
export const DEFAULT_ANNOUNCE_WAIT_MS = 2_000

/**
 * A download without the task's metadata lets the tracker hold its announce
 * this long while another peer gets the metadata from the origin (trackers
 * cap it at META_STAT_WAIT_MS), instead of statting the origin as well
 */
export const DEFAULT_META_ANNOUNCE_WAIT_MS = 2_000

/**
 * While a tracker answers, its grants decide who reads the origin (it
 * re-grants the pieces of a peer that leaves or stops making progress). Only
 * when no piece at all finished for this long does a download take what no
 * parent holds from the origin on its own: a last resort, long enough that a
 * loaded machine or a slow origin does not double the origin's egress.
 */
export const DEFAULT_STALL_MS = 60_000

/**
 * A tracker that answered before and then stops answering: the download goes
 * on with the parents it named, and only after this long without an answer
 * takes pieces no parent holds from the origin itself. Trackers time out
 * mostly because their links are saturated, which passes.
 */
export const DEFAULT_TRACKER_LOST_MS = 15_000

/**
 * An origin run granted by the tracker stops after the piece in hand once the
 * tracker has not heard from this node for this long: half the tracker's peer
 * TTL (30 s), after which it hands our grant to another peer. Shorter, it
 * fired on every slow answer behind a saturated link, and each stop threw
 * away the bytes in flight (bench/fanout netns at 25 Mbit/s: egress 1.9x S
 * at 5 s of a 10 s TTL)
 */
export const DEFAULT_GRANT_SILENCE_MS = 15_000

/** A parent that answered busy is not asked again for this long */
export const DEFAULT_BUSY_BACKOFF_MS = 500

/** A parent that failed this many requests in a row rests for DEFAULT_PARENT_REST_MS */
export const DEFAULT_PARENT_MAX_FAILURES = 3
export const DEFAULT_PARENT_REST_MS = 5_000

/** Interval between announces when the tracker gives none */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 1_000

/**
 * Announces carry every piece digest (32 bytes a piece) only while the node
 * lacks some, and otherwise this often, so a tracker that lost its state
 * hears of our pieces again
 */
export const DEFAULT_DIGEST_REFRESH_MS = 10_000

/** A finished or imported task is announced as a seed for this long */
export const DEFAULT_SEED_ANNOUNCE_MS = 30 * 60_000

/** With back-to-source disabled and no peer holding a missing piece, give up after this long */
export const DEFAULT_NO_SOURCE_TIMEOUT_MS = 60_000

/** A task known only by its digest waits this long for a tracker or provider to tell its metadata */
export const DEFAULT_META_WAIT_MS = 15_000

/** One DHT provider lookup; most provider records of a small swarm come back within a second */
export const DEFAULT_PROVIDER_LOOKUP_MS = 5_000

/** Providers asked for their own copy when no tracker answers */
export const DEFAULT_MAX_PROVIDERS = 5

/** A finished download stays listed (GET /tasks/:id, progress streams) this long, then only the store remembers the task */
export const DEFAULT_FINISHED_DOWNLOAD_HOLD_MS = 10 * 60_000

/** A failed or cancelled download waits this long for its tracker to take its LEAVE */
export const DEFAULT_LEAVE_WAIT_MS = 2_000

/**
 * How trackers that do not send `grant_stripe` cut source grants: 16-piece
 * stripes for 4 source peers. A grant from such a tracker is read a stripe of
 * that width at a time, so a newer download never reads past a stripe the
 * older tracker may have moved.
 */
export const LEGACY_SOURCE_STRIPE_PIECES = 16
export const LEGACY_MAX_SOURCE_PEERS = 4

/**
 * How long the upstream may hold a piece request we sent ahead before it
 * answers DONT_HAVE (piece protocol wait_ms): longer than a piece takes to
 * come down a healthy pipeline, short enough that a stuck one is noticed
 */
export const DEFAULT_UPSTREAM_WAIT_MS = 5_000

/**
 * An upstream that delivers nothing for this long while asked is stalled:
 * the download falls back to all parents (the mesh) until it delivers again
 */
export const DEFAULT_UPSTREAM_STALL_MS = 3_000

/**
 * The requests kept on the upstream cover this much of its measured rate
 * (ms), refilled once half are answered. Requests the upstream holds until
 * it has the piece do not queue on the link, so a long window costs little
 * latency, and it carries more pieces per request stream: 16 nodes at
 * 25 Mbit/s (CPU-bound) took 33.2 s and 63.9 CPU s with 1000 ms against
 * 35.8 s and 69.2 with 250 (bench/fanout, one run each).
 */
export const DEFAULT_UPSTREAM_TARGET_MS = 1_000

/**
 * How long a parent that sent a piece without a usable attestation (see
 * transfer/attestation.ts) is asked only for pieces whose digest we know.
 * Such a piece was transferred for nothing, so this bounds the waste to
 * one piece per parent per interval.
 */
export const DEFAULT_ATTEST_BACKOFF_MS = 3_000
