import { defineProject } from "vitest/config"

export default defineProject({
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
