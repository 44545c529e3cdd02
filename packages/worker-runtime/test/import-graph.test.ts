import { assert, describe, it } from "@effect/vitest"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

/**
 * The core must build, test and import with no HTTP server package installed. This walks the static import graph
 * (type-only imports of our own sources included, since they too need the package to build) from the package's
 * entry points through node_modules, and fails if it reaches an HTTP server package or a server-side Node module.
 */

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..")

const forbiddenPackages = (name: string) => name === "@effect/platform-node" || name.startsWith("@effect/platform-node-")
const forbiddenBuiltins: ReadonlySet<string> = new Set(["http", "https", "http2", "net"])
const builtins: ReadonlySet<string> = new Set(builtinModules)

interface Graph {
  /** Every file reached, with the file that first imported it (the entry maps to undefined). */
  readonly files: Map<string, string | undefined>
  /** Every bare package reached by name, with the file that first imported it. */
  readonly packages: Map<string, string>
  /** Every Node built-in reached (without `node:`), with the file that first imported it. */
  readonly builtins: Map<string, string>
  /** Imports that could not be resolved (optional peers), as `importer -> specifier`. */
  readonly unresolved: Array<string>
}

const isFile = (path: string) => existsSync(path) && statSync(path).isFile()

const resolveFile = (base: string): string | undefined => {
  const candidates = [
    base,
    base.replace(/\.js$/, ".ts"),
    base.replace(/\.mjs$/, ".mts"),
    `${base}.ts`,
    `${base}.js`,
    `${base}.mjs`,
    `${base}.cjs`,
    join(base, "index.ts"),
    join(base, "index.js")
  ]
  return candidates.find(isFile)
}

const packageName = (specifier: string) => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!
}

// `source` first, as the tests resolve: our packages are followed through their src/, not a build.
const conditions = ["source", "import", "module", "node", "default", "require"]

/** Picks a target out of an `exports` value by the first matching condition. */
const pickTarget = (value: unknown): string | undefined => {
  if (typeof value === "string") return value
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = pickTarget(v)
      if (t !== undefined) return t
    }
    return undefined
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>
    for (const c of conditions) if (c in record) return pickTarget(record[c])
  }
  return undefined
}

const resolveExports = (exportsField: unknown, subpath: string): string | undefined => {
  if (typeof exportsField === "string" || Array.isArray(exportsField)) {
    return subpath === "." ? pickTarget(exportsField) : undefined
  }
  if (exportsField === null || typeof exportsField !== "object") return undefined
  const map = exportsField as Record<string, unknown>
  const keys = Object.keys(map)
  if (!keys.some((k) => k.startsWith("."))) return subpath === "." ? pickTarget(map) : undefined
  if (subpath in map) return pickTarget(map[subpath])
  for (const key of keys) {
    const star = key.indexOf("*")
    if (star < 0) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= prefix.length + suffix.length) {
      const match = subpath.slice(prefix.length, subpath.length - suffix.length)
      return pickTarget(map[key])?.replaceAll("*", match)
    }
  }
  return undefined
}

const resolveBare = (specifier: string, fromFile: string): string | undefined => {
  const name = packageName(specifier)
  const subpath = specifier === name ? "." : `.${specifier.slice(name.length)}`
  for (let dir = dirname(fromFile); ; dir = dirname(dir)) {
    const pkgDir = join(dir, "node_modules", name)
    const manifest = join(pkgDir, "package.json")
    if (isFile(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, "utf8")) as Record<string, unknown>
      if (pkg.exports !== undefined) {
        const target = resolveExports(pkg.exports, subpath)
        return target === undefined ? undefined : resolveFile(join(pkgDir, target))
      }
      if (subpath !== ".") return resolveFile(join(pkgDir, subpath))
      const main = [pkg.module, pkg.main].find((m): m is string => typeof m === "string")
      return resolveFile(join(pkgDir, main ?? "index.js"))
    }
    if (dirname(dir) === dir) return undefined
  }
}

/** Static imports, re-exports (`export * as X from` included), `require("x")` and `import("x")` with literal names. */
const importsOf = (file: string): Array<string> => {
  const text = readFileSync(file, "utf8")
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false)
  const out: Array<string> = []
  const literal = (node: ts.Node | undefined) => {
    if (node !== undefined && ts.isStringLiteralLike(node)) out.push(node.text)
  }
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) literal(statement.moduleSpecifier)
    if (ts.isImportEqualsDeclaration(statement) && ts.isExternalModuleReference(statement.moduleReference)) {
      literal(statement.moduleReference.expression)
    }
  }
  if (text.includes("require(") || text.includes("import(")) {
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
          (ts.isIdentifier(node.expression) && node.expression.text === "require"))
      ) literal(node.arguments[0])
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return out
}

/** Walks the static import graph from `entries`. */
const walk = (entries: ReadonlyArray<string>): Graph => {
  const graph: Graph = { files: new Map(), packages: new Map(), builtins: new Map(), unresolved: [] }
  const queue: Array<string> = []
  for (const entry of entries) {
    graph.files.set(entry, undefined)
    queue.push(entry)
  }
  while (queue.length > 0) {
    const file = queue.shift()!
    if (file.endsWith(".json") || file.endsWith(".node")) continue
    for (const specifier of importsOf(file)) {
      let target: string | undefined
      if (specifier.startsWith("node:") || builtins.has(specifier)) {
        const name = specifier.replace(/^node:/, "").split("/")[0]!
        if (!graph.builtins.has(name)) graph.builtins.set(name, file)
        continue
      }
      if (specifier.startsWith(".") || specifier.startsWith("/")) {
        target = resolveFile(resolve(dirname(file), specifier))
      } else {
        const name = packageName(specifier)
        if (!graph.packages.has(name)) graph.packages.set(name, file)
        target = resolveBare(specifier, file)
      }
      if (target === undefined) {
        graph.unresolved.push(`${file} -> ${specifier}`)
      } else if (!graph.files.has(target)) {
        graph.files.set(target, file)
        queue.push(target)
      }
    }
  }
  return graph
}

