/**
 * Weights of the parent score (see `PeerEvaluator.score`). Each feature is
 * normalised to [0, 1] and the score is the weighted mean, so the weights only
 * need to be non-negative; these sum to 1.
 *
 * Measured throughput weighs most because it is what a download actually
 * gets; free upload slots next, because a parent with no free slot queues our
 * requests whatever its bandwidth; pieces held says how long the parent stays
 * useful; recent failures push away flaky parents before they become bad ones;
 * same zone is a tie-breaker that keeps traffic local (Dragonfly's IDC and
 * location weights, 0.15 each in its v2.1 evaluator).
 */
export const DEFAULT_EVALUATOR_WEIGHTS = Object.freeze({
  freeUploadSlots: 0.25,
  piecesHeld: 0.2,
  throughput: 0.3,
  recentFailures: 0.15,
  sameZone: 0.1
})

/**
 * Throughput score of a parent we have not measured yet. Half marks, so a new
 * parent can rank above a slow known one and gets tried, but not above a fast
 * known one.
 */
export const DEFAULT_UNKNOWN_THROUGHPUT_SCORE = 0.5

/**
 * Failed piece requests after which a parent is bad and its failure score is
 * zero (Dragonfly v1 dropped a server after 5 errors; three fails faster while
 * still forgiving one timeout on a loaded link).
 */
export const DEFAULT_MAX_PARENT_FAILURES = 3

/** Parents to use at once for one task (reliability.md: ≤ 8 parents per task) */
export const DEFAULT_PARENT_LIMIT = 8

/**
 * Piece-cost samples needed before a parent can be judged slow: the last
 * sample is compared with the mean of the others, so there must be at least
 * one other (Dragonfly `minAvailableCostLen`).
 */
export const DEFAULT_MIN_PIECE_COST_SAMPLES = 2

/**
 * From this many samples on, piece costs are treated as normally distributed
 * and the three-sigma rule applies (Dragonfly `normalDistributionLen`).
 */
export const DEFAULT_NORMAL_DISTRIBUTION_SAMPLES = 30

/** Below the normal-distribution sample count, a piece this many times slower than the mean of the others marks the parent bad (Dragonfly: 20) */
export const DEFAULT_SLOW_PIECE_FACTOR = 20

/** With enough samples, a piece slower than mean + this many standard deviations marks the parent bad (Dragonfly: 3) */
export const DEFAULT_SLOW_PIECE_SIGMAS = 3

/**
 * Bad pieces (digest mismatch) from one peer, within
 * {@link DEFAULT_BAD_PIECE_WINDOW_MS}, that get it blocked. Two, not one, so a
 * single bit flip on the wire does not ban an honest peer (reliability.md:
 * "ban 1 h after 2 bad pieces").
 */
export const DEFAULT_BAD_PIECES_BEFORE_BLOCK = 2

/** How long a bad-piece report counts against a peer */
export const DEFAULT_BAD_PIECE_WINDOW_MS = 60 * 60_000

/** How long a peer stays blocked (reliability.md: 1 h) */
export const DEFAULT_BLOCK_TTL_MS = 60 * 60_000

/**
 * Most peers the blocklist remembers (blocked or with bad-piece reports).
 * Bounds memory against a flood of sybil ids; past it, the entries that
 * expire soonest are forgotten first.
 */
export const DEFAULT_MAX_BLOCKLIST_PEERS = 10_000

/**
 * Missing pieces at or below which the picker enters end-game and may request
 * a piece from a second parent (Kraken: 3; libtorrent enters end-game when
 * every piece is requested).
 */
export const DEFAULT_ENDGAME_THRESHOLD = 4

/**
 * In end-game, most parents one piece may be requested from at once. Two:
 * one duplicate races a slow parent for the tail while wasting at most one
 * extra piece of bandwidth per tail piece.
 */
export const DEFAULT_ENDGAME_MAX_REQUESTS_PER_PIECE = 2

/**
 * Peers a tracker lets fetch a task from the origin at once. One: the head
 * of the task's pipeline reads the origin in large ranges and every other
 * peer gets the pieces down the pipeline, so each piece leaves the origin
 * once and every link carries one flow (bench/fanout, 8 nodes at 25 Mbit/s:
 * 26 s against ~37 s with 8 sources and peers pulling rarest-first). More
 * sources spread the origin's load when the head is slower than the origin
 * (Dragonfly caps back-to-source peers per task, at 200).
 */
export const DEFAULT_MAX_SOURCE_PEERS = 1

/** The most source peers a node's config may allow per task (`sourcePeers`) */
export const MAX_SOURCE_PEERS = 64

/**
 * Pieces per stripe in a source grant when several peers may read the
 * origin: the k-th source peer gets every k-th stripe, reads a stripe as one
 * origin range and confirms its grant with the tracker in between (the
 * tracker says the width with each grant). Narrower stripes make new pieces
 * appear at more nodes at a time; each end of a stripe costs a round trip to
 * the tracker. With one source peer (the default) the task is one stripe.
 */
export const DEFAULT_SOURCE_STRIPE_PIECES = 32

/**
 * A source grantee that reports no finished piece for this long loses its
 * grants, and they go to other peers. Longer than the piece timeout for 64 MiB
 * pieces at 4 s/MiB (256 s, reliability.md) so a healthy grantee always
 * reports in time.
 */
export const DEFAULT_GRANT_TTL_MS = 5 * 60_000

/**
 * Pieces kept requested from one parent: at least this many, so a parent
 * always has the next piece queued
 */
export const DEFAULT_PIPELINE_MIN_DEPTH = 2

/**
 * ... and at most this many. With 1 MiB pieces, 8 keep a loopback or LAN pipe
 * full (bench/transfer)
 */
export const DEFAULT_PIPELINE_MAX_DEPTH = 8

/** The pieces in flight to a parent cover this much of its measured rate, ms */
export const DEFAULT_PIPELINE_TARGET_MS = 500

/** Weight of the newest sample in a parent's delivery rate */
export const DEFAULT_PIPELINE_RATE_WEIGHT = 0.3
