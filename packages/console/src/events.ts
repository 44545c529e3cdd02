import { Domain } from "@yoi/worker-runtime/schema"
import { Either, Schema } from "effect"

// One `EventSource` per tab on `/api/events`, decoded with the shared event schema and fanned out to the views.
// The last cursor seen is kept in sessionStorage, so a reload resumes where the tab was; views de-duplicate what a
// resumed stream repeats by transcript index. `stream.lagged` and a refused resume make every view re-list.

export type RuntimeEvent = Domain.RuntimeEvent

/** `live`: the stream is open; `connecting`: first connect; `reconnecting`: lost, trying again. */
export type StreamHealth = "connecting" | "live" | "reconnecting"

const CURSOR_KEY = "yoi.events.cursor"
const decode = Schema.decodeUnknownEither(Domain.RuntimeEvent)

type Listener = (event: RuntimeEvent) => void

const listeners = new Set<Listener>()
const healthListeners = new Set<(health: StreamHealth) => void>()
const relistListeners = new Set<() => void>()

let source: EventSource | undefined
let health: StreamHealth = "connecting"
let retryTimer: ReturnType<typeof setTimeout> | undefined
let failures = 0

const setHealth = (next: StreamHealth) => {
  if (next === health) return
  health = next
  for (const listener of healthListeners) listener(next)
}

const relist = () => {
  for (const listener of relistListeners) listener()
}

const readCursor = (): string | undefined => {
  try {
    return sessionStorage.getItem(CURSOR_KEY) ?? undefined
  } catch {
    return undefined
  }
}

const keepCursor = (cursor: string | undefined) => {
  try {
    if (cursor === undefined || cursor === "") sessionStorage.removeItem(CURSOR_KEY)
    else sessionStorage.setItem(CURSOR_KEY, cursor)
  } catch {
    // storage may be disabled; the stream then starts from now after a reload
  }
}

const dispatch = (message: MessageEvent<string>) => {
  if (message.lastEventId !== "") keepCursor(message.lastEventId)
  let json: unknown
  try {
    json = JSON.parse(message.data)
  } catch {
    return
  }
  const decoded = decode(json)
  if (Either.isLeft(decoded)) return
  const event = decoded.right
  switch (event.kind) {
    case "stream.lagged": {
      // This tab fell behind: resume from where the stream says, and have every view re-list.
      const resume = (event.data as { resume_cursor?: unknown } | null)?.resume_cursor
      keepCursor(typeof resume === "string" ? resume : message.lastEventId)
      open()
      relist()
      return
    }
    case "stream.bookmark":
    case "stream.live":
      // Position marks: the cursor kept above is all they carry (a bookmark keeps a quiet tab resumable; the live
      // mark ends the replay of a resumed stream). No view shows them.
      return
    default:
      for (const listener of listeners) listener(event)
  }
}

// An EventSource dispatches a named frame only to a listener for that name: the console listens for every kind of
// the shared union (each frame is decoded with it; a kind the console does not show is ignored).
const kinds: ReadonlyArray<string> = Domain.EventKind.literals

const open = () => {
  if (retryTimer !== undefined) clearTimeout(retryTimer)
  retryTimer = undefined
  source?.close()
  const cursor = readCursor()
  const url = cursor === undefined ? "/api/events" : `/api/events?cursor=${encodeURIComponent(cursor)}`
  const es = new EventSource(url)
  source = es
  es.onopen = () => {
    failures = 0
    setHealth("live")
  }
  for (const kind of kinds) {
    es.addEventListener(kind, (message) => {
      if (kind === "stream.error") {
        const resume = (() => {
          try {
            return (JSON.parse((message as MessageEvent<string>).data) as { resume_cursor?: string }).resume_cursor
          } catch {
            return undefined
          }
        })()
        if (resume !== undefined) keepCursor(resume)
        reconnectLater(false)
        return
      }
      dispatch(message as MessageEvent<string>)
    })
  }
  es.onerror = () => {
    if (source !== es) return
    if (es.readyState === EventSource.CONNECTING) {
      // The browser retries by itself, sending the last id it saw.
      setHealth("reconnecting")
      return
    }
    // Closed for good: the Backend refused the stream (a stale or expired cursor, or the session ended).
    reconnectLater(true)
  }
}

const reconnectLater = (refused: boolean) => {
  source?.close()
  source = undefined
  setHealth("reconnecting")
  failures += 1
  if (refused && failures >= 2) {
    // Resuming was refused twice: start from now and have every view re-list, so nothing is missed.
    keepCursor(undefined)
  }
  const delay = Math.min(500 * 2 ** Math.min(failures - 1, 4), 8_000)
  retryTimer = setTimeout(() => {
    if (refused && failures >= 2) relist()
    open()
  }, delay)
}

/** Starts the tab's stream (once). */
export const start = () => {
  if (source === undefined && retryTimer === undefined) open()
}

/** Closes the stream and forgets the cursor (sign-out). */
export const stop = () => {
  if (retryTimer !== undefined) clearTimeout(retryTimer)
  retryTimer = undefined
  source?.close()
  source = undefined
  keepCursor(undefined)
  setHealth("connecting")
}

export const subscribe = (listener: Listener): (() => void) => {
  listeners.add(listener)
  return () => void listeners.delete(listener)
}

export const onHealth = (listener: (health: StreamHealth) => void): (() => void) => {
  healthListeners.add(listener)
  return () => void healthListeners.delete(listener)
}

export const currentHealth = (): StreamHealth => health

/**
 * Resolves once the stream is open. A view lists only after this, so that everything committed after its listing
 * reaches it through the stream (a stream opened without a cursor starts from now).
 */
export const ready = (): Promise<void> =>
  health === "live"
    ? Promise.resolve()
    : new Promise((resolve) => {
      const off = onHealth((next) => {
        if (next === "live") {
          off()
          resolve()
        }
      })
    })

/** Views re-list when the stream could not resume without a gap. */
export const onRelist = (listener: () => void): (() => void) => {
  relistListeners.add(listener)
  return () => void relistListeners.delete(listener)
}
