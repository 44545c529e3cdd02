import {
  HttpApiBuilder,
  HttpApiError,
  type HttpApp,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { type InternalError, PayloadTooLarge, RouteNotFound, RuntimeApi, type Unauthorized } from "@yoi/runtime-api"
import { InvalidInput, Profiles } from "@yoi/worker-runtime"
import { Cause, Effect, Option } from "effect"
import * as Http from "node:http"
import type { Duplex } from "node:stream"
import * as Auth from "./Auth.js"

/**
 * Routes outside the HttpApi groups that still need the token, matched by a router like the one that serves them
 * (it ignores case, trailing and duplicate slashes and decodes escapes), so no spelling of the path escapes the check.
 */
const protectedDocs = Effect.runSync(HttpRouter.toHttpApp(HttpRouter.empty.pipe(
  HttpRouter.all("/openapi.json", HttpServerResponse.empty()),
  HttpRouter.all("/docs", HttpServerResponse.empty())
)))
const isProtectedDocs = Effect.match(protectedDocs, { onFailure: () => false, onSuccess: () => true })

/** Deeper bodies are refused before decoding: a schema failure on one would be formatted recursively. */
export const MAX_JSON_DEPTH = 64

/** Whether JSON text nests arrays and objects deeper than `max`, found in one pass without parsing. */
export const jsonDeeperThan = (text: string, max: number): boolean => {
  if (text.length <= max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) {
      inString = true
    } else if (c === 91 || c === 123) {
      if (++depth > max) return true
    } else if (c === 93 || c === 125) {
      depth--
    }
  }
  return false
}

const isJsonType = (contentType: string) => {
  const semi = contentType.indexOf(";")
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === "application/json"
}

/** The classes of the typed errors the mapping answers with: the runtime's own, or a server's own of the same shape. */
export interface ErrorClasses<I, R, P> {
  readonly InvalidInput: new(props: { readonly message: string; readonly field?: string }) => I
  readonly RouteNotFound: new(props: { readonly method: string; readonly path: string; readonly message: string }) => R
  readonly PayloadTooLarge: new(props: { readonly limit_bytes: number; readonly message: string }) => P
}

const readable = <I>(classes: ErrorClasses<I, unknown, unknown>, error: HttpApiError.HttpApiDecodeError): I => {
  // An engine member that a request may not carry (an endpoint, a key reference): say why, not just "unexpected".
  const refused = error.issues.find((i) => i._tag === "Unexpected" && i.path.length === 2 && i.path[0] === "engine")
  if (refused !== undefined) return new classes.InvalidInput(Profiles.refusedEngineMember(String(refused.path[1])))
  const seen = new Set<string>()
  const parts: Array<string> = []
  let field: string | undefined
  for (const issue of error.issues) {
    const path = issue.path.join(".")
    // An optional field fails twice (as its type and as `undefined`): the first issue is the useful one.
    if (seen.has(path)) continue
    seen.add(path)
    if (path === "") {
      parts.push(issue._tag === "Type" ? "the request body must be a JSON object" : issue.message)
    } else {
      field ??= path
      parts.push(`${path}: ${issue.message}`)
    }
    if (parts.length === 3) break
  }
  return new classes.InvalidInput({
    message: parts.join("; ") || "invalid request",
    ...(field === undefined ? {} : { field })
  })
}

/** The path a `RouteNotFound` echoes: no query string, and no more than 200 characters of whatever was sent. */
const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200)
}

const isBodyTooLarge = (defect: unknown) =>
  defect instanceof HttpServerError.RequestError && defect.cause instanceof Error &&
  defect.cause.message === "maxBytes exceeded"

export interface ErrorMapping<I, R, P> {
  /** A body over the limit, refused by its `Content-Length` before it is read. */
  readonly tooLarge: P
  /** A chunked body: past the limit the platform's body reader destroys the socket, so a 413 could not be sent. */
  readonly lengthRequired: I
  /**
   * Turns what the platform reports in its own shapes into typed errors, so that every error body is
   * `{_tag, message, ...}`: schema failures become a readable `InvalidInput` (not a parse tree), unreadable or
   * oversized bodies `InvalidInput`/`PayloadTooLarge`, unknown routes `RouteNotFound`. Interruptions, typed
   * failures and other defects pass through (to `guard`).
   */
  readonly toApiError: (
    request: HttpServerRequest.HttpServerRequest
  ) => <E>(cause: Cause.Cause<E>) => Effect.Effect<never, E | I | R | P>
}

/** The error mapping of a server, over its own error classes and body limit; the runtime and the Backend share it. */
export const make = <I, R, P>(
  classes: ErrorClasses<I, R, P>,
  options: { readonly maxBodyBytes: number }
): ErrorMapping<I, R, P> => {
  const tooLarge = new classes.PayloadTooLarge({
    limit_bytes: options.maxBodyBytes,
    message: `the request body is larger than ${options.maxBodyBytes} bytes`
  })
  const lengthRequired = new classes.InvalidInput({
    message: "send the request body with a Content-Length header; chunked bodies are not accepted"
  })
  const toApiError = (request: HttpServerRequest.HttpServerRequest) =>
    <E>(cause: Cause.Cause<E>): Effect.Effect<never, E | I | R | P> => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      // The app's error type leaves them out, but the platform fails with its own errors at run time.
      const failure = Cause.failureOption(cause as Cause.Cause<unknown>)
      if (Option.isSome(failure)) {
        const error = failure.value
        if (error instanceof HttpApiError.HttpApiDecodeError) return Effect.fail(readable(classes, error))
        if (error instanceof HttpServerError.RouteNotFound) {
          const path = pathOf(request.url)
          return Effect.fail(
            new classes.RouteNotFound({ method: request.method, path, message: `no route for ${request.method} ${path}` })
          )
        }
        return Effect.failCause(cause)
      }
      const defect = Cause.dieOption(cause)
      if (Option.isSome(defect) && defect.value instanceof HttpServerError.RequestError) {
        return isBodyTooLarge(defect.value)
          ? Effect.fail(tooLarge)
          : Effect.fail(new classes.InvalidInput({ message: "the request body is not valid JSON" }))
      }
      return Effect.failCause(cause)
    }
  return { tooLarge, lengthRequired, toApiError }
}

