import { FileSystem, HttpServerRequest } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Authentication, REQUEST_ID_HEADER } from "@yoi/backend-api/Authentication"
import { Config, Context, Data, Effect, Layer, Option, Redacted } from "effect"
import * as NodePath from "node:path"
import * as NodeCrypto from "node:crypto"
import { Unauthorized } from "@yoi/backend-api/Errors"
import * as Store from "./Store.js"

// The middleware tag and the caller it provides are part of the browser contract (`@yoi/backend-api`); this module
// implements them.
export {
  Authentication,
  Caller,
  type CallerShape,
  REQUEST_ID_HEADER,
  SESSION_COOKIE,
  sessionCookie
} from "@yoi/backend-api/Authentication"

/** The Backend's own token. Runtime credentials are separate and never reach a browser. */
export interface BackendTokenShape {
  readonly token: Redacted.Redacted<string>
  /**
   * True when the token was not configured (`YOI_BACKEND_TOKEN`) but generated: it is then printed in a login URL.
   * A token kept in the data directory stays generated on every later start.
   */
  readonly generated: boolean
  /** The file that keeps a generated token (mode 0600), when there is one. */
  readonly file?: string | undefined
}

/** The file in the data directory that keeps a generated Backend token across restarts. */
export const TOKEN_FILE = "backend-token"

const configuredToken = Config.option(Config.redacted("YOI_BACKEND_TOKEN")).pipe(
  Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>()),
  Effect.map(Option.filter((t) => Redacted.value(t).trim().length > 0))
)

const freshToken = () => NodeCrypto.randomBytes(24).toString("base64url")

/** The token kept in the data directory could not be read or written. Fails the start. */
export class TokenFileError extends Data.TaggedError("TokenFileError")<{ readonly message: string }> {}

export class BackendToken extends Context.Tag("@yoi/workspace-server/BackendToken")<BackendToken, BackendTokenShape>() {
  static readonly layer = (token: string): Layer.Layer<BackendToken> =>
    Layer.succeed(BackendToken, { token: Redacted.make(token), generated: false })

  /** `YOI_BACKEND_TOKEN`, or a random token generated at start. */
  static readonly layerConfig: Layer.Layer<BackendToken> = Layer.effect(
    BackendToken,
    Effect.map(configuredToken, Option.match({
      onNone: () => ({ token: Redacted.make(freshToken()), generated: true }),
      onSome: (token) => ({ token, generated: false })
    }))
  )

  /**
   * `YOI_BACKEND_TOKEN`, or the token in the file `YOI_BACKEND_TOKEN_FILE` names (shared by replicas), or the token
   * kept in `<dataDir>/backend-token` (mode 0600), generated and written there on
   * the first start so that the login link and `$YOI_BACKEND_TOKEN` stay valid across restarts.
   */
  static readonly layerDataDir = (
    dataDir: string
  ): Layer.Layer<BackendToken, TokenFileError, FileSystem.FileSystem> =>
    Layer.effect(
      BackendToken,
      Effect.gen(function*() {
        const configured = yield* configuredToken
        if (Option.isSome(configured)) return { token: configured.value, generated: false }
        const fs = yield* FileSystem.FileSystem
        // Replicas share one token: the same YOI_BACKEND_TOKEN, or a file every replica reads (a mounted secret).
        const sharedFile = yield* Config.option(Config.string("YOI_BACKEND_TOKEN_FILE")).pipe(
          Effect.orElseSucceed(() => Option.none<string>()),
          Effect.map(Option.filter((f) => f.trim().length > 0))
        )
        if (Option.isSome(sharedFile)) {
          const text = yield* fs.readFileString(sharedFile.value).pipe(
            Effect.mapError((e) =>
              new TokenFileError({ message: `cannot read YOI_BACKEND_TOKEN_FILE ${sharedFile.value}: ${e.message}` })
            )
          )
          if (text.trim().length === 0) {
            return yield* new TokenFileError({ message: `YOI_BACKEND_TOKEN_FILE ${sharedFile.value} is empty` })
          }
          return { token: Redacted.make(text.trim()), generated: false }
        }
        const file = NodePath.join(dataDir, TOKEN_FILE)
        const failed = (e: { readonly message: string }) =>
          new TokenFileError({ message: `cannot keep the Backend token in ${file}: ${e.message}` })
        const kept = yield* fs.readFileString(file).pipe(
          Effect.map((text) => Option.some(text.trim()).pipe(Option.filter((t) => t.length > 0))),
          Effect.catchTag("SystemError", (e) => e.reason === "NotFound" ? Effect.succeed(Option.none()) : Effect.fail(e)),
          Effect.mapError(failed)
        )
        if (Option.isSome(kept)) {
          yield* fs.chmod(file, 0o600).pipe(Effect.mapError(failed))
          return { token: Redacted.make(kept.value), generated: true, file }
        }
        const token = freshToken()
        yield* fs.writeFileString(file, `${token}\n`, { mode: 0o600 }).pipe(Effect.mapError(failed))
        return { token: Redacted.make(token), generated: true, file }
      })
    )
}

const digest = (value: string) => NodeCrypto.createHash("sha256").update(value, "utf8").digest()

/** Constant-time comparison (of digests, so lengths do not leak either). */
export const tokenMatches = (expected: Redacted.Redacted<string>, given: string): boolean =>
  given.length > 0 && NodeCrypto.timingSafeEqual(digest(Redacted.value(expected)), digest(given))

