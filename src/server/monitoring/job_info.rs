//! `getJobInfo` with seed 000's flags: the job and its task counts (`jobs::get_job_info`),
//! plus, when asked, its resource use and throughput, every task's details and its log,
//! each list paged by key.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::input::JobInfoRequest;
use super::store;
use crate::model::{parse_number, Cursor, JobDetailView, JobLogView, LogLevel, TaskStatus};
use crate::server::jobs::{self, JobError, JobInfo};

/// Tasks per page of `include_task_details`.
pub const TASKS_PER_PAGE: i64 = 500;
/// Log lines per page of `include_logs`.
pub const LOG_LINES_PER_PAGE: i64 = 100;

#[derive(Debug, Serialize)]
pub struct DetailedJobInfo {
    #[serde(flatten)]
    pub info: JobInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<JobMetricsNow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_details: Option<TaskDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogPage>,
    /// With `real_time`: the job's Server-Sent Events stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
}

/// What the job uses now (the latest sample of each task from the last minute, summed),
/// its peak (the largest single sample), how long it has run and its throughput.
#[derive(Debug, Serialize, FromRow)]
pub struct JobMetricsNow {
    pub cpu_percent: Option<f64>,
    pub memory_mb: Option<f64>,
    pub peak_cpu_percent: Option<f64>,
    pub peak_memory_mb: Option<f64>,
    /// Items its tasks' counters reached, summed.
    pub items: Option<i64>,
    pub samples: i64,
    #[sqlx(skip)]
    pub duration_ms: Option<i64>,
    /// `items` over the run's duration so far.
    #[sqlx(skip)]
    pub throughput_per_second: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct TaskDetails {
    pub tasks: Vec<TaskDetail>,
    /// Send as `task_cursor` for the next page.
    pub next_cursor: Option<Cursor>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct TaskDetail {
    #[serde(skip)]
    pub seq: i64,
    pub name: String,
    pub status: TaskStatus,
    /// Attempts started so far.
    #[serde(rename = "attempts")]
    pub attempt: i32,
    /// The worker holding it now.
    pub worker: Option<String>,
    pub progress: Option<f64>,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub leased_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct LogPage {
    /// Newest first.
    pub lines: Vec<LogLine>,
    /// Send as `log_cursor` for the older lines.
    pub next_cursor: Option<Cursor>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct LogLine {
    #[serde(skip)]
    pub id: i64,
    pub task_name: Option<String>,
    pub level: LogLevel,
    pub message: String,
    pub at: DateTime<Utc>,
}

fn position(cursor: &Option<Cursor>, field: &'static str, start: i64) -> Result<i64, JobError> {
    match cursor {
        None => Ok(start),
        Some(cursor) => cursor
            .parts::<1>()
            .and_then(|[n]| parse_number(&n))
            .map_err(|bad| JobError::invalid(field, bad.to_string())),
    }
}

pub async fn get_job_info(
    pool: &PgPool,
    request: JobInfoRequest,
) -> Result<DetailedJobInfo, JobError> {
    let after_task = position(&request.task_cursor, "data.task_cursor", 0)?;
    let before_line = position(&request.log_cursor, "data.log_cursor", i64::MAX)?;
    let job_id = request.job_id;
    let info = jobs::get_job_info(pool, job_id).await?;
    let metrics = if request.include_metrics {
        let mut now: JobMetricsNow = sqlx::query_as(store::JOB_METRICS_NOW_SQL)
            .bind(job_id)
            .fetch_one(pool)
            .await?;
        let job = &info.job;
        now.duration_ms = job
            .started_at
            .map(|started| (job.finished_at.unwrap_or_else(Utc::now) - started).num_milliseconds());
        now.throughput_per_second = match (now.items, now.duration_ms) {
            (Some(items), Some(ms)) if ms > 0 => Some(items as f64 * 1000.0 / ms as f64),
            _ => None,
        };
        Some(now)
    } else {
        None
    };
    let task_details = if request.include_task_details {
        let mut tasks: Vec<TaskDetail> = sqlx::query_as(store::TASK_DETAILS_SQL)
            .bind(job_id)
            .bind(after_task)
            .bind(TASKS_PER_PAGE + 1)
            .fetch_all(pool)
            .await?;
        let more = tasks.len() as i64 > TASKS_PER_PAGE;
        tasks.truncate(TASKS_PER_PAGE as usize);
        let next_cursor = more.then(|| Cursor::new(&[&tasks[tasks.len() - 1].seq.to_string()]));
        Some(TaskDetails { tasks, next_cursor })
    } else {
        None
    };
    let logs = if request.include_logs {
        Some(log_page(pool, job_id, before_line).await?)
    } else {
        None
    };
    Ok(DetailedJobInfo {
        info,
        metrics,
        task_details,
        logs,
        stream_url: request.real_time.then(|| stream_path(job_id)),
    })
}

/// `LOG_LINES_PER_PAGE` of the job's log before line `before`, newest first.
pub async fn log_page(pool: &PgPool, job_id: Uuid, before: i64) -> Result<LogPage, JobError> {
    let mut lines: Vec<LogLine> = sqlx::query_as(store::LOG_PAGE_SQL)
        .bind(job_id)
        .bind(before)
        .bind(LOG_LINES_PER_PAGE + 1)
        .fetch_all(pool)
        .await?;
    let more = lines.len() as i64 > LOG_LINES_PER_PAGE;
    lines.truncate(LOG_LINES_PER_PAGE as usize);
    let next_cursor = more.then(|| Cursor::new(&[&lines[lines.len() - 1].id.to_string()]));
    Ok(LogPage { lines, next_cursor })
}

/// The job page (`/jobs/<id>`): the jobs domain's detail, with a page of the log (before
/// `log_cursor`, as `getJobInfo`'s `log_cursor`) and the resource charts.
pub async fn job_page(
    pool: &PgPool,
    job_id: Uuid,
    log_cursor: Option<Cursor>,
) -> Result<JobDetailView, JobError> {
    let before = position(&log_cursor, "log", i64::MAX)?;
    let mut detail = jobs::job_detail(pool, job_id).await?;
    let log = log_page(pool, job_id, before).await?;
    detail.logs = log
        .lines
        .into_iter()
        .map(|line| JobLogView {
            task_name: line.task_name,
            level: line.level,
            message: line.message,
            at: line.at,
        })
        .collect();
    detail.older_logs = log.next_cursor;
    detail.charts = super::charts::job_charts(pool, &detail.job, detail.now).await?;
    Ok(detail)
}

/// The job's live stream (`GET`, Server-Sent Events).
pub fn stream_path(job_id: Uuid) -> String {
    format!("/v1/jobs/{job_id}/events")
}
