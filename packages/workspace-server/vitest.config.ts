import { defineProject } from "vitest/config"

export default defineProject({
  // The `source` export condition: tests import every @yoi package's src/*.ts, never its (maybe stale) dist/.
  resolve: { conditions: ["source", "module", "node", "development|production"] },
  ssr: { resolve: { conditions: ["source", "module", "node", "development|production"] } },
  test: {
    name: "workspace-server",
    include: ["test/**/*.test.ts"],
    // Tests of the Backend on PostgreSQL need a server: this uses YOI_TEST_PG_URL or starts a throwaway cluster.
    globalSetup: ["../../scripts/testing/pgGlobalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Every file loads the same large module graph (the runtime, its server, the LLM engines): sharing one module
    // cache between files halves the suite's wall time. No test relies on module state being fresh.
    isolate: false
  }
})
