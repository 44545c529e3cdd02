import { assert, describe, it } from "@effect/vitest"
import { Domain } from "@yoi/worker-runtime"
import { SchemaAST } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const eventsDoc = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "docs", "events.md")

interface DocumentedKind {
  readonly kind: string
  readonly durable: string
  /** `name` or `name?` for each field of the first `{...}` in the data column. */
  readonly fields: ReadonlyArray<string>
}

/** The rows of the table under `### Kinds` in docs/events.md; a row may name several kinds (`a` · `b`). */
const documentedKinds = (markdown: string): ReadonlyArray<DocumentedKind> => {
  const section = markdown.split("### Kinds")[1]?.split(/\n#{2,3} /)[0] ?? ""
  return section.split("\n")
    .filter((line) => line.startsWith("| `"))
    .flatMap((line) => {
      const [kinds, durable, data] = line.split("|").slice(1, 4).map((c) => c.trim())
      const braces = /`\{([^}]*)\}`/.exec(data ?? "")
      const fields = braces === null ? [] : braces[1]!.split(",").map((f) => f.trim()).filter((f) => f.length > 0)
      return Array.from((kinds ?? "").matchAll(/`([a-z_.]+)`/g), (m) => ({ kind: m[1]!, durable: durable!, fields }))
    })
}

/** The fields of a kind's data schema as the docs write them: `name`, or `name?` when optional. */
const schemaFields = (kind: Domain.EventKind): ReadonlyArray<string> => {
  const ast = Domain.EventData[kind].ast
  assert.isTrue(SchemaAST.isTypeLiteral(ast), kind)
  return (ast as SchemaAST.TypeLiteral).propertySignatures.map((p) => `${String(p.name)}${p.isOptional ? "?" : ""}`)
}

describe("docs/events.md", () => {
  const documented = documentedKinds(Fs.readFileSync(eventsDoc, "utf8"))

  it("lists exactly the kinds of the event union", () => {
    assert.deepStrictEqual(documented.map((d) => d.kind).sort(), [...Domain.EventKind.literals].sort())
  })

  it("gives each kind the data fields (and optional marks) of its schema", () => {
    for (const d of documented) {
      assert.deepStrictEqual([...d.fields].sort(), [...schemaFields(d.kind as Domain.EventKind)].sort(), d.kind)
    }
  })

  it("marks as durable exactly the kinds the store keeps", () => {
    for (const d of documented) {
      const expected = d.kind.startsWith("stream.") ? "—" : Domain.ephemeralKinds.has(d.kind) ? "no" : "yes"
      assert.strictEqual(d.durable, expected, d.kind)
    }
  })
})
