import { HttpServer } from "@effect/platform"
import { Effect } from "effect"
import * as Http from "node:http"

export const TOKEN = "http-test-token-0123456789"

export interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
  readonly json: any
}

/** A request over plain `node:http`, so a test controls the exact bytes, headers and framing. */
export const request = (
  method: string,
  path: string,
  options: {
    readonly body?: string
    readonly token?: string | null | undefined
    readonly headers?: Record<string, string>
    readonly chunked?: boolean
    readonly port?: number
  } = {}
) =>
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const port = options.port ?? (server.address._tag === "TcpAddress" ? server.address.port : 0)
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`
    if (options.body !== undefined) {
      headers["content-type"] ??= "application/json"
      if (options.chunked !== true) headers["content-length"] = String(Buffer.byteLength(options.body))
    }
    return yield* Effect.async<Reply>((resume) => {
      const req = Http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => (text += chunk))
        res.on("end", () => {
          const json = res.headers["content-type"]?.startsWith("application/json") ? JSON.parse(text) : undefined
          resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, text, json }))
        })
      })
      req.on("error", (error) => resume(Effect.die(error)))
      if (options.body !== undefined) req.write(options.body)
      req.end()
    })
  })
