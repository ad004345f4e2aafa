//! The bodies of `fetchJobHistory` and `getJobMetrics` (`/job-operations`) and
//! `reportMetrics` (`/task-operations`), as seed 000 prints them, parsed into values that
//! can only be valid; the checks that span fields are in each `check`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::model::{
    Cursor, HistorySort, JobKind, JobStatus, MetricInterval, MetricName, SortOrder,
    MONITORING_LIMITS,
};
use crate::server::input::{
    bounded, check_batch, first_duplicate, Counter, InvalidInput, Measure, Name,
};

bounded!(Page, i64, (1, i64::MAX));
bounded!(PerPage, i64, (1, MONITORING_LIMITS.max_per_page));

/// `fetchJobHistory`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchJobHistory {
    #[serde(default)]
    pub filters: HistoryFilters,
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default)]
    pub sort: Sort,
    pub aggregations: Option<Aggregations>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFilters {
    #[serde(default)]
    pub status: Vec<JobStatus>,
    pub date_range: Option<DateRange>,
    /// Error codes (`TIMEOUT`) or classes (`transient`): jobs that had such an error.
    #[serde(default)]
    pub error_types: Vec<Name>,
    pub user_id: Option<Name>,
    /// `batch` or `recap` (beyond seed 000: the jobs page filters by it).
    pub kind: Option<JobKind>,
}

/// Jobs created from `start` (inclusive) until `end` (exclusive); either may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// The seed's `page` and `per_page`, or the `cursor` a previous answer gave (deep pages).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    pub page: Option<Page>,
    pub per_page: Option<PerPage>,
    pub cursor: Option<Cursor>,
}

impl Pagination {
    pub fn per_page(&self) -> i64 {
        self.per_page
            .map_or(MONITORING_LIMITS.default_per_page, |p| p.get())
    }

