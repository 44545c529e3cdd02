import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Unauthorized } from "../Errors.js"

/** The routes that need no authentication: the login that sets the session cookie, and liveness. */
export class SessionGroup extends HttpApiGroup.make("session")
  .add(HttpApiEndpoint.get("login", "/login")
    .setUrlParams(Schema.Struct({ token: Schema.optional(Schema.String) }))
    .addSuccess(HttpApiSchema.Empty(303))
    .addError(Unauthorized)
    .annotate(OpenApi.Summary, "Log in with the Backend token")
    .annotate(OpenApi.Description, "Sets the session cookie and redirects (303) to the console."))
  .add(
    HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
      .annotate(OpenApi.Summary, "Liveness probe")
  )
  .annotate(OpenApi.Description, "The routes that need no authentication.") {}
