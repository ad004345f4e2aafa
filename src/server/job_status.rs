//! Reads of `job_status` and `job_reports` for the incidents page, the badge and a job's page.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::chart;
use crate::model::{IncidentsView, JobDetailView, JobRunView, JobStatusView, ReportStatus};

/// Runs listed on a job's page, newest first.
const RECENT_RUNS: i64 = 50;
/// Runs drawn in a job's chart.
const CHART_RUNS: i64 = 200;

#[derive(sqlx::FromRow)]
struct JobStatusRow {
    id: Uuid,
    job_key: String,
    title: String,
    tool_name: Option<String>,
    #[sqlx(try_from = "String")]
    last_status: ReportStatus,
    last_finished_at: DateTime<Utc>,
    last_message: Option<String>,
}

impl From<JobStatusRow> for JobStatusView {
    fn from(row: JobStatusRow) -> Self {
        Self {
            id: row.id,
            job_key: row.job_key,
            title: row.title,
            tool_name: row.tool_name,
            last_status: row.last_status,
            last_finished_at: row.last_finished_at,
            last_message: row.last_message,
        }
    }
}

const INCIDENTS_SQL: &str = "
    SELECT s.id, s.job_key, s.title, t.name AS tool_name, s.last_status, s.last_finished_at, s.last_message
    FROM job_status s LEFT JOIN tools t ON t.id = s.tool_id
    ORDER BY s.last_status = 'error' DESC, s.last_finished_at DESC, s.job_key";

const JOB_SQL: &str = "
    SELECT s.id, s.job_key, s.title, t.name AS tool_name, s.last_status, s.last_finished_at, s.last_message
    FROM job_status s LEFT JOIN tools t ON t.id = s.tool_id
    WHERE s.job_key = $1";

/// Every job, failing ones first, each group newest first.
pub async fn incidents(pool: &PgPool) -> Result<IncidentsView, sqlx::Error> {
    let rows: Vec<JobStatusRow> = sqlx::query_as(INCIDENTS_SQL).fetch_all(pool).await?;
    Ok(IncidentsView {
        now: Utc::now(),
        jobs: rows.into_iter().map(Into::into).collect(),
    })
}

/// The sidebar badge: jobs whose last report was an error.
pub async fn error_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM job_status WHERE last_status = 'error'")
        .fetch_one(pool)
        .await
}

#[derive(sqlx::FromRow)]
struct RunRow {
    #[sqlx(try_from = "String")]
    status: ReportStatus,
    finished_at: DateTime<Utc>,
    duration_ms: Option<i64>,
    message: Option<String>,
}

impl From<RunRow> for JobRunView {
    fn from(row: RunRow) -> Self {
        Self {
            status: row.status,
            finished_at: row.finished_at,
            duration_ms: row.duration_ms,
            message: row.message,
        }
    }
}

/// A job's page, or `None` when no job has this key.
pub async fn detail(pool: &PgPool, job_key: &str) -> Result<Option<JobDetailView>, sqlx::Error> {
    let Some(job) = sqlx::query_as::<_, JobStatusRow>(JOB_SQL)
        .bind(job_key)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let runs: Vec<JobRunView> = sqlx::query_as::<_, RunRow>(
        "SELECT status, finished_at, duration_ms, message FROM job_reports
         WHERE job_status_id = $1 ORDER BY finished_at DESC, id DESC LIMIT $2",
    )
    .bind(job.id)
    .bind(CHART_RUNS)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Into::into)
    .collect();
    let (total_runs, success_runs): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'success') FROM job_reports WHERE job_status_id = $1",
    )
    .bind(job.id)
    .fetch_one(pool)
    .await?;
    let chart_svg = chart::runs_svg(&runs);
    Ok(Some(JobDetailView {
        now: Utc::now(),
        job: job.into(),
        runs: runs.into_iter().take(RECENT_RUNS as usize).collect(),
        total_runs,
        success_runs,
        chart_svg,
    }))
}
