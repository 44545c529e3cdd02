/**
 * Seqs skipped after a life that ended with a turn running. Text deltas are never persisted, so a crashed life may
 * have issued seqs above the persisted high-water mark; continuing past this gap keeps a cursor that points at
 * such a delta valid (it resumes at the next durable event) instead of colliding with a new event's seq.
 */
export const SEQ_GAP_AFTER_CRASH = 1 << 24
