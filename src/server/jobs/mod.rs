//! Job control, seed 001: `createJob`, `updateBatchJob`, `deleteJob`, `getJobInfo` and the
//! operators' pause / resume / cancel, each a transaction that also writes the job's event
//! trail and the audit log. Tables: `jobs`, `job_events`, `job_phases`, `job_errors`,
//! `job_logs`, `job_tombstones` (the task tables belong to `server::tasks`).

pub mod input;
mod read;
mod report_queue;
pub(crate) mod store;
mod sweeper;
pub mod warnings;
mod write;

mod locked;
mod perform;

use std::borrow::Cow;

pub use locked::{in_locked_job, JobScoped};
pub use perform::{perform, JobAnswer};
pub use read::{get_job_info, job_detail, JobInfo};
pub use report_queue::{ReportQueue, ReportQueueStats};
pub use store::{record_error, record_event, LockedJob};
pub use sweeper::{run_deletion_sweeper, sweep as sweep_deletions};
pub(crate) use write::reopen;
pub use write::{follow_tasks_to, Deletion, UpdatedJob};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::model::{JobAction, JobStatus, Permission, Role};
use crate::server::failure::{DomainError, Failure, Refusal};
use crate::server::input::InvalidInput;

/// What a job operation can refuse; its status and body are decided in [`DomainError`]
/// below, for the JSON routes and the server functions alike.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{message}")]
    Invalid {
        field: Cow<'static, str>,
        message: Cow<'static, str>,
    },
    #[error("job {0} not found")]
    NotFound(Uuid),
    /// The job was deleted; a pipeline still driving it must stop.
    #[error("job {job_id} was deleted; stop working on it")]
    Gone {
        job_id: Uuid,
        deleted_at: DateTime<Utc>,
    },
    /// The caller's role does not allow the action, or this move of the job (`current` →
    /// `wanted`: a worker may only start, report on and finish a run).
    #[error("the {role} role may not do this (it needs {needs:?})")]
    Forbidden {
        role: Role,
        needs: Permission,
        current: Option<JobStatus>,
        wanted: Option<JobStatus>,
    },
    /// The state machine, or the command's own rule (`model::JobAction`), does not allow it.
    #[error("job is {current}; it may become {}", list(.allowed))]
    Transition {
        current: JobStatus,
        allowed: Vec<JobStatus>,
        wanted: Option<JobStatus>,
    },
    /// An operator's command from a status it is not offered in (`model::JobAction`).
    #[error(
        "job is {current}; {} is allowed only when it is {}",
        .action.name(),
        list(.action.allowed_from())
    )]
    NotNow {
        action: JobAction,
        current: JobStatus,
    },
    /// `updateBatchJob` on a dispatched job: it follows its tasks, and operators command it.
    #[error("job {0} is dispatched: it follows its tasks; use pauseJob, resumeJob, cancelJob or retryJob")]
    Dispatched(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The database could not take a batch of reports; nothing was written.
    #[error("the database is unavailable")]
    Unavailable,
    /// The connection broke under a batch of reports: it may have committed.
    #[error("the database stopped answering; the report may or may not be stored")]
    OutcomeUnknown,
}

/// "running or paused", or that nothing else is allowed.
pub(crate) fn list<T: std::fmt::Display>(statuses: &[T]) -> String {
    if statuses.is_empty() {
        "nothing else (it is final)".into()
    } else {
        statuses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

impl JobError {
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The state machine's refusal of `from` → `wanted` (`None`: a report on a finished run).
    pub fn transition(current: JobStatus, wanted: Option<JobStatus>) -> Self {
        Self::Transition {
            current,
            allowed: current.next().to_vec(),
            wanted,
        }
    }

    /// A refusal the audit log records (403, 409).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            JobError::Forbidden { .. }
                | JobError::Transition { .. }
                | JobError::NotNow { .. }
                | JobError::Dispatched(_)
        )
    }
}

impl From<InvalidInput> for JobError {
    fn from(error: InvalidInput) -> Self {
        JobError::Invalid {
            field: error.field,
            message: error.message,
        }
    }
}

impl DomainError for JobError {
    fn failure(self) -> Failure {
        let message = self.to_string();
        match self {
            JobError::Invalid { field, .. } => {
                Refusal::new(StatusCode::BAD_REQUEST, message).field(field)
            }
            JobError::NotFound(_) => Refusal::new(StatusCode::NOT_FOUND, message),
            JobError::Gone { job_id, deleted_at } => Refusal::new(StatusCode::GONE, message)
                .details(json!({ "job_id": job_id, "deleted_at": deleted_at })),
            JobError::Forbidden {
                current, wanted, ..
            } => {
                let refusal = Refusal::new(StatusCode::FORBIDDEN, message);
                match current {
                    Some(current) => refusal.details(json!({
                        "current_status": current,
                        "requested_status": wanted,
                    })),
                    None => refusal,
                }
            }
            JobError::Transition {
                current,
                allowed,
                wanted,
            } => Refusal::new(StatusCode::CONFLICT, message).details(json!({
                "current_status": current,
                "allowed": allowed,
                "requested_status": wanted,
            })),
            JobError::NotNow { action, current } => Refusal::new(StatusCode::CONFLICT, message)
                .details(json!({
                    "current_status": current,
                    "allowed_from": action.allowed_from(),
                    "requested_status": action.target(),
                })),
            JobError::Dispatched(_) => Refusal::new(StatusCode::CONFLICT, message),
            JobError::Database(error) => return Failure::Database(error),
            JobError::Unavailable => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, message).retry_after(1)
            }
            JobError::OutcomeUnknown => Refusal::new(StatusCode::GATEWAY_TIMEOUT, message),
        }
        .into()
    }
}
