import { FileSystem } from "@effect/platform"
import { Domain, EventBus, Ids } from "@yoi/worker-runtime"
import { Effect, Either, Option, Schema, Stream } from "effect"
import * as NodePath from "node:path"
import * as Errors from "@yoi/backend-api/Errors"
import type { RuntimeHandle } from "./RuntimeHandle.js"
import type * as Views from "@yoi/backend-api/Views"

/** The `stream.live` of a runtime with no events: no position (an empty cursor), nothing replayed. */
const liveAtOnce = (runtimeId: string) =>
  EventBus.liveEvent({ runtimeId, cursor: "", seq: 0, message: "", live: { cursor: "", seq: 0 } }, 0)

// The on-disk format of the older pod runner: `<dir>/<name>/metadata.json` per pod and the allocation table
// `<dir>/workers.json`. Fields this adapter does not show (sockets, session ids, workspace roots, scopes) are read
// only so that a malformed file is recognised; none of them reaches a browser.

export const PodMetadata = Schema.Struct({
  worker_name: Schema.String,
  active: Schema.optional(Schema.NullOr(Schema.Struct({
    session_id: Schema.String,
    segment_id: Schema.optional(Schema.NullOr(Schema.String))
  }))),
  workspace_root: Schema.optional(Schema.NullOr(Schema.String))
})
export type PodMetadata = typeof PodMetadata.Type

export const Allocation = Schema.Struct({
  worker_name: Schema.String,
  pid: Schema.Int,
  socket: Schema.optional(Schema.NullOr(Schema.String)),
  scope_allow: Schema.optional(Schema.Array(Schema.Unknown)),
  scope_deny: Schema.optional(Schema.Array(Schema.Unknown)),
  delegated_from: Schema.optional(Schema.NullOr(Schema.String)),
  segment_id: Schema.optional(Schema.NullOr(Schema.String))
})
export type Allocation = typeof Allocation.Type

export const AllocationTable = Schema.Struct({ allocations: Schema.Array(Allocation) })

const decodeMetadata = Schema.decodeUnknownEither(Schema.parseJson(PodMetadata))
const decodeTable = Schema.decodeUnknownEither(Schema.parseJson(AllocationTable))
const isWorkerId = Schema.is(Ids.WorkerId)

/** Whether a process runs: signal 0 checks existence; `EPERM` means it runs under another user. */
export const processAlive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  const probe = Either.try(() => process.kill(pid, 0))
  return Either.isRight(probe) || (probe.left as NodeJS.ErrnoException).code === "EPERM"
}

export interface LegacyPodsOptions {
  readonly runtimeId: string
  readonly displayName?: string | undefined
  readonly dir: string
  /** Injected only to let tests choose; the default asks the kernel. */
  readonly isAlive?: ((pid: number) => boolean) | undefined
}

interface Pod {
  readonly name: string
  readonly modifiedAt: string
  readonly allocation: Allocation | undefined
}

const encodeToken = (id: string) => Buffer.from(`l:${id}`).toString("base64url")
const decodeToken = (token: string) => {
  const text = Buffer.from(token, "base64url").toString("utf8")
  return text.startsWith("l:") ? Option.some(text.slice(2)) : Option.none()
}

/**
 * The legacy pod adapter: a read-only view of a pod metadata directory, listing workers with liveness from the
 * allocation table's pids. It is a compatibility adapter, never the authority: every command answers
 * `UnsupportedOperation`, and it has no transcript and no events.
 */
