//! The recovery pages' views: `/recovery` (open error records grouped by fingerprint, the
//! analysis with its charts and suggestions) and `/recovery/:id` (one record, its attempts
//! and what a recovery would run again).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::incidents::encode_component;
use super::wire::wire_enum;
use super::{
    Cursor, ErrorRetryConfig, JobStatus, RecoveryStatus, RerunReason, SuggestionKind, TaskStatus,
    Trend,
};

wire_enum! {
    /// How far back the page looks; the analysis compares it with the span before it.
    #[derive(Default)]
    pub enum RecoveryPeriod ("period") {
        Day = "24h",
        #[default]
        Week = "7d",
        Month = "30d",
    }
}

impl RecoveryPeriod {
    pub fn hours(self) -> i64 {
        match self {
            RecoveryPeriod::Day => 24,
            RecoveryPeriod::Week => 24 * 7,
            RecoveryPeriod::Month => 24 * 30,
        }
    }
}

wire_enum! {
    /// The records the list shows: `open` (not recovered: pending, in progress or failed),
    /// one recovery status, or all of them.
    #[derive(Default)]
    pub enum StatusChoice ("status") {
        #[default]
        Open = "open",
        Pending = "pending",
        InProgress = "in_progress",
        Failed = "failed",
        Recovered = "recovered",
        All = "all",
    }
}

impl StatusChoice {
    /// The recovery statuses it selects.
    pub fn statuses(self) -> Vec<RecoveryStatus> {
        use RecoveryStatus as S;
        match self {
            StatusChoice::Open => vec![S::Pending, S::InProgress, S::Failed],
            StatusChoice::Pending => vec![S::Pending],
            StatusChoice::InProgress => vec![S::InProgress],
            StatusChoice::Failed => vec![S::Failed],
            StatusChoice::Recovered => vec![S::Recovered],
            StatusChoice::All => RecoveryStatus::ALL.to_vec(),
        }
    }
}

/// `/recovery`'s URL: the filters as typed (checked on the server, which answers a bad one
/// with a message) and the list's cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryQuery {
    /// An error type (`TIMEOUT`), exactly.
    pub error_type: Option<String>,
    pub status: Option<String>,
    /// A job's id: its records only.
    pub job: Option<String>,
    /// One pattern's records.
    pub fingerprint: Option<String>,
    pub period: Option<String>,
    pub cursor: Option<String>,
}

impl RecoveryQuery {
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let one = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        Self {
            error_type: one("type"),
            status: one("status"),
            job: one("job"),
            fingerprint: one("fingerprint"),
            period: one("period"),
            cursor: one("cursor"),
        }
    }

    pub fn href(&self) -> String {
        let params: Vec<String> = [
            ("type", &self.error_type),
            ("status", &self.status),
            ("job", &self.job),
            ("fingerprint", &self.fingerprint),
            ("period", &self.period),
            ("cursor", &self.cursor),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .as_ref()
                .map(|v| format!("{name}={}", encode_component(v)))
        })
        .collect();
        if params.is_empty() {
            "/recovery".to_string()
        } else {
            format!("/recovery?{}", params.join("&"))
        }
    }

    /// The same filters from the first page, with one of them changed.
    pub fn with(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut next = Self {
            cursor: None,
            ..self.clone()
        };
        change(&mut next);
        next
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryView {
    pub now: DateTime<Utc>,
    pub period: RecoveryPeriod,
    pub status: StatusChoice,
    /// Error types whose automatic retries the circuit breaker holds now.
    pub paused_types: Vec<String>,
    pub breaker_failures: u32,
    pub breaker_window_secs: u64,
    pub total_errors: i64,
    pub previous_total_errors: i64,
    pub patterns: Vec<PatternLine>,
    pub records: Vec<ErrorRecordLine>,
    pub next: Option<Cursor>,
    pub types: Vec<TypeLine>,
    pub workers: Vec<WorkerLine>,
    pub suggestions: Vec<SuggestionLine>,
    /// Errors per hour of the largest types, and the recovery rate per type (SVG).
    pub errors_svg: String,
    pub recovery_svg: String,
}

/// One fingerprint's errors in the period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatternLine {
    pub error_type: String,
    pub fingerprint: String,
    pub pattern: String,
    pub count: i64,
    pub share: f64,
    pub previous: i64,
    pub trend: Trend,
    pub last_at: Option<DateTime<Utc>>,
    /// Among its latest records: the jobs, and the scripts' job keys.
    pub affected_jobs: Vec<Uuid>,
    pub affected_scripts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct ErrorRecordLine {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub error_type: String,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub recovery_status: RecoveryStatus,
    /// The first line of the message, shortened.
    pub message: String,
    pub retry_count: i32,
    pub job_id: Option<Uuid>,
    pub job_label: Option<String>,
    pub task_name: Option<String>,
    /// A script's record: its job key.
    pub job_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeLine {
    pub error_type: String,
    pub count: i64,
    pub previous: i64,
    pub trend: Trend,
    pub recovered: i64,
    pub failed: i64,
    pub recovery_rate: Option<f64>,
    pub mean_attempts_to_recover: Option<f64>,
    /// Its retries are paused by the circuit breaker now.
    pub paused: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerLine {
    pub worker_id: String,
    pub failed: i64,
    pub completed: i64,
    pub failure_rate: Option<f64>,
    pub share_of_failures: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestionLine {
    pub kind: SuggestionKind,
    pub text: String,
    /// What "apply" sends to `configureRetry`.
    pub proposed_config: Option<ErrorRetryConfig>,
    /// Megabytes: what "apply" sets on the failed jobs the suggestion was read from.
    pub proposed_max_memory: Option<i64>,
}

/// `/recovery/:id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecordView {
    pub now: DateTime<Utc>,
    pub id: Uuid,
    pub error_type: String,
    pub error_class: String,
    pub message: String,
    pub stack_trace: Option<String>,
    pub pattern: String,
    pub fingerprint: String,
    pub at: DateTime<Utc>,
    pub retry_count: i32,
    pub recovery_status: RecoveryStatus,
    pub recovered_at: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub attempts: Vec<AttemptView>,
    pub job_id: Option<Uuid>,
    pub job_label: Option<String>,
    pub job_status: Option<JobStatus>,
    pub task_name: Option<String>,
    pub task_status: Option<TaskStatus>,
    pub job_key: Option<String>,
    /// A controlled job's record: what a recovery would run again.
    pub plan: Option<RecoveryPlan>,
}

/// One entry of `recovery_attempts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptView {
    pub timestamp: Option<DateTime<Utc>>,
    pub method: String,
    pub result: String,
    pub actor: Option<String>,
}

/// `manualRecover`'s dry run, drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryPlan {
    /// The tasks it would run again, in the job's order, with why.
    pub rerun: Vec<(String, RerunReason)>,
    /// Completed tasks, left as they are.
    pub kept: usize,
    /// Why a recovery would be refused now (and what would allow it), instead of a set.
    pub refusal: Option<String>,
    /// The job's task graph, the re-run set highlighted (empty above the drawing limit).
    pub graph_svg: String,
    pub tasks: usize,
}
