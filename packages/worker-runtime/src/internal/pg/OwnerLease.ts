import { Clock, Effect, Fiber, Ref, type Scope } from "effect"
import { hostname } from "node:os"
import { StoreError } from "../../WorkerStore.js"
import { ulid } from "../ulid.js"
import { type Database, insertDiagnostic, NOW_MS, type Tx } from "./Database.js"

/**
 * The "one live owner" rule on PostgreSQL: one `owner_lease` row per store. The owner renews it in the background;
 * a standby polls it and takes it once it has expired (judged by the database's clock). Every write transaction
 * checks, in the same transaction, that this instance still holds an unexpired lease (a shared row lock, so a
 * takeover waits for writes in flight and a deposed owner can never write).
 */
export interface LeaseOptions {
  /** How long the lease lasts without renewal. */
  readonly leaseMs: number
  /** How often the owner renews it. */
  readonly renewMs: number
  /** How often a standby looks whether it expired. */
  readonly pollMs: number
}

export const DEFAULT_LEASE_MS = 5_000

/**
 * Leases are judged by the database's clock, so renewing and polling wait on real time even where the fiber's
 * `Clock` is a test clock.
 */
const wallClock = Clock.make()
const sleep = (ms: number) => Effect.withClock(Effect.sleep(ms), wallClock)

export const leaseOptions = (o: {
  readonly leaseMs?: number | undefined
  readonly renewMs?: number | undefined
  readonly pollMs?: number | undefined
}): LeaseOptions => {
  const leaseMs = Math.max(100, o.leaseMs ?? DEFAULT_LEASE_MS)
  const renewMs = Math.max(10, Math.min(o.renewMs ?? Math.floor(leaseMs / 3), leaseMs - 1))
  return { leaseMs, renewMs, pollMs: Math.max(10, o.pollMs ?? Math.min(renewMs, 1_000)) }
}

/** Who holds a store while this instance waits. */
export interface LeaseHolder {
  readonly runtime_id: string
  readonly instance_id: string
  readonly pid: number
  readonly host: string
  /** In the database's clock, as an ISO time. */
  readonly expires_at: string
}

export interface OwnerLease {
  readonly instanceId: string
  /** Fails the transaction unless this instance still holds the lease; call it first in every write. */
  readonly check: (tx: Tx) => Effect.Effect<void, StoreError>
  /** Whether the lease was found taken by another instance (this one may no longer write). */
  readonly lost: Effect.Effect<boolean>
}

interface LeaseRow {
  readonly runtime_id: string
  readonly instance_id: string
  readonly pid: number
  readonly host: string
  readonly expires_at: number
  readonly now: number
}

const holderOf = (row: LeaseRow): LeaseHolder => ({
  runtime_id: row.runtime_id,
  instance_id: row.instance_id,
  pid: row.pid,
  host: row.host,
  expires_at: new Date(row.expires_at).toISOString()
})

/**
 * Takes the lease if it is free, expired or already ours; answers the live holder otherwise. One transaction with
 * the row locked, so two standbys cannot both take it.
 */
const tryAcquire = (db: Database, runtimeId: string, instanceId: string, leaseMs: number) =>
  db.transaction((tx) =>
    Effect.gen(function*() {
      const rows = yield* tx.all<LeaseRow>(
        `SELECT runtime_id, instance_id, pid, host, expires_at, ${NOW_MS} AS now FROM ${db.schema}.owner_lease ` +
          "WHERE id = 1 FOR UPDATE"
      )
      const row = rows[0]
      if (row !== undefined && row.instance_id !== instanceId && row.expires_at > row.now) {
        return { acquired: false as const, holder: holderOf(row), remainingMs: row.expires_at - row.now }
      }
      yield* tx.run(
        `INSERT INTO ${db.schema}.owner_lease (id, runtime_id, instance_id, pid, host, acquired_at, expires_at) ` +
          `VALUES (1, $1, $2, $3, $4, $5, ${NOW_MS} + $6) ON CONFLICT (id) DO UPDATE SET runtime_id = EXCLUDED.runtime_id, ` +
          "instance_id = EXCLUDED.instance_id, pid = EXCLUDED.pid, host = EXCLUDED.host, " +
          "acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at",
        [runtimeId, instanceId, process.pid, hostname(), new Date().toISOString(), leaseMs]
      )
      if (row !== undefined && row.instance_id !== instanceId && row.expires_at !== 0) {
        yield* insertDiagnostic(db, tx, {
          severity: "info",
          code: "lease_taken_over",
          message: `runtime instance ${instanceId} took over the store from instance ${row.instance_id} ` +
            `(pid ${row.pid} on ${row.host}), whose lease expired without being given up`
        })
      }
      return { acquired: true as const }
    })
  )

