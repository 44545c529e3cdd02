import { type Domain, EventBus } from "@yoi/worker-runtime"
import { Effect, Stream } from "effect"
import * as Errors from "@yoi/backend-api/Errors"
import type { RuntimeHandle } from "./RuntimeHandle.js"
import type * as Views from "@yoi/backend-api/Views"

/** The metadata key a Backend stamps on the workers it creates; reserved, so no client can set or forge it. */
export const WORKSPACE_KEY = "yoi.workspace"

/** Metadata keys with this prefix belong to the Backend. */
export const RESERVED_PREFIX = "yoi."

/** Refuses client metadata that uses a reserved key. */
export const checkMetadata = (
  metadata: Readonly<Record<string, string>> | undefined
): Effect.Effect<void, Errors.InvalidInput> => {
  const reserved = Object.keys(metadata ?? {}).find((k) => k.startsWith(RESERVED_PREFIX))
  return reserved === undefined ? Effect.void : Effect.fail(
    new Errors.InvalidInput({
      field: `metadata.${reserved.slice(0, 64)}`,
      message: `metadata keys starting with ${RESERVED_PREFIX} are reserved for the Backend`
    })
  )
}

/** The spec with this Backend's workspace stamped on it. */
export const stamp = (spec: Domain.CreateWorker, workspaceId: string): Domain.CreateWorker => ({
  ...spec,
  metadata: { ...spec.metadata, [WORKSPACE_KEY]: workspaceId }
})

const ownedBy = (worker: { readonly metadata?: Readonly<Record<string, string>> | undefined }, workspaceId: string) =>
  worker.metadata?.[WORKSPACE_KEY] === workspaceId

/**
 * A remote runtime as one workspace sees it when several Backends share it: it lists, reads, commands and streams
 * only the workers this workspace created; any other worker answers `WorkerNotFound`, as if it did not exist.
 * Ownership is learnt from creates, listings, reads and `worker.created` events, and cached (a worker's workspace
 * never changes while it exists; a delete forgets it).
 */
export const restrict = (handle: RuntimeHandle, workspaceId: string): RuntimeHandle => {
  const known = new Map<string, boolean>()
  type Owned = { readonly worker_id: string; readonly metadata?: Readonly<Record<string, string>> | undefined }
  const learn = <W extends Owned>(worker: W): W => {
    known.set(worker.worker_id, ownedBy(worker, workspaceId))
    return worker
  }
  const notFound = (workerId: string) => Errors.WorkerNotFound.of(handle.runtimeId, workerId)

  const isOwned = (workerId: string): Effect.Effect<boolean, Errors.HandleError> => {
    const cached = known.get(workerId)
    if (cached !== undefined) return Effect.succeed(cached)
    return handle.getWorker(workerId).pipe(
      Effect.map((w) => learn(w)),
      Effect.map((w) => ownedBy(w, workspaceId)),
      Effect.catchTag("WorkerNotFound", () => Effect.succeed(false))
    )
  }

  /** Runs `f` only on a worker of this workspace. */
  const owned = <A>(workerId: string, f: Effect.Effect<A, Errors.HandleError>) =>
    Effect.flatMap(isOwned(workerId), (mine) => (mine ? f : Effect.fail(notFound(workerId))))

  const visible = (event: Domain.RuntimeEvent): Effect.Effect<boolean> => {
    if (event.worker_id === undefined) return Effect.succeed(true)
    if (event.kind === "worker.created") {
      const worker = (event.data as { readonly worker?: Views.WorkerView } | undefined)?.worker
      if (worker !== undefined) return Effect.succeed(ownedBy(learn(worker), workspaceId))
    }
    return Effect.orElseSucceed(isOwned(event.worker_id), () => false)
  }

  return {
    ...handle,
    listWorkers: (query) =>
      Effect.map(handle.listWorkers({ ...query, workspace: workspaceId }), (page) => ({
        ...page,
        items: page.items.map(learn).filter((w) => ownedBy(w, workspaceId))
      })),
    getWorker: (workerId) =>
      Effect.flatMap(handle.getWorker(workerId), (w) =>
        ownedBy(learn(w), workspaceId) ? Effect.succeed(w) : Effect.fail(notFound(workerId))),
    createWorker: (spec) =>
      Effect.map(
        handle.createWorker(stamp(spec, workspaceId)),
        (result) => ({ ...result, worker: learn(result.worker) })
      ),
    sendInput: (workerId, input) => owned(workerId, handle.sendInput(workerId, input)),
    cancel: (workerId, options) => owned(workerId, handle.cancel(workerId, options)),
    queue: (workerId) => owned(workerId, handle.queue(workerId)),
    cancelQueued: (workerId, inputId) => owned(workerId, handle.cancelQueued(workerId, inputId)),
    stop: (workerId) => owned(workerId, handle.stop(workerId)),
    restore: (workerId) => owned(workerId, handle.restore(workerId)),
    delete: (workerId) =>
      owned(workerId, Effect.tap(handle.delete(workerId), () => Effect.sync(() => known.delete(workerId)))),
    transcript: (workerId, query) => owned(workerId, handle.transcript(workerId, query)),
    subscribe: (query) =>
      (query.workerId === undefined ? Effect.void : owned(query.workerId, Effect.void)).pipe(
        Effect.zipRight(handle.subscribe(query)),
        // Another workspace's event is not shown, but the position moves past it: a bookmark carries it, which
        // `/api/events` folds into its own bookmarks so that a quiet reader here stays resumable.
        Effect.map(Stream.mapEffect((event) =>
          Effect.map(visible(event), (shown) => shown ? event : EventBus.bookmarkEvent(handle, event.cursor, event.seq))
        ))
      ),
    headCursor: handle.headCursor
  }
}
