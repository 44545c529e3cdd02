/**
 * The error catalogues (docs/errors.md, docs/backend.md): every `_tag` a server may answer with, and its one status.
 * A fuzzed request passes when its answer is one of these with the matching status and a readable message.
 */
import { type Catalogue, runtimeCatalogue } from "@yoi/runtime-server/testing"
import { type RawReply, parseJson } from "./http.js"

export type { Catalogue }
export { runtimeCatalogue }

/** The Backend's catalogue: the runtime's plus its own tags. */
export const backendCatalogue: Catalogue = new Map([
  ...runtimeCatalogue,
  ["Forbidden", 403],
  ["RuntimeNotFound", 404],
  ["UpstreamTimeout", 504]
])

export interface Expectation {
  /** Statuses below 300 are acceptable (a read whose random parameters happen to be valid). */
  readonly success?: boolean | undefined
  /** Only these tags are acceptable (default: any 4xx of the catalogue). */
  readonly tags?: ReadonlyArray<string> | undefined
  /** Typed 5xx answers of the catalogue (other than `InternalError`) are acceptable: a remote that is down. */
  readonly serverErrors?: boolean | undefined
  /** A 400 with no body is acceptable (a refusal Node's HTTP parser makes before any handler runs). */
  readonly emptyBodyAllowed?: boolean | undefined
}

/** Why an answer breaks the contract, or undefined when it keeps it. */
export const violation = (reply: RawReply, catalogue: Catalogue, expect: Expectation = {}): string | undefined => {
  if (reply.timedOut) return `no answer within the timeout (a hang) after ${reply.ms.toFixed(0)} ms`
  if (reply.status === 0) return `the connection ended without an answer (${reply.error ?? "closed"})`
  if (reply.status < 300) return expect.success === true ? undefined : `accepted with ${reply.status}: ${reply.body.slice(0, 200)}`
  if (reply.status < 400 || (reply.status >= 500 && expect.serverErrors !== true) || reply.status === 500) {
    return `answered ${reply.status}: ${reply.body.slice(0, 300)}`
  }
  if (expect.emptyBodyAllowed === true && reply.status === 400 && reply.body === "") return undefined
  const body = parseJson(reply.body) as { _tag?: unknown; message?: unknown } | undefined
  if (body === undefined || typeof body !== "object" || body === null) {
    return `${reply.status} without a JSON error body: ${JSON.stringify(reply.body.slice(0, 200))}`
  }
  if (typeof body._tag !== "string" || !catalogue.has(body._tag)) return `${reply.status} with an unknown _tag: ${reply.body.slice(0, 200)}`
  if (catalogue.get(body._tag) !== reply.status) return `${body._tag} answered with ${reply.status}, not ${catalogue.get(body._tag)}`
  if (typeof body.message !== "string" || body.message.length === 0) return `${body._tag} without a message`
  if (expect.tags !== undefined && !expect.tags.includes(body._tag)) {
    return `expected one of ${expect.tags.join(", ")}, got ${body._tag}: ${String(body.message).slice(0, 200)}`
  }
  return undefined
}
