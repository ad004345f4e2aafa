//! Reads of `job_status` and `job_reports` for the incidents page, the badge and a job's page.

use chrono::Utc;
use sqlx::PgPool;

mod chart;
use crate::model::{IncidentDetailView, IncidentsView, JobReportView, JobStatusView, ReportStatus};

/// Runs listed on a job's page, newest first.
const RECENT_RUNS: i64 = 50;
/// Runs drawn in a job's chart.
const CHART_RUNS: i64 = 200;

const INCIDENTS_SQL: &str = "
    SELECT s.id, s.job_key, s.title, t.name AS tool_name, s.last_status, s.last_finished_at, s.last_message
    FROM job_status s LEFT JOIN tools t ON t.id = s.tool_id
    ORDER BY s.last_finished_at DESC, s.job_key";

const JOB_SQL: &str = "
    SELECT s.id, s.job_key, s.title, t.name AS tool_name, s.last_status, s.last_finished_at, s.last_message
    FROM job_status s LEFT JOIN tools t ON t.id = s.tool_id
    WHERE s.job_key = $1";

/// Every job, split into failing ones and the rest, each newest first.
pub async fn incidents(pool: &PgPool) -> Result<IncidentsView, sqlx::Error> {
    let jobs: Vec<JobStatusView> = sqlx::query_as(INCIDENTS_SQL).fetch_all(pool).await?;
    let (failing, healthy) = jobs
        .into_iter()
        .partition(|job| job.last_status.is_failing());
    Ok(IncidentsView {
        now: Utc::now(),
        failing,
        healthy,
    })
}

/// The sidebar badge: jobs whose last report was an error.
pub async fn error_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let failing: Vec<&str> = ReportStatus::ALL
        .into_iter()
        .filter(|status| status.is_failing())
        .map(ReportStatus::as_str)
        .collect();
    sqlx::query_scalar("SELECT count(*) FROM job_status WHERE last_status = ANY($1)")
        .bind(failing)
        .fetch_one(pool)
        .await
}

/// A job's page, or `None` when no job has this key.
pub async fn detail(
    pool: &PgPool,
    job_key: &str,
) -> Result<Option<IncidentDetailView>, sqlx::Error> {
    let Some(job) = sqlx::query_as::<_, JobStatusView>(JOB_SQL)
        .bind(job_key)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let runs: Vec<JobReportView> = sqlx::query_as::<_, JobReportView>(
        "SELECT status, finished_at, duration_ms, message FROM job_reports
         WHERE job_status_id = $1 ORDER BY finished_at DESC, id DESC LIMIT $2",
    )
    .bind(job.id)
    .bind(CHART_RUNS)
    .fetch_all(pool)
    .await?;
    let (total_runs, success_runs): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'success') FROM job_reports WHERE job_status_id = $1",
    )
    .bind(job.id)
    .fetch_one(pool)
    .await?;
    let chart_svg = chart::runs_svg(&runs);
    Ok(Some(IncidentDetailView {
        now: Utc::now(),
        job,
        runs: runs.into_iter().take(RECENT_RUNS as usize).collect(),
        total_runs,
        success_runs,
        chart_svg,
    }))
}
