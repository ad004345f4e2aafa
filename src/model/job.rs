//! Seed 001's `BatchJob`: its statuses and the one state machine that the service, the
//! tests and the README's diagram read; kinds, stages, task statuses and error classes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Paused,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// The whole state machine: where a job may go from `self`.
    ///
    /// ```text
    /// pending ──► running ──► completed
    ///    │         │  ▲  ╲──► failed ──► pending (retry)
    ///    │         ▼  │   ╲─► cancelled
    ///    │        paused ──► cancelled
    ///    └──────────────────► cancelled
    /// ```
    pub fn next(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Pending => &[Running, Cancelled],
            Running => &[Completed, Failed, Cancelled, Paused],
            Paused => &[Running, Cancelled],
            Failed => &[Pending],
            Completed | Cancelled => &[],
        }
    }

    pub fn may_become(self, to: JobStatus) -> bool {
        self.next().contains(&to)
    }

    /// The statuses from which `to` can be reached: the `WHERE status = ANY(...)` of a
    /// conditional update.
    pub fn sources(to: JobStatus) -> Vec<JobStatus> {
        Self::ALL
            .into_iter()
            .filter(|from| from.may_become(to))
            .collect()
    }

    /// The run has ended: the job has a `finished_at` exactly in these (a CHECK in the
    /// schema says so too). A failed job can still be retried; the other two are final.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// No way out.
    pub fn is_terminal(self) -> bool {
        self.next().is_empty()
    }

    /// A pipeline may still be driving a job in these, so deleting one stops it first.
    pub fn is_live(self) -> bool {
        matches!(self, JobStatus::Running | JobStatus::Paused)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for JobStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| {
            format!(
                "unknown status {value:?}; one of {}",
                Self::ALL.map(JobStatus::as_str).join(", ")
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Batch,
    Recap,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [JobKind::Batch, JobKind::Recap];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Batch => "batch",
            JobKind::Recap => "recap",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl TryFrom<String> for JobKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| format!("unknown kind {value:?}; one of batch, recap"))
    }
}

/// Seed 002's eight stages of a recap job, in order.
pub const RECAP_STAGES: [&str; 8] = [
    "Fetch",
    "Preprocess",
    "Dedup",
    "Genre",
    "Select",
    "Evidence",
    "Dispatch",
    "Persist",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// A task's own machine: a failed task may be tried again.
    pub fn next(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Pending => &[Running, Cancelled],
            Running => &[Completed, Failed, Cancelled],
            Failed => &[Pending, Running],
            Completed | Cancelled => &[],
        }
    }

    pub fn may_become(self, to: TaskStatus) -> bool {
        self.next().contains(&to)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

impl TryFrom<String> for TaskStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| {
            format!(
                "unknown task status {value:?}; one of {}",
                Self::ALL.map(TaskStatus::as_str).join(", ")
            )
        })
    }
}

/// What kind of failure an error code names, which decides whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// Timeouts, rate limits, lost connections: the same work may succeed later.
    Transient,
    /// Memory, CPU, disk or quota exhausted.
    Resource,
    /// The input cannot be processed as it is (parse or validation errors).
    Input,
    /// Anything else.
    Unknown,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::Transient,
        ErrorClass::Resource,
        ErrorClass::Input,
        ErrorClass::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Resource => "resource",
            ErrorClass::Input => "input",
            ErrorClass::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == text)
    }

    /// Classifies an error code (`TIMEOUT`, `RATE_LIMITED`, `PARSE_ERROR`, ...) by the
    /// words in it, so a pipeline's own codes land in a sensible class too.
    pub fn of_code(code: &str) -> Self {
        let code = code.to_ascii_uppercase();
        let has = |words: &[&str]| words.iter().any(|w| code.contains(w));
        if has(&[
            "TIMEOUT",
            "TIMED_OUT",
            "RATE_LIMIT",
            "THROTTL",
            "UNAVAILABLE",
            "CONNECTION",
            "NETWORK",
            "TEMPORARY",
            "DEADLOCK",
        ]) {
            ErrorClass::Transient
        } else if has(&["MEMORY", "OOM", "CPU", "DISK", "QUOTA", "RESOURCE"]) {
            ErrorClass::Resource
        } else if has(&["PARSE", "INVALID", "VALIDATION", "MALFORMED", "SCHEMA"]) {
            ErrorClass::Input
        } else {
            ErrorClass::Unknown
        }
    }
}

/// The documented defaults and ranges of `createJob`; the parser, the README and the tests
/// read them here.
#[derive(Clone, Copy, Debug)]
pub struct JobLimits {
    pub priority: (i16, i16),
    pub default_priority: i16,
    pub max_parallel_tasks: (i32, i32),
    pub default_max_parallel_tasks: i32,
    pub max_attempts: (i32, i32),
    pub default_max_attempts: i32,
    /// Seconds.
    pub retry_interval: (i32, i32),
    pub default_retry_interval: i32,
    /// Megabytes; 0 means no limit.
    pub max_memory: (i64, i64),
    /// CPU cores, fractions allowed; 0 means no limit.
    pub max_cpu: (f64, f64),
    /// Characters of an id, a code, a phase or a task name.
    pub name_chars: usize,
    pub message_chars: usize,
    pub stack_chars: usize,
    /// Tasks in one `addTasks` / `createJob`, updates in one `updateTasks`, articles in
    /// one `recordArticles`.
    pub batch_items: usize,
    /// How long a deleted job whose pipeline never calls again is kept before it goes.
    pub delete_grace_secs: i64,
}

