/**
 * Tunables and wire bounds of the tracker protocol. Sizes are bytes, times
 * are milliseconds unless the name says otherwise.
 */

import { MAX_PIECE_COUNT } from '../task/piece-size.ts'

const KiB = 1024
const MiB = 1024 * KiB

/** Protocol name and version; the id is `${protocolPrefix}/tracker/1.0.0` */
export const PROTOCOL_NAME = 'tracker'
export const PROTOCOL_VERSION = '1.0.0'
export const DEFAULT_PROTOCOL_PREFIX = '/damselfly'

// ---------------------------------------------------------------- wire bounds

/**
 * Largest TrackerRequest frame (reliability.md: control messages ≤ 64 KiB).
 * The largest legal request is a REPORT of 1024 pieces (≈ 40 KiB) or an
 * ANNOUNCE with an 8 KiB bitfield, an 8 KiB URL and 16 × 256-byte addresses
 * (≈ 26 KiB), so every legal request fits with room to spare.
 */
export const MAX_REQUEST_BYTES = 64 * KiB

/**
 * Largest TrackerResponse frame. The biggest answer is an ANNOUNCE answer for
 * a task of MAX_PIECE_COUNT pieces: 65536 × 34 bytes of piece digests
 * (2.1 MiB), 64 parents × (8 KiB bitfield + 4 KiB addresses) (0.8 MiB), a
 * grant of up to 65536 indexes (0.25 MiB) and ≈ 10 KiB of metadata strings:
 * ≈ 3.2 MiB. The server checks every answer against this bound before sending.
 */
export const MAX_RESPONSE_BYTES = 4 * MiB

/**
 * Source peers named in an answer (TrackerResponse.sources): the peers a
 * task's grants went to, the latest last. One source reads a whole task by
 * default; more come with more source peers or when grants move.
 */
export const MAX_SOURCES_PER_ANSWER = 16

/** A have bitfield covers at most MAX_PIECE_COUNT pieces: 8 KiB */
export const MAX_BITFIELD_BYTES = MAX_PIECE_COUNT / 8

/** Wire cap on parents per answer (the decoder rejects more) */
export const MAX_PARENTS_PER_ANSWER = 64

/** Pieces per REPORT (the decoder rejects more; the client splits larger batches) */
export const MAX_PIECES_PER_REPORT = 1024

/** Multiaddrs kept per peer; more are dropped. 16 covers IPv4 + IPv6 × TCP + QUIC × a few interfaces */
export const MAX_ADDRS_PER_PEER = 16

/** Longest binary multiaddr accepted (a /dns/<253 chars>/tcp/<port>/p2p/<id> fits) */
export const MAX_ADDR_BYTES = 256

/** A sha256 digest */
export const DIGEST_BYTES = 32

/** Longest URL kept in task metadata, in UTF-16 code units */
export const MAX_URL_CHARS = 8 * KiB

/** Longest ETag / Last-Modified kept, in UTF-16 code units */
export const MAX_HEADER_VALUE_CHARS = KiB

/** Longest version, zone, or peer id string accepted */
export const MAX_SHORT_STRING_CHARS = 128

/** Longest human-readable `message` the tracker sends */
export const MAX_MESSAGE_CHARS = KiB

/** Most upload slots a peer may claim; a larger number is clamped (it only feeds the parent score) */
export const MAX_UPLOAD_SLOTS = 100_000

/** Redirects `announceElected` follows for one elected tracker before giving up on it */
export const MAX_REDIRECTS = 2

// ---------------------------------------------------------------- timing

/**
 * How often a peer announces (register + refresh). One second, much shorter
 * than Kraken's 3 s: while a file fans out, every peer gains pieces every few
 * hundred milliseconds, and the bitfields the tracker hands out are only as
 * fresh as the last announce. Stale bitfields send requests to parents that
 * do not have the piece yet (DONT_HAVE round trips) and hide new parents. An
 * announce is one small request, so a tracker serving 1000 peers of a task
 * handles ≈ 1000 requests/s, which a node does easily. The interval travels in
 * every answer, so a tracker can raise it later without a protocol change.
 */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 1_000

/**
 * A peer not heard from for this long is dropped and its source grants go to
 * other peers. Thirty announce intervals: at three, a CPU-starved machine
 * (the e2e suite beside other work) dropped live peers whose origin reads
 * were still running; at ten, peers behind saturated 25 Mbit/s links, whose
 * announces waited seconds behind piece data (bench/fanout netns), lost their
 * grants while reading them, and the pieces left the origin twice. A
 * vanished grant holder (a graceful one sends LEAVE) stalls its pieces for up
 * to 30 s, then they are re-granted.
 */
export const DEFAULT_PEER_TTL_MS = 30 * DEFAULT_ANNOUNCE_INTERVAL_MS

/**
 * A task with no peers for this long is forgotten (metadata and digests too).
 * A minute survives the gap between two waves of downloads (a rolling
 * deploy), and frees memory soon after a task is done everywhere.
 */
export const DEFAULT_TASK_TTL_MS = 60_000

/**
 * Tasks one tracker tracks at once; beyond it new tasks are REFUSED
 * (TOO_MANY_TASKS) and their peers try the other elected tracker or go to the
 * origin and the DHT. With the default per-task bounds a typical task (≤ 1024
 * pieces, tens of peers) costs a few tens of KiB, so 10,000 tasks stay within
 * a few hundred MiB even when all are busy.
 */
export const DEFAULT_MAX_TASKS = 10_000

