//! What the recovery pages show, built from the same services as `/error-operations`: the
//! analysis is `analyzeErrors` over the page's period, the record's plan is `manualRecover`'s
//! checks without its writes. The record list is paged by `(at, id)`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::charts::{errors_per_hour_svg, recovery_rate_svg, HourlyErrors};
use super::graph::task_graph_svg;
use super::input::{AnalyzeErrors, Period};
use super::{analyze_errors, manual, store, RecoveryError, RetryBreaker};
use crate::model::{
    job_label, parse_id, parse_time, time_part, AttemptView, Cursor, ErrorRecordLine,
    ErrorRecordView, JobKind, JobStatus, PatternLine, RecoveryPeriod, RecoveryPlan, RecoveryQuery,
    RecoveryStatus, RecoveryView, RerunReason, StatusChoice, SuggestionLine, TaskStatus, TypeLine,
    WorkerLine,
};
use crate::server::input::{InvalidInput, Name};

/// Records per page of the list.
pub const PAGE_SIZE: usize = 50;

/// The query's filters, checked.
struct Filters {
    period: RecoveryPeriod,
    status: StatusChoice,
    error_type: Option<String>,
    job: Option<Uuid>,
    fingerprint: Option<String>,
    after: Option<(DateTime<Utc>, Uuid)>,
}

fn filters(query: &RecoveryQuery) -> Result<Filters, InvalidInput> {
    fn choice<T>(
        field: &'static str,
        value: &Option<String>,
        parse: impl Fn(&str) -> Option<T>,
        names: &[&str],
    ) -> Result<Option<T>, InvalidInput> {
        value
            .as_deref()
            .map(|v| {
                parse(v).ok_or_else(|| {
                    InvalidInput::new(
                        field,
                        format!("{field} {v:?} is not one of {}", names.join(", ")),
                    )
                })
            })
            .transpose()
    }
    let period = choice(
        "period",
        &query.period,
        RecoveryPeriod::parse,
        &RecoveryPeriod::NAMES,
    )?
    .unwrap_or_default();
    let status = choice(
        "status",
        &query.status,
        StatusChoice::parse,
        &StatusChoice::NAMES,
    )?
    .unwrap_or_default();
    let error_type = query
        .error_type
        .clone()
        .map(|t| Name::try_from(t).map(|n| n.as_str().to_string()))
        .transpose()
        .map_err(|message| InvalidInput::new("type", format!("type {message}")))?;
    let job = query
        .job
        .as_deref()
        .map(|j| {
            j.parse::<Uuid>()
                .map_err(|_| InvalidInput::new("job", format!("{j:?} is not a job id")))
        })
        .transpose()?;
    let fingerprint = match query.fingerprint.as_deref() {
        // md5's hex, in lower case as `error_fingerprint` writes it.
        Some(f) if f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(f.to_ascii_lowercase())
        }
        Some(f) => {
            return Err(InvalidInput::new(
                "fingerprint",
                format!("{f:?} is not a fingerprint (16 hex digits)"),
            ))
        }
        None => None,
    };
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            let [at, id] = Cursor::from_text(c).parts::<2>()?;
            Ok((parse_time(&at)?, parse_id(&id)?))
        })
        .transpose()
        .map_err(|_: crate::model::BadCursor| {
            InvalidInput::new("cursor", "cursor is not a position this list gave out")
        })?;
    Ok(Filters {
        period,
        status,
        error_type,
        job,
        fingerprint,
        after,
    })
}

#[derive(FromRow)]
struct LineRow {
    id: Uuid,
    at: DateTime<Utc>,
    error_type: String,
    #[sqlx(try_from = "String")]
    recovery_status: RecoveryStatus,
    message: String,
    retry_count: i32,
    job_id: Option<Uuid>,
    #[sqlx(flatten)]
    job: JobNaming,
    task_name: Option<String>,
    job_key: Option<String>,
}

/// What a job's label is made of (`model::job_label`).
#[derive(FromRow)]
struct JobNaming {
    kind: Option<String>,
    product_id: Option<String>,
    sending_group_id: Option<String>,
    user_id: Option<String>,
}

impl JobNaming {
    fn label(&self, id: Option<Uuid>) -> Option<String> {
        let kind = JobKind::parse(self.kind.as_deref()?)?;
        Some(job_label(
            kind,
            self.product_id.as_deref(),
            self.sending_group_id.as_deref(),
            self.user_id.as_deref(),
            id?,
        ))
    }
}

