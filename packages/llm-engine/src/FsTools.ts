import { Tool, Toolkit } from "@effect/ai"
import { AllocationRegistry, type Domain } from "@yoi/worker-runtime"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { constants } from "node:fs"
import { lstat, mkdir, open, readdir, realpath } from "node:fs/promises"
import { posix } from "node:path"

/** Why a filesystem tool refused or failed; returned to the model as the tool's result, never thrown. */
export class ToolError extends Schema.TaggedError<ToolError>()("ToolError", {
  code: Schema.Literal(
    "invalid_arguments",
    "no_scope",
    "outside_scope",
    "not_found",
    "not_a_file",
    "not_a_directory",
    "too_large",
    "permission_denied",
    "io_error"
  ),
  message: Schema.String
}) {}

// Parameters decode as anything, so a malformed call reaches the handler and becomes a ToolError for the model
// instead of failing the whole turn; the JSON schema the provider sees is still precise.
const param = (type: "string", description: string) => Schema.Unknown.annotations({ jsonSchema: { type, description } })

export const ReadFile = Tool.make("read_file", {
  description: "Read a UTF-8 text file inside your allocated workspace. Relative paths resolve against the " +
    "workspace root.",
  parameters: { path: param("string", "File path, absolute or relative to the workspace root") },
  success: Schema.Unknown,
  failure: ToolError,
  failureMode: "return"
})

export const ListDir = Tool.make("list_dir", {
  description: "List the entries of a directory inside your allocated workspace.",
  parameters: { path: param("string", "Directory path, absolute or relative to the workspace root (\".\" for the root)") },
  success: Schema.Unknown,
  failure: ToolError,
  failureMode: "return"
})

export const WriteFile = Tool.make("write_file", {
  description: "Create or overwrite a UTF-8 text file inside your allocated workspace (parent directories are " +
    "created). Needs write access to the path.",
  parameters: {
    path: param("string", "File path, absolute or relative to the workspace root"),
    content: param("string", "The complete new content of the file")
  },
  success: Schema.Unknown,
  failure: ToolError,
  failureMode: "return"
})

export const toolkit = Toolkit.make(ReadFile, ListDir, WriteFile)

/** The tool names this package offers. */
export const names: ReadonlyArray<string> = Object.keys(toolkit.tools)

export interface Limits {
  readonly maxReadBytes: number
  readonly maxWriteBytes: number
  readonly maxListEntries: number
}

export const defaultLimits: Limits = { maxReadBytes: 256 * 1024, maxWriteBytes: 1024 * 1024, maxListEntries: 1000 }

type AnyToolkit = Toolkit.WithHandler<Record<string, Tool.Any>>

/**
 * Filesystem tools confined to a worker's allocated scope. Every path is checked twice against the
 * `AllocationRegistry`: as written (after resolving `..`), and after resolving symlinks, so a link that points out
 * of the scope (or into a denied subtree) is refused before anything is opened.
 */
export interface FsToolsService {
  /** The handler toolkit for one worker's granted tools, or none when it was granted none of them. */
  readonly toolkitFor: (
    workerId: string,
    granted: ReadonlyArray<string>
  ) => Effect.Effect<Option.Option<AnyToolkit>>
  readonly readFile: (workerId: string, params: { readonly path: unknown }) => Effect.Effect<unknown, ToolError>
  readonly listDir: (workerId: string, params: { readonly path: unknown }) => Effect.Effect<unknown, ToolError>
  readonly writeFile: (
    workerId: string,
    params: { readonly path: unknown; readonly content: unknown }
  ) => Effect.Effect<unknown, ToolError>
}

export class FsTools extends Context.Tag("@yoi/llm-engine/FsTools")<FsTools, FsToolsService>() {}

const fail = (code: ToolError["code"], message: string) => Effect.fail(new ToolError({ code, message }))

