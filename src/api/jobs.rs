//! Server functions of the jobs pages; the same service functions as `/job-operations`.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{AppError, JobAction, JobDetailView, JobsQuery, JobsView};

#[cfg(feature = "ssr")]
use crate::model::Permission;

#[server(endpoint = "jobs/list")]
pub async fn list_jobs(query: JobsQuery) -> Result<JobsView, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::monitoring::jobs_page(&state.pool, &query).await?)
        }
        .await,
    )
}

/// `None` when there is no such job (or it was deleted). `log` is the cursor of an older page
/// of its log.
#[server(endpoint = "jobs/detail")]
pub async fn job_detail(
    job_id: Uuid,
    log: Option<String>,
) -> Result<Option<JobDetailView>, AppError> {
    use crate::server::jobs::JobError;
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            let log = log.map(crate::model::Cursor::from_text);
            match crate::server::monitoring::job_page(&state.pool, job_id, log).await {
                Ok(detail) => Ok(Some(detail)),
                Err(JobError::NotFound(_) | JobError::Gone { .. }) => Ok(None),
                Err(error) => Err(error.into()),
            }
        }
        .await,
    )
}

/// An operator's button: the same `jobs::perform` as `/job-operations`, so the permission,
/// the allowed statuses (`model::JobAction`) and the audit row are the route's.
#[server(endpoint = "jobs/act")]
pub async fn act_on_job(job_id: Uuid, action: JobAction) -> Result<(), AppError> {
    use crate::server::jobs::{self, input::DeleteJob, input::JobCommand, input::JobOperation};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let command = JobCommand {
                job_id,
                reason: None,
            };
            let operation = match action {
                JobAction::Pause => JobOperation::PauseJob(command),
                JobAction::Resume => JobOperation::ResumeJob(command),
                JobAction::Cancel => JobOperation::CancelJob(command),
                JobAction::Retry => JobOperation::RetryJob(command),
                JobAction::Delete => JobOperation::DeleteJob(DeleteJob {
                    job_id,
                    force: false,
                }),
            };
            let actor = principal.actor();
            jobs::perform(
                &state.pool,
                &state.job_updates,
                &state.live,
                &actor,
                operation,
            )
            .await?;
            // The job is gone: its page has nothing to show.
            if action == JobAction::Delete {
                leptos_axum::redirect("/jobs");
            }
            Ok(())
        }
        .await,
    )
}
