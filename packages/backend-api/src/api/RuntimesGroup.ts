import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Authentication } from "../Authentication.js"
import { InvalidInput, RuntimeNotFound } from "../Errors.js"
import { RuntimeList, RuntimeView } from "../Views.js"
import { RuntimePath } from "./common.js"

/** The registered runtimes with their health; never an endpoint or a credential. */
export class RuntimesGroup extends HttpApiGroup.make("runtimes")
  .add(
    HttpApiEndpoint.get("list", "/api/runtimes").addSuccess(RuntimeList)
      .annotate(OpenApi.Summary, "List the registered runtimes")
  )
  .add(
    HttpApiEndpoint.get("get", "/api/runtimes/:runtime_id").setPath(RuntimePath).addSuccess(RuntimeView)
      .annotate(OpenApi.Summary, "Get a runtime")
  )
  .addError(InvalidInput)
  .addError(RuntimeNotFound)
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The registered runtimes with their health; never an endpoint or a credential.") {}