    pub fn offset(&self) -> i64 {
        self.page
            .map_or(0, |p| (p.get() - 1).saturating_mul(self.per_page()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sort {
    pub field: HistorySort,
    #[serde(default = "newest_first")]
    pub order: SortOrder,
}

fn newest_first() -> SortOrder {
    SortOrder::Desc
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: HistorySort::CreatedAt,
            order: SortOrder::Desc,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregations {
    #[serde(default)]
    pub success_rate: bool,
    #[serde(default)]
    pub avg_duration: bool,
    #[serde(default)]
    pub error_rate: bool,
}

impl FetchJobHistory {
    pub fn check(&self) -> Result<(), InvalidInput> {
        let max = MONITORING_LIMITS.max_filter_values;
        for (field, len) in [
            ("data.filters.status", self.filters.status.len()),
            ("data.filters.error_types", self.filters.error_types.len()),
        ] {
            if len > max {
                return Err(InvalidInput::new(
                    field,
                    format!("at most {max} values, got {len}"),
                ));
            }
        }
        if let Some(DateRange {
            start: Some(start),
            end: Some(end),
        }) = &self.filters.date_range
        {
            if start > end {
                return Err(InvalidInput::new(
                    "data.filters.date_range",
                    format!("start ({start}) is after end ({end})"),
                ));
            }
        }
        let pagination = &self.pagination;
        if pagination.cursor.is_some() && pagination.page.is_some_and(|p| p.get() > 1) {
            return Err(InvalidInput::new(
                "data.pagination",
                "give either page or cursor, not both",
            ));
        }
        let deepest = MONITORING_LIMITS.max_offset;
        if pagination.offset() > deepest {
            return Err(InvalidInput::new(
                "data.pagination.page",
                format!(
                    "a page may start at most {deepest} jobs deep; follow next_cursor to go further"
                ),
            ));
        }
        Ok(())
    }
}

/// `getJobMetrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetJobMetrics {
    pub job_ids: Vec<Uuid>,
    pub metrics: Vec<MetricName>,
    pub interval: Option<MetricInterval>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

/// A checked `getJobMetrics`: its range, interval and the number of buckets per series.
#[derive(Debug)]
pub struct MetricsRange {
    pub interval: MetricInterval,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The start of the first bucket: `start` aligned down to the interval.
    pub first: DateTime<Utc>,
    pub buckets: i64,
}

impl GetJobMetrics {
    /// The default interval; the default range is the last day.
    pub const DEFAULT_INTERVAL: MetricInterval = MetricInterval::FiveMinutes;

    pub fn check(&self, now: DateTime<Utc>) -> Result<MetricsRange, InvalidInput> {
        check_batch(
            "data.job_ids",
            self.job_ids.len(),
            MONITORING_LIMITS.max_metric_jobs,
        )?;
        check_batch("data.metrics", self.metrics.len(), MetricName::ALL.len())?;
        let ids: Vec<String> = self.job_ids.iter().map(Uuid::to_string).collect();
        if let Some(dup) = first_duplicate(ids.iter().map(String::as_str)) {
            return Err(InvalidInput::new(
                "data.job_ids",
                format!("job {dup} is listed twice"),
            ));
        }
        if let Some(dup) = first_duplicate(self.metrics.iter().map(|m| m.as_str())) {
            return Err(InvalidInput::new(
                "data.metrics",
                format!("metric {dup:?} is listed twice"),
            ));
        }
        let interval = self.interval.unwrap_or(Self::DEFAULT_INTERVAL);
        let end = self.end_time.unwrap_or(now);
        let start = self.start_time.unwrap_or(end - chrono::Duration::days(1));
        if start >= end {
            return Err(InvalidInput::new(
                "data.start_time",
                format!("start_time ({start}) must be before end_time ({end})"),
            ));
        }
        let step = interval.seconds();
        // Buckets are aligned to the interval (UTC), the first one holding `start`.
        let first = start.timestamp().div_euclid(step) * step;
        let last = (end.timestamp_micros() - 1)
            .div_euclid(1_000_000)
            .div_euclid(step)
            * step;
        let buckets = (last - first) / step + 1;
        let total = buckets.saturating_mul(self.job_ids.len() as i64);
        let max = MONITORING_LIMITS.max_buckets;
        if total > max {
            return Err(InvalidInput::new(
                "data.interval",
                format!(
                    "{buckets} buckets of {interval} for {} jobs is {total}; at most {max} in all: choose a longer interval or a shorter range",
                    self.job_ids.len()
                ),
            ));
        }
        Ok(MetricsRange {
            interval,
            start,
            end,
            first: DateTime::from_timestamp(first, 0).unwrap_or(start),
            buckets,
        })
    }
}

/// `reportMetrics`: what a reported pipeline measured, of the job or of one of its tasks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportMetrics {
    pub job_id: Uuid,
    pub samples: Vec<MetricSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSample {
    pub task_name: Option<Name>,
    /// When it was measured; now when left out.
    pub at: Option<DateTime<Utc>>,
    pub cpu_percent: Option<Measure>,
    pub memory_mb: Option<Measure>,
    /// A counter of the items done so far (throughput is its rate).
    pub items: Option<Counter>,
}

impl ReportMetrics {
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), InvalidInput> {
        check_batch(
            "data.samples",
            self.samples.len(),
            MONITORING_LIMITS.max_samples,
        )?;
        let ahead = chrono::Duration::seconds(MONITORING_LIMITS.max_sample_ahead_secs);
        for (i, sample) in self.samples.iter().enumerate() {
            if sample.cpu_percent.is_none() && sample.memory_mb.is_none() && sample.items.is_none()
            {
                return Err(InvalidInput::new(
                    format!("data.samples[{i}]"),
                    "a sample needs cpu_percent, memory_mb or items",
                ));
            }
            if sample.at.is_some_and(|at| at > now + ahead) {
                return Err(InvalidInput::new(
                    format!("data.samples[{i}].at"),
                    format!(
                        "is more than {}s ahead of the portal's clock",
                        MONITORING_LIMITS.max_sample_ahead_secs
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `getJobInfo`, with seed 000's flags (each off by default) and the cursors of the lists
/// they add.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInfoRequest {
    pub job_id: Uuid,
    #[serde(default)]
    pub include_metrics: bool,
    #[serde(default)]
    pub include_task_details: bool,
    #[serde(default)]
    pub include_logs: bool,
    #[serde(default)]
    pub real_time: bool,
    /// The `task_details.next_cursor` of a previous answer.
    pub task_cursor: Option<Cursor>,
    /// The `logs.next_cursor` of a previous answer.
    pub log_cursor: Option<Cursor>,
}
