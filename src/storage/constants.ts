/**
 * Head room demanded on top of the bytes a new task still needs, as a
 * fraction of them: a task is refused when free space < needed × (1 + 0.1).
 * It leaves room for metadata, journals and other writers on the same disk
 * (notes/reliability.md §e: "refuse a task if free space < F + 10 %").
 */
export const DEFAULT_RESERVE_RATIO = 0.1

/**
 * Largest metadata.json we read. The biggest legitimate file is a task with
 * 65536 piece digests (≈ 4.3 MiB of JSON) plus its bitfield.
 */
export const MAX_METADATA_BYTES = 8 * 1024 * 1024

/**
 * Read-only data-file handles the store keeps open for serving pieces of
 * tasks it is not writing (least recently used are closed first). Opening
 * and closing the file for every piece read cost the uploading side ~0.3
 * CPU s per GiB served (bench/transfer profile); 64 fds is far below any
 * default limit and covers the tasks a node serves at once.
 */
export const DEFAULT_MAX_READ_HANDLES = 64

/**
 * Most piece waits (`FsPieceStore.whenPresent`) pending at once over all
 * tasks; beyond it a wait answers "not present" at once. Each is a request a
 * downstream peer holds open on us (piece protocol `wait_ms`), a few per peer.
 */
export const DEFAULT_MAX_PIECE_WAITERS = 1024
