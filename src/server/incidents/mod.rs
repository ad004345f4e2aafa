//! Seed 003's incidents: reads of `job_status` (each script's last result) and `job_reports`
//! for the incidents page, the badge and a script's page.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::server::failure::{DomainError, Failure, Refusal};

mod chart;
use crate::model::{
    parse_time, time_part, BadCursor, Cursor, IncidentDetailView, IncidentView, IncidentsQuery,
    IncidentsView, JobReportView, ReportStatus, StatusFilter,
};

/// Runs listed on a job's page, newest first.
const RECENT_RUNS: i64 = 50;
/// Runs drawn in a job's chart.
const CHART_RUNS: i64 = 200;

/// Jobs listed per page of `/incidents`: the page stays small whatever the number of jobs.
pub const PAGE_SIZE: usize = 50;

/// One segment of the incidents list, newest first, after a cursor: the segment's status
/// test is the only difference, and each is one range scan of `idx_job_status_status_recent`
/// / `idx_job_status_recent`.
macro_rules! page_sql {
    ($segment:literal) => {
        concat!(
            "SELECT s.id, s.job_key, s.title, t.name AS tool_name, s.last_status, s.last_finished_at, s.last_message
             FROM job_status s LEFT JOIN tools t ON t.id = s.tool_id
             WHERE ", $segment, "
               AND ($2 = '' OR s.job_key ILIKE $2 OR s.title ILIKE $2)
               AND (s.last_finished_at, s.job_key) < ($3, $4)
             ORDER BY s.last_finished_at DESC, s.job_key DESC
             LIMIT $5"
        )
    };
}

const FAILING_PAGE_SQL: &str = page_sql!("s.last_status = ANY($1)");
const HEALTHY_PAGE_SQL: &str = page_sql!("s.last_status <> ALL($1)");

const JOB_SQL: &str = "
    SELECT s.id, s.job_key, s.title, t.name AS tool_name, s.last_status, s.last_finished_at, s.last_message
    FROM job_status s LEFT JOIN tools t ON t.id = s.tool_id
    WHERE s.job_key = $1";

/// Characters of the incidents search.
pub const SEARCH_CHARS: usize = 200;

/// What the incidents list can refuse.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error("search for at most {SEARCH_CHARS} characters")]
    SearchTooLong,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DomainError for IncidentError {
    fn failure(self) -> Failure {
        match self {
            IncidentError::BadCursor(bad) => bad.failure(),
            IncidentError::SearchTooLong => Refusal::new(StatusCode::BAD_REQUEST, self)
                .field("q")
                .into(),
            IncidentError::Database(error) => Failure::Database(error),
        }
    }
}

/// Where a page starts: just after this job, in its segment.
struct Position {
    failing: bool,
    finished_at: DateTime<Utc>,
    job_key: String,
}

impl Position {
    fn of(job: &IncidentView) -> Self {
        Self {
            failing: job.last_status.is_failing(),
            finished_at: job.last_finished_at,
            job_key: job.job_key.clone(),
        }
    }

    fn cursor(&self) -> Cursor {
        let segment = if self.failing { "f" } else { "h" };
        Cursor::new(&[segment, &time_part(self.finished_at), &self.job_key])
    }

    fn read(cursor: &Cursor) -> Result<Self, BadCursor> {
        let [segment, at, job_key] = cursor.parts()?;
        let failing = match segment.as_str() {
            "f" => true,
            "h" => false,
            _ => return Err(BadCursor),
        };
        Ok(Self {
            failing,
            finished_at: parse_time(&at)?,
            job_key,
        })
    }
}

fn failing_statuses() -> Vec<&'static str> {
    ReportStatus::ALL
        .into_iter()
        .filter(|status| status.is_failing())
        .map(ReportStatus::as_str)
        .collect()
}

/// `%text%` for ILIKE, with the pattern characters in `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of `/incidents`: failing jobs first, then the rest, each newest first, paged by
/// key so every page costs the same however many jobs there are.
pub async fn incidents(
    pool: &PgPool,
    query: &IncidentsQuery,
) -> Result<IncidentsView, IncidentError> {
    if query.q.chars().count() > SEARCH_CHARS {
        return Err(IncidentError::SearchTooLong);
    }
    let cursor = query.after.as_ref().map(Position::read).transpose()?;
    let segments: &[bool] = match query.status {
        StatusFilter::All => &[true, false],
        StatusFilter::Failing => &[true],
        StatusFilter::Healthy => &[false],
    };
    let failing = failing_statuses();
    let pattern = contains_pattern(&query.q);
    let mut jobs: Vec<IncidentView> = Vec::with_capacity(PAGE_SIZE + 1);
    for &segment in segments {
        // A cursor in the healthy segment means the failing one is done.
        let after = match &cursor {
            Some(c) if c.failing == segment => Some((c.finished_at, c.job_key.as_str())),
            Some(c) if c.failing => None,
            Some(_) => continue,
            None => None,
        };
        let (after_time, after_key) = after.unwrap_or((DateTime::<Utc>::MAX_UTC, ""));
        let want = PAGE_SIZE + 1 - jobs.len();
        let sql = if segment {
            FAILING_PAGE_SQL
        } else {
            HEALTHY_PAGE_SQL
        };
        let rows: Vec<IncidentView> = sqlx::query_as(sql)
            .bind(&failing)
            .bind(&pattern)
            .bind(after_time)
            .bind(after_key)
            .bind(want as i64)
            .fetch_all(pool)
            .await?;
        jobs.extend(rows);
        if jobs.len() > PAGE_SIZE {
            break;
        }
    }
    let next = (jobs.len() > PAGE_SIZE).then(|| {
        jobs.truncate(PAGE_SIZE);
        Position::of(&jobs[PAGE_SIZE - 1]).cursor()
    });
    Ok(IncidentsView {
        now: Utc::now(),
        failing_total: failing_count(pool).await?,
        jobs,
        next,
    })
}

/// Jobs whose last report is failing (one index-only count).
pub async fn failing_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM job_status WHERE last_status = ANY($1)")
        .bind(failing_statuses())
        .fetch_one(pool)
        .await
}

/// The sidebar badge: failing jobs, plus firing alerts nobody has acknowledged about
/// anything else (a missed run, a stuck or slow job, an error spike), each subject once.
pub async fn error_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let alerts: i64 = sqlx::query_scalar(crate::server::alerts::page::UNSEEN_FIRING_SQL)
        .bind(failing_statuses())
        .fetch_one(pool)
        .await?;
    Ok(failing_count(pool).await? + alerts)
}

/// A job's page, or `None` when no job has this key.
pub async fn detail(
    pool: &PgPool,
    job_key: &str,
) -> Result<Option<IncidentDetailView>, sqlx::Error> {
    let Some(job) = sqlx::query_as::<_, IncidentView>(JOB_SQL)
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
        "SELECT count(*), count(*) FILTER (WHERE status = $2) FROM job_reports WHERE job_status_id = $1",
    )
    .bind(job.id)
    .bind(ReportStatus::Success)
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
