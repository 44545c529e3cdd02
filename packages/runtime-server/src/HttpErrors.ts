import {
  HttpApiBuilder,
  HttpApiError,
  type HttpApp,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { type InternalError, PayloadTooLarge, RouteNotFound, RuntimeApi, type Unauthorized } from "@yoi/runtime-api"
import { InvalidInput } from "@yoi/worker-runtime"
import { Cause, Effect, Option } from "effect"
import * as Auth from "./Auth.js"

/** Routes outside the HttpApi groups that still need the token. */
const protectedDocs = new Set(["/openapi.json", "/docs"])

const readable = (error: HttpApiError.HttpApiDecodeError): InvalidInput => {
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
  return new InvalidInput({ message: parts.join("; ") || "invalid request", ...(field === undefined ? {} : { field }) })
}

const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

const isBodyTooLarge = (defect: unknown) =>
  defect instanceof HttpServerError.RequestError && defect.cause instanceof Error &&
  defect.cause.message === "maxBytes exceeded"

/**
 * Turns what the platform reports in its own shapes into the API's typed errors, so that every error body is
 * `{_tag, message, ...}`: schema failures become a readable `InvalidInput` (not a parse tree), unreadable or
 * oversized bodies `InvalidInput`/`PayloadTooLarge`, unknown routes `RouteNotFound`.
 */
export const layer = (options: { readonly maxBodyBytes: number; readonly auth: Auth.AuthMode }) => {
  const verify = options.auth._tag === "None" ? undefined : Auth.verify(Auth.makeCheck(options.auth))
  const tooLarge = new PayloadTooLarge({
    limit_bytes: options.maxBodyBytes,
    message: `the request body is larger than ${options.maxBodyBytes} bytes`
  })
  const lengthRequired = new InvalidInput({
    message: "send the request body with a Content-Length header; chunked bodies are not accepted"
  })
  const toApiError = (request: HttpServerRequest.HttpServerRequest) =>
    (cause: Cause.Cause<never>): Effect.Effect<never, InvalidInput | PayloadTooLarge | RouteNotFound> => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      // The app's error type says never, but the platform fails with its own errors at run time.
      const failure = Cause.failureOption(cause as Cause.Cause<unknown>)
      if (Option.isSome(failure)) {
        const error = failure.value
        if (error instanceof HttpApiError.HttpApiDecodeError) return Effect.fail(readable(error))
        if (error instanceof HttpServerError.RouteNotFound) {
          const path = pathOf(request.url)
          return Effect.fail(new RouteNotFound({
            method: request.method,
            path,
            message: `no route for ${request.method} ${path}`
          }))
        }
        return Effect.failCause(cause)
      }
      const defect = Cause.dieOption(cause)
      if (Option.isSome(defect) && defect.value instanceof HttpServerError.RequestError) {
        return isBodyTooLarge(defect.value)
          ? Effect.fail(tooLarge)
          : Effect.fail(new InvalidInput({ message: "the request body is not valid JSON" }))
      }
      return Effect.failCause(cause)
    }
  return HttpApiBuilder.middleware(RuntimeApi, (app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): HttpApp.Default<
      InvalidInput | PayloadTooLarge | RouteNotFound | Unauthorized
    > => {
      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > options.maxBodyBytes) return Effect.fail(tooLarge)
      // Past the limit the platform's body reader destroys the socket, so a 413 could not be sent: require a length.
      if (length === undefined && request.headers["transfer-encoding"] !== undefined) return Effect.fail(lengthRequired)
      const handled = Effect.catchAllCause(app, toApiError(request))
      return verify !== undefined && protectedDocs.has(pathOf(request.url))
        ? Effect.zipRight(verify(request.headers.authorization), handled)
        : handled
    }))
}

const internalError = HttpServerResponse.unsafeJson(
  { _tag: "InternalError", message: "the runtime failed unexpectedly; the cause is in its log" } satisfies typeof InternalError.Encoded,
  { status: 500 }
)

/**
 * The outermost guard: whatever still escapes (a defect, an error no endpoint declares) is logged with its cause
 * and answered as a typed 500 `InternalError`, never as an empty 500.
 */
export const guard = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.catchAllCause(app, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>)
      : Effect.as(Effect.logError("request failed unexpectedly", cause), internalError))