pub async fn recovery_page(
    pool: &PgPool,
    breaker: &RetryBreaker,
    query: &RecoveryQuery,
) -> Result<RecoveryView, RecoveryError> {
    let filters = filters(query)?;
    let now = Utc::now();
    let start = now - Duration::hours(filters.period.hours());
    let analysis = analyze_errors(
        pool,
        AnalyzeErrors {
            period: Some(Period { start, end: now }),
            error_types: filters
                .error_type
                .iter()
                .map(|t| Name::try_from(t.clone()).expect("checked"))
                .collect(),
            job_ids: filters.job.into_iter().collect(),
        },
    )
    .await?;
    let (records, next) = records(pool, &filters, analysis.period.start).await?;
    let mut conn = pool.acquire().await?;
    let codes: Vec<String> = analysis
        .by_type
        .iter()
        .map(|t| t.error_type.clone())
        .collect();
    let paused = breaker.open(&mut conn, &codes).await?;
    drop(conn);
    let types: Vec<TypeLine> = analysis
        .by_type
        .iter()
        .map(|t| TypeLine {
            error_type: t.error_type.clone(),
            count: t.count,
            previous: t.previous,
            trend: t.trend,
            recovered: t.recovered,
            failed: t.failed,
            recovery_rate: t.recovery_rate,
            mean_attempts_to_recover: t.mean_attempts_to_recover,
            paused: paused.contains(&t.error_type),
        })
        .collect();
    let hours = (analysis.period.end - analysis.period.start).num_hours() as usize;
    let hourly = hourly_errors(pool, &filters, analysis.period.start, analysis.period.end).await?;
    let errors_svg = errors_per_hour_svg(&HourlyErrors::from_rows(
        analysis.period.start,
        hours,
        &hourly,
    ));
    let recovery_svg = recovery_rate_svg(&types);
    let mut paused_types: Vec<String> = paused.into_iter().collect();
    paused_types.sort();
    Ok(RecoveryView {
        now,
        period: filters.period,
        status: filters.status,
        paused_types,
        breaker_failures: breaker.failures,
        breaker_window_secs: breaker.window.as_secs(),
        total_errors: analysis.total_errors,
        previous_total_errors: analysis.previous_total_errors,
        patterns: analysis
            .patterns
            .into_iter()
            .filter(|p| {
                filters
                    .fingerprint
                    .as_ref()
                    .is_none_or(|f| *f == p.fingerprint)
            })
            .map(|p| PatternLine {
                error_type: p.error_type,
                fingerprint: p.fingerprint,
                pattern: p.pattern,
                count: p.count,
                share: p.share,
                previous: p.previous,
                trend: p.trend,
                last_at: p.last_at,
                affected_jobs: p.affected_jobs,
                affected_scripts: p.affected_scripts,
            })
            .collect(),
        records,
        next,
        types,
        workers: analysis
            .by_worker
            .into_iter()
            .map(|w| WorkerLine {
                worker_id: w.worker_id,
                failed: w.failed,
                completed: w.completed,
                failure_rate: w.failure_rate,
                share_of_failures: w.share_of_failures,
            })
            .collect(),
        suggestions: analysis
            .suggestions
            .into_iter()
            .map(|s| SuggestionLine {
                kind: s.kind,
                text: s.text,
                proposed_config: s.proposed_config,
                proposed_max_memory: s.proposed_max_memory,
            })
            .collect(),
        errors_svg,
        recovery_svg,
    })
}

