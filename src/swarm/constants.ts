/** Most bytes of one membership heartbeat: it carries a few addresses and protocol ids, never a list of tasks */
export const MAX_HEARTBEAT_BYTES = 4096

/** Most addresses in a heartbeat, and bytes per address */
export const MAX_HEARTBEAT_ADDRS = 16
export const MAX_ADDR_BYTES = 256

/** Most protocol ids in a heartbeat, and characters per id */
export const MAX_HEARTBEAT_PROTOCOLS = 16
export const MAX_PROTOCOL_LENGTH = 128

/** A member is live while heard within this many of its own heartbeat intervals */
export const LIVE_HEARTBEATS = 3

/**
 * Two heartbeats of a member are from the same run of its process when the
 * start times they imply (arrival − uptime) differ by less than this (or one
 * heartbeat interval, if longer): delivery delays shift the estimate, a
 * restart moves it by at least the restart's own duration.
 */
export const SAME_RUN_TOLERANCE_MS = 10_000

/** A member not heard within this many intervals is forgotten */
export const FORGET_HEARTBEATS = 20

/**
 * Up to this many nodes in the swarm every member heartbeats at the configured
 * interval; beyond it the interval grows in proportion to the swarm, so the
 * whole swarm publishes about this many heartbeats per configured interval.
 * Every copy of a heartbeat costs every node CPU (16 daemons: 0.48 cores idle
 * at 5 s, 0.04 with heartbeats off - bench/swarm), and a flooded topic's
 * cost grows with the square of the swarm at a fixed interval.
 */
export const FULL_RATE_SWARM_SIZE = 8

/** The longest heartbeat interval, ms: what receivers accept in a heartbeat */
export const MAX_HEARTBEAT_INTERVAL_MS = 600_000

/** After a new peer subscribes, publish our heartbeat this soon so it learns of us without waiting a whole interval */
export const HEARTBEAT_DEBOUNCE_MS = 250

/** First wait between two rounds of bootstrap dials; doubles per failed round (full jitter) up to maxRejoinInterval */
export const DEFAULT_REJOIN_BASE_MS = 500