/**
 * Acquires the owner lease, waiting as a standby while another live instance holds it: `onStandby` runs once, in a
 * scope that closes when this instance takes over. Then renews it every `renewMs` while the scope is open, and
 * gives it up (expires it at once, so a standby takes over without waiting a lease) when the scope closes.
 */
export const acquire = (
  db: Database,
  options: LeaseOptions & {
    readonly runtimeId: string
    readonly onStandby?: ((holder: LeaseHolder) => Effect.Effect<void, never, Scope.Scope>) | undefined
  }
): Effect.Effect<OwnerLease, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const instanceId = `i_${ulid()}`
    const lost = yield* Ref.make(false)
    let waited = false
    yield* Effect.scoped(Effect.gen(function*() {
      for (;;) {
        const attempt = yield* tryAcquire(db, options.runtimeId, instanceId, options.leaseMs)
        if (attempt.acquired) return
        if (!waited) {
          waited = true
          yield* Effect.logInfo(
            `standby: runtime ${options.runtimeId} is owned by instance ${attempt.holder.instance_id} ` +
              `(pid ${attempt.holder.pid} on ${attempt.holder.host}) until ${attempt.holder.expires_at}`
          )
          if (options.onStandby !== undefined) yield* options.onStandby(attempt.holder)
        }
        // Wake just after the lease would expire if it is not renewed meanwhile, and at least every `pollMs`.
        yield* sleep(Math.max(10, Math.min(options.pollMs, attempt.remainingMs + 5)))
      }
    }))
    if (waited) yield* Effect.logInfo(`runtime instance ${instanceId} took over runtime ${options.runtimeId}`)

    const check = (tx: Tx) =>
      Effect.flatMap(
        tx.all<{ ok: number }>(
          `SELECT 1 AS ok FROM ${db.schema}.owner_lease WHERE id = 1 AND instance_id = $1 AND expires_at > ${NOW_MS} ` +
            "FOR SHARE",
          [instanceId]
        ),
        (rows) =>
          rows.length === 1 ? Effect.void : Effect.zipRight(
            Ref.set(lost, true),
            Effect.fail(
              new StoreError({
                message: `runtime instance ${instanceId} no longer holds the owner lease of runtime ` +
                  `${options.runtimeId} (it expired or another instance took it over); it may not write`
              })
            )
          )
      )

    const renew = db.transaction((tx) =>
      tx.run(
        `UPDATE ${db.schema}.owner_lease SET expires_at = ${NOW_MS} + $2 WHERE id = 1 AND instance_id = $1`,
        [instanceId, options.leaseMs]
      )
    ).pipe(Effect.flatMap((renewed) =>
      renewed === 1 ? Effect.void : Effect.zipRight(
        Ref.set(lost, true),
        Effect.logError(
          `runtime instance ${instanceId} lost the owner lease of runtime ${options.runtimeId} to another ` +
            "instance (it did not renew in time); its writes are refused from now on"
        )
      )
    ))
    const keepRenewing: Effect.Effect<void> = sleep(options.renewMs).pipe(
      Effect.zipRight(renew),
      Effect.catchAll((e) => Effect.logWarning(`owner lease renewal failed: ${e.message}`)),
      Effect.zipRight(Ref.get(lost)),
      Effect.flatMap((gone) => (gone ? Effect.void : Effect.suspend(() => keepRenewing)))
    )
    const renewing = yield* Effect.forkScoped(keepRenewing)
    // The renewal stops (a renewal in flight finishes) before the lease is given up, or it could extend it again.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Fiber.interrupt(renewing),
        Effect.ignore(db.transaction((tx) =>
          tx.run(`UPDATE ${db.schema}.owner_lease SET expires_at = 0 WHERE id = 1 AND instance_id = $1`, [instanceId])
        ))
      )
    )
    return { instanceId, check, lost: Ref.get(lost) }
  })
