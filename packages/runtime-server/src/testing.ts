/**
 * Test support for servers built on this package (`@yoi/runtime-server/testing`): a raw-socket HTTP client that can
 * send what no HTTP client would, the runtime's error catalogue as data, and the check that an answer is a typed
 * error of a catalogue. Shared by the runtime's and the Backend's reliability tests.
 */
import { testPolicy } from "@yoi/worker-runtime/testing"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"

/**
 * Writes a `--config` file with every test echo profile (`@yoi/worker-runtime/testing`) and scopes anywhere into
 * `dir`, and returns its path: engine settings are runtime configuration, so tests name profiles.
 */
export const writeTestConfig = (dir: string, extra: Record<string, unknown> = {}): string => {
  const file = Path.join(dir, "runtime-config.json")
  Fs.writeFileSync(file, JSON.stringify({ ...testPolicy, ...extra }))
  return file
}

/** Every `_tag` a server may answer with, and its one status. */
export type Catalogue = ReadonlyMap<string, number>

/** The runtime's error catalogue (docs/errors.md). */
export const runtimeCatalogue: Catalogue = new Map([
  ["InvalidInput", 400],
  ["CursorInvalid", 400],
  ["Unauthorized", 401],
  ["WorkerNotFound", 404],
  ["RouteNotFound", 404],
  ["RequestTimeout", 408],
  ["WorkerBusy", 409],
  ["WorkerStopped", 409],
  ["WorkerAlreadyExists", 409],
  ["WorkerStateConflict", 409],
  ["ScopeConflict", 409],
  ["ScopeNotPermitted", 403],
  ["CursorExpired", 410],
  ["PayloadTooLarge", 413],
  ["RequestHeadersTooLarge", 431],
  ["InternalError", 500],
  ["UnsupportedOperation", 501],
  ["RuntimeUnavailable", 503]
])

/** One answer read off a raw socket; `status` 0 when the connection ended without one, `timedOut` on a hang. */
export interface RawReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly timedOut: boolean
}

/**
 * A request written byte for byte on a raw socket (`connection: close` unless `raw` is given): broken escapes, lying
 * lengths, oversized headers, a CONNECT. An event stream counts as answered once its headers and first bytes are in.
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
      const raw = split === -1 ? Buffer.alloc(0) : data.subarray(split + 4)
      resume(Effect.succeed({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0),
        headers: parsed,
        body: (parsed["transfer-encoding"] === "chunked" ? dechunk(raw) : raw).toString("utf8"),
        timedOut
      }))
    }
    const complete = () => {
      const split = data.indexOf("\r\n\r\n")
      if (split === -1) return false
      const head = data.subarray(0, split).toString("latin1")
      const rest = data.subarray(split + 4)
      if (/content-type: text\/event-stream/i.test(head)) return rest.length > 0
      if (/transfer-encoding: chunked/i.test(head)) return rest.includes("0\r\n\r\n")
      const length = /content-length: (\d+)/i.exec(head)
      return length !== null && rest.length >= Number(length[1])
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

const dechunk = (raw: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  let at = 0
  for (;;) {
    const eol = raw.indexOf("\r\n", at)
    const size = eol === -1 ? 0 : parseInt(raw.subarray(at, eol).toString("latin1"), 16)
    if (!(size > 0)) return Buffer.concat(parts)
    parts.push(raw.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
}

/**
 * Why an answer is not a typed error of the catalogue with its status (undefined when it is). By default only 4xx
 * are acceptable; `success` also accepts 2xx and `unavailable` the typed 503/504 of a remote that is down.
 */
export const untyped = (
  reply: RawReply,
  catalogue: Catalogue,
  options: { readonly success?: boolean; readonly unavailable?: boolean } = {}
): string | undefined => {
  if (reply.timedOut) return "no answer (a hang)"
  if (reply.status === 0) return "the connection ended without an answer"
  if (reply.status < 300 && options.success === true) return undefined
  const allowed = reply.status >= 400 && (reply.status < 500 || (options.unavailable === true && reply.status > 502))
  if (!allowed) return `answered ${reply.status}: ${reply.body.slice(0, 200)}`
  const body = /^\s*\{/.test(reply.body) ? JSON.parse(reply.body) as { _tag?: unknown; message?: unknown } : undefined
  if (body === undefined || typeof body._tag !== "string") return `${reply.status} without a typed body: ${reply.body.slice(0, 200)}`
  if (catalogue.get(body._tag) !== reply.status) return `${body._tag} with status ${reply.status}`
  return typeof body.message === "string" && body.message.length > 0 ? undefined : `${body._tag} without a message`
}
