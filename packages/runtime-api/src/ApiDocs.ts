import { HttpApi, type HttpApiScalar, OpenApi } from "@effect/platform"
import { Domain } from "@yoi/worker-runtime/schema"
import { Context } from "effect"

/** Relative to the origin that serves the document, so generated clients and `/docs` call the server they came from. */
export const servers: ReadonlyArray<OpenApi.OpenAPISpecServer> = [
  { url: "/", description: "the server that serves this document" }
]

/**
 * `/docs` loads nothing from another origin: Scalar's script is inlined by `HttpApiScalar.layer`, and its default web
 * fonts (fetched from fonts.scalar.com) are off, so the page falls back to the system fonts.
 */
export const scalarConfig: HttpApiScalar.ScalarConfig = { withDefaultFonts: false }

const EVENT_SCHEMA = "RuntimeEvent"

/** Every error class that may never be sent (decode failures are answered as `InvalidInput`). */
const neverSent = new Set(["#/components/schemas/HttpApiDecodeError"])

type Json = Record<string, unknown>

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const refName = (ref: string) => ref.slice(ref.lastIndexOf("/") + 1)

/** `anyOf` without the never-sent errors and without repeats; a single member stands alone. */
const tidySchema = (schema: Json): Json | undefined => {
  if (!Array.isArray(schema.anyOf)) return neverSent.has(String(schema.$ref)) ? undefined : schema
  const seen = new Set<string>()
  const members = (schema.anyOf as Array<Json>).filter((member) => {
    const key = JSON.stringify(member)
    if (seen.has(key) || neverSent.has(String(member.$ref))) return false
    seen.add(key)
    return true
  })
  if (members.length === 0) return undefined
  if (members.length === 1) return members[0]
  return { ...schema, anyOf: members }
}

/** The names of the error schemas a response holds, for its description. */
const errorNames = (schema: Json): string =>
  (Array.isArray(schema.anyOf) ? (schema.anyOf as Array<Json>) : [schema])
    .map((s) => (typeof s.$ref === "string" ? refName(s.$ref) : "error"))
    .join(" or ")

const refsIn = (value: unknown, into: Set<string>) => {
  if (Array.isArray(value)) {
    for (const v of value) refsIn(v, into)
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") into.add(v)
      else refsIn(v, into)
    }
  }
}

/** Drops component schemas nothing refers to any more (the never-sent errors and what only they used). */
const dropUnreferenced = (spec: Record<string, any>) => {
  const schemas = spec.components.schemas as Record<string, unknown>
  for (;;) {
    const used = new Set<string>()
    refsIn({ ...spec, components: { ...spec.components, schemas: {} } }, used)
    for (const [name, schema] of Object.entries(schemas)) {
      const inner = new Set<string>()
      refsIn(schema, inner)
      for (const ref of inner) if (ref !== `#/components/schemas/${name}`) used.add(ref)
    }
    const unused = Object.keys(schemas).filter((name) => !used.has(`#/components/schemas/${name}`))
    if (unused.length === 0) return
    for (const name of unused) delete schemas[name]
  }
}

export interface TidyOptions {
  /** How an event stream's frames are described in its `text/event-stream` response. */
  readonly eventStream: string
  /** Paths that take no credentials and never answer 401 (the API-wide `Unauthorized` is dropped from them). */
  readonly unauthenticated: ReadonlyArray<string>
}

/**
 * Rewrites the generated document so that third-party tools accept it and it says only what the server sends:
 * - `HttpApiDecodeError`, which every Effect `HttpApi` declares but these servers never send (a decode failure is
 *   answered as `InvalidInput`), is removed, and so are repeated members of an error `anyOf`;
 * - the `unauthenticated` paths do not declare 401, and an operation without a request body does not declare 413
 *   (a conforming client sends none);
 * - each `text/event-stream` response's schema is the event union (`RuntimeEvent`, the JSON of each frame's `data`);
 * - `servers` is never empty.
 */
export const tidy = (options: TidyOptions) => (spec: Record<string, any>): Record<string, any> => {
  const open = new Set(options.unauthenticated)
  for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
    for (const op of Object.values(item)) {
      if (!isObject(op) || !isObject(op.responses)) continue
      const responses = op.responses as Record<string, Json>
      for (const [status, response] of Object.entries(responses)) {
        if ((status === "401" && open.has(path)) || (status === "413" && op.requestBody === undefined)) {
          delete responses[status]
          continue
        }
        const content = response.content as Record<string, Json> | undefined
        if (content === undefined) continue
        if (content["text/event-stream"] !== undefined) {
          content["text/event-stream"] = {
            schema: { $ref: `#/components/schemas/${EVENT_SCHEMA}`, description: options.eventStream }
          }
        }
        const body = content["application/json"]
        if (body === undefined || Number(status) < 400) continue
        const schema = tidySchema(body.schema as Json)
        if (schema === undefined) {
          delete responses[status]
          continue
        }
        body.schema = schema
        response.description = errorNames(schema)
      }
    }
  }
  if (!Array.isArray(spec.servers) || spec.servers.length === 0) spec.servers = [...servers]
  dropUnreferenced(spec)
  return spec
}

/** How both servers describe a `text/event-stream` response. */
export const eventStreamDescription = "Server-sent events. Each frame is `id: <cursor>`, `event: <kind>` and " +
  "`data: <RuntimeEvent JSON>`; comment lines are heartbeats. A stream opened with a cursor sends one `stream.live` " +
  "after its replay; a filtered stream gets `stream.bookmark` resume positions while quiet. The stream ends with " +
  "`stream.lagged` (resume from its cursor) or `stream.error` (whose data is the error alone: " +
  "`{_tag, message, resume_cursor?}`); a reader that stops reading is dropped and resumes from its last `id`."

/**
 * The annotations both servers' documents share: title, version, servers, the event union as a component, and
 * `tidy`. Apply with `HttpApi.annotateContext`.
 */
export const annotations = (options: {
  readonly title: string
  readonly version: string
  readonly description: string
  readonly eventStream: string
  readonly unauthenticated: ReadonlyArray<string>
}): Context.Context<never> =>
  Context.add(
    OpenApi.annotations({
      title: options.title,
      version: options.version,
      description: options.description,
      servers,
      transform: tidy(options)
    }),
    HttpApi.AdditionalSchemas,
    [Domain.RuntimeEvent]
  )
