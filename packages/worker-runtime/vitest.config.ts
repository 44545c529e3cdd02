import { defineProject } from "vitest/config"

export default defineProject({
  // The `source` export condition: tests import every @yoi package's src/*.ts, never its (maybe stale) dist/.
  resolve: { conditions: ["source", "module", "node", "development|production"] },
  ssr: { resolve: { conditions: ["source", "module", "node", "development|production"] } },
  test: {
    name: "worker-runtime",
    include: ["test/**/*.test.ts"],
    globalSetup: ["../../scripts/testing/pgGlobalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
