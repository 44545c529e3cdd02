import { assert, describe, it } from "@effect/vitest"
import { AllocationRegistry } from "@yoi/worker-runtime"
import { Effect, Either } from "effect"
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as FsTools from "../src/FsTools.js"
import * as H from "./harness.js"

const setup = Effect.gen(function*() {
  const root = yield* H.tempDir
  const ws = join(root, "ws")
  const outside = join(root, "outside")
  yield* Effect.promise(async () => {
    await mkdir(join(ws, "src"), { recursive: true })
    await mkdir(join(ws, "secret"), { recursive: true })
    await mkdir(join(ws, "docs"), { recursive: true })
    await mkdir(outside, { recursive: true })
    await writeFile(join(ws, "src", "main.ts"), "export {}\n")
    await writeFile(join(ws, "secret", "token"), "hunter2")
    await writeFile(join(ws, "docs", "readme.md"), "# docs")
    await writeFile(join(outside, "passwd"), "root:x:0:0")
    await symlink(join(outside, "passwd"), join(ws, "src", "link-out"))
    await symlink(outside, join(ws, "src", "dir-out"))
    await symlink(join(ws, "secret"), join(ws, "src", "to-secret"))
    await symlink(join(outside, "new.txt"), join(ws, "src", "dangling"))
  })
  const registry = yield* AllocationRegistry.makeMemory
  yield* registry.allocate("w_coder", {
    allow: [{ path: join(ws, "src"), access: "write" }, { path: join(ws, "docs"), access: "read" }],
    deny: [{ path: join(ws, "secret") }]
  })
  const tools = yield* FsTools.make({ maxReadBytes: 16, maxWriteBytes: 64, maxListEntries: 100 }).pipe(
    Effect.provideService(AllocationRegistry.AllocationRegistry, registry)
  )
  return { tools, ws, outside }
})

const code = <A>(result: Either.Either<A, FsTools.ToolError>) => (Either.isLeft(result) ? result.left.code : "ok")