export const make = (options: LegacyPodsOptions): Effect.Effect<RuntimeHandle, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { runtimeId, dir } = options
    const displayName = options.displayName ?? `${runtimeId} (legacy pods)`
    const isAlive = options.isAlive ?? processAlive
    // Each malformed file is reported once, not at every scan.
    const warned = new Set<string>()
    const warnOnce = (key: string, message: string) =>
      warned.has(key) ? Effect.void : Effect.zipRight(Effect.sync(() => warned.add(key)), Effect.logWarning(message))
    const unreadable = new Errors.RuntimeUnavailable({
      runtime_id: runtimeId,
      message: `the legacy pod metadata of ${runtimeId} cannot be read`
    })

    const readAllocations = Effect.gen(function*() {
      const file = NodePath.join(dir, "workers.json")
      const exists = yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))
      if (!exists) return new Map<string, Allocation>()
      const text = yield* fs.readFileString(file).pipe(Effect.mapError(() => unreadable))
      const table = decodeTable(text)
      if (Either.isLeft(table)) {
        yield* warnOnce("workers.json", "legacy pods: the allocation table is malformed; liveness is unknown")
        return new Map<string, Allocation>()
      }
      return new Map(table.right.allocations.map((a) => [a.worker_name, a] as const))
    })

    const readPod = (entry: string, allocations: Map<string, Allocation>) =>
      Effect.gen(function*() {
        const file = NodePath.join(dir, entry, "metadata.json")
        const text = yield* fs.readFileString(file).pipe(Effect.option)
        if (Option.isNone(text)) return Option.none<Pod>()
        const metadata = decodeMetadata(text.value)
        if (Either.isLeft(metadata)) {
          yield* warnOnce(entry, `legacy pods: the metadata of pod ${JSON.stringify(entry)} is malformed; skipped`)
          return Option.none<Pod>()
        }
        const name = metadata.right.worker_name
        if (!isWorkerId(name)) {
          yield* warnOnce(entry, `legacy pods: worker name ${JSON.stringify(name.slice(0, 100))} is not a valid id; skipped`)
          return Option.none<Pod>()
        }
        const info = yield* fs.stat(file).pipe(Effect.option)
        const modified = Option.flatMap(info, (i) => i.mtime)
        return Option.some<Pod>({
          name,
          modifiedAt: Option.getOrElse(Option.map(modified, (d) => d.toISOString()), () => new Date(0).toISOString()),
          allocation: allocations.get(name)
        })
      })

    const scan = Effect.gen(function*() {
      const entries = yield* fs.readDirectory(dir).pipe(Effect.mapError(() => unreadable))
      const allocations = yield* readAllocations
      const pods = yield* Effect.forEach(entries.filter((e) => e !== "workers.json"), (e) => readPod(e, allocations))
      const byName = new Map<string, Pod>()
      for (const pod of pods) if (Option.isSome(pod)) byName.set(pod.value.name, pod.value)
      return Array.from(byName.values()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    })

    const liveness = (pod: Pod): Views.Liveness =>
      pod.allocation === undefined ? "inactive" : isAlive(pod.allocation.pid) ? "alive" : "stale"

    const view = (pod: Pod): Views.WorkerView => {
      const live = liveness(pod)
      const delegatedFrom = pod.allocation?.delegated_from ?? undefined
      return {
        runtime_id: Ids.RuntimeId.make(runtimeId),
        worker_id: Ids.WorkerId.make(pod.name),
        display_name: pod.name,
        display_ref: `${pod.name}@${runtimeId}`,
        status: live === "alive" ? "idle" : "stopped",
        engine: { profile: "legacy", provider: "legacy" },
        tools: [],
        ...(delegatedFrom === undefined || delegatedFrom === null
          ? {}
          : { metadata: { delegated_from: delegatedFrom } }),
        created_at: pod.modifiedAt,
        updated_at: pod.modifiedAt,
        usage: Domain.emptyUsage,
        transcript_length: 0,
        compatibility: true,
        liveness: live
      }
    }

    const unsupported = (operation: string) =>
      Effect.fail(new Errors.UnsupportedOperation({
        runtime_id: runtimeId,
        operation,
        message: `runtime ${runtimeId} is a read-only compatibility view of legacy pods; ${operation} is not supported`
      }))

    const getWorker = (workerId: string) =>
      Effect.flatMap(scan, (pods) => {
        const pod = pods.find((p) => p.name === workerId)
        return pod === undefined
          ? Effect.fail(Errors.WorkerNotFound.of(runtimeId, workerId))
          : Effect.succeed(view(pod))
      })

    const handle: RuntimeHandle = {
      runtimeId,
      kind: "legacy",
      displayName,
      describe: scan.pipe(
        Effect.map((pods) => {
          const views = pods.map(view)
          const alive = views.filter((w) => w.status === "idle").length
          return {
            runtime_id: runtimeId,
            display_name: displayName,
            kind: "legacy" as const,
            compatibility: true,
            status: "online" as const,
            last_seen_at: new Date().toISOString(),
            counts: { idle: alive, running: 0, stopped: views.length - alive, total: views.length }
          }
        }),
        Effect.orElseSucceed(() => ({
          runtime_id: runtimeId,
          display_name: displayName,
          kind: "legacy" as const,
          compatibility: true,
          status: "offline" as const,
          status_reason: "the legacy pod metadata cannot be read"
        }))
      ),
      listWorkers: (query) =>
        Effect.gen(function*() {
          const limit = query.limit ?? 50
          if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
            return yield* new Errors.InvalidInput({ field: "limit", message: "limit must be an integer from 1 to 500" })
          }
          let after: string | undefined
          if (query.page_token !== undefined) {
            const decoded = decodeToken(query.page_token)
            if (Option.isNone(decoded)) {
              return yield* new Errors.InvalidInput({ field: "page_token", message: "page_token is invalid" })
            }
            after = decoded.value
          }
          const views = (yield* scan).map(view).filter((w) =>
            (after === undefined || w.worker_id > after) && (query.status === undefined || w.status === query.status)
          )
          const items = views.slice(0, limit)
          return views.length > limit
            ? { items, next_page_token: encodeToken(items[items.length - 1]!.worker_id) }
            : { items }
        }),
      getWorker,
      createWorker: () => unsupported("create"),
      sendInput: () => unsupported("input"),
      cancel: () => unsupported("cancel"),
      queue: () => unsupported("queue"),
      cancelQueued: () => unsupported("queue"),
      stop: () => unsupported("stop"),
      restore: () => unsupported("restore"),
      delete: () => unsupported("delete"),
      transcript: (workerId) => Effect.zipRight(getWorker(workerId), unsupported("transcript")),
      subscribe: (query) =>
        query.workerId === undefined
          // No events and no position: a stream opened with a cursor is live at once.
          ? Effect.succeed(
            query.live === true
              ? Stream.concat(Stream.make(liveAtOnce(runtimeId)), Stream.never)
              : Stream.never
          )
          : Effect.zipRight(getWorker(query.workerId), unsupported("events")),
      headCursor: Effect.succeed(Option.none())
    }
    return handle
  })
