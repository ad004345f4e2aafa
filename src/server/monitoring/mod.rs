//! Job monitoring, seed 000: `fetchJobHistory` and `getJobMetrics` on `/job-operations`,
//! `reportMetrics` on `/task-operations`. Tables: `jobs` and `job_errors` (read),
//! `job_tasks` and `task_metrics` (the samples workers' heartbeats and `reportMetrics`
//! write). The jobs and tasks doors (`jobs::perform`, `tasks::perform`) check permissions
//! and call these.

mod charts;
mod history;
pub mod input;
mod job_info;
pub mod job_rollups;
mod jobs_page;
pub mod live;
mod metrics;
pub mod retention;
mod rollups;
mod store;

pub use history::{fetch_job_history, HistoryAggregates, JobHistory, PageInfo};
pub use job_info::{
    get_job_info, job_page, stream_path, DetailedJobInfo, LOG_LINES_PER_PAGE, TASKS_PER_PAGE,
};
pub use jobs_page::{jobs_page, JOBS_PAGE_SIZE};
pub use live::{Change, JobChanges};
pub use metrics::{
    get_job_metrics, report_metrics, Bucket, JobMetrics, JobSeries, MetricsReported, Series,
};
pub use retention::{run_metric_maintenance, Retention};
pub(crate) use rollups::with_rollups;
