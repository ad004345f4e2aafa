//! `analyzeErrors`: what failed in a period and how it ended, against the period before it
//! of equal length, with suggestions that state the figures behind them. Read from the
//! hourly rollups (`error_rollups`, `worker_task_rollups`), so the cost follows the hours
//! and patterns in the period, not its records; `job_ids` reads those jobs' records. The
//! period is read in whole hours (start rounded down, end up).

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::input::AnalyzeErrors;
use super::{store, RecoveryError};
use crate::model::dispatch::codes::RESOURCE_LIMIT_EXCEEDED;
use crate::model::{ErrorRetryConfig, JobKind, SuggestionKind, Trend, RECOVERY_LIMITS};
use crate::server::monitoring::fetch_job_history;
use crate::server::monitoring::input::{
    Aggregations, DateRange, FetchJobHistory, HistoryFilters, Pagination, PerPage,
};

/// Below this many cases a figure suggests nothing.
pub const MIN_CASES: i64 = 20;

#[derive(Debug, Serialize)]
pub struct Analysis {
    pub period: Span,
    pub previous_period: Span,
    pub total_errors: i64,
    pub previous_total_errors: i64,
    pub patterns: Vec<Pattern>,
    pub by_type: Vec<TypeFigures>,
    pub by_job_kind: Vec<KindFigures>,
    pub by_worker: Vec<WorkerFigures>,
    pub suggestions: Vec<Suggestion>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct Pattern {
    pub error_type: String,
    pub fingerprint: String,
    /// The message with what varies replaced (`job <n> failed reading <path>`).
    pub pattern: String,
    #[sqlx(rename = "errors")]
    pub count: i64,
    #[sqlx(skip)]
    pub share: f64,
    pub previous: i64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub trend: Trend,
    /// Jobs and scripts (job keys) among the pattern's latest `AFFECTED_SAMPLE` records in
    /// the period, at most `AFFECTED_SHOWN` of each.
    #[sqlx(skip)]
    pub affected_jobs: Vec<Uuid>,
    #[sqlx(skip)]
    pub affected_scripts: Vec<String>,
}

/// The records of a pattern read for its affected jobs and scripts, and how many of each
/// are named: a bounded read per pattern, whatever its count.
pub const AFFECTED_SAMPLE: i64 = 100;
pub const AFFECTED_SHOWN: usize = 10;

#[derive(FromRow)]
struct Affected {
    fingerprint: String,
    jobs: Vec<Uuid>,
    scripts: Vec<String>,
}

#[derive(Debug, FromRow)]
struct TypeRow {
    error_type: String,
    errors: i64,
    recovered: i64,
    failed: i64,
    attempted: i64,
    recovered_attempts: i64,
    previous: i64,
    total: i64,
    previous_total: i64,
}

#[derive(Debug, Serialize)]
pub struct TypeFigures {
    pub error_type: String,
    pub count: i64,
    pub share: f64,
    pub previous: i64,
    pub trend: Trend,
    pub recovered: i64,
    /// Ended failed (their job failed for good).
    pub failed: i64,
    /// recovered / (recovered + failed); null with neither.
    pub recovery_rate: Option<f64>,
    /// The mean of the attempt that succeeded, over the recovered task records.
    pub mean_attempts_to_recover: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct KindFigures {
    pub kind: JobKind,
    /// Jobs created in the period that finished, and the share of them that failed.
    pub finished: i64,
    pub failure_rate: Option<f64>,
}

#[derive(Debug, FromRow)]
struct WorkerRow {
    worker_id: String,
    completed: i64,
    failed: i64,
    all_failed: i64,
}

#[derive(Debug, Serialize)]
pub struct WorkerFigures {
    pub worker_id: String,
    pub failed: i64,
    pub completed: i64,
    /// failed / (failed + completed); null for `job_ids` (completions are not kept per job).
    pub failure_rate: Option<f64>,
    /// This worker's share of every worker's failures.
    pub share_of_failures: f64,
}

#[derive(Debug, Serialize)]
pub struct Suggestion {
    pub kind: SuggestionKind,
    pub error_type: Option<String>,
    pub worker_id: Option<String>,
    /// The suggestion with its figures, in words.
    pub text: String,
    /// A config `configureRetry` would take as it is.
    pub proposed_config: Option<ErrorRetryConfig>,
    /// Megabytes, for `raise_memory_limit`.
    pub proposed_max_memory: Option<i64>,
}

/// Failed jobs with a memory peak that a limit proposal needs.
pub const MIN_PEAKED_JOBS: i64 = 5;
/// The jobs of the latest records of `RESOURCE_LIMIT_EXCEEDED` read for their peaks.
pub const PEAK_SAMPLE: i64 = 500;

/// What the jobs that failed on a resource limit peaked at, against their limits.
#[derive(Debug, FromRow)]
struct MemoryPeaks {
    jobs: i64,
    p95_peak: Option<f64>,
    limit: Option<f64>,
}

impl AnalyzeErrors {
    /// The period in whole hours, and the one before it of equal length.
    pub fn spans(&self, now: DateTime<Utc>) -> (Span, Span) {
        let (start, end) = match &self.period {
            Some(period) => (period.start, period.end),
            None => (now - Duration::days(30), now),
        };
        let hour = Duration::hours(1);
        let start = start.duration_trunc(hour).unwrap_or(start);
        let truncated = end.duration_trunc(hour).unwrap_or(end);
        let end = if truncated == end {
            end
        } else {
            truncated + hour
        };
        let length = end - start;
        (
            Span { start, end },
            Span {
                start: start - length,
                end: start,
            },
        )
    }
}

pub async fn analyze_errors(
    pool: &PgPool,
    request: AnalyzeErrors,
) -> Result<Analysis, RecoveryError> {
    request.check()?;
    let (period, previous) = request.spans(Utc::now());
    let types: Vec<String> = request
        .error_types
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    let jobs = &request.job_ids;
    let (types_sql, patterns_sql) = if jobs.is_empty() {
        (
            store::TYPES_FROM_ROLLUPS_SQL,
            store::PATTERNS_FROM_ROLLUPS_SQL,
        )
    } else {
        (
            store::TYPES_FROM_RECORDS_SQL,
            store::PATTERNS_FROM_RECORDS_SQL,
        )
    };
    // Both statements of either source take the same parameters.
    macro_rules! bound {
        ($sql:expr) => {{
            let query = sqlx::query_as($sql)
                .bind(period.start)
                .bind(period.end)
                .bind(previous.start)
                .bind(&types);
            if jobs.is_empty() {
                query
            } else {
                query.bind(jobs)
            }
        }};
    }
    let type_rows: Vec<TypeRow> = bound!(types_sql).fetch_all(pool).await?;
    let mut patterns: Vec<Pattern> = bound!(patterns_sql).fetch_all(pool).await?;
    let workers: Vec<WorkerRow> = if jobs.is_empty() {
        sqlx::query_as(store::WORKERS_SQL)
            .bind(period.start)
            .bind(period.end)
            .fetch_all(pool)
            .await?
    } else {
        sqlx::query_as(store::WORKERS_FROM_RECORDS_SQL)
            .bind(period.start)
            .bind(period.end)
            .bind(jobs)
            .fetch_all(pool)
            .await?
    };
    let (total, previous_total) = type_rows
        .first()
        .map_or((0, 0), |r| (r.total, r.previous_total));
    let share = |n: i64| {
        if total > 0 {
            n as f64 / total as f64
        } else {
            0.0
        }
    };
    let fingerprints: Vec<&str> = patterns.iter().map(|p| p.fingerprint.as_str()).collect();
    let affected = sqlx::query_as::<_, Affected>(if jobs.is_empty() {
        store::AFFECTED_SQL
    } else {
        store::AFFECTED_OF_JOBS_SQL
    })
    .bind(&fingerprints)
    .bind(period.start)
    .bind(period.end)
    .bind(AFFECTED_SAMPLE);
    let affected = if jobs.is_empty() {
        affected
    } else {
        affected.bind(jobs)
    };
    let affected: Vec<Affected> = affected.fetch_all(pool).await?;
    for pattern in &mut patterns {
        pattern.share = share(pattern.count);
        pattern.trend = Trend::of(pattern.count, pattern.previous);
        if let Some(a) = affected
            .iter()
            .find(|a| a.fingerprint == pattern.fingerprint)
        {
            pattern.affected_jobs = a.jobs.iter().copied().take(AFFECTED_SHOWN).collect();
            pattern.affected_scripts = a.scripts.iter().take(AFFECTED_SHOWN).cloned().collect();
        }
    }
    let by_type: Vec<TypeFigures> = type_rows
        .iter()
        .filter(|r| r.errors > 0)
        .map(|r| {
            let closed = r.recovered + r.failed;
            TypeFigures {
                error_type: r.error_type.clone(),
                count: r.errors,
                share: share(r.errors),
                previous: r.previous,
                trend: Trend::of(r.errors, r.previous),
                recovered: r.recovered,
                failed: r.failed,
                recovery_rate: (closed > 0).then(|| r.recovered as f64 / closed as f64),
                mean_attempts_to_recover: (r.attempted > 0)
                    .then(|| r.recovered_attempts as f64 / r.attempted as f64),
            }
        })
        .collect();
    let by_worker: Vec<WorkerFigures> = workers
        .iter()
        .map(|w| WorkerFigures {
            worker_id: w.worker_id.clone(),
            failed: w.failed,
            completed: w.completed,
            failure_rate: (jobs.is_empty() && w.failed + w.completed > 0)
                .then(|| w.failed as f64 / (w.failed + w.completed) as f64),
            share_of_failures: if w.all_failed > 0 {
                w.failed as f64 / w.all_failed as f64
            } else {
                0.0
            },
        })
        .collect();
    let mut by_job_kind = Vec::new();
    if jobs.is_empty() {
        for kind in JobKind::ALL {
            by_job_kind.push(kind_figures(pool, kind, period).await?);
        }
    }
    let configured: Vec<String> = sqlx::query_scalar(store::CONFIGURED_TYPES_SQL)
        .bind(
            by_type
                .iter()
                .map(|t| t.error_type.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(pool)
        .await?;
    let mut suggestions = suggest(&by_type, &by_worker, &configured, period, previous);
    let limited = by_type
        .iter()
        .find(|t| t.error_type == RESOURCE_LIMIT_EXCEEDED && t.count >= MIN_CASES);
    if let Some(limited) = limited {
        let peaks: MemoryPeaks = sqlx::query_as(store::MEMORY_PEAKS_SQL)
            .bind(period.start)
            .bind(period.end)
            .bind(PEAK_SAMPLE)
            .bind(jobs)
            .bind(RESOURCE_LIMIT_EXCEEDED)
            .fetch_one(pool)
            .await?;
        suggestions.extend(memory_suggestion(limited, &peaks));
    }
    Ok(Analysis {
        period,
        previous_period: previous,
        total_errors: total,
        previous_total_errors: previous_total,
        patterns,
        by_type,
        by_job_kind,
        by_worker,
        suggestions,
    })
}

/// The job kind's failure rate over the jobs created in the period, from the monitoring
/// domain's day rollups (`fetchJobHistory`'s error rate).
async fn kind_figures(
    pool: &PgPool,
    kind: JobKind,
    period: Span,
) -> Result<KindFigures, RecoveryError> {
    let request = FetchJobHistory {
        filters: HistoryFilters {
            kind: Some(kind),
            date_range: Some(DateRange {
                start: Some(period.start),
                end: Some(period.end),
            }),
            ..Default::default()
        },
        pagination: Pagination {
            per_page: Some(PerPage::try_from(1).expect("1 is a page size")),
            ..Default::default()
        },
        aggregations: Some(Aggregations {
            error_rate: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let history = fetch_job_history(pool, request).await?;
    let aggregates = history.aggregations.expect("asked for");
    Ok(KindFigures {
        kind,
        finished: aggregates.finished,
        failure_rate: aggregates.error_rate.flatten(),
    })
}

/// Raise the limit to the failed jobs' p95 peak and a fifth more, when that is above the
/// limit they had (their median).
fn memory_suggestion(limited: &TypeFigures, peaks: &MemoryPeaks) -> Option<Suggestion> {
    let (Some(peak), Some(limit)) = (peaks.p95_peak, peaks.limit) else {
        return None;
    };
    if peaks.jobs < MIN_PEAKED_JOBS || peak <= limit {
        return None;
    }
    let proposed = (peak * 1.2).ceil() as i64;
    Some(Suggestion {
        kind: SuggestionKind::RaiseMemoryLimit,
        error_type: Some(limited.error_type.clone()),
        worker_id: None,
        text: format!(
            "{}: {} errors; peak memory p95 is {} over {} of the failed jobs against a limit of \
             {}: raise max_memory to {}",
            limited.error_type,
            limited.count,
            megabytes(peak),
            peaks.jobs,
            megabytes(limit),
            megabytes(proposed as f64)
        ),
        proposed_config: None,
        proposed_max_memory: Some(proposed),
    })
}

/// "980 MB", "1.9 GB".
fn megabytes(mb: f64) -> String {
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else {
        format!("{mb:.0} MB")
    }
}

fn percent(rate: f64) -> String {
    format!("{:.0} %", rate * 100.0)
}

/// Suggestions from the figures, each naming them.
fn suggest(
    types: &[TypeFigures],
    workers: &[WorkerFigures],
    configured: &[String],
    period: Span,
    previous: Span,
) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let days = (period.end - period.start).num_hours() as f64 / 24.0;
    for t in types {
        let closed = t.recovered + t.failed;
        let Some(rate) = t.recovery_rate else {
            continue;
        };
        if closed >= MIN_CASES && rate >= 0.8 && !configured.contains(&t.error_type) {
            let attempts = t.mean_attempts_to_recover.unwrap_or(2.0);
            let max_attempts = ((attempts.ceil() as i32) + 2).min(RECOVERY_LIMITS.attempts_ceiling);
            out.push(Suggestion {
                kind: SuggestionKind::RetryWithBackoff,
                error_type: Some(t.error_type.clone()),
                worker_id: None,
                text: format!(
                    "{} recovered in {} of {closed} cases, after {attempts:.1} attempts on \
                     average: retry it with backoff (proposed config: {max_attempts} attempts, \
                     2 s doubling to 300 s)",
                    t.error_type,
                    percent(rate)
                ),
                proposed_config: Some(ErrorRetryConfig {
                    error_type: t.error_type.clone(),
                    max_attempts,
                    initial_delay: 2.0,
                    max_delay: 300.0,
                    backoff_factor: 2.0,
                    retry_conditions: Vec::new(),
                }),
                proposed_max_memory: None,
            });
        } else if closed >= MIN_CASES && t.recovered == 0 {
            out.push(Suggestion {
                kind: SuggestionKind::StopRetrying,
                error_type: Some(t.error_type.clone()),
                worker_id: None,
                text: format!(
                    "{} never recovered in {closed} cases: stop retrying it (remove it from the \
                     jobs' retry_on_errors) and fix its cause",
                    t.error_type
                ),
                proposed_config: None,
                proposed_max_memory: None,
            });
        }
        if t.count >= MIN_CASES && t.trend == Trend::Rising {
            out.push(Suggestion {
                kind: SuggestionKind::RisingErrors,
                error_type: Some(t.error_type.clone()),
                worker_id: None,
                text: format!(
                    "{} rose from {} to {} errors against the previous {days:.0} days \
                     ({} to {})",
                    t.error_type,
                    t.previous,
                    t.count,
                    previous.start.format("%Y-%m-%d %H:00"),
                    previous.end.format("%Y-%m-%d %H:00")
                ),
                proposed_config: None,
                proposed_max_memory: None,
            });
        }
    }
    if workers.len() > 1 {
        if let Some(w) = workers.first() {
            if w.failed >= MIN_CASES && w.share_of_failures >= 0.5 {
                out.push(Suggestion {
                    kind: SuggestionKind::CheckWorker,
                    error_type: None,
                    worker_id: Some(w.worker_id.clone()),
                    text: format!(
                        "{} of failures ({} of {}) came from worker {}: check its host",
                        percent(w.share_of_failures),
                        w.failed,
                        (w.failed as f64 / w.share_of_failures).round() as i64,
                        w.worker_id
                    ),
                    proposed_config: None,
                    proposed_max_memory: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_against_the_previous_period() {
        assert_eq!(Trend::of(5, 0), Trend::New);
        assert_eq!(Trend::of(0, 0), Trend::Steady);
        assert_eq!(Trend::of(15, 10), Trend::Rising);
        assert_eq!(Trend::of(14, 10), Trend::Steady);
        assert_eq!(Trend::of(7, 10), Trend::Steady);
        assert_eq!(Trend::of(6, 10), Trend::Falling);
    }

    #[test]
    fn a_period_is_read_in_whole_hours() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let request = AnalyzeErrors {
            period: Some(super::super::input::Period {
                start: at("2026-12-01T10:20:00Z"),
                end: at("2026-12-02T10:00:00Z"),
            }),
            error_types: Vec::new(),
            job_ids: Vec::new(),
        };
        let (period, previous) = request.spans(at("2026-12-03T00:00:00Z"));
        assert_eq!(period.start, at("2026-12-01T10:00:00Z"));
        assert_eq!(period.end, at("2026-12-02T10:00:00Z"));
        assert_eq!(previous.start, at("2026-11-30T10:00:00Z"));
        assert_eq!(previous.end, period.start);
    }
}
