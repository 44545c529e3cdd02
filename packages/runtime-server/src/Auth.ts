import { HttpServerRequest } from "@effect/platform"
import { Authorization, Unauthorized } from "@yoi/runtime-api"
import { Effect, Layer, Redacted } from "effect"
import { timingSafeEqual } from "node:crypto"

/** How requests are authenticated: a bearer token, or nothing (only ever on a loopback address). */
export type AuthMode =
  | { readonly _tag: "Token"; readonly token: Redacted.Redacted }
  | { readonly _tag: "None" }

export const token = (value: Redacted.Redacted): AuthMode => ({ _tag: "Token", token: value })
export const none: AuthMode = { _tag: "None" }

/**
 * A constant-time check of a presented token: `timingSafeEqual` over the bytes. A presented token of another
 * length is rejected after a comparison of the same cost, so only the token's length could leak, never its content.
 */
export const makeCheck = (mode: AuthMode): (presented: string) => boolean => {
  if (mode._tag === "None") return () => true
  const expected = Buffer.from(Redacted.value(mode.token), "utf8")
  return (presented) => {
    const given = Buffer.from(presented, "utf8")
    return given.length === expected.length
      ? timingSafeEqual(given, expected)
      : !timingSafeEqual(expected, expected)
  }
}

/** `true` when an `Authorization` header carries the right bearer token (always, without auth). */
export const makeHeaderCheck = (mode: AuthMode): (header: string | undefined) => boolean => {
  if (mode._tag === "None") return () => true
  const check = makeCheck(mode)
  return (header) =>
    header !== undefined && header.length > 7 && header.slice(0, 7).toLowerCase() === "bearer " &&
    check(header.slice(7))
}

const missing = new Unauthorized({ message: "a bearer token is required (Authorization: Bearer <token>)" })
const wrong = new Unauthorized({ message: "the bearer token is not valid for this runtime" })

/** Fails with `Unauthorized` unless the request carries the right bearer token; a header without `Bearer ` fails. */
export const verify = (check: (presented: string) => boolean) => (header: string | undefined) =>
  header === undefined || header === ""
    ? Effect.fail(missing)
    : header.length > 7 && header.slice(0, 7).toLowerCase() === "bearer " && check(header.slice(7))
      ? Effect.void
      : Effect.fail(wrong)

/** The `Authorization` middleware of `RuntimeApi`. */
export const layer = (mode: AuthMode): Layer.Layer<Authorization> => {
  if (mode._tag === "None") return Layer.succeed(Authorization, { bearer: () => Effect.void })
  const check = verify(makeCheck(mode))
  return Layer.succeed(Authorization, {
    bearer: () => Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => check(request.headers.authorization))
  })
}
