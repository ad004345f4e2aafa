//! Seed 001's `BatchJob`: its statuses and the one state machine that the service, the
//! tests and the README's diagram read; kinds, stages, task statuses and error classes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::wire_enum;
use super::{encode_component, Cursor, HistorySort, JobCall, Permission, SortOrder};

wire_enum! {
    pub enum JobStatus ("status") {
        Pending = "pending",
        Running = "running",
        Paused = "paused",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobStatus {
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

    /// Who may move a job from `self` to `to` (or report on it, `to == self`). The pipeline
    /// or worker driving a run may start it, finish it and report progress; pausing,
    /// resuming, cancelling and retrying are an operator's decisions (`JobAction`).
    pub fn permission_to(self, to: JobStatus) -> Permission {
        use JobStatus::*;
        match (self, to) {
            (from, to) if from == to => Permission::ReportOnJobs,
            (Pending, Running) | (Running, Completed) | (Running, Failed) => {
                Permission::ReportOnJobs
            }
            _ => Permission::ActOnJobs,
        }
    }

    /// The run has ended: the job has a `finished_at` exactly in these (a CHECK in the
    /// schema says so too). A failed job can still be retried; the other two are final.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The statuses of [`is_finished`](Self::is_finished), for SQL (`= ANY($n)`).
    pub fn finished() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .map(Self::as_str)
            .collect()
    }

    /// A dispatched job in one of these hands its tasks to workers (a pending one starts
    /// running with its first claim); paused and finished jobs hand out nothing.
    pub const HANDING_OUT: [JobStatus; 2] = [JobStatus::Pending, JobStatus::Running];

    /// A pipeline may still be driving a job in these, so deleting one stops it first.
    pub fn is_live(self) -> bool {
        matches!(self, JobStatus::Running | JobStatus::Paused)
    }
}

wire_enum! {
    /// An operator's command on a job, from the page's buttons or `/job-operations`. The
    /// statuses each is offered from are decided here, for the service and the buttons.
    pub enum JobAction ("job action") {
        Pause = "pause",
        Resume = "resume",
        Cancel = "cancel",
        Retry = "retry",
        Delete = "delete",
    }
}

impl JobAction {
    /// The action on `/job-operations`.
    pub fn call(self) -> JobCall {
        match self {
            JobAction::Pause => JobCall::PauseJob,
            JobAction::Resume => JobCall::ResumeJob,
            JobAction::Cancel => JobCall::CancelJob,
            JobAction::Retry => JobCall::RetryJob,
            JobAction::Delete => JobCall::DeleteJob,
        }
    }

    /// Its name on the wire and in the audit log.
    pub fn name(self) -> &'static str {
        self.call().as_str()
    }

    pub fn permission(self) -> Permission {
        Permission::ActOnJobs
    }

    /// Where the command sends the job; `None` for delete, which removes it.
    pub fn target(self) -> Option<JobStatus> {
        match self {
            JobAction::Pause => Some(JobStatus::Paused),
            JobAction::Resume => Some(JobStatus::Running),
            JobAction::Cancel => Some(JobStatus::Cancelled),
            JobAction::Retry => Some(JobStatus::Pending),
            JobAction::Delete => None,
        }
    }

    /// The statuses the command is allowed from. Resume is for a paused job only: a
    /// pending job is started by its pipeline or worker, not resumed by an operator.
    pub fn allowed_from(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            JobAction::Pause => &[Running],
            JobAction::Resume => &[Paused],
            JobAction::Cancel => &[Pending, Running, Paused],
            JobAction::Retry => &[Failed],
            JobAction::Delete => &JobStatus::ALL,
        }
    }

    pub fn allowed(self, from: JobStatus) -> bool {
        self.allowed_from().contains(&from)
    }
}

wire_enum! {
    /// How a job is driven, chosen at `createJob`: its own pipeline reports on it
    /// (`updateBatchJob`, `updateTasks`), or Jobdeck hands its tasks to workers
    /// (`claimTasks`) and the job follows them.
    pub enum JobDriver ("driver") {
        Reported = "reported",
        Dispatched = "dispatched",
    }
}

wire_enum! {
    /// Seed 002's `trigger_source`: who started a job.
    pub enum TriggerSource ("trigger_source") {
        System = "system",
        User = "user",
    }
}

