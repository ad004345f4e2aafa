//! Job monitoring (seed 000): the names `fetchJobHistory` sorts by, the metrics and intervals
//! `getJobMetrics` answers, and their documented limits, for the service, its tests and the
//! pages that will show them.

use super::wire::wire_enum;

wire_enum! {
    /// A field `fetchJobHistory` may sort by; anything else is a 400, never SQL.
    pub enum HistorySort ("sort field") {
        CreatedAt = "created_at",
        StartedAt = "started_at",
        FinishedAt = "finished_at",
        Priority = "priority",
        /// Finished minus started; a job that has not finished sorts as the longest.
        Duration = "duration",
    }
}

wire_enum! {
    pub enum SortOrder ("sort order") {
        Asc = "asc",
        Desc = "desc",
    }
}

wire_enum! {
    /// A series `getJobMetrics` answers.
    pub enum MetricName ("metric") {
        /// Samples of `cpu_percent` (100 = one core busy).
        Cpu = "cpu",
        /// Samples of `memory_mb`.
        Memory = "memory",
        /// Milliseconds each task that finished in the bucket ran.
        Duration = "duration",
        /// Items per second between one sample of a task's `items` counter and the next.
        Throughput = "throughput",
    }
}

wire_enum! {
    pub enum MetricInterval ("interval") {
        Minute = "1m",
        FiveMinutes = "5m",
        FifteenMinutes = "15m",
        Hour = "1h",
        Day = "1d",
    }
}

impl MetricInterval {
    pub fn seconds(self) -> i64 {
        match self {
            MetricInterval::Minute => 60,
            MetricInterval::FiveMinutes => 300,
            MetricInterval::FifteenMinutes => 900,
            MetricInterval::Hour => 3_600,
            MetricInterval::Day => 86_400,
        }
    }
}

/// The documented bounds of the monitoring actions.
pub struct MonitoringLimits {
    /// `fetchJobHistory`'s `pagination.per_page`, at most.
    pub max_per_page: i64,
    pub default_per_page: i64,
    /// Rows a `page` may skip; deeper, the cursor (which costs the same at any depth).
    pub max_offset: i64,
    /// Entries of each `filters` list.
    pub max_filter_values: usize,
    /// `getJobMetrics`'s `job_ids`.
    pub max_metric_jobs: usize,
    /// Buckets in one answer, over all its jobs (buckets per series × jobs).
    pub max_buckets: i64,
    /// `reportMetrics` samples per call.
    pub max_samples: usize,
    /// A sample's `at` may be this far ahead of the portal's clock, at most.
    pub max_sample_ahead_secs: i64,
}

pub const MONITORING_LIMITS: MonitoringLimits = MonitoringLimits {
    max_per_page: 200,
    default_per_page: 50,
    max_offset: 10_000,
    max_filter_values: 50,
    max_metric_jobs: 50,
    max_buckets: 2_880,
    max_samples: 1_000,
    max_sample_ahead_secs: 60,
};