const errno = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/** Runs a filesystem call, naming the failure by errno and by the path the model used (never the real path). */
const io = <A>(shown: string, f: () => Promise<A>): Effect.Effect<A, ToolError> =>
  Effect.tryPromise({
    try: f,
    catch: (cause) => {
      switch (errno(cause)) {
        case "ENOENT":
          return new ToolError({ code: "not_found", message: `${shown} does not exist` })
        case "ENOTDIR":
          return new ToolError({ code: "not_a_directory", message: `a parent of ${shown} is not a directory` })
        case "EISDIR":
          return new ToolError({ code: "not_a_file", message: `${shown} is a directory` })
        case "EACCES":
        case "EPERM":
          return new ToolError({ code: "permission_denied", message: `permission denied on ${shown}` })
        case "ENXIO":
          return new ToolError({ code: "not_a_file", message: `${shown} is not a regular file` })
        case "ELOOP":
          return new ToolError({ code: "outside_scope", message: `${shown} is a symbolic link the tool will not follow` })
        default:
          return new ToolError({ code: "io_error", message: `could not access ${shown} (${errno(cause) ?? "error"})` })
      }
    }
  })

const isWithin = (path: string, root: string) => path === root || root === "/" || path.startsWith(root + "/")

export const make = (
  limits: Limits = defaultLimits
): Effect.Effect<FsToolsService, never, AllocationRegistry.AllocationRegistry> =>
  Effect.gen(function*() {
    const registry = yield* AllocationRegistry.AllocationRegistry

    const allocation = (workerId: string) =>
      registry.get(workerId).pipe(
        Effect.orElseSucceed(() => Option.none<AllocationRegistry.Allocation>()),
        Effect.flatMap((held) =>
          Option.isSome(held) && held.value.allow.length > 0
            ? Effect.succeed(held.value)
            : fail("no_scope", "this worker has no filesystem scope; ask for one when the worker is created")
        )
      )

    const allowed = (workerId: string, path: string, access: Domain.Access) =>
      registry.check(workerId, path, access).pipe(Effect.orElseSucceed(() => false))

    /** Whether a real (symlink-free) path maps back into the scope: roots may themselves sit behind symlinks. */
    const realAllowed = (
      workerId: string,
      held: AllocationRegistry.Allocation,
      real: string,
      access: Domain.Access
    ) =>
      Effect.gen(function*() {
        // A deny rule written through a symlinked directory denies the directory it resolves to as well.
        for (const rule of held.deny) {
          const denied = yield* realForWrite(rule.path).pipe(Effect.orElseSucceed(() => rule.path))
          if (isWithin(real, denied)) return false
        }
        for (const rule of held.allow) {
          const root = yield* Effect.promise(() => realpath(rule.path).catch(() => rule.path))
          if (!isWithin(real, root)) continue
          const candidate = root === "/" ? real : rule.path + real.slice(root.length)
          if (yield* allowed(workerId, candidate, access)) return true
        }
        return false
      })

    /** Resolves the model's path to `{shown, real}`, refusing anything outside the scope as written or as resolved. */
    const resolvePath = (workerId: string, raw: unknown, access: Domain.Access, fallback?: string) =>
      Effect.gen(function*() {
        const given = raw === undefined || raw === null ? fallback : raw
        if (typeof given !== "string" || given.length === 0 || given.includes("\0") || given.length > 4096) {
          return yield* fail("invalid_arguments", "path must be a non-empty string")
        }
        const held = yield* allocation(workerId)
        const shown = posix.resolve(held.allow[0]!.path, given)
        if (!(yield* allowed(workerId, shown, access))) {
          return yield* fail("outside_scope", `${shown} is outside this worker's ${access} scope`)
        }
        const real = access === "read" ? yield* io(shown, () => realpath(shown)) : yield* realForWrite(shown)
        if (!(yield* realAllowed(workerId, held, real, access))) {
          return yield* fail(
            "outside_scope",
            `${shown} resolves through a symbolic link to a location outside this worker's ${access} scope`
          )
        }
        return { shown, real }
      })

    /** The real path a write would land on: the target's own, or its nearest existing ancestor's plus the rest. */
    const realForWrite = (shown: string): Effect.Effect<string, ToolError> =>
      Effect.gen(function*() {
        const rest: Array<string> = []
        let current = shown
        for (;;) {
          const stat = yield* Effect.promise(() => lstat(current).then((s) => s, () => undefined))
          if (stat !== undefined) {
            const real = yield* io(shown, () => realpath(current)).pipe(
              Effect.catchTag("ToolError", (e) =>
                e.code === "not_found"
                  ? fail("outside_scope", `${shown} goes through a dangling symbolic link`)
                  : Effect.fail(e))
            )
            return rest.length === 0 ? real : posix.join(real, ...rest.reverse())
          }
          const parent = posix.dirname(current)
          if (parent === current) return shown
          rest.push(posix.basename(current))
          current = parent
        }
      })

    const readFile: FsToolsService["readFile"] = (workerId, params) =>
      Effect.gen(function*() {
        const { real, shown } = yield* resolvePath(workerId, params.path, "read")
        return yield* Effect.acquireUseRelease(
          // O_NONBLOCK: opening a FIFO must not wait for a writer (the open could not be interrupted).
          io(shown, () => open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)),
          (handle) =>
            Effect.gen(function*() {
              const stat = yield* io(shown, () => handle.stat())
              if (!stat.isFile()) return yield* fail("not_a_file", `${shown} is not a regular file`)
              const size = Math.min(stat.size, limits.maxReadBytes)
              const buffer = Buffer.alloc(size)
              const { bytesRead } = yield* io(shown, () => handle.read(buffer, 0, size, 0))
              return {
                path: shown,
                size: stat.size,
                truncated: stat.size > limits.maxReadBytes,
                content: buffer.subarray(0, bytesRead).toString("utf8")
              }
            }),
          (handle) => Effect.promise(() => handle.close())
        )
      })

    const listDir: FsToolsService["listDir"] = (workerId, params) =>
      Effect.gen(function*() {
        const { real, shown } = yield* resolvePath(workerId, params.path, "read", ".")
        const entries = yield* io(shown, () => readdir(real, { withFileTypes: true }))
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        const out: Array<{ name: string; type: string }> = []
        for (const entry of entries) {
          if (out.length === limits.maxListEntries) break
          if (!(yield* allowed(workerId, posix.join(shown, entry.name), "read"))) continue
          const type = entry.isDirectory() ? "dir" : entry.isFile() ? "file" : entry.isSymbolicLink() ? "symlink" : "other"
          out.push({ name: entry.name, type })
        }
        const truncated = out.length === limits.maxListEntries && out.length < entries.length
        return { path: shown, entries: out, truncated }
      })

    const writeFile: FsToolsService["writeFile"] = (workerId, params) =>
      Effect.gen(function*() {
        if (typeof params.content !== "string") return yield* fail("invalid_arguments", "content must be a string")
        const bytes = Buffer.from(params.content, "utf8")
        if (bytes.length > limits.maxWriteBytes) {
          return yield* fail("too_large", `content is ${bytes.length} bytes; the limit is ${limits.maxWriteBytes}`)
        }
        const { real, shown } = yield* resolvePath(workerId, params.path, "write")
        yield* io(shown, () => mkdir(posix.dirname(real), { recursive: true }))
        yield* Effect.acquireUseRelease(
          io(shown, () =>
            open(
              real,
              constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK,
              0o644
            )),
          (handle) =>
            Effect.gen(function*() {
              const stat = yield* io(shown, () => handle.stat())
              if (!stat.isFile()) return yield* fail("not_a_file", `${shown} is not a regular file`)
              yield* io(shown, () => handle.writeFile(bytes))
            }),
          (handle) => Effect.promise(() => handle.close())
        )
        return { path: shown, bytes_written: bytes.length }
      })

    const handlers = (workerId: string) => ({
      read_file: (params: { readonly path: unknown }) => readFile(workerId, params),
      list_dir: (params: { readonly path: unknown }) => listDir(workerId, params),
      write_file: (params: { readonly path: unknown; readonly content: unknown }) => writeFile(workerId, params)
    })

    const toolkitFor: FsToolsService["toolkitFor"] = (workerId, granted) =>
      Effect.gen(function*() {
        const all = handlers(workerId)
        const chosen = granted.filter((name): name is keyof typeof all => name in all)
        if (chosen.length === 0) return Option.none()
        const subset = Toolkit.make(...chosen.map((name) => toolkit.tools[name])) as unknown as Toolkit.Toolkit<
          Record<string, Tool.Any>
        >
        const handlerSubset = Object.fromEntries(chosen.map((name) => [name, all[name]])) as never
        const context = yield* subset.toContext(handlerSubset)
        const withHandler = yield* Effect.provide(subset, context)
        return Option.some(withHandler as AnyToolkit)
      })

    return { toolkitFor, readFile, listDir, writeFile } satisfies FsToolsService
  })

export const layer = (
  limits: Limits = defaultLimits
): Layer.Layer<FsTools, never, AllocationRegistry.AllocationRegistry> =>
  Layer.effect(FsTools, make(limits))
