//! Reads of jobs: `getJobInfo` and a job's page (the jobs page is `monitoring::jobs_page`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::store;
use super::JobError;
use crate::model::dispatch::WaitingTask;
use crate::model::{
    stage_progress, ErrorClass, JobDetailView, JobErrorView, JobEventView, JobPhaseView, JobView,
    TaskCounts,
};
use crate::server::dispatch;
use crate::server::tasks;

/// Rows of each list on a job's page.
const DETAIL_ROWS: i64 = 200;

/// The newest runs, oldest first: the last one is the stage the job is in.
const PHASES_SQL: &str = "
    SELECT name, started_at, finished_at FROM (
        SELECT id, name, started_at, finished_at FROM job_phases
        WHERE job_id = $1 ORDER BY id DESC LIMIT $2
    ) newest ORDER BY id";

const EVENTS_SQL: &str = "
    SELECT from_status, to_status, at, actor, reason FROM job_events
    WHERE job_id = $1 ORDER BY id DESC LIMIT $2";

const ERRORS_SQL: &str = "
    SELECT code, class, message, stack, task_name, at FROM job_errors
    WHERE job_id = $1 ORDER BY id DESC LIMIT $2";

const ARTICLES_SQL: &str = "SELECT count(*) FROM recap_job_articles WHERE job_id = $1";

/// `getJobInfo`: the job, its detailed status, its tasks' counts and, for a dispatched job,
/// why its oldest pending tasks wait.
#[derive(Debug, Serialize)]
pub struct JobInfo {
    pub job: JobView,
    pub tasks: TaskCounts,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<WaitingTask>,
}

/// How many pending tasks `getJobInfo` and the job's page explain.
pub const WAITING_EXPLAINED: i64 = 50;

pub async fn get_job_info(pool: &PgPool, job_id: Uuid) -> Result<JobInfo, JobError> {
    let mut conn = pool.acquire().await?;
    let Some(job) = store::get_job(&mut conn, job_id).await? else {
        return Err(match store::tombstone(&mut conn, job_id).await? {
            Some(deleted_at) => JobError::Gone { job_id, deleted_at },
            None => JobError::NotFound(job_id),
        });
    };
    let tasks = tasks::task_counts(pool, job_id).await?;
    let waiting = if tasks.pending > 0 {
        dispatch::waiting_tasks(pool, job_id, WAITING_EXPLAINED).await?
    } else {
        Vec::new()
    };
    Ok(JobInfo {
        job,
        tasks,
        waiting,
    })
}

#[derive(FromRow)]
struct ErrorRow {
    code: String,
    class: String,
    message: String,
    stack: Option<String>,
    task_name: Option<String>,
    at: DateTime<Utc>,
}

/// Everything a job's page shows.
pub async fn job_detail(pool: &PgPool, job_id: Uuid) -> Result<JobDetailView, JobError> {
    let info = get_job_info(pool, job_id).await?;
    let tasks = tasks::job_tasks(pool, job_id, DETAIL_ROWS).await?;
    let phases: Vec<JobPhaseView> = sqlx::query_as(PHASES_SQL)
        .bind(job_id)
        .bind(DETAIL_ROWS)
        .fetch_all(pool)
        .await?;
    let events: Vec<JobEventView> = sqlx::query_as(EVENTS_SQL)
        .bind(job_id)
        .bind(DETAIL_ROWS)
        .fetch_all(pool)
        .await?;
    let errors: Vec<ErrorRow> = sqlx::query_as(ERRORS_SQL)
        .bind(job_id)
        .bind(DETAIL_ROWS)
        .fetch_all(pool)
        .await?;
    let articles: i64 = sqlx::query_scalar(ARTICLES_SQL)
        .bind(job_id)
        .fetch_one(pool)
        .await?;
    let now = Utc::now();
    Ok(JobDetailView {
        now,
        stages: stage_progress(&info.job.stages, &phases, info.job.status, now),
        job: info.job,
        counts: info.tasks,
        tasks,
        events,
        errors: errors
            .into_iter()
            .map(|e| JobErrorView {
                class: ErrorClass::parse(&e.class).unwrap_or(ErrorClass::Unknown),
                code: e.code,
                message: e.message,
                stack: e.stack,
                task: e.task_name,
                at: e.at,
            })
            .collect(),
        // The log's page and the charts are the monitoring domain's (`monitoring::job_page`).
        logs: Vec::new(),
        older_logs: None,
        charts: Default::default(),
        articles,
        waiting: info.waiting,
    })
}
