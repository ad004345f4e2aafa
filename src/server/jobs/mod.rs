//! Job control, seed 001: `createJob`, `updateBatchJob`, `deleteJob`, `getJobInfo` and the
//! operators' pause / resume / cancel, each a transaction that also writes the job's event
//! trail and the audit log. Tables: `jobs`, `job_events`, `job_phases`, `job_errors`,
//! `job_logs`, `job_tombstones` (the task tables belong to `server::tasks`).

pub mod input;
mod read;
mod report_queue;
mod store;
mod sweeper;
mod write;

use std::borrow::Cow;

pub use read::{get_job_info, job_detail, list_jobs, JobInfo, JOBS_PAGE_SIZE};
pub use report_queue::ReportQueue;
pub use store::{lock_job, record_error, LockedJob};
pub use sweeper::{run_deletion_sweeper, sweep as sweep_deletions};
pub use write::{
    cancel_job, create_job, delete_job, pause_job, resume_job, update_batch_job, Deletion,
    JobCommandKind, UpdatedJob,
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{JobStatus, TaskStatus};

/// What a job operation can refuse. Converted to `ApiError` in `http::jobs` and to the
/// pages' `AppError` below.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{message}")]
    Invalid {
        field: Cow<'static, str>,
        message: Cow<'static, str>,
    },
    /// The body is well formed but names something the job does not have.
    #[error("{message}")]
    Unknown {
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
    /// The state machine does not allow it.
    #[error("job is {current}; it may become {}", list(.allowed, JobStatus::as_str))]
    Transition {
        current: JobStatus,
        allowed: &'static [JobStatus],
        wanted: Option<JobStatus>,
    },
    #[error("task {task:?} is {current:?}; it may become {}", list(.allowed, TaskStatus::as_str))]
    TaskTransition {
        task: String,
        current: TaskStatus,
        allowed: &'static [TaskStatus],
    },
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
fn list<T: Copy>(statuses: &[T], name: fn(T) -> &'static str) -> String {
    if statuses.is_empty() {
        "nothing else (it is final)".into()
    } else {
        statuses
            .iter()
            .map(|s| name(*s))
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
}

impl From<JobError> for crate::model::AppError {
    fn from(error: JobError) -> Self {
        use crate::model::AppError;
        match error {
            JobError::Invalid { field, message } | JobError::Unknown { field, message } => {
                AppError::Invalid {
                    field: Some(field.into_owned()),
                    message: message.into_owned(),
                }
            }
            JobError::NotFound(_) | JobError::Gone { .. } => AppError::NotFound,
            error @ (JobError::Transition { .. } | JobError::TaskTransition { .. }) => {
                AppError::Conflict(error.to_string())
            }
            JobError::Database(error) => error.into(),
            JobError::Unavailable | JobError::OutcomeUnknown => AppError::Unavailable,
        }
    }
}