interface Session {
  readonly label: string
  readonly expiresAt: number
}

export const SESSION_TTL_SECONDS = 7 * 24 * 3600
const MAX_SESSIONS = 10_000

/** Browser sessions created by `GET /login?token=`; the cookie carries a random session id, never the token. */
export interface SessionsService {
  readonly create: Effect.Effect<string>
  readonly lookup: (id: string) => Effect.Effect<Option.Option<string>>
  /** Ends a session (sign-out); unknown ids are ignored. */
  readonly remove: (id: string) => Effect.Effect<void>
}

export class Sessions extends Context.Tag("@yoi/workspace-server/Sessions")<Sessions, SessionsService>() {
  static readonly layer: Layer.Layer<Sessions> = Layer.sync(Sessions, () => {
    const sessions = new Map<string, Session>()
    return {
      create: Effect.sync(() => {
        if (sessions.size >= MAX_SESSIONS) {
          const oldest = sessions.keys().next()
          if (oldest.done !== true) sessions.delete(oldest.value)
        }
        const id = NodeCrypto.randomBytes(32).toString("base64url")
        sessions.set(id, {
          label: NodeCrypto.randomBytes(4).toString("hex"),
          expiresAt: Date.now() + SESSION_TTL_SECONDS * 1000
        })
        return id
      }),
      lookup: (id) =>
        Effect.sync(() => {
          const session = sessions.get(id)
          if (session === undefined) return Option.none()
          if (session.expiresAt <= Date.now()) {
            sessions.delete(id)
            return Option.none()
          }
          return Option.some(session.label)
        }),
      remove: (id) => Effect.sync(() => void sessions.delete(id))
    }
  })

  /**
   * Sessions in the Backend's database, so that every replica on it knows them (and a restart keeps them). The
   * table holds a SHA-256 of each session id, never the id: reading the database does not let anyone sign in.
   * A store failure refuses the session (a lookup answers none) and is logged.
   */
  static readonly layerSql: Layer.Layer<Sessions, never, SqlClient.SqlClient> = Layer.effect(
    Sessions,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = Store.table(sql, "sessions")
      const hash = (id: string) => NodeCrypto.createHash("sha256").update(id, "utf8").digest("hex")
      return {
        create: Effect.gen(function*() {
          const id = NodeCrypto.randomBytes(32).toString("base64url")
          const now = Date.now()
          yield* sql`DELETE FROM ${table} WHERE expires_at <= ${now}`
          yield* sql`INSERT INTO ${table} ${
            sql.insert({
              id_hash: hash(id),
              label: NodeCrypto.randomBytes(4).toString("hex"),
              expires_at: now + SESSION_TTL_SECONDS * 1000
            })
          }`
          return id
        }).pipe(
          Effect.tapError((e) => Effect.logError("could not store a session", e)),
          Effect.orDie
        ),
        lookup: (id) =>
          sql<{ readonly label: string }>`SELECT label FROM ${table} WHERE id_hash = ${hash(id)} AND expires_at > ${
            Date.now()
          }`.pipe(
            Effect.map((rows) => Option.fromNullable(rows[0]?.label)),
            Effect.catchAll((e) => Effect.as(Effect.logError("could not read the sessions", e), Option.none()))
          ),
        remove: (id) =>
          sql`DELETE FROM ${table} WHERE id_hash = ${hash(id)}`.pipe(
            Effect.catchAll((e) => Effect.logError("could not remove a session", e)),
            Effect.asVoid
          )
      }
    })
  )
}

const requestId = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => request.headers[REQUEST_ID_HEADER] ?? NodeCrypto.randomUUID()
)

const unsafeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"])

/**
 * A cookie-authenticated command must come from this Backend's own pages: SameSite=Strict already keeps the cookie
 * off cross-site requests, a mismatching `Origin` is refused as well, and the command must declare a JSON body
 * (`Content-Type: application/json`, even when it has no body), which no HTML form can send without a preflight.
 */
const sameOrigin = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
  if (!unsafeMethods.has(request.method)) return true
  const origin = request.headers.origin
  if (origin === undefined) return true
  const host = request.headers.host
  return host !== undefined && URL.canParse(origin) && new URL(origin).host === host
})

const declaresJson = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
  !unsafeMethods.has(request.method) ||
  (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() === "application/json")

const refused = new Unauthorized({
  message: "authentication required: send Authorization: Bearer <backend token>, or open /login?token=<backend token>"
})

export const layer: Layer.Layer<Authentication, never, BackendToken | Sessions> = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const { token } = yield* BackendToken
    const sessions = yield* Sessions
    return {
      bearer: (given) =>
        tokenMatches(token, Redacted.value(given))
          ? Effect.map(requestId, (id) => ({ actor: "token", requestId: id }))
          : Effect.fail(refused),
      cookie: (given) =>
        Effect.gen(function*() {
          const label = yield* sessions.lookup(Redacted.value(given))
          if (Option.isNone(label)) return yield* refused
          if (!(yield* sameOrigin)) {
            return yield* new Unauthorized({ message: "a cross-origin request cannot use the session cookie" })
          }
          if (!(yield* declaresJson)) {
            return yield* new Unauthorized({
              message: "a command sent with the session cookie must have Content-Type: application/json"
            })
          }
          return { actor: `session:${label.value}`, requestId: yield* requestId }
        })
    }
  })
)