/** The chain of importers from an entry to `file`, for a readable failure. */
const chain = (graph: Graph, file: string): string => {
  const path: Array<string> = []
  for (let f: string | undefined = file; f !== undefined; f = graph.files.get(f)) path.unshift(f)
  return path.map((p) => p.replace(/^.*node_modules\//, "")).join("\n  -> ")
}

const violations = (graph: Graph): Array<string> => [
  ...Array.from(graph.packages).filter(([name]) => forbiddenPackages(name))
    .map(([name, by]) => `package ${name} imported by\n  ${chain(graph, by)}`),
  ...Array.from(graph.builtins).filter(([name]) => forbiddenBuiltins.has(name))
    .map(([name, by]) => `node:${name} imported by\n  ${chain(graph, by)}`)
]

describe("import graph of @yoi/worker-runtime", () => {
  it("never reaches an HTTP server package or node:http/https/http2/net", () => {
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
      exports: Record<string, { readonly source: string }>
    }
    // The PostgreSQL entry is walked on its own below: its driver is a socket client, so it reaches node:net.
    const entries = Object.entries(manifest.exports).filter(([key]) => key !== "./pg")
      .map(([, e]) => resolve(packageDir, e.source))
    assert.include(entries, join(packageDir, "src", "index.ts"))
    assert.include(entries, join(packageDir, "src", "sqlite.ts"))
    const graph = walk(entries)
    assert.deepStrictEqual(violations(graph), [])
    // Embedders who do not use PostgreSQL never load its driver.
    assert.isFalse(graph.packages.has("pg"))
    assert.isFalse(graph.packages.has("@effect/sql-pg"))
    // The walk really went through our sources and into effect, so an empty result means something.
    assert.isTrue(graph.files.has(join(packageDir, "src", "Runtime.ts")))
    assert.isTrue(graph.files.has(join(packageDir, "src", "internal", "ulid.ts")))
    assert.isTrue(graph.packages.has("effect"))
    assert.isTrue(Array.from(graph.files.keys()).some((f) => f.endsWith("effect/dist/esm/Effect.js")))
    assert.isAbove(graph.files.size, 100)
  })

  it("the PostgreSQL entry reaches its driver and node:net (a client socket) but no HTTP server or node:http*", () => {
    const graph = walk([join(packageDir, "src", "pg.ts")])
    assert.isTrue(graph.packages.has("@effect/sql-pg"))
    assert.isTrue(graph.packages.has("pg"))
    assert.isTrue(graph.builtins.has("net"))
    assert.deepStrictEqual(violations(graph).filter((v) => !v.startsWith("node:net imported by")), [])
    assert.isFalse(graph.packages.has("@effect/sql-sqlite-node"))
  })

  it("finds node:http through @effect/platform-node's entry (the walker can fail)", () => {
    const entry = resolveBare("@effect/platform-node", join(packageDir, "package.json"))
    assert.isDefined(entry)
    const graph = walk([entry!])
    assert.isTrue(graph.builtins.has("http"))
    assert.isTrue(graph.packages.has("@effect/platform-node-shared"))
    assert.isAbove(violations(graph).length, 0)
  })

  it("follows .js specifiers to .ts sources, re-exports, exports patterns and require() to a forbidden import", () => {
    const dir = mkdtempSync(join(tmpdir(), "import-graph-"))
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true })
      writeFileSync(join(dir, path), text)
    }
    try {
      write("index.ts", "export * as A from \"./a.js\"\nimport type { M } from \"./missing.js\"\nimport \"pkg/sub/tool\"\n")
      write("a.ts", "export { b } from \"./b.js\"\n")
      write("b.ts", "import { createServer } from \"node:http\"\nexport const b = createServer\n")
      write("node_modules/pkg/package.json", JSON.stringify({
        exports: { ".": { import: "./esm/index.js" }, "./sub/*": { types: "./x.d.ts", import: "./esm/sub/*.js" } }
      }))
      write("node_modules/pkg/esm/sub/tool.js", "const net = require(\"net\")\nexport default net\n")
      const graph = walk([join(dir, "index.ts")])
      assert.isTrue(graph.files.has(join(dir, "b.ts")))
      assert.isTrue(graph.files.has(join(dir, "node_modules/pkg/esm/sub/tool.js")))
      const found = violations(graph)
      assert.strictEqual(found.length, 2)
      const http = found.find((v) => v.startsWith("node:http imported by"))
      assert.include(http, `index.ts\n  -> ${join(dir, "a.ts")}\n  -> ${join(dir, "b.ts")}`)
      assert.include(found.find((v) => v.startsWith("node:net imported by")), "pkg/esm/sub/tool.js")
      assert.deepStrictEqual(graph.unresolved, [`${join(dir, "index.ts")} -> ./missing.js`])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
