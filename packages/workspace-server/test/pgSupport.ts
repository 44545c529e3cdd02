import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import * as NodeCrypto from "node:crypto"
import type * as Store from "../src/Store.js"

/**
 * The PostgreSQL server of the test run (`YOI_TEST_PG_URL`, set by `scripts/testing/pgGlobalSetup.ts`). Without it
 * the test fails: tests that need PostgreSQL are never skipped.
 */
export const serverUrl = (): string => {
  const url = process.env.YOI_TEST_PG_URL
  if (url === undefined || url === "") {
    throw new Error("YOI_TEST_PG_URL is not set: run the tests through vitest (its globalSetup starts PostgreSQL)")
  }
  return url
}

/** Runs `f` on a client of the database at `url` (default: the server's own database). */
export const withClient = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>, url = serverUrl()) =>
  Effect.scoped(Effect.gen(function*() {
    const ctx = yield* Layer.build(PgClient.layer({ url: Redacted.make(url) }))
    return yield* f(Context.get(ctx, SqlClient.SqlClient))
  })).pipe(Effect.orDie)

/** A fresh database (`yoi_test_<random>`) for the scope, dropped after; its URL. */
export const freshDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.gen(function*() {
  const name = `yoi_test_${NodeCrypto.randomBytes(6).toString("hex")}`
  yield* Effect.acquireRelease(
    withClient((sql) => sql.unsafe(`CREATE DATABASE ${name}`)),
    () => withClient((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.ignore)
  )
  const url = new URL(serverUrl())
  url.pathname = `/${name}`
  return url.toString()
})

export const pgDatabase = (url: string): Store.Database => ({ _tag: "Postgres", url: Redacted.make(url) })
