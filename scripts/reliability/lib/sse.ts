/**
 * A minimal SSE reader over `node:http` that keeps every frame it received: the suites compare what a client saw
 * against what the server retained, so nothing here reconnects or filters on its own.
 */
import { Cursor, SseWire } from "@yoi/worker-runtime"
import { Either } from "effect"
import * as Http from "node:http"

export interface Frame {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: any
  /** The `seq` of the event (undefined for comments and id-only frames). */
  readonly seq: number | undefined
}

export interface SseReader {
  readonly status: Promise<number>
  readonly frames: Array<Frame>
  /** The last `id:` received, the value a reconnecting client sends as `Last-Event-ID`. */
  lastId: string | undefined
  /** Error bodies of non-200 answers. */
  errorBody: string
  /** Resolves when the stream ends (closed by either side). */
  readonly ended: Promise<void>
  readonly close: () => void
  /** Bytes received, comments included. */
  bytes: number
  heartbeats: number
}

export const seqOf = (cursor: string): number | undefined => {
  const decoded = Cursor.decode(cursor)
  return Either.isRight(decoded) ? decoded.right.seq : undefined
}

export const openSse = (
  url: string,
  options: {
    readonly token?: string | undefined
    readonly lastEventId?: string | undefined
    readonly cookie?: string
  } = {}
): SseReader => {
  const headers: Record<string, string> = { accept: "text/event-stream" }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId
  if (options.cookie !== undefined) headers.cookie = options.cookie
  let resolveStatus!: (status: number) => void
  let resolveEnded!: () => void
  const reader: SseReader = {
    status: new Promise((r) => (resolveStatus = r)),
    frames: [],
    lastId: options.lastEventId,
    errorBody: "",
    ended: new Promise((r) => (resolveEnded = r)),
    close: () => {
      request.destroy()
      resolveEnded()
    },
    bytes: 0,
    heartbeats: 0
  }
  const parser = new SseWire.SseParser()
  const request = Http.get(url, { headers, agent: false }, (response) => {
    resolveStatus(response.statusCode ?? 0)
    response.setEncoding("utf8")
    response.on("data", (chunk: string) => {
      reader.bytes += chunk.length
      if (response.statusCode !== 200) {
        reader.errorBody += chunk
        return
      }
      for (const item of Either.getOrThrow(parser.feed(chunk))) {
        if (item._tag === "Comment") {
          if (item.text === "heartbeat") reader.heartbeats += 1
          continue
        }
        if (item.id !== undefined) reader.lastId = item.id
        const parsed = item._tag === "Event" ? JSON.parse(item.data) : undefined
        reader.frames.push({
          id: item.id,
          event: item._tag === "Event" ? item.event : undefined,
          data: parsed,
          seq: typeof parsed?.seq === "number" ? parsed.seq : undefined
        })
      }
    })
    response.on("end", () => resolveEnded())
    response.on("close", () => resolveEnded())
  })
  request.on("error", () => {
    resolveStatus(0)
    resolveEnded()
  })
  return reader
}

/** Resolves once `done` holds for the frames received, or after `timeoutMs` (then false). */
export const waitFrames = async (
  reader: SseReader,
  done: (frames: ReadonlyArray<Frame>) => boolean,
  timeoutMs = 10_000
) => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (done(reader.frames)) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return done(reader.frames)
}
