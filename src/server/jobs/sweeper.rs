//! Removes jobs whose deletion was asked while they ran and whose pipeline never called
//! again, once `JOB_LIMITS.delete_grace_secs` has passed, and forgets old tombstones. Every
//! portal may run it: each pass deletes under row locks, skipping rows another holds.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::store::remove_job;
use crate::model::JOB_LIMITS;
use crate::server::audit::Actor;
use crate::server::monitoring::JobChanges;

const EXPIRED_SQL: &str = "
    SELECT id FROM jobs
    WHERE delete_requested_at < now() - make_interval(secs => $1)
    ORDER BY delete_requested_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED";

/// A pipeline that calls more than a week after its job went gets 404 instead of 410.
const FORGET_TOMBSTONES_SQL: &str = "
    DELETE FROM job_tombstones WHERE deleted_at < now() - interval '7 days'";

const EVERY: Duration = Duration::from_secs(30);

/// `changes` hears of each job that went, for its live streams.
pub async fn run_deletion_sweeper(pool: PgPool, changes: JobChanges) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match sweep_expired(&pool).await {
            Ok(gone) => changes.touch_all(gone),
            Err(error) => tracing::warn!(%error, "job deletion sweep failed; trying again later"),
        }
    }
}

/// One pass; returns how many jobs went.
pub async fn sweep(pool: &PgPool) -> Result<usize, sqlx::Error> {
    Ok(sweep_expired(pool).await?.len())
}

/// One pass; returns the jobs that went.
async fn sweep_expired(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let expired: Vec<Uuid> = sqlx::query_scalar(EXPIRED_SQL)
        .bind(JOB_LIMITS.delete_grace_secs as f64)
        .fetch_all(&mut *tx)
        .await?;
    for job_id in &expired {
        remove_job(&mut tx, *job_id, &Actor::system(), "deletion grace expired").await?;
    }
    sqlx::query(FORGET_TOMBSTONES_SQL).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(expired)
}
