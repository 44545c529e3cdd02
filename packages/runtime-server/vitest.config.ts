import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "runtime-server",
    include: ["test/**/*.test.ts"],
    globalSetup: ["../../scripts/testing/pgGlobalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
