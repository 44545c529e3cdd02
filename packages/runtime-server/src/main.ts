import { NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import * as Cli from "./Cli.js"

Cli.layer(process.argv.slice(2)).pipe(
  Layer.launch,
  Cli.reportStartupFailure,
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
