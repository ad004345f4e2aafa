//! The one door to job control that both the JSON route and the pages' server function go
//! through: checks the caller's permission for the action, runs it, and audits a refusal
//! (403) or a conflict (409) after the refused change has rolled back.

use serde::Serialize;
use sqlx::PgPool;

use super::input::JobOperation;
use super::warnings::{self, JobWarning};
use super::write::{command, create_job, delete_job, update_batch_job, Deletion, UpdatedJob};
use super::{JobError, ReportQueue};
use crate::model::JobView;
use crate::server::audit::{self, Actor};
use crate::server::monitoring::{self, DetailedJobInfo, JobChanges, JobHistory, JobMetrics};

/// `createJob`'s answer: the job, and what similar work did lately (`warnings`).
#[derive(Debug, Serialize)]
pub struct CreatedJob {
    #[serde(flatten)]
    pub job: JobView,
    pub warnings: Vec<JobWarning>,
}

/// What an operation answers, in its `data`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum JobAnswer {
    Created(Box<CreatedJob>),
    Updated(UpdatedJob),
    Deleted(Deletion),
    Info(Box<DetailedJobInfo>),
    History(JobHistory),
    Metrics(JobMetrics),
}

pub async fn perform(
    pool: &PgPool,
    reports: &ReportQueue,
    changes: &JobChanges,
    actor: &Actor,
    operation: JobOperation,
) -> Result<JobAnswer, JobError> {
    let (name, job_id, reads) = (operation.name(), operation.job_id(), operation.reads());
    let result = run(pool, reports, actor, operation).await;
    match &result {
        // Committed: the live streams hear of it with the next send.
        Ok(answer) if !reads => {
            if let Some(id) = job_id.or(match answer {
                JobAnswer::Created(created) => Some(created.job.id),
                _ => None,
            }) {
                changes.touch(id);
            }
        }
        Ok(_) => {}
        // A deletion a pipeline's call completed (`jobs::in_locked_job`) is news too.
        Err(JobError::Gone { job_id, .. }) => changes.touch(*job_id),
        Err(error) if error.is_refusal() => {
            let target = job_id.map(|id| id.to_string());
            audit::record_refusal(pool, actor, name, target.as_deref(), &error.to_string()).await;
        }
        Err(_) => {}
    }
    result
}

async fn run(
    pool: &PgPool,
    reports: &ReportQueue,
    actor: &Actor,
    operation: JobOperation,
) -> Result<JobAnswer, JobError> {
    let needs = operation.permission();
    if !actor.may(needs) {
        return Err(JobError::Forbidden {
            role: actor.role,
            needs,
            current: None,
            wanted: None,
        });
    }
    let action = operation.action();
    Ok(match operation {
        JobOperation::CreateJob(job) => {
            let job = create_job(pool, actor, job).await?;
            let warnings = warnings::for_new_job(pool, &job).await?;
            JobAnswer::Created(Box::new(CreatedJob { job, warnings }))
        }
        JobOperation::UpdateBatchJob(update) => {
            JobAnswer::Updated(update_batch_job(pool, reports, actor, update).await?)
        }
        JobOperation::DeleteJob(delete) => {
            JobAnswer::Deleted(delete_job(pool, actor, delete).await?)
        }
        JobOperation::GetJobInfo(request) => {
            JobAnswer::Info(Box::new(monitoring::get_job_info(pool, request).await?))
        }
        JobOperation::FetchJobHistory(request) => {
            JobAnswer::History(monitoring::fetch_job_history(pool, request).await?)
        }
        JobOperation::GetJobMetrics(request) => {
            JobAnswer::Metrics(monitoring::get_job_metrics(pool, request).await?)
        }
        JobOperation::PauseJob(job)
        | JobOperation::ResumeJob(job)
        | JobOperation::CancelJob(job)
        | JobOperation::RetryJob(job) => {
            let action = action.expect("a command names its action");
            JobAnswer::Updated(command(pool, actor, action, job).await?)
        }
    })
}