describe("filesystem tools", () => {
  it.scopedLive("read inside the scope, relative to the first allowed root, with a size limit", () =>
    Effect.gen(function*() {
      const { tools, ws } = yield* setup
      const read = (yield* tools.readFile("w_coder", { path: "main.ts" })) as any
      assert.strictEqual(read.content, "export {}\n")
      assert.strictEqual(read.path, join(ws, "src", "main.ts"))
      assert.isFalse(read.truncated)
      const docs = (yield* tools.readFile("w_coder", { path: join(ws, "docs", "readme.md") })) as any
      assert.strictEqual(docs.content, "# docs")
      yield* Effect.promise(() => writeFile(join(ws, "src", "big.txt"), "x".repeat(40)))
      const big = (yield* tools.readFile("w_coder", { path: "big.txt" })) as any
      assert.isTrue(big.truncated)
      assert.strictEqual(big.content.length, 16)
      assert.strictEqual(big.size, 40)
    }))

  it.scopedLive("refuses paths outside the scope: traversal, absolute, denied subtrees", () =>
    Effect.gen(function*() {
      const { outside, tools, ws } = yield* setup
      const attempt = (path: unknown) => Effect.either(tools.readFile("w_coder", { path }))
      assert.strictEqual(code(yield* attempt("../secret/token")), "outside_scope")
      assert.strictEqual(code(yield* attempt("../../outside/passwd")), "outside_scope")
      assert.strictEqual(code(yield* attempt(join(outside, "passwd"))), "outside_scope")
      assert.strictEqual(code(yield* attempt(join(ws, "secret", "token"))), "outside_scope")
      assert.strictEqual(code(yield* attempt("/etc/passwd")), "outside_scope")
      assert.strictEqual(code(yield* attempt(42)), "invalid_arguments")
      assert.strictEqual(code(yield* attempt("a\0b")), "invalid_arguments")
      assert.strictEqual(code(yield* attempt("missing.ts")), "not_found")
      assert.strictEqual(code(yield* attempt(".")), "not_a_file")
    }))

  it.scopedLive("refuses symlinks that escape the scope or lead into a denied subtree", () =>
    Effect.gen(function*() {
      const { outside, tools } = yield* setup
      const read = (path: string) => Effect.either(tools.readFile("w_coder", { path }))
      const escaped = yield* read("link-out")
      assert.strictEqual(code(escaped), "outside_scope")
      assert.include(Either.isLeft(escaped) ? escaped.left.message : "", "symbolic link")
      assert.notInclude(Either.isLeft(escaped) ? escaped.left.message : "", outside)
      assert.strictEqual(code(yield* read("dir-out/passwd")), "outside_scope")
      assert.strictEqual(code(yield* read("to-secret/token")), "outside_scope")
      assert.strictEqual(code(yield* Effect.either(tools.listDir("w_coder", { path: "dir-out" }))), "outside_scope")
      const write = (path: string) => Effect.either(tools.writeFile("w_coder", { path, content: "pwned" }))
      assert.strictEqual(code(yield* write("link-out")), "outside_scope")
      assert.strictEqual(code(yield* write("dir-out/new.txt")), "outside_scope")
      assert.strictEqual(code(yield* write("dangling")), "outside_scope")
      assert.strictEqual(yield* Effect.promise(() => readFile(join(outside, "passwd"), "utf8")), "root:x:0:0")
      const created = yield* Effect.promise(() => readFile(join(outside, "new.txt"), "utf8").then(() => true, () => false))
      assert.isFalse(created)
    }))

  it.scopedLive("writes need write access; new parent directories are created inside the scope", () =>
    Effect.gen(function*() {
      const { tools, ws } = yield* setup
      const written = (yield* tools.writeFile("w_coder", { path: "lib/util.ts", content: "export const a = 1\n" })) as any
      assert.strictEqual(written.bytes_written, 19)
      assert.strictEqual(yield* Effect.promise(() => readFile(join(ws, "src", "lib", "util.ts"), "utf8")), "export const a = 1\n")
      const readOnly = yield* Effect.either(tools.writeFile("w_coder", { path: join(ws, "docs", "x.md"), content: "" }))
      assert.strictEqual(code(readOnly), "outside_scope")
      const tooBig = yield* Effect.either(tools.writeFile("w_coder", { path: "big.ts", content: "y".repeat(65) }))
      assert.strictEqual(code(tooBig), "too_large")
      const notText = yield* Effect.either(tools.writeFile("w_coder", { path: "n.ts", content: 5 }))
      assert.strictEqual(code(notText), "invalid_arguments")
    }))

  it.scopedLive("lists a directory without the entries a deny rule hides", () =>
    Effect.gen(function*() {
      const { tools, ws } = yield* setup
      yield* Effect.promise(() => symlink(join(ws, "secret"), join(ws, "docs", "hidden")))
      const registry = yield* AllocationRegistry.makeMemory
      yield* registry.allocate("w_reader", { allow: [{ path: ws, access: "read" }], deny: [{ path: join(ws, "secret") }] })
      const reader = yield* FsTools.make().pipe(Effect.provideService(AllocationRegistry.AllocationRegistry, registry))
      const listing = (yield* reader.listDir("w_reader", { path: undefined })) as any
      assert.deepStrictEqual(listing.entries.map((e: any) => e.name), ["docs", "src"])
      const src = (yield* tools.listDir("w_coder", { path: "." })) as any
      assert.deepStrictEqual(src.entries.find((e: any) => e.name === "link-out"), { name: "link-out", type: "symlink" })
    }))

  it.scopedLive("a worker without an allocation has no filesystem access", () =>
    Effect.gen(function*() {
      const { tools } = yield* setup
      const result = yield* Effect.either(tools.readFile("w_companion", { path: "/etc/hostname" }))
      assert.strictEqual(code(result), "no_scope")
      const none = yield* tools.toolkitFor("w_companion", [])
      assert.isTrue(none._tag === "None")
      const some = yield* tools.toolkitFor("w_coder", ["read_file"])
      assert.deepStrictEqual(some._tag === "Some" ? Object.keys(some.value.tools) : [], ["read_file"])
    }))
})
