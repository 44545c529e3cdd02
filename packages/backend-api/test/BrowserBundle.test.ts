import { assert, describe, it } from "@effect/vitest"
import * as esbuild from "esbuild"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const entry = resolve(dirname(fileURLToPath(import.meta.url)), "../src/index.ts")

describe("the browser contract", () => {
  it("bundles for a browser without any Node module", async () => {
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: "browser",
      // The `source` export condition, as the tests resolve: the contract's src/, not a build.
      conditions: ["source"],
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent"
    })
    const inputs = Object.keys(result.metafile.inputs)
    assert.isTrue(inputs.some((path) => path.includes("backend-api/src/BrowserApi.ts")))
    assert.deepStrictEqual(inputs.filter((path) => path.startsWith("node:") || path.includes("sql")), [])
    assert.deepStrictEqual(result.errors, [])
  })

  it("fails to bundle the Backend itself, so the check above can fail", async () => {
    const server = resolve(dirname(entry), "../../workspace-server/src/index.ts")
    const failed = await esbuild.build({
      entryPoints: [server], bundle: true, platform: "browser", write: false, logLevel: "silent"
    }).then(() => false, () => true)
    assert.isTrue(failed)
  })
})
