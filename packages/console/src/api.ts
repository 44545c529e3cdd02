import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { BrowserApi } from "@yoi/backend-api/BrowserApi"
import { Effect, Either, ManagedRuntime } from "effect"

// Every call to the Backend goes through the client derived from `BrowserApi`, over `fetch` with the session
// cookie. A command (anything but GET) always declares a JSON body, which the Backend requires of cookie callers.

const runtime = ManagedRuntime.make(FetchHttpClient.layer)

const declareJson = HttpClient.mapRequest((request) =>
  request.method === "GET" || request.method === "HEAD" || request.body._tag !== "Empty"
    ? request
    : HttpClientRequest.setHeader(request, "content-type", "application/json"))

const makeClient = HttpApiClient.make(BrowserApi, {
  baseUrl: globalThis.location?.origin,
  transformClient: declareJson
})

export type Client = Effect.Effect.Success<typeof makeClient>

const client: Promise<Client> = runtime.runPromise(makeClient)

/** A failure as the console shows it: the Backend's typed error (its `_tag` and message), or what went wrong. */
export interface Problem {
  readonly tag: string
  readonly message: string
}

export type Result<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problem: Problem }

const signedOutListeners = new Set<() => void>()

/** Called when any call answers `Unauthorized`: the session ended, show the sign-in form. */
export const onSignedOut = (listener: () => void): (() => void) => {
  signedOutListeners.add(listener)
  return () => void signedOutListeners.delete(listener)
}

const toProblem = (error: unknown): Problem => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const tag = String(error._tag)
    const message = "message" in error && typeof error.message === "string" ? error.message : ""
    if (tag === "RequestError") return { tag: "Offline", message: "The Backend cannot be reached. Is it running?" }
    if (tag === "ResponseError") {
      const status = "response" in error ? (error.response as { status?: number }).status : undefined
      return { tag: "UnexpectedResponse", message: `The Backend answered an unexpected ${status ?? ""} response.` }
    }
    if (tag === "ParseError") return { tag, message: "The Backend answered something this console cannot read." }
    return { tag, message }
  }
  return { tag: "Unknown", message: String(error) }
}

/** Runs one call of the derived client; never throws. */
export const call = async <A, E>(f: (client: Client) => Effect.Effect<A, E>): Promise<Result<A>> => {
  const c = await client
  const either = await runtime.runPromise(Effect.either(f(c)))
  if (Either.isRight(either)) return { ok: true, value: either.right }
  const problem = toProblem(either.left)
  if (problem.tag === "Unauthorized") for (const listener of signedOutListeners) listener()
  return { ok: false, problem }
}

const words: Record<string, string> = {
  WorkerBusy: "This worker is still answering. Wait for the reply, or cancel it.",
  WorkerStopped: "This worker is stopped. Restore it to talk to it again.",
  WorkerStateConflict: "The worker's status does not allow that now (stop it before deleting it).",
  WorkerNotFound: "This worker does not exist (any more).",
  WorkerAlreadyExists: "A worker with that id already exists.",
  RuntimeNotFound: "No runtime with that id is registered.",
  RuntimeUnavailable: "The runtime cannot be reached right now.",
  UpstreamTimeout: "The runtime did not answer in time.",
  Forbidden: "The Backend's policy does not allow that on this runtime.",
  ScopeNotPermitted: "That scope is not permitted on this runtime.",
  ScopeConflict: "That scope overlaps another worker's.",
  UnsupportedOperation: "This runtime does not support that.",
  InvalidInput: "The request was not accepted.",
  PayloadTooLarge: "That is too large to send.",
  Unauthorized: "You are signed out.",
  Offline: "The Backend cannot be reached."
}

/** A problem in words a person understands, with the Backend's own message as the detail. */
export const describe = (problem: Problem): string => {
  const plain = words[problem.tag]
  if (plain === undefined) return problem.message || problem.tag
  return problem.message.length > 0 && problem.message !== plain ? `${plain} (${problem.message})` : plain
}
