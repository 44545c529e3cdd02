/** What the backlog needs of an event: its place in the log. */
export interface Sequenced {
  readonly seq: number
}

/**
 * A ring of the most recent events by seq, for resume: the runtime's `EventLog` and the Backend's hub behind one
 * upstream subscription both keep one. Events are pushed in seq order; a push that does not follow the newest one
 * (a gap) restarts the ring at that event.
 */
export interface Backlog<A extends Sequenced> {
  /** The seq of the newest event pushed, or the position given to `reset`. */
  readonly lastSeq: () => number
  /** The lowest seq held; above `lastSeq` when the ring is empty. */
  readonly low: () => number
  readonly size: () => number
  readonly push: (event: A) => void
  /** Empties the ring; `lastSeq` becomes `seq`. */
  readonly reset: (seq: number) => void
  /** The events held with `after < seq <= upTo` that match, ascending. */
  readonly range: (after: number, upTo: number, matches?: (event: A) => boolean) => Array<A>
}

export const make = <A extends Sequenced>(options: {
  readonly capacity: number
  readonly lastSeq?: number | undefined
}): Backlog<A> => {
  const capacity = Math.max(1, options.capacity)
  const ring: Array<A | undefined> = new Array(capacity)
  let size = 0
  let lastSeq = options.lastSeq ?? 0

  const low = () => lastSeq - size + 1

  return {
    lastSeq: () => lastSeq,
    low,
    size: () => size,
    push: (event) => {
      if (size > 0 && event.seq !== lastSeq + 1) size = 0
      lastSeq = event.seq
      ring[event.seq % capacity] = event
      if (size < capacity) size += 1
    },
    reset: (seq) => {
      size = 0
      lastSeq = seq
      ring.fill(undefined)
    },
    range: (after, upTo, matches) => {
      const out: Array<A> = []
      const to = Math.min(upTo, lastSeq)
      for (let seq = Math.max(after + 1, low()); seq <= to; seq++) {
        const event = ring[seq % capacity]!
        if (matches === undefined || matches(event)) out.push(event)
      }
      return out
    }
  }
}
