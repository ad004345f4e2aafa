//! The jobs domain's SQL, one statement per operation, and the row types they decode into.
//! Statuses are bound from `model::JobStatus`, never written as literals here.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use super::JobError;
use crate::model::{
    DetailedStatus, ErrorClass, JobAction, JobDriver, JobErrorView, JobKind, JobStatus, JobView,
    LogLevel, ResourceLimits, RetryConfig, TriggerSource,
};
use crate::server::audit::{self, Actor, Event, Outcome};

pub const CREATE_JOB_SQL: &str = "
    INSERT INTO jobs (kind, product_id, sending_group_id, user_id, trigger_source, priority,
                      max_parallel_tasks, max_attempts, retry_interval, retry_on_errors,
                      max_memory, max_cpu, stages, created_by, driver, queue)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    RETURNING id";

/// Every reader's columns, with the job's latest error (one index probe per job).
macro_rules! job_select {
    ($($tail:tt)+) => {
        concat!(
            "SELECT j.id, j.status, j.kind, j.product_id, j.sending_group_id, j.user_id,
                    j.trigger_source, j.driver, j.queue, j.priority, j.max_parallel_tasks, j.max_attempts,
                    j.retry_interval, j.retry_on_errors, j.max_memory, j.max_cpu,
                    j.current_phase, j.progress_percentage, j.active_tasks, j.error_count,
                    j.stages, j.created_at, j.started_at, j.finished_at, j.updated_at,
                    j.delete_requested_at,
                    e.code AS error_code, e.class AS error_class, e.message AS error_message,
                    e.stack AS error_stack, e.task_name AS error_task, e.at AS error_at
             FROM jobs j
             LEFT JOIN LATERAL (
                 SELECT code, class, message, stack, task_name, at FROM job_errors
                 WHERE job_id = j.id ORDER BY id DESC LIMIT 1
             ) e ON true ",
            $($tail)+
        )
    };
}
// `monitoring::store` reads jobs with the same columns into the same row.
pub(crate) use job_select;

pub const GET_JOB_SQL: &str = job_select!("WHERE j.id = $1");

/// The job's row lock: every change to a job and its tasks takes it first, so racing
/// callers are served one after the other and each sees the state the last one left.
pub const LOCK_JOB_SQL: &str = "
    SELECT id, status, current_phase, stages, delete_requested_at, driver, queue
    FROM jobs WHERE id = $1 FOR UPDATE";

/// A job that fails or is cancelled ends its unfinished tasks (their holders' next
/// heartbeat answers `stop`). `$2` cancelled, `$3` the statuses that end.
pub const END_TASKS_SQL: &str = "
    UPDATE job_tasks SET
        status = $2, finished_at = now(), lease_token = NULL, leased_until = NULL,
        updated_at = now()
    WHERE id IN (SELECT id FROM job_tasks WHERE job_id = $1 AND status = ANY($3)
                 ORDER BY id FOR UPDATE)";

/// A retried job's failed and cancelled tasks run again, with all their attempts. `$2`
/// pending, `$3` failed and cancelled.
pub const RESET_TASKS_SQL: &str = "
    UPDATE job_tasks SET
        status = $2, attempt = 0, finished_at = NULL, not_before = NULL, lease_token = NULL,
        leased_until = NULL, progress = NULL, updated_at = now()
    WHERE id IN (SELECT id FROM job_tasks WHERE job_id = $1 AND status = ANY($3)
                 ORDER BY id FOR UPDATE)";

pub const TOMBSTONE_SQL: &str = "SELECT deleted_at FROM job_tombstones WHERE job_id = $1";

/// Deleting the job cascades to its tasks, phases, events, logs, errors and articles; the
/// tombstone lets a pipeline that calls later learn it is gone.
pub const DELETE_JOB_SQL: &str = "
    WITH gone AS (DELETE FROM jobs WHERE id = $1 RETURNING id)
    INSERT INTO job_tombstones (job_id) SELECT id FROM gone
    ON CONFLICT (job_id) DO UPDATE SET deleted_at = now()
    RETURNING deleted_at";

/// One statement for status, timestamps and detailed status; `$3`/`$4` say whether the new
/// status starts or ends a run (decided in `model::JobStatus`), and a finished run has no
/// active tasks. `WHERE status = $9` makes it conditional even without the lock.
pub const UPDATE_BATCH_JOB_SQL: &str = "
    UPDATE jobs SET
        status = $2,
        started_at = CASE WHEN $3 THEN coalesce(started_at, now()) ELSE started_at END,
        finished_at = CASE WHEN $4 THEN coalesce(finished_at, now()) ELSE NULL END,
        current_phase = coalesce($5, current_phase),
        progress_percentage = coalesce($6, progress_percentage),
        active_tasks = CASE WHEN $4 THEN 0 ELSE coalesce($7, active_tasks) END,
        running_tasks = CASE WHEN $4 THEN 0 ELSE running_tasks END,
        error_count = coalesce($8, error_count + $10),
        updated_at = now()
    WHERE id = $1 AND status = $9
    RETURNING status, current_phase, progress_percentage, active_tasks, error_count, updated_at";