/**
 * The runtime's API-level guard: the token on the docs routes, the body checks, and the typed errors of `make`, so
 * that every error body is `{_tag, message, ...}`.
 */
export const layer = (options: { readonly maxBodyBytes: number; readonly auth: Auth.AuthMode }) => {
  const verify = options.auth._tag === "None" ? undefined : Auth.verify(Auth.makeCheck(options.auth))
  const { lengthRequired, toApiError, tooLarge } = make({ InvalidInput, PayloadTooLarge, RouteNotFound }, options)
  const notJson = new InvalidInput({ message: "the request body must be JSON sent as Content-Type: application/json" })
  const tooDeep = new InvalidInput({ message: `the request body nests deeper than ${MAX_JSON_DEPTH} levels` })
  /** A body is JSON (an absent content type is read as JSON) and not absurdly nested; read once, then cached. */
  const checkBody = (request: HttpServerRequest.HttpServerRequest) => {
    const type = request.headers["content-type"]
    if (type !== undefined && !isJsonType(type)) return Effect.fail(notJson)
    return Effect.flatMap(
      Effect.orDie(request.text),
      (text) => (jsonDeeperThan(text, MAX_JSON_DEPTH) ? Effect.fail(tooDeep) : Effect.void)
    )
  }
  return HttpApiBuilder.middleware(RuntimeApi, (app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): HttpApp.Default<
      InvalidInput | PayloadTooLarge | RouteNotFound | Unauthorized
    > => {
      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > options.maxBodyBytes) return Effect.fail(tooLarge)
      // Past the limit the platform's body reader destroys the socket, so a 413 could not be sent: require a length.
      if (length === undefined && request.headers["transfer-encoding"] !== undefined) return Effect.fail(lengthRequired)
      const checked = length !== undefined && length !== "0" ? Effect.zipRight(checkBody(request), app) : app
      const handled = Effect.catchAllCause(checked, toApiError(request))
      return verify === undefined
        ? handled
        : Effect.flatMap(
          isProtectedDocs,
          (docs) => (docs ? Effect.zipRight(verify(request.headers.authorization), handled) : handled)
        )
    }))
}

/**
 * The outermost guard: whatever still escapes (a defect, an error no endpoint declares) is logged with its cause
 * and answered with `internalError` (a typed 500 `InternalError`), never as an empty 500.
 */
export const guardWith = (internalError: HttpServerResponse.HttpServerResponse) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
    Effect.catchAllCause(app, (cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : Effect.as(Effect.logError("request failed unexpectedly", cause), internalError))

/** The runtime's outermost guard (see `guardWith`). */
export const guard = guardWith(HttpServerResponse.unsafeJson(
  { _tag: "InternalError", message: "the runtime failed unexpectedly; the cause is in its log" } satisfies typeof InternalError.Encoded,
  { status: 500 }
))

const rawReply = (status: number, reason: string, body: object) => {
  const text = JSON.stringify(body)
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n` +
    `connection: close\r\n\r\n${text}`
}

/**
 * Answers what Node's HTTP parser refuses before any route sees it (a malformed request line or header, a lying
 * length, headers over the limit, a request that never completes) with a typed JSON error instead of Node's
 * empty-bodied default. Shared by the runtime and the Backend.
 */
export const onClientError = (error: Error & { readonly code?: string }, socket: Duplex): void => {
  const pending = (socket as { readonly _httpMessage?: { readonly headersSent?: boolean } })._httpMessage
  if (error.code === "ECONNRESET" || !socket.writable || pending?.headersSent === true) {
    socket.destroy()
    return
  }
  const limit = Http.maxHeaderSize
  socket.end(
    error.code === "HPE_HEADER_OVERFLOW"
      ? rawReply(431, "Request Header Fields Too Large", {
        _tag: "RequestHeadersTooLarge",
        message: `the request line and headers are larger than ${limit} bytes`,
        limit_bytes: limit
      })
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? rawReply(408, "Request Timeout", { _tag: "RequestTimeout", message: "the request was not received in time" })
        : rawReply(400, "Bad Request", { _tag: "InvalidInput", message: "the request is not valid HTTP/1.1" })
  )
}

const badExpectation = JSON.stringify({ _tag: "InvalidInput", message: "the Expect header supports only 100-continue" })

/**
 * A `node:http` server whose protocol-level refusals are typed errors too: `onClientError`, a `CONNECT` (no proxy
 * here; Node would close the socket without an answer) and an `Expect` other than `100-continue` (Node would send
 * an empty 417).
 */
export const createServer = (): Http.Server =>
  Http.createServer()
    .on("clientError", onClientError)
    .on("connect", (_request: Http.IncomingMessage, socket: Duplex) => {
      socket.end(rawReply(404, "Not Found", {
        _tag: "RouteNotFound",
        method: "CONNECT",
        path: "*",
        message: "no route for CONNECT: this server is not a proxy"
      }))
    })
    .on("checkExpectation", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      response.writeHead(400, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(badExpectation),
        connection: "close"
      })
      response.end(badExpectation)
    })