/**
 * Peers one task may have on one tracker; beyond it new peers are REFUSED
 * (TOO_MANY_PEERS). Ranking parents scores every peer of the task on each
 * announce, so this bounds the work per request (1000 × a few µs) and the
 * bitfields kept per task (1000 × ≤ 8 KiB).
 */
export const DEFAULT_MAX_PEERS_PER_TASK = 1_000

/**
 * Parents handed out per answer. Twice the scheduler's 8 parents in use at
 * once (DEFAULT_PARENT_LIMIT), so a client can replace a failing parent
 * without waiting for the next announce. Kraken hands out up to 50.
 */
export const DEFAULT_PARENTS_PER_ANSWER = 16

/**
 * Name each requester's upstream: the peers of a task form a chain in the
 * order they registered, and each streams pieces in index order from the
 * live, unblocked peer just before it, which forwards each piece as soon as
 * it has it. On by default because it is faster than the mesh alone: 8 peers
 * on 25 Mbit/s links finished in 26 s as a chain against ≈ 37 s as a mesh.
 */
export const DEFAULT_PIPELINE = true

/**
 * Requests a tracker works on at once, over all streams. Beyond it a new
 * request is answered REFUSED / BUSY at once without being read, so a storm
 * costs one small write per stream and never a queue.
 */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 256

/**
 * Server side: the time a client gets to deliver its request and take the
 * answer, per stream. A request is at most 64 KiB, so a healthy client needs
 * milliseconds; a stalled one loses its stream after this.
 */
export const DEFAULT_SERVER_REQUEST_TIMEOUT_MS = 5_000

/**
 * Client side: the time one attempt gets, from dialling to the decoded
 * answer. Five announce intervals: a tracker this slow is overloaded and the
 * other elected tracker should be asked.
 */
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS = 5_000

/**
 * The longest a tracker holds an announce that asked to wait (a long poll:
 * the answer would give the peer nothing to fetch, so it comes when another
 * peer reports a piece it lacks). Well inside DEFAULT_SERVER_REQUEST_TIMEOUT_MS,
 * and short enough that a peer still learns of new parents and of a tracker
 * that went away within a couple of seconds.
 */
export const MAX_ANNOUNCE_WAIT_MS = 2_000

/**
 * After the tracker told one peer to stat the origin for a task's metadata,
 * other peers that ask for the task and may wait are held this long for it
 * instead of each statting the origin themselves (a HEAD and a range probe
 * each). Past it, the next one to ask stats. 16 nodes starting together on
 * 25 Mbit/s links spent 0.5-0.8 s each in those stats, behind the origin's
 * saturated link.
 */
export const META_STAT_WAIT_MS = MAX_ANNOUNCE_WAIT_MS

/** Client side: retries after the first attempt on one tracker (3 attempts in all) */
export const DEFAULT_CLIENT_RETRIES = 2

/**
 * Client side backoff: attempt n (from 0) waits a uniformly random time in
 * [0, min(MAX, BASE × 2^n)] ("full jitter"), so peers that lost a tracker at the
 * same moment do not come back in lockstep.
 */
export const DEFAULT_RETRY_BASE_DELAY_MS = 200
export const DEFAULT_RETRY_MAX_DELAY_MS = 3_000

/**
 * Streams per connection for this protocol. A client opens one short stream
 * per request and has at most a few requests in flight per task (announce,
 * report, leave), so 16 covers several concurrent downloads from one peer
 * while one peer cannot hold more than 16 of the tracker's
 * DEFAULT_MAX_CONCURRENT_REQUESTS.
 */
export const DEFAULT_MAX_INBOUND_STREAMS = 16
export const DEFAULT_MAX_OUTBOUND_STREAMS = 16

/** How often the service drops expired peers and tasks */
export const DEFAULT_EXPIRY_INTERVAL_MS = DEFAULT_ANNOUNCE_INTERVAL_MS

/**
 * A peer's download rate is measured over windows of at least this long
 * (pieces gained between the announces that open and close a window). Three
 * announce intervals: at 25 Mbit/s and 512 KiB pieces a window spans ~18
 * pieces, enough that one late announce does not swing it.
 */
export const RATE_WINDOW_MS = 3 * DEFAULT_ANNOUNCE_INTERVAL_MS

/**
 * In the pipeline a peer can only pass pieces on as fast as it gets them, so
 * a peer on a slow link holds back every peer after it. One that gains
 * pieces at less than this fraction of its upstream's rate, for
 * SLOW_WINDOWS windows in a row, is moved to the end of the pipeline: its
 * successor then streams from its upstream, and the slow peer from the last
 * one. Measured before this rule (one node at 8 Mbit/s among 8 at 25): the
 * slow one took 76.4 s, the one after it 77.7 s, the other six 25.1-28.6 s.
 * A peer slowed only by a slow upstream keeps its place: it keeps pace with it.
 */
export const SLOW_PEER_RATE_FRACTION = 0.5

/** Consecutive rate windows a peer must be slow in before it is moved */
export const SLOW_WINDOWS = 2

/**
 * Windows not judged after the one in which a peer's upstream changed (it
 * joined, or the peer ahead left or moved): the peer is still moving its
 * requests to the new upstream. With one, a peer that joins is first judged
 * after 6 s and moved after 12 s at the earliest.
 */
export const UPSTREAM_SETTLE_WINDOWS = 1

/** A peer is moved to the end of the pipeline at most once per this long */
export const SLOW_PEER_MOVE_INTERVAL_MS = 30_000

/** A task's summary lists its last this many moves (status, the fan-out bench) */
export const SLOW_PEER_MOVES_KEPT = 16
