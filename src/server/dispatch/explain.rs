//! "Why is this task waiting?": for a dispatched job's pending tasks, each reason that
//! holds it back, read from the job, its tasks and what workers said when they asked.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::model::dispatch::{WaitReason, WaitingTask};
use crate::model::{JobDriver, JobStatus, TaskStatus};

const JOB_SQL: &str = "
    SELECT status, driver, queue, running_tasks, max_parallel_tasks, max_memory, max_cpu,
           delete_requested_at IS NOT NULL AS deleting
    FROM jobs WHERE id = $1";

/// The oldest pending tasks with the dependencies they still wait for. `$2` completed,
/// `$3` pending.
const PENDING_SQL: &str = "
    SELECT t.name, t.not_before,
           ARRAY(SELECT d.name FROM job_tasks d
                 WHERE d.job_id = t.job_id AND d.name = ANY(t.depends_on) AND d.status <> $2
                 ORDER BY d.name) AS waiting_for
    FROM job_tasks t
    WHERE t.job_id = $1 AND t.status = $3
    ORDER BY t.seq
    LIMIT $4";

/// The workers of the queue that asked in the last minute, the largest capacity among
/// them, and how many declared enough for the job (no bound is enough).
const WORKERS_SQL: &str = "
    SELECT count(*) AS seen,
           count(*) FILTER (WHERE (memory_mb IS NULL OR memory_mb >= $2)
                              AND (cpus IS NULL OR cpus >= $3)) AS fitting,
           max(memory_mb) AS largest_memory_mb, max(cpus) AS largest_cpus
    FROM workers
    WHERE $1 = ANY(queues) AND last_seen_at > now() - interval '1 minute'";

#[derive(FromRow)]
struct JobRow {
    status: JobStatus,
    driver: JobDriver,
    queue: String,
    running_tasks: i32,
    max_parallel_tasks: i32,
    max_memory: i64,
    max_cpu: f64,
    deleting: bool,
}

#[derive(FromRow)]
struct PendingRow {
    name: String,
    not_before: Option<DateTime<Utc>>,
    waiting_for: Vec<String>,
}

#[derive(FromRow)]
struct WorkersRow {
    seen: i64,
    fitting: i64,
    largest_memory_mb: Option<i64>,
    largest_cpus: Option<f64>,
}

/// The first `limit` pending tasks of a dispatched job and why each waits; nothing for a
/// reported job (its pipeline decides).
pub async fn waiting_tasks(
    pool: &PgPool,
    job_id: Uuid,
    limit: i64,
) -> Result<Vec<WaitingTask>, sqlx::Error> {
    let Some(job): Option<JobRow> = sqlx::query_as(JOB_SQL)
        .bind(job_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(Vec::new());
    };
    if job.driver != JobDriver::Dispatched {
        return Ok(Vec::new());
    }
    let pending: Vec<PendingRow> = sqlx::query_as(PENDING_SQL)
        .bind(job_id)
        .bind(TaskStatus::Completed)
        .bind(TaskStatus::Pending)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let workers: WorkersRow = sqlx::query_as(WORKERS_SQL)
        .bind(&job.queue)
        .bind(job.max_memory)
        .bind(job.max_cpu)
        .fetch_one(pool)
        .await?;
    let now = Utc::now();
    let mut shared = Vec::new();
    if job.deleting || !JobStatus::HANDING_OUT.contains(&job.status) {
        shared.push(WaitReason::JobPaused);
    }
    if job.running_tasks >= job.max_parallel_tasks {
        shared.push(WaitReason::LimitReached {
            running: job.running_tasks,
            limit: job.max_parallel_tasks,
        });
    }
    if workers.seen == 0 {
        shared.push(WaitReason::NoWorker {
            queue: job.queue.clone(),
        });
    } else if workers.fitting == 0 {
        shared.push(WaitReason::NoCapacity {
            needs_memory_mb: job.max_memory,
            needs_cpus: job.max_cpu,
            largest_memory_mb: workers.largest_memory_mb,
            largest_cpus: workers.largest_cpus,
        });
    }
    Ok(pending
        .into_iter()
        .map(|task| {
            let mut reasons = shared.clone();
            if !task.waiting_for.is_empty() {
                reasons.push(WaitReason::Dependencies {
                    waiting_for: task.waiting_for,
                });
            }
            if let Some(not_before) = task.not_before.filter(|t| *t > now) {
                reasons.push(WaitReason::RetryAt { not_before });
            }
            if reasons.is_empty() {
                reasons.push(WaitReason::Ready);
            }
            WaitingTask {
                name: task.name,
                reasons,
            }
        })
        .collect())
}