wire_enum! {
    pub enum JobKind ("kind") {
        Batch = "batch",
        Recap = "recap",
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

wire_enum! {
    pub enum TaskStatus ("task status") {
        Pending = "pending",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl TaskStatus {
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

    /// The statuses of [`is_finished`](Self::is_finished), for SQL (`= ANY($n)`).
    pub fn finished() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .map(Self::as_str)
            .collect()
    }

    /// Entering this status starts an attempt (`attempt + 1`, a new `started_at`): the one
    /// place that says so, read by every statement that moves tasks.
    pub const ATTEMPT_STARTS: TaskStatus = TaskStatus::Running;
}

wire_enum! {
    /// The level of a line in a job's log.
    pub enum LogLevel ("log level") {
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

wire_enum! {
    /// What kind of failure an error code names, which decides whether retrying can help.
    pub enum ErrorClass ("error class") {
        /// Timeouts, rate limits, lost connections: the same work may succeed later.
        Transient = "transient",
        /// Memory, CPU, disk or quota exhausted.
        Resource = "resource",
        /// The input cannot be processed as it is (parse or validation errors).
        Input = "input",
        /// Anything else.
        Unknown = "unknown",
    }
}

impl ErrorClass {
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
    /// Stages a job may declare.
    pub max_stages: usize,
    /// Bytes of a task's payload, written out as JSON.
    pub payload_bytes: usize,
    /// Tasks a job may have in all.
    pub tasks_per_job: usize,
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
    max_stages: 64,
    payload_bytes: 16 * 1024,
    tasks_per_job: 10_000,
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

/// How pages name a job: its product and sending group, else its kind and user, else its
/// kind and the start of its id.
pub fn job_label(
    kind: JobKind,
    product_id: Option<&str>,
    sending_group_id: Option<&str>,
    user_id: Option<&str>,
    id: Uuid,
) -> String {
    match (product_id, sending_group_id, user_id) {
        (Some(product), Some(group), _) => format!("{product} / {group}"),
        (_, _, Some(user)) => format!("{} · {user}", kind.as_str()),
        _ => format!("{} {}", kind.as_str(), &id.to_string()[..8]),
    }
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
    pub trigger_source: TriggerSource,
    pub driver: JobDriver,
    /// The queue a dispatched job's tasks are claimed from.
    pub queue: String,
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

/// The jobs page's filters, sort and cursor, all in its URL, as typed: the server reads them
/// with `fetchJobHistory`'s own parser, so a bad value gets its message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsQuery {
    /// Any of these statuses (`status` may repeat).
    pub status: Vec<String>,
    pub kind: Option<String>,
    /// Created on or after this UTC day (`YYYY-MM-DD`); without `from` and `to`, the last
    /// `DEFAULT_DAYS` days.
    pub from: Option<String>,
    /// Created on or before this UTC day.
    pub to: Option<String>,
    /// Had an error of this code or class.
    pub error: Option<String>,
    pub user: Option<String>,
    /// A `fetchJobHistory` sort field (default `created_at`) and `asc` or `desc` (default).
    pub sort: Option<String>,
    pub order: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl JobsQuery {
    /// Days the page shows when its URL names none: the aggregate cards read every job the
    /// filters select, and over all of a large user's history that takes a second.
    pub const DEFAULT_DAYS: u64 = 7;

    /// `from` as the page reads it on `today`: as given, or the default window's first day
    /// when neither `from` nor `to` is given.
    pub fn effective_from(&self, today: chrono::NaiveDate) -> Option<String> {
        match (&self.from, &self.to) {
            (None, None) => Some(
                (today - chrono::Days::new(Self::DEFAULT_DAYS - 1))
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            (from, _) => from.clone(),
        }
    }

    /// Reads the page's URL parameters; empty ones are left out.
    pub fn from_params(get: impl Fn(&str) -> Vec<String>) -> Self {
        let one = |name: &str| get(name).into_iter().find(|v| !v.trim().is_empty());
        Self {
            status: get("status")
                .into_iter()
                .filter(|v| !v.is_empty())
                .collect(),
            kind: one("kind"),
            from: one("from"),
            to: one("to"),
            error: one("error"),
            user: one("user"),
            sort: one("sort"),
            order: one("order"),
            cursor: one("cursor"),
        }
    }

    pub fn href(&self) -> String {
        let mut params: Vec<String> = self
            .status
            .iter()
            .map(|s| format!("status={}", encode_component(s)))
            .collect();
        for (name, value) in [
            ("kind", &self.kind),
            ("from", &self.from),
            ("to", &self.to),
            ("error", &self.error),
            ("user", &self.user),
            ("sort", &self.sort),
            ("order", &self.order),
            ("cursor", &self.cursor),
        ] {
            if let Some(value) = value {
                params.push(format!("{name}={}", encode_component(value)));
            }
        }
        if params.is_empty() {
            "/jobs".to_string()
        } else {
            format!("/jobs?{}", params.join("&"))
        }
    }

    pub fn sort_field(&self) -> HistorySort {
        self.sort
            .as_deref()
            .and_then(HistorySort::parse)
            .unwrap_or(HistorySort::CreatedAt)
    }

    pub fn sort_order(&self) -> SortOrder {
        self.order
            .as_deref()
            .and_then(SortOrder::parse)
            .unwrap_or(SortOrder::Desc)
    }

    /// The first page sorted by `field`: descending, or ascending when it is sorted so now.
    pub fn sorted_by(&self, field: HistorySort) -> Self {
        let order = if self.sort_field() == field && self.sort_order() == SortOrder::Desc {
            SortOrder::Asc
        } else {
            SortOrder::Desc
        };
        Self {
            sort: Some(field.as_str().to_string()),
            order: Some(order.as_str().to_string()),
            cursor: None,
            ..self.clone()
        }
    }
}

/// The aggregate cards: over every job the filters select.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobsAggregates {
    pub total: i64,
    pub finished: i64,
    pub success_rate: Option<f64>,
    pub avg_duration_ms: Option<f64>,
    pub error_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobsView {
    pub now: DateTime<Utc>,
    pub jobs: Vec<JobView>,
    pub next: Option<Cursor>,
    pub aggregates: JobsAggregates,
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
    pub from_status: Option<JobStatus>,
    pub to_status: JobStatus,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct JobLogView {
    pub task_name: Option<String>,
    pub level: LogLevel,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// One of the job page's resource charts: its SVG (empty without samples) and how many
/// buckets had samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobChart {
    /// Buckets with samples.
    pub points: usize,
    /// Samples in them.
    pub samples: i64,
    pub svg: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobCharts {
    /// The bucket interval (`1m` … `1d`) chosen for the job's life so far.
    pub interval: String,
    pub cpu: JobChart,
    pub memory: JobChart,
    pub throughput: JobChart,
}

/// A job's page: the job and the newest of its tasks, phases, events, errors and log lines
/// (each list capped; the counts say how many there are).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetailView {
    pub now: DateTime<Utc>,
    pub job: JobView,
    pub counts: TaskCounts,
    pub tasks: Vec<JobTaskView>,
    /// The job's stages, each to come, running, done or failed.
    pub stages: Vec<super::StageProgress>,
    pub events: Vec<JobEventView>,
    pub errors: Vec<JobErrorView>,
    /// A page of the log, newest first, and the cursor of the older lines.
    pub logs: Vec<JobLogView>,
    pub older_logs: Option<Cursor>,
    /// Cpu, memory and throughput over the job's life.
    pub charts: JobCharts,
    pub articles: i64,
    /// Why the oldest pending tasks of a dispatched job wait.
    pub waiting: Vec<super::dispatch::WaitingTask>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn having(test: fn(JobStatus) -> bool) -> Vec<JobStatus> {
        JobStatus::ALL.into_iter().filter(|s| test(*s)).collect()
    }

    #[test]
    fn finished_statuses_are_the_ones_a_job_can_only_leave_by_retry() {
        use JobStatus::*;
        assert_eq!(
            having(JobStatus::is_finished),
            [Completed, Failed, Cancelled]
        );
        // No way out of these two.
        assert_eq!(having(|s| s.next().is_empty()), [Completed, Cancelled]);

        assert_eq!(having(JobStatus::is_live), [Running, Paused]);
        for status in JobStatus::ALL {
            let only_retry = status.next().iter().all(|&to| to == Pending);
            assert_eq!(status.is_finished(), only_retry, "{status}");
        }
    }

    /// The README's role rules: a worker starts, reports on and finishes a run; the rest is
    /// an operator's.
    #[test]
    fn a_worker_may_only_drive_a_run_forward() {
        use JobStatus::*;
        let mut worker_moves = Vec::new();
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                if from != to
                    && from.may_become(to)
                    && from.permission_to(to) == Permission::ReportOnJobs
                {
                    worker_moves.push((from, to));
                }
            }
        }
        assert_eq!(
            worker_moves,
            [(Pending, Running), (Running, Completed), (Running, Failed)]
        );
        assert_eq!(Paused.permission_to(Paused), Permission::ReportOnJobs);
    }

    #[test]
    fn commands_are_offered_from_the_documented_statuses_only() {
        use JobStatus::*;
        let offered = |action: JobAction| having_for(action);
        fn having_for(action: JobAction) -> Vec<JobStatus> {
            JobStatus::ALL
                .into_iter()
                .filter(|s| action.allowed(*s))
                .collect()
        }
        assert_eq!(offered(JobAction::Pause), [Running]);
        assert_eq!(offered(JobAction::Resume), [Paused]);
        assert_eq!(offered(JobAction::Cancel), [Pending, Running, Paused]);
        assert_eq!(offered(JobAction::Retry), [Failed]);
        assert_eq!(offered(JobAction::Delete), JobStatus::ALL);
        // Each command is a move the state machine allows from wherever it is offered.
        for action in JobAction::ALL {
            if let Some(to) = action.target() {
                for from in action.allowed_from() {
                    assert!(from.may_become(to), "{} from {from}", action.name());
                }
            }
        }
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
