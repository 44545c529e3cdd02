import { Effect } from "effect"
import * as Net from "node:net"

/** One answer read off a raw socket; `status` 0 when the connection ended without one, `timedOut` on a hang. */
export interface RawReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly timedOut: boolean
}

/**
 * A request written byte for byte on a raw socket (`connection: close` unless `raw` is given), so a test can send
 * what no HTTP client would: broken escapes, lying lengths, oversized headers, a CONNECT. An event stream counts as
 * answered once its headers and first bytes are in.
 */
export const send = (
  port: number,
  request: {
    readonly method?: string
    readonly path?: string
    readonly headers?: ReadonlyArray<readonly [string, string]>
    readonly body?: string
    readonly raw?: string
  }
): Effect.Effect<RawReply> =>
  Effect.async<RawReply>((resume) => {
    const headers = [["host", `127.0.0.1:${port}`], ["connection", "close"], ...(request.headers ?? [])]
    if (request.body !== undefined && !headers.some(([k]) => k === "content-length" || k === "transfer-encoding")) {
      headers.push(["content-length", String(Buffer.byteLength(request.body))])
    }
    const head = request.raw ??
      `${request.method ?? "GET"} ${request.path ?? "/"} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`
    const socket = Net.connect(port, "127.0.0.1")
    let data = Buffer.alloc(0)
    let done = false
    const finish = (timedOut: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const split = data.indexOf("\r\n\r\n")
      const lines = data.subarray(0, split === -1 ? data.length : split).toString("latin1").split("\r\n")
      const parsed: Record<string, string> = {}
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":")
        if (colon > 0) parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      resume(Effect.succeed({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0),
        headers: parsed,
        body: split === -1 ? "" : data.subarray(split + 4).toString("utf8"),
        timedOut
      }))
    }
    const complete = () => {
      const split = data.indexOf("\r\n\r\n")
      if (split === -1) return false
      const head = data.subarray(0, split).toString("latin1")
      const rest = data.length - split - 4
      if (/content-type: text\/event-stream/i.test(head)) return rest > 0
      const length = /content-length: (\d+)/i.exec(head)
      return length !== null && rest >= Number(length[1])
    }
    const timer = setTimeout(() => finish(true), 10_000)
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      if (complete()) finish(false)
    })
    socket.on("error", () => finish(false))
    socket.on("close", () => finish(false))
    socket.on("connect", () => {
      socket.write(head, "latin1")
      if (request.body !== undefined) socket.write(request.body)
    })
  })

/** The runtime's error catalogue (docs/errors.md): each `_tag` and its one status. */
export const catalogue: ReadonlyMap<string, number> = new Map([
  ["InvalidInput", 400],
  ["CursorInvalid", 400],
  ["Unauthorized", 401],
  ["WorkerNotFound", 404],
  ["RouteNotFound", 404],
  ["WorkerBusy", 409],
  ["WorkerStopped", 409],
  ["WorkerAlreadyExists", 409],
  ["WorkerStateConflict", 409],
  ["ScopeConflict", 409],
  ["CursorExpired", 410],
  ["PayloadTooLarge", 413],
  ["RequestTimeout", 408],
  ["RequestHeadersTooLarge", 431],
  ["InternalError", 500],
  ["UnsupportedOperation", 501],
  ["RuntimeUnavailable", 503]
])

/** Why an answer is not a typed 4xx of the catalogue with its status (undefined when it is). */
export const notTyped4xx = (reply: RawReply, options: { readonly success?: boolean } = {}): string | undefined => {
  if (reply.timedOut) return "no answer (a hang)"
  if (reply.status === 0) return "the connection ended without an answer"
  if (reply.status < 300 && options.success === true) return undefined
  if (reply.status < 400 || reply.status >= 500) return `answered ${reply.status}: ${reply.body.slice(0, 200)}`
  const body = /^\s*\{/.test(reply.body) ? JSON.parse(reply.body) as { _tag?: unknown; message?: unknown } : undefined
  if (body === undefined || typeof body._tag !== "string") return `${reply.status} without a typed body: ${reply.body.slice(0, 200)}`
  if (catalogue.get(body._tag) !== reply.status) return `${body._tag} with status ${reply.status}`
  return typeof body.message === "string" && body.message.length > 0 ? undefined : `${body._tag} without a message`
}
