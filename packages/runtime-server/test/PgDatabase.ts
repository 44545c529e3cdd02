import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted, type Scope } from "effect"
import { randomBytes } from "node:crypto"

/**
 * A fresh database `yoi_test_<random>` on the server of `YOI_TEST_PG_URL` (set by the vitest globalSetup), dropped
 * when the scope closes; answers its URL. Without the variable the test fails: it is never skipped.
 */
export const tempDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.gen(function*() {
  const server = process.env.YOI_TEST_PG_URL
  if (server === undefined || server === "") {
    return yield* Effect.dieMessage("YOI_TEST_PG_URL is not set: this test needs PostgreSQL (scripts/testing/pgGlobalSetup.ts)")
  }
  const exec = (statement: string) =>
    Effect.scoped(Effect.flatMap(
      PgClient.make({ url: Redacted.make(server), maxConnections: 1 }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      ),
      (sql) => sql.unsafe(statement)
    )).pipe(Effect.orDie)
  const name = `yoi_test_${randomBytes(6).toString("hex")}`
  yield* Effect.acquireRelease(exec(`CREATE DATABASE ${name}`), () =>
    Effect.ignore(exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
  const url = new URL(server)
  url.pathname = `/${name}`
  return url.toString()
})