/// `updateBatchJob`'s common case for many jobs at once (`jobs::report_queue`): locks the
/// jobs in id order, so concurrent statements cannot deadlock, and updates those in one of
/// their report's `sources` (the statuses it is legal from, decided in `model::JobStatus`),
/// not being deleted, and staying in their phase; writes their events and audit rows; and
/// returns one row per job it changed. A dispatched job is left to the locked path, which
/// refuses it. One report per job. `$15` is `JobDriver::Reported`. `$13`/`$14` are the audit row's
/// action (`updateBatchJob`) and outcome.
pub const REPORT_JOBS_SQL: &str = "
    WITH input AS (
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::text[], $5::float8[],
                             $6::int4[], $7::int4[], $8::text[], $9::text[], $10::uuid[],
                             $11::uuid[], $12::text[])
            AS i(id, status, starts, phase, progress, active_tasks, error_count, sources,
                 actor, actor_user_id, actor_token_id, client_addr)
    ), cur AS (
        SELECT j.id, j.status FROM jobs j JOIN input i ON i.id = j.id
        WHERE j.delete_requested_at IS NULL AND j.driver = $15
          AND j.status = ANY(string_to_array(i.sources, ','))
          AND (i.phase IS NULL OR j.current_phase = i.phase)
        ORDER BY j.id
        FOR UPDATE OF j
    ), upd AS (
        UPDATE jobs j SET
            status = coalesce(i.status, cur.status),
            started_at = CASE WHEN i.starts THEN coalesce(j.started_at, now()) ELSE j.started_at END,
            finished_at = NULL,
            progress_percentage = coalesce(i.progress, j.progress_percentage),
            active_tasks = coalesce(i.active_tasks, j.active_tasks),
            error_count = coalesce(i.error_count, j.error_count),
            updated_at = now()
        FROM cur JOIN input i ON i.id = cur.id
        WHERE j.id = cur.id
        RETURNING j.id AS job_id, cur.status AS previous_status, j.status, j.current_phase,
                  j.progress_percentage, j.active_tasks, j.error_count, j.updated_at,
                  i.phase, i.actor, i.actor_user_id, i.actor_token_id, i.client_addr
    ), event AS (
        INSERT INTO job_events (job_id, from_status, to_status, actor)
        SELECT job_id, previous_status, status, actor FROM upd WHERE previous_status <> status
    ), audit AS (
        INSERT INTO audit_events (actor_user_id, actor_token_id, actor, client_addr, action,
                                  target, details, outcome)
        SELECT actor_user_id, actor_token_id, actor, client_addr, $13, job_id::text,
               jsonb_build_object('from', previous_status, 'to', status, 'phase', phase,
                                  'error_code', NULL, 'reason', NULL),
               $14
        FROM upd
    )
    SELECT job_id, previous_status, status, current_phase, progress_percentage, active_tasks,
           error_count, updated_at
    FROM upd";

pub const REQUEST_DELETE_SQL: &str = "
    UPDATE jobs SET delete_requested_at = coalesce(delete_requested_at, now()), updated_at = now()
    WHERE id = $1
    RETURNING delete_requested_at";

pub const INSERT_EVENT_SQL: &str = "
    INSERT INTO job_events (job_id, from_status, to_status, actor, reason)
    VALUES ($1, $2, $3, $4, $5)";

pub const CLOSE_PHASE_SQL: &str = "
    UPDATE job_phases SET finished_at = now() WHERE job_id = $1 AND finished_at IS NULL";

pub const OPEN_PHASE_SQL: &str = "INSERT INTO job_phases (job_id, name) VALUES ($1, $2)";

pub const INSERT_ERROR_SQL: &str = "
    WITH e AS (
        INSERT INTO job_errors (job_id, task_name, code, class, message, stack)
        VALUES ($1, $2, $3, $4, $5, $6)
    )
    INSERT INTO job_logs (job_id, task_name, level, message)
    VALUES ($1, $2, $7, $3 || ': ' || $5)";

/// The parts of a locked job that decisions need.
#[derive(Clone, Debug, FromRow)]
pub struct LockedJob {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub current_phase: Option<String>,
    pub stages: Vec<String>,
    pub delete_requested_at: Option<DateTime<Utc>>,
    pub driver: JobDriver,
    pub queue: String,
}

