import type { Domain } from "@yoi/worker-runtime"
import type { Effect, Option, Scope, Stream } from "effect"
import type { HandleError } from "@yoi/backend-api/Errors"
import type * as Views from "@yoi/backend-api/Views"

export interface ListWorkersQuery {
  readonly status?: string | undefined
  /** Only workers stamped with this workspace (see `Workspace.ts`). */
  readonly workspace?: string | undefined
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
}

export interface CancelOptions {
  readonly turn_id?: string | undefined
  readonly wait_ms?: number | undefined
}

export interface TranscriptQuery {
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
}

export interface SubscribeQuery {
  /** A cursor of this runtime, `"earliest"`, or absent for "from now". */
  readonly cursor?: string | undefined
  readonly workerId?: string | undefined
  /**
   * One `stream.live` event after the replay of a stream opened with a cursor. A worker stream also gets
   * `stream.bookmark` events; a remote stream served by its runtime passes on the runtime's own.
   */
  readonly live?: boolean | undefined
}

/** What the handle knows of its runtime without waiting on the network (the registry adds policy fields). */
export type HandleDescription = Omit<Views.RuntimeView, "read_only">

/**
 * One runtime as the Backend reaches it: embedded (direct calls), remote (HTTP client + SSE), or the legacy pod
 * adapter (read-only). Every failure is already one of the Backend's own typed errors, with no endpoint, token or
 * path in it; the registry routes to a handle by `runtime_id` and adds policy and audit.
 */
export interface RuntimeHandle {
  readonly runtimeId: string
  readonly kind: Views.RuntimeKind
  readonly displayName: string
  /** Never waits on a remote: it answers from the last probe. */
  readonly describe: Effect.Effect<HandleDescription>
  readonly listWorkers: (query: ListWorkersQuery) => Effect.Effect<Views.WorkerPage, HandleError>
  readonly getWorker: (workerId: string) => Effect.Effect<Views.WorkerView, HandleError>
  readonly createWorker: (spec: Domain.CreateWorker) => Effect.Effect<Views.CreateResult, HandleError>
  readonly sendInput: (workerId: string, input: Domain.SendInput) => Effect.Effect<Views.InputResult, HandleError>
  readonly cancel: (workerId: string, options?: CancelOptions) => Effect.Effect<Views.CancelResult, HandleError>
  readonly queue: (workerId: string) => Effect.Effect<Views.WorkerQueue, HandleError>
  /** One queued input, or every one without `inputId`. */
  readonly cancelQueued: (workerId: string, inputId?: string) => Effect.Effect<Views.QueueCancelled, HandleError>
  readonly stop: (workerId: string) => Effect.Effect<Views.WorkerView, HandleError>
  readonly restore: (workerId: string) => Effect.Effect<Views.WorkerView, HandleError>
  readonly delete: (workerId: string) => Effect.Effect<Views.DeleteResult, HandleError>
  readonly transcript: (workerId: string, query: TranscriptQuery) => Effect.Effect<Views.TranscriptPage, HandleError>
  /**
   * Events after a cursor. Cursor and worker problems fail before anything streams. The stream ends with a
   * `stream.lagged` event (carrying the cursor to resume from) when this subscriber falls too far behind.
   */
  readonly subscribe: (
    query: SubscribeQuery
  ) => Effect.Effect<Stream.Stream<Domain.RuntimeEvent, HandleError>, HandleError, Scope.Scope>
  /** The newest cursor known, to start a composite cursor at "now"; none when the runtime was never reached. */
  readonly headCursor: Effect.Effect<Option.Option<string>>
}
