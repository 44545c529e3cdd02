import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { Unauthorized } from "../Errors.js"

/** The routes that need no authentication: the login that sets the session cookie, and liveness. */
export class SessionGroup extends HttpApiGroup.make("session")
  .add(HttpApiEndpoint.get("login", "/login")
    .setUrlParams(Schema.Struct({ token: Schema.optional(Schema.String) }))
    .addSuccess(HttpApiSchema.Empty(303))
    .addError(Unauthorized))
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))) {}
