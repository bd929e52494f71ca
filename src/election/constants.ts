/**
 * How many trackers serve each task (R in DESIGN.md "Tracker election").
 * Two, so a task keeps a tracker when one leaves, while every registration
 * and heartbeat is sent only twice.
 */
export const DEFAULT_TRACKER_REPLICAS = 2
