/**
 * A raw HTTP/1.1 client over `node:net`: the fuzzers control every byte (malformed request lines, duplicate or
 * oversized headers, lying lengths, odd encodings), and every answer is bounded by a timeout so a hang is a finding,
 * not a stuck suite.
 */
import { Either, Schema } from "effect"
import * as Net from "node:net"

export interface RawReply {
  /** 0 when no status line arrived (connection reset, timeout). */
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** True when no complete answer arrived within the timeout. */
  readonly timedOut: boolean
  /** A connection error (reset, refused) before a complete answer. */
  readonly error: string | undefined
  readonly ms: number
}

export interface RawRequest {
  readonly method: string
  /** Sent as is: the caller encodes (or deliberately mis-encodes) it. */
  readonly path: string
  /** Header lines in order; duplicates allowed. `host` and `connection: close` are added unless given. */
  readonly headers?: ReadonlyArray<readonly [string, string]> | undefined
  readonly body?: string | Buffer | undefined
  /** Add a matching `content-length` when a body is given and no length or transfer-encoding header is. */
  readonly autoLength?: boolean | undefined
  readonly timeoutMs?: number | undefined
  /** Sent instead of the request line and headers built from the fields above. */
  readonly rawHead?: string | undefined
}

const parseHead = (head: string) => {
  const lines = head.split("\r\n")
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status, headers }
}

/** Decodes a chunked body; undefined until the terminating chunk has arrived. */
const dechunk = (data: Buffer): Buffer | undefined => {
  const parts: Array<Buffer> = []
  let at = 0
  for (;;) {
    const eol = data.indexOf("\r\n", at)
    if (eol === -1) return undefined
    const size = parseInt(data.subarray(at, eol).toString("latin1"), 16)
    if (!Number.isFinite(size)) return Buffer.concat(parts)
    if (size === 0) return Buffer.concat(parts)
    if (data.length < eol + 2 + size + 2) return undefined
    parts.push(data.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
}

export const send = (port: number, request: RawRequest, host = "127.0.0.1"): Promise<RawReply> =>
  new Promise((resolve) => {
    const started = performance.now()
    const given = request.headers ?? []
    const has = (name: string) => given.some(([k]) => k.toLowerCase() === name)
    const lines: Array<readonly [string, string]> = []
    if (!has("host")) lines.push(["host", `${host}:${port}`])
    if (!has("connection")) lines.push(["connection", "close"])
    lines.push(...given)
    const body = request.body === undefined ? undefined : Buffer.from(request.body)
    if (body !== undefined && request.autoLength !== false && !has("content-length") && !has("transfer-encoding")) {
      lines.push(["content-length", String(body.length)])
    }
    const head = request.rawHead ??
      `${request.method} ${request.path} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`
    const socket = Net.connect(port, host)
    let data = Buffer.alloc(0)
    let done = false
    const finish = (timedOut: boolean, error?: string) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const split = data.indexOf("\r\n\r\n")
      const { headers, status } = parseHead(data.subarray(0, split === -1 ? data.length : split).toString("latin1"))
      const raw = split === -1 ? Buffer.alloc(0) : data.subarray(split + 4)
      const decoded = headers["transfer-encoding"] === "chunked" ? dechunk(raw) ?? raw : raw
      resolve({ status, headers, body: decoded.toString("utf8"), timedOut, error, ms: performance.now() - started })
    }
    /** Complete when the body is whole; an event stream is complete once its headers and first bytes are in. */
    const complete = () => {
      const split = data.indexOf("\r\n\r\n")
      if (split === -1) return false
      const { headers, status } = parseHead(data.subarray(0, split).toString("latin1"))
      const raw = data.subarray(split + 4)
      if ((headers["content-type"] ?? "").startsWith("text/event-stream")) return raw.length > 0
      if (request.method === "HEAD" || status === 204 || status === 304) return true
      if (headers["content-length"] !== undefined) return raw.length >= Number(headers["content-length"])
      if (headers["transfer-encoding"] === "chunked") return dechunk(raw) !== undefined
      return false
    }
    const timer = setTimeout(() => finish(true), request.timeoutMs ?? 5_000)
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      if (complete()) finish(false)
    })
    socket.on("error", (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message))
    socket.on("close", () => finish(false))
    socket.on("connect", () => {
      socket.write(head, "latin1")
      if (body !== undefined) socket.write(body)
    })
  })

/** A JSON request with the usual headers. */
export const json = (
  port: number,
  method: string,
  path: string,
  options: {
    readonly token?: string | undefined
    readonly body?: unknown
    readonly headers?: ReadonlyArray<readonly [string, string]>
    readonly timeoutMs?: number
  } = {}
): Promise<RawReply> =>
  send(port, {
    method,
    path,
    headers: [
      ...(options.token === undefined ? [] : [["authorization", `Bearer ${options.token}`] as const]),
      ...(options.body === undefined ? [] : [["content-type", "application/json"] as const]),
      ...(options.headers ?? [])
    ],
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    timeoutMs: options.timeoutMs
  })

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())

/** The parsed body, or undefined when it is empty or not JSON (the caller reports that as a finding). */
export const parseJson = (text: string): unknown =>
  text.length === 0 ? undefined : Either.getOrUndefined(decodeJson(text))