/// Locks a job for a change. A job that is gone (or was asked to go while live, whose
/// pipeline is calling now) answers `Gone`: the second case removes it here, since the
/// pipeline learns of it with this answer and stops.
pub async fn lock_job(
    tx: &mut PgConnection,
    job_id: Uuid,
    actor: &Actor,
) -> Result<LockedJob, JobError> {
    let job: Option<LockedJob> = sqlx::query_as(LOCK_JOB_SQL)
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await?;
    match job {
        None => Err(match tombstone(tx, job_id).await? {
            Some(deleted_at) => JobError::Gone { job_id, deleted_at },
            None => JobError::NotFound(job_id),
        }),
        Some(job) if job.delete_requested_at.is_some() => {
            let deleted_at =
                remove_job(tx, job_id, actor, "its pipeline called after deleteJob").await?;
            Err(JobError::Gone { job_id, deleted_at })
        }
        Some(job) => Ok(job),
    }
}

pub async fn tombstone(
    conn: &mut PgConnection,
    job_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(TOMBSTONE_SQL)
        .bind(job_id)
        .fetch_optional(conn)
        .await
}

/// Deletes the job and everything under it, leaves a tombstone and audits it.
pub async fn remove_job(
    tx: &mut PgConnection,
    job_id: Uuid,
    actor: &Actor,
    why: &str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    let deleted_at: DateTime<Utc> = sqlx::query_scalar(DELETE_JOB_SQL)
        .bind(job_id)
        .fetch_one(&mut *tx)
        .await?;
    audit::record(
        tx,
        actor,
        Event {
            action: JobAction::Delete.name(),
            target: Some(&job_id.to_string()),
            details: serde_json::json!({ "result": "deleted", "why": why }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    Ok(deleted_at)
}

pub async fn record_event(
    tx: &mut PgConnection,
    job_id: Uuid,
    from: Option<JobStatus>,
    to: JobStatus,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT_EVENT_SQL)
        .bind(job_id)
        .bind(from)
        .bind(to)
        .bind(&actor.label)
        .bind(reason)
        .execute(tx)
        .await?;
    Ok(())
}

/// Keeps one error (every one, not only the last) with its class and an error line in the
/// job's log.
pub async fn record_error(
    tx: &mut PgConnection,
    job_id: Uuid,
    task: Option<&str>,
    code: &str,
    message: &str,
    stack: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT_ERROR_SQL)
        .bind(job_id)
        .bind(task)
        .bind(code)
        .bind(ErrorClass::of_code(code))
        .bind(message)
        .bind(stack)
        .bind(LogLevel::Error)
        .execute(tx)
        .await?;
    Ok(())
}

#[derive(FromRow)]
pub struct JobRow {
    id: Uuid,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    #[sqlx(try_from = "String")]
    kind: JobKind,
    product_id: Option<String>,
    sending_group_id: Option<String>,
    user_id: Option<String>,
    trigger_source: TriggerSource,
    driver: JobDriver,
    queue: String,
    priority: i16,
    max_parallel_tasks: i32,
    max_attempts: i32,
    retry_interval: i32,
    retry_on_errors: Vec<String>,
    max_memory: i64,
    max_cpu: f64,
    current_phase: Option<String>,
    progress_percentage: f64,
    active_tasks: i32,
    error_count: i32,
    stages: Vec<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    delete_requested_at: Option<DateTime<Utc>>,
    error_code: Option<String>,
    error_class: Option<String>,
    error_message: Option<String>,
    error_stack: Option<String>,
    error_task: Option<String>,
    error_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> Self {
        let last_error = match (row.error_code, row.error_at) {
            (Some(code), Some(at)) => Some(JobErrorView {
                class: row
                    .error_class
                    .as_deref()
                    .and_then(ErrorClass::parse)
                    .unwrap_or(ErrorClass::Unknown),
                code,
                message: row.error_message.unwrap_or_default(),
                stack: row.error_stack,
                task: row.error_task,
                at,
            }),
            _ => None,
        };
        JobView {
            id: row.id,
            status: row.status,
            kind: row.kind,
            product_id: row.product_id,
            sending_group_id: row.sending_group_id,
            user_id: row.user_id,
            trigger_source: row.trigger_source,
            driver: row.driver,
            queue: row.queue,
            priority: row.priority,
            max_parallel_tasks: row.max_parallel_tasks,
            retry_config: RetryConfig {
                max_attempts: row.max_attempts,
                retry_interval: row.retry_interval,
                retry_on_errors: row.retry_on_errors,
            },
            resource_limits: ResourceLimits {
                max_memory: row.max_memory,
                max_cpu: row.max_cpu,
            },
            detailed_status: DetailedStatus {
                current_phase: row.current_phase,
                progress_percentage: row.progress_percentage,
                active_tasks: row.active_tasks,
                error_count: row.error_count,
            },
            stages: row.stages,
            last_error,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            updated_at: row.updated_at,
            delete_requested_at: row.delete_requested_at,
        }
    }
}

pub async fn get_job(
    conn: &mut PgConnection,
    job_id: Uuid,
) -> Result<Option<JobView>, sqlx::Error> {
    let row: Option<JobRow> = sqlx::query_as(GET_JOB_SQL)
        .bind(job_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(JobView::from))
}
