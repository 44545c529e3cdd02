import type { Domain } from "@yoi/worker-runtime"
import { Context, Effect, Layer } from "effect"
import type { CallerShape } from "./Auth.js"
import type { ResolvedConfig } from "./Config.js"
import { Forbidden } from "@yoi/backend-api/Errors"
import type { AuditAction } from "@yoi/backend-api/Views"

export interface RuntimeRules {
  /** Commands are refused with `Forbidden` (and audited as denied). */
  readonly readOnly: boolean
  /** The runtime is not listed and answers `RuntimeNotFound`, as if it were not registered. */
  readonly hidden: boolean
  /** Whether a browser may create workers here. */
  readonly allowCreate?: boolean | undefined
  /** Tools a browser may grant here; absent: every tool the runtime offers. */
  readonly grantableTools?: ReadonlyArray<string> | undefined
}

/** Decides, per runtime, what a caller may see and which commands it may run. */
export interface PolicyService {
  readonly visible: (caller: CallerShape, runtimeId: string) => boolean
  readonly readOnly: (runtimeId: string) => boolean
  readonly authorize: (caller: CallerShape, runtimeId: string, action: AuditAction) => Effect.Effect<void, Forbidden>
  /** Whether this create may happen here: creates allowed, and every requested tool grantable by browsers. */
  readonly authorizeCreate: (
    caller: CallerShape,
    runtimeId: string,
    spec: Domain.CreateWorker
  ) => Effect.Effect<void, Forbidden>
}

export class Policy extends Context.Tag("@yoi/workspace-server/Policy")<Policy, PolicyService>() {}

const open: RuntimeRules = { readOnly: false, hidden: false }

export const make = (rules: ReadonlyMap<string, RuntimeRules>): PolicyService => {
  const rulesOf = (runtimeId: string) => rules.get(runtimeId) ?? open
  return {
    visible: (_caller, runtimeId) => !rulesOf(runtimeId).hidden,
    readOnly: (runtimeId) => rulesOf(runtimeId).readOnly,
    authorize: (_caller, runtimeId, action) =>
      rulesOf(runtimeId).readOnly
        ? Effect.fail(new Forbidden({
          runtime_id: runtimeId,
          action,
          message: `runtime ${runtimeId} is read-only: ${action} is not allowed`
        }))
        : Effect.void,
    authorizeCreate: (_caller, runtimeId, spec) => {
      const rules = rulesOf(runtimeId)
      if (rules.allowCreate === false) {
        return Effect.fail(new Forbidden({
          runtime_id: runtimeId,
          action: "create",
          message: `creating workers on runtime ${runtimeId} is not allowed`
        }))
      }
      const grantable = rules.grantableTools
      const refused = (spec.tools ?? []).filter((t) => grantable !== undefined && !grantable.includes(t))
      return refused.length === 0 ? Effect.void : Effect.fail(new Forbidden({
        runtime_id: runtimeId,
        action: "create",
        message: `the Backend does not let browsers grant ${refused.join(", ")} on runtime ${runtimeId}` +
          (rules.grantableTools!.length > 0 ? ` (grantable: ${rules.grantableTools!.join(", ")})` : "")
      }))
    }
  }
}

/** The rules written in the config file (`read_only`, `hidden` on each runtime entry). */
export const rulesFromConfig = (config: ResolvedConfig): ReadonlyMap<string, RuntimeRules> => {
  const rules = new Map<string, RuntimeRules>()
  if (config.embedded !== undefined) {
    rules.set(config.embedded.runtime_id, {
      readOnly: config.embedded.read_only ?? false,
      hidden: config.embedded.hidden ?? false,
      allowCreate: config.embedded.allow_create,
      grantableTools: config.embedded.grantable_tools
    })
  }
  for (const remote of config.remotes) {
    rules.set(remote.runtime_id, {
      readOnly: remote.read_only ?? false,
      hidden: remote.hidden ?? false,
      allowCreate: remote.allow_create,
      grantableTools: remote.grantable_tools
    })
  }
  if (config.legacyPods !== undefined) {
    rules.set(config.legacyPods.runtime_id, { readOnly: false, hidden: config.legacyPods.hidden ?? false })
  }
  return rules
}

export const layer = (rules: ReadonlyMap<string, RuntimeRules>): Layer.Layer<Policy> =>
  Layer.succeed(Policy, make(rules))

export const layerConfig = (config: ResolvedConfig): Layer.Layer<Policy> => layer(rulesFromConfig(config))
