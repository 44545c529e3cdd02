import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Authentication } from "../Authentication.js"
import { InvalidInput, RuntimeNotFound } from "../Errors.js"
import { RuntimeList, RuntimeView } from "../Views.js"
import { RuntimePath } from "./common.js"

/** The registered runtimes with their health; never an endpoint or a credential. */
export class RuntimesGroup extends HttpApiGroup.make("runtimes")
  .add(HttpApiEndpoint.get("list", "/api/runtimes").addSuccess(RuntimeList))
  .add(HttpApiEndpoint.get("get", "/api/runtimes/:runtime_id").setPath(RuntimePath).addSuccess(RuntimeView))
  .addError(InvalidInput)
  .addError(RuntimeNotFound)
  .middleware(Authentication) {}