/// A page of the records the filters select, newest first, from `since`.
async fn records(
    pool: &PgPool,
    filters: &Filters,
    since: DateTime<Utc>,
) -> Result<(Vec<ErrorRecordLine>, Option<Cursor>), RecoveryError> {
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(store::RECORD_LINES_SQL);
    sql.push(" WHERE r.at >= ").push_bind(since);
    // Open is written out: it is the predicate of `error_records_open_at_idx`.
    if filters.status == StatusChoice::Open {
        sql.push(" AND r.recovery_status <> 'recovered'");
    } else {
        sql.push(" AND r.recovery_status = ANY(")
            .push_bind(filters.status.statuses())
            .push(")");
    }
    // Each filter is written out only when given, so the planner picks its index.
    if let Some(error_type) = &filters.error_type {
        sql.push(" AND r.error_type = ").push_bind(error_type);
    }
    if let Some(job) = filters.job {
        sql.push(" AND r.job_id = ").push_bind(job);
    }
    if let Some(fingerprint) = &filters.fingerprint {
        sql.push(" AND r.fingerprint = ").push_bind(fingerprint);
    }
    if let Some((at, id)) = filters.after {
        // `r.at <=` alone lets an index on `(…, at)` start at the cursor.
        sql.push(" AND r.at <= ")
            .push_bind(at)
            .push(" AND (r.at, r.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(" ORDER BY r.at DESC, r.id DESC LIMIT ")
        .push_bind(PAGE_SIZE as i64 + 1);
    let mut rows: Vec<LineRow> = sql.build_query_as().fetch_all(pool).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|last| Cursor::new(&[&time_part(last.at), &last.id.to_string()]));
    let lines = rows
        .into_iter()
        .map(|r| ErrorRecordLine {
            id: r.id,
            at: r.at,
            job_label: r.job.label(r.job_id),
            error_type: r.error_type,
            recovery_status: r.recovery_status,
            message: r.message,
            retry_count: r.retry_count,
            job_id: r.job_id,
            task_name: r.task_name,
            job_key: r.job_key,
        })
        .collect();
    Ok((lines, next))
}

/// `(hour, type, errors)` over the period: from the hourly rollups, or a job's records.
async fn hourly_errors(
    pool: &PgPool,
    filters: &Filters,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, String, i64)>, RecoveryError> {
    let types: Vec<String> = filters.error_type.iter().cloned().collect();
    let rows = match filters.job {
        None => {
            sqlx::query_as(store::HOURLY_ERRORS_SQL)
                .bind(start)
                .bind(end)
                .bind(&types)
                .fetch_all(pool)
                .await?
        }
        Some(job) => {
            sqlx::query_as(store::HOURLY_JOB_ERRORS_SQL)
                .bind(start)
                .bind(end)
                .bind(&types)
                .bind(job)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows)
}

#[derive(FromRow)]
struct RecordRow {
    id: Uuid,
    error_type: String,
    error_class: String,
    error_message: String,
    stack_trace: Option<String>,
    pattern: String,
    fingerprint: String,
    at: DateTime<Utc>,
    retry_count: i32,
    #[sqlx(try_from = "String")]
    recovery_status: RecoveryStatus,
    recovered_at: Option<DateTime<Utc>>,
    worker_id: Option<String>,
    recovery_attempts: sqlx::types::Json<Vec<Value>>,
    job_id: Option<Uuid>,
    job_status: Option<String>,
    #[sqlx(flatten)]
    job: JobNaming,
    task_name: Option<String>,
    task_status: Option<String>,
    job_key: Option<String>,
}

/// `None` when there is no such record.
pub async fn record_page(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<ErrorRecordView>, RecoveryError> {
    let row: Option<RecordRow> = sqlx::query_as(store::RECORD_PAGE_SQL)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let plan = match row.job_id {
        Some(_) => manual::preview(pool, id).await?.map(plan_view),
        None => None,
    };
    let attempts = row
        .recovery_attempts
        .0
        .iter()
        .map(|a| AttemptView {
            timestamp: a["timestamp"].as_str().and_then(|t| t.parse().ok()),
            method: a["method"].as_str().unwrap_or_default().to_string(),
            result: a["result"].as_str().unwrap_or_default().to_string(),
            actor: a["actor"].as_str().map(str::to_string),
        })
        .collect();
    Ok(Some(ErrorRecordView {
        now: Utc::now(),
        id: row.id,
        job_label: row.job.label(row.job_id),
        error_type: row.error_type,
        error_class: row.error_class,
        message: row.error_message,
        stack_trace: row.stack_trace,
        pattern: row.pattern,
        fingerprint: row.fingerprint,
        at: row.at,
        retry_count: row.retry_count,
        recovery_status: row.recovery_status,
        recovered_at: row.recovered_at,
        worker_id: row.worker_id,
        attempts,
        job_id: row.job_id,
        job_status: row.job_status.as_deref().and_then(JobStatus::parse),
        task_name: row.task_name,
        task_status: row.task_status.as_deref().and_then(TaskStatus::parse),
        job_key: row.job_key,
        plan,
    }))
}

fn plan_view(preview: manual::Preview) -> RecoveryPlan {
    let (rerun, kept, refusal) = match &preview.plan {
        Ok((rerun, kept)) => (
            rerun
                .iter()
                .map(|r| (r.name.clone(), r.reason))
                .collect::<Vec<_>>(),
            kept.len(),
            None,
        ),
        Err(error) => (Vec::new(), 0, Some(error.to_string())),
    };
    let marked: HashMap<&str, RerunReason> =
        rerun.iter().map(|(name, r)| (name.as_str(), *r)).collect();
    RecoveryPlan {
        graph_svg: task_graph_svg(&preview.tasks, &marked),
        tasks: preview.tasks.len(),
        rerun,
        kept,
        refusal,
    }
}
