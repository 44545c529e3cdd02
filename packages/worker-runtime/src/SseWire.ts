import { Either, Schema } from "effect"
import { RuntimeEvent } from "./Domain.js"

// The `text/event-stream` wire format, both ways: the frames the runtime and the Backend write, and the parser every
// client, the Chat Completions engine, the scripts and the tests read them with. Pure text, no I/O.

export const CONTENT_TYPE = "text/event-stream"

/** The kind of the final frame sent when a stream fails after it started. */
export const ERROR_KIND = "stream.error"

/** One frame. `data` must be a single line (JSON never contains a raw newline). */
export const frame = (id: string | undefined, event: string, data: string): string =>
  `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`

const encodeEvent = Schema.encodeSync(RuntimeEvent)

/**
 * One event as a frame, encoded with the event union: its cursor is the `id`, its kind the `event`, its JSON
 * envelope the `data`.
 */
export const eventFrame = (event: RuntimeEvent): string => {
  const encoded = encodeEvent(event)
  return `id: ${encoded.cursor}\nevent: ${encoded.kind}\ndata: ${JSON.stringify(encoded)}\n\n`
}

export const commentFrame = (text: string): string => `: ${text.replace(/[\r\n]+/g, " ")}\n\n`

/**
 * The frame written at connect: a comment (Node sends the headers only with the first body write) and, when the
 * start is known, an `id` without data, which sets the client's last event id without dispatching an event, so a
 * "from now" stream that drops before its first event still resumes with no gap.
 */
export const openFrame = (startCursor: string | undefined): string =>
  startCursor === undefined ? commentFrame("connected") : `: connected\nid: ${startCursor}\n\n`

export const HEARTBEAT = commentFrame("heartbeat")

export interface StreamErrorData {
  readonly _tag: string
  readonly message: string
  readonly resume_cursor?: string | undefined
}

/** The final frame of a stream that failed after it started. */
export const errorFrame = (error: StreamErrorData): string => frame(undefined, ERROR_KIND, JSON.stringify(error))

export type SseItem =
  | { readonly _tag: "Event"; readonly event: string; readonly data: string; readonly id: string | undefined }
  /** A frame with an `id` and no data: it moves the resume position without an event. */
  | { readonly _tag: "Id"; readonly id: string }
  | { readonly _tag: "Comment"; readonly text: string }

const MAX_LINE = 16 * 1024 * 1024

/**
 * An incremental `text/event-stream` parser (WHATWG rules: LF, CR and CRLF line ends, one optional space after the
 * colon, multi-line `data`). It works line by line in linear time however the text is chunked.
 */
export class SseParser {
  private partial = ""
  private skipLf = false
  private event = ""
  private data: Array<string> = []
  private id: string | undefined = undefined

  /** Feeds decoded text; returns what completed. Fails (returns `Left`) only on a line longer than 16 MiB. */
  feed(text: string): Either.Either<Array<SseItem>, string> {
    const out: Array<SseItem> = []
    // An empty piece must not clear a pending CR (the LF after it may come in the next piece).
    if (text.length === 0) return Either.right(out)
    let start = 0
    if (this.skipLf && text.charCodeAt(0) === 10) start = 1
    this.skipLf = false
    const length = text.length
    for (let i = start; i < length; i++) {
      const c = text.charCodeAt(i)
      if (c !== 10 && c !== 13) continue
      const piece = text.slice(start, i)
      const line = this.partial.length === 0 ? piece : this.partial + piece
      this.partial = ""
      this.line(line, out)
      if (c === 13) {
        if (i + 1 < length) {
          if (text.charCodeAt(i + 1) === 10) i++
        } else {
          this.skipLf = true
        }
      }
      start = i + 1
    }
    if (start < length) {
      this.partial += text.slice(start)
      if (this.partial.length > MAX_LINE) return Either.left("an event stream line exceeded 16 MiB")
    }
    return Either.right(out)
  }

  private line(line: string, out: Array<SseItem>) {
    if (line.length === 0) return this.dispatch(out)
    if (line.charCodeAt(0) === 58) {
      out.push({ _tag: "Comment", text: line.slice(line.charCodeAt(1) === 32 ? 2 : 1) })
      return
    }
    const colon = line.indexOf(":")
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? "" : line.slice(line.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1)
    switch (field) {
      case "event":
        this.event = value
        break
      case "data":
        this.data.push(value)
        break
      case "id":
        if (!value.includes("\0")) this.id = value
        break
    }
  }

  /**
   * Ends the text: what a last event without its blank line holds. Browsers drop it; a client of an upstream that
   * ends its body without the final blank line (some model servers) may want it.
   */
  end(): Array<SseItem> {
    const out: Array<SseItem> = []
    if (this.partial.length > 0) this.line(this.partial, out)
    this.partial = ""
    this.dispatch(out)
    return out
  }

  private dispatch(out: Array<SseItem>) {
    const id = this.id
    const data = this.data
    const event = this.event
    this.id = undefined
    this.data = []
    this.event = ""
    if (data.length === 0) {
      if (id !== undefined) out.push({ _tag: "Id", id })
      return
    }
    out.push({ _tag: "Event", event: event === "" ? "message" : event, data: data.join("\n"), id })
  }
}