pub const JOB_LIMITS: JobLimits = JobLimits {
    priority: (1, 10),
    default_priority: 5,
    max_parallel_tasks: (1, 1_000),
    default_max_parallel_tasks: 4,
    max_attempts: (1, 100),
    default_max_attempts: 3,
    retry_interval: (0, 86_400),
    default_retry_interval: 60,
    max_memory: (0, 16 * 1024 * 1024),
    max_cpu: (0.0, 1_024.0),
    name_chars: 200,
    message_chars: 4_000,
    stack_chars: 32_000,
    batch_items: 1_000,
    delete_grace_secs: 300,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryConfig {
    pub max_attempts: i32,
    /// Seconds between attempts.
    pub retry_interval: i32,
    /// Error codes worth retrying; empty means every code.
    pub retry_on_errors: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Megabytes; 0 means no limit.
    pub max_memory: i64,
    /// Cores; 0 means no limit.
    pub max_cpu: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetailedStatus {
    pub current_phase: Option<String>,
    pub progress_percentage: f64,
    pub active_tasks: i32,
    pub error_count: i32,
}

/// A job as every reader sees it (`getJobInfo`, the jobs pages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: Uuid,
    pub status: JobStatus,
    pub kind: JobKind,
    pub product_id: Option<String>,
    pub sending_group_id: Option<String>,
    pub user_id: Option<String>,
    pub trigger_source: String,
    pub priority: i16,
    pub max_parallel_tasks: i32,
    pub retry_config: RetryConfig,
    pub resource_limits: ResourceLimits,
    pub detailed_status: DetailedStatus,
    pub stages: Vec<String>,
    pub last_error: Option<JobErrorView>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Set when `deleteJob` asked a live job to stop; it goes once its pipeline learns.
    pub delete_requested_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobErrorView {
    pub code: String,
    pub class: ErrorClass,
    pub message: String,
    pub stack: Option<String>,
    pub task: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskCounts {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// The jobs page's filters and cursor, all in its URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsQuery {
    pub status: Option<JobStatus>,
    pub kind: Option<JobKind>,
    /// `created_at` in microseconds and the id of the last job of the previous page.
    pub after: Option<String>,
}

impl JobsQuery {
    pub fn href(&self) -> String {
        let mut params = Vec::new();
        if let Some(status) = self.status {
            params.push(format!("status={}", status.as_str()));
        }
        if let Some(kind) = self.kind {
            params.push(format!("kind={}", kind.as_str()));
        }
        if let Some(after) = &self.after {
            params.push(format!("after={}", super::encode_component(after)));
        }
        if params.is_empty() {
            "/jobs".to_string()
        } else {
            format!("/jobs?{}", params.join("&"))
        }
    }

    /// Reads the cursor back; a malformed one starts from the top.
    pub fn cursor(&self) -> Option<(i64, Uuid)> {
        let (micros, id) = self.after.as_deref()?.split_once('.')?;
        Some((micros.parse().ok()?, id.parse().ok()?))
    }

    pub fn cursor_of(job: &JobView) -> String {
        format!("{}.{}", job.created_at.timestamp_micros(), job.id)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobsView {
    pub now: DateTime<Utc>,
    pub jobs: Vec<JobView>,
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobTaskView {
    pub name: String,
    pub status: TaskStatus,
    pub attempt: i32,
    pub depends_on: Vec<String>,
    pub articles: i64,
    pub clusters: i64,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct JobPhaseView {
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct JobEventView {
    pub from_status: Option<String>,
    pub to_status: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct JobLogView {
    pub task_name: Option<String>,
    pub level: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A job's page: the job and the newest of its tasks, phases, events, errors and log lines
/// (each list capped; the counts say how many there are).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetailView {
    pub now: DateTime<Utc>,
    pub job: JobView,
    pub counts: TaskCounts,
    pub tasks: Vec<JobTaskView>,
    pub phases: Vec<JobPhaseView>,
    pub events: Vec<JobEventView>,
    pub errors: Vec<JobErrorView>,
    pub logs: Vec<JobLogView>,
    pub articles: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_statuses_are_the_ones_a_job_can_only_leave_by_retry() {
        for status in JobStatus::ALL {
            if status.is_terminal() {
                assert!(status.is_finished(), "{status}");
            }
            assert_eq!(
                status.is_finished(),
                matches!(
                    status,
                    JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
                )
            );
        }
        assert_eq!(
            JobStatus::sources(JobStatus::Cancelled),
            vec![JobStatus::Pending, JobStatus::Running, JobStatus::Paused]
        );
    }

    #[test]
    fn error_codes_fall_into_classes() {
        assert_eq!(ErrorClass::of_code("TIMEOUT"), ErrorClass::Transient);
        assert_eq!(ErrorClass::of_code("rate_limited"), ErrorClass::Transient);
        assert_eq!(ErrorClass::of_code("PARSE_ERROR"), ErrorClass::Input);
        assert_eq!(ErrorClass::of_code("OUT_OF_MEMORY"), ErrorClass::Resource);
        assert_eq!(ErrorClass::of_code("E42"), ErrorClass::Unknown);
    }
}
