import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

// These errors exist only on the wire, so their status is part of their schema (as with HttpApiDecodeError).

/** The bearer token is missing or wrong. HTTP 401. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 401 })) {}

/** The request body is larger than the runtime accepts. HTTP 413. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit_bytes: Schema.Number,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 413 })) {}

/** No route matches the method and path. HTTP 404. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  method: Schema.String,
  path: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

/** A bug or an unexpected failure in the runtime; the cause is logged there, never sent. HTTP 500. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 500 })) {}

/**
 * The request line, headers or body did not arrive in time. HTTP 408. Sent by the HTTP parser before any route runs,
 * so it can answer any request.
 */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 408 })) {}

/** The request line and headers are over the server's limit. HTTP 431, sent before any route runs. */
export class RequestHeadersTooLarge extends Schema.TaggedError<RequestHeadersTooLarge>()("RequestHeadersTooLarge", {
  limit_bytes: Schema.Number,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 431 })) {}
