//! The workers page: each worker seen in the last hour, and each queue's depth.

use chrono::Utc;
use sqlx::PgPool;

use crate::model::dispatch::{QueueDepth, WorkerView, WorkersView};
use crate::model::{JobDriver, JobStatus, TaskStatus};

/// The most workers the page lists, most recently seen first.
pub const WORKERS_SHOWN: i64 = 500;

const WORKERS_SQL: &str = "
    SELECT w.id, w.queues, w.memory_mb, w.cpus, w.actor, w.first_seen_at, w.last_seen_at,
           (SELECT count(*) FROM job_tasks t
            WHERE t.leased_by = w.id AND t.lease_token IS NOT NULL) AS held
    FROM workers w
    WHERE w.last_seen_at > now() - interval '1 hour'
    ORDER BY w.last_seen_at DESC, w.id
    LIMIT $1";

/// Pending and held tasks per queue of the dispatched jobs that hand out work. `$1`/`$2`
/// pending and running, `$3` dispatched, `$4` `JobStatus::HANDING_OUT` and paused.
const QUEUES_SQL: &str = "
    SELECT j.queue,
           count(*) FILTER (WHERE t.status = $1) AS pending,
           count(*) FILTER (WHERE t.status = $2) AS running,
           count(DISTINCT j.id) AS jobs
    FROM jobs j JOIN job_tasks t ON t.job_id = j.id
    WHERE j.driver = $3 AND j.status = ANY($4) AND t.status IN ($1, $2)
    GROUP BY j.queue
    ORDER BY j.queue
    LIMIT 200";

pub async fn list_workers(pool: &PgPool) -> Result<WorkersView, sqlx::Error> {
    let workers: Vec<WorkerView> = sqlx::query_as(WORKERS_SQL)
        .bind(WORKERS_SHOWN)
        .fetch_all(pool)
        .await?;
    let live = [JobStatus::Pending, JobStatus::Running, JobStatus::Paused].map(JobStatus::as_str);
    let queues: Vec<QueueDepth> = sqlx::query_as(QUEUES_SQL)
        .bind(TaskStatus::Pending)
        .bind(TaskStatus::Running)
        .bind(JobDriver::Dispatched)
        .bind(live)
        .fetch_all(pool)
        .await?;
    Ok(WorkersView {
        now: Utc::now(),
        workers,
        queues,
    })
}
