//! The one status badge: a script's last report, a job, a task or an error record, each in
//! its locale's word.

use leptos::prelude::*;

use crate::i18n::*;
use crate::model::{JobStatus, RecoveryStatus, ReportStatus, TaskStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Report(ReportStatus),
    Job(JobStatus),
    Task(TaskStatus),
    Recovery(RecoveryStatus),
}

impl From<RecoveryStatus> for Status {
    fn from(status: RecoveryStatus) -> Self {
        Status::Recovery(status)
    }
}

impl From<ReportStatus> for Status {
    fn from(status: ReportStatus) -> Self {
        Status::Report(status)
    }
}

impl From<JobStatus> for Status {
    fn from(status: JobStatus) -> Self {
        Status::Job(status)
    }
}

impl From<TaskStatus> for Status {
    fn from(status: TaskStatus) -> Self {
        Status::Task(status)
    }
}

impl Status {
    /// The CSS class suffix: one colour per meaning, shared by all three kinds.
    fn tone(self) -> &'static str {
        match self {
            Status::Report(ReportStatus::Success)
            | Status::Job(JobStatus::Completed)
            | Status::Task(TaskStatus::Completed)
            | Status::Recovery(RecoveryStatus::Recovered) => "success",
            Status::Report(ReportStatus::Error)
            | Status::Job(JobStatus::Failed)
            | Status::Task(TaskStatus::Failed)
            | Status::Recovery(RecoveryStatus::Failed) => "error",
            Status::Job(JobStatus::Running)
            | Status::Task(TaskStatus::Running)
            | Status::Recovery(RecoveryStatus::InProgress) => "running",
            Status::Job(JobStatus::Paused) => "paused",
            Status::Job(JobStatus::Pending)
            | Status::Task(TaskStatus::Pending)
            | Status::Recovery(RecoveryStatus::Pending) => "pending",
            Status::Job(JobStatus::Cancelled) | Status::Task(TaskStatus::Cancelled) => "cancelled",
        }
    }
}

#[component]
pub fn StatusBadge(#[prop(into)] status: Status) -> impl IntoView {
    let i18n = use_i18n();
    let label = move || match status {
        Status::Report(ReportStatus::Success) => t_string!(i18n, status_success),
        Status::Report(ReportStatus::Error) => t_string!(i18n, status_error),
        Status::Job(JobStatus::Pending)
        | Status::Task(TaskStatus::Pending)
        | Status::Recovery(RecoveryStatus::Pending) => t_string!(i18n, status_pending),
        Status::Recovery(RecoveryStatus::InProgress) => t_string!(i18n, status_in_progress),
        Status::Recovery(RecoveryStatus::Recovered) => t_string!(i18n, status_recovered),
        Status::Job(JobStatus::Running) | Status::Task(TaskStatus::Running) => {
            t_string!(i18n, status_running)
        }
        Status::Job(JobStatus::Paused) => t_string!(i18n, status_paused),
        Status::Job(JobStatus::Completed) | Status::Task(TaskStatus::Completed) => {
            t_string!(i18n, status_completed)
        }
        Status::Job(JobStatus::Failed)
        | Status::Task(TaskStatus::Failed)
        | Status::Recovery(RecoveryStatus::Failed) => t_string!(i18n, status_failed),
        Status::Job(JobStatus::Cancelled) | Status::Task(TaskStatus::Cancelled) => {
            t_string!(i18n, status_cancelled)
        }
    };
    let raw = match status {
        Status::Report(s) => s.as_str(),
        Status::Job(s) => s.as_str(),
        Status::Task(s) => s.as_str(),
        Status::Recovery(s) => s.as_str(),
    };
    view! {
        <span class=format!("status status-{}", status.tone()) data-status=raw>{label}</span>
    }
}
