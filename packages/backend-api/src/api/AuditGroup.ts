import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Authentication.js"
import { InternalError, InvalidInput } from "../Errors.js"
import { AuditAction, AuditPage } from "../Views.js"

export const AuditUrlParams = Schema.Struct({
  limit: Schema.optional(Schema.String),
  page_token: Schema.optional(Schema.String),
  runtime_id: Schema.optional(Schema.String),
  worker_id: Schema.optional(Schema.String),
  action: Schema.optional(AuditAction)
})

/** The audit trail of commands, newest first. */
export class AuditGroup extends HttpApiGroup.make("audit")
  .add(HttpApiEndpoint.get("page", "/api/audit").setUrlParams(AuditUrlParams).addSuccess(AuditPage))
  .addError(InvalidInput)
  .addError(InternalError)
  .middleware(Authentication) {}
