//! Folds the error and worker rollup deltas (`error_rollup_deltas`, `worker_rollup_deltas`,
//! appended by the triggers of migration `recovery`) into their rollups, as
//! `monitoring::job_rollups` does for jobs: the triggers never upsert a shared row, so no
//! two transactions wait on each other over a rollup, and a read sums rollups and deltas.

use std::time::Duration;

use sqlx::PgPool;

/// Deltas folded per statement.
const FOLD_BATCH: i64 = 10_000;
const EVERY: Duration = Duration::from_secs(1);

/// Safe in every process at once: a batch takes the deltas no other fold holds and upserts
/// its keys in order.
const FOLD_ERRORS_SQL: &str = "
    WITH moved AS (
        DELETE FROM error_rollup_deltas WHERE id IN (
            SELECT id FROM error_rollup_deltas ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING hour, error_type, fingerprint, pattern, errors, recovered, failed, attempted,
                  recovered_attempts, first_at, last_at),
    folded AS (
        INSERT INTO error_rollups AS r (hour, error_type, fingerprint, pattern, errors, recovered,
                                        failed, attempted, recovered_attempts, first_at, last_at)
        SELECT hour, error_type, fingerprint, max(pattern), sum(errors), sum(recovered),
               sum(failed), sum(attempted), sum(recovered_attempts), min(first_at), max(last_at)
        FROM moved GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (hour, error_type, fingerprint) DO UPDATE SET
            pattern = greatest(r.pattern, EXCLUDED.pattern),
            errors = r.errors + EXCLUDED.errors, recovered = r.recovered + EXCLUDED.recovered,
            failed = r.failed + EXCLUDED.failed, attempted = r.attempted + EXCLUDED.attempted,
            recovered_attempts = r.recovered_attempts + EXCLUDED.recovered_attempts,
            first_at = least(r.first_at, EXCLUDED.first_at),
            last_at = greatest(r.last_at, EXCLUDED.last_at))
    SELECT count(*) FROM moved";

const FOLD_WORKERS_SQL: &str = "
    WITH moved AS (
        DELETE FROM worker_rollup_deltas WHERE id IN (
            SELECT id FROM worker_rollup_deltas ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING hour, worker_id, completed, failed),
    folded AS (
        INSERT INTO worker_task_rollups AS w (hour, worker_id, completed, failed)
        SELECT hour, worker_id, sum(completed), sum(failed)
        FROM moved GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (hour, worker_id) DO UPDATE SET
            completed = w.completed + EXCLUDED.completed, failed = w.failed + EXCLUDED.failed)
    SELECT count(*) FROM moved";

/// Folds both until fewer than a batch are left; returns how many deltas moved.
pub async fn fold(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut moved = 0;
    for sql in [FOLD_ERRORS_SQL, FOLD_WORKERS_SQL] {
        loop {
            let batch: i64 = sqlx::query_scalar(sql)
                .bind(FOLD_BATCH)
                .fetch_one(pool)
                .await?;
            moved += batch as u64;
            if batch < FOLD_BATCH {
                break;
            }
        }
    }
    Ok(moved)
}

/// Folds every second for the life of the process.
pub async fn run_error_rollups(pool: PgPool) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = fold(&pool).await {
            tracing::warn!(%error, "folding error rollups failed; trying again");
        }
    }
}
