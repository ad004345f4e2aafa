//! Server functions of the jobs pages; the same service functions as `/job-operations`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AppError, JobDetailView, JobsQuery, JobsView};

#[cfg(feature = "ssr")]
use crate::model::Permission;

#[server(endpoint = "jobs/list")]
pub async fn list_jobs(query: JobsQuery) -> Result<JobsView, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::jobs::list_jobs(&state.pool, &query).await?)
        }
        .await,
    )
}

/// `None` when there is no such job (or it was deleted).
#[server(endpoint = "jobs/detail")]
pub async fn job_detail(job_id: Uuid) -> Result<Option<JobDetailView>, AppError> {
    use crate::server::jobs::JobError;
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            match crate::server::jobs::job_detail(&state.pool, job_id).await {
                Ok(detail) => Ok(Some(detail)),
                Err(JobError::NotFound(_) | JobError::Gone { .. }) => Ok(None),
                Err(error) => Err(error.into()),
            }
        }
        .await,
    )
}

/// What an operator's button asks of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobAction {
    Pause,
    Resume,
    Cancel,
    Delete,
}

impl JobAction {
    /// The form value, as serde reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Pause => "pause",
            JobAction::Resume => "resume",
            JobAction::Cancel => "cancel",
            JobAction::Delete => "delete",
        }
    }
}

#[server(endpoint = "jobs/act")]
pub async fn act_on_job(job_id: Uuid, action: JobAction) -> Result<(), AppError> {
    use crate::server::jobs::{self, input::DeleteJob, input::JobCommand};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let (pool, actor) = (&state.pool, principal.actor());
            let command = JobCommand {
                job_id,
                reason: None,
            };
            match action {
                JobAction::Pause => jobs::pause_job(pool, &actor, command).await.map(drop),
                JobAction::Resume => jobs::resume_job(pool, &actor, command).await.map(drop),
                JobAction::Cancel => jobs::cancel_job(pool, &actor, command).await.map(drop),
                JobAction::Delete => jobs::delete_job(
                    pool,
                    &actor,
                    DeleteJob {
                        job_id,
                        force: false,
                    },
                )
                .await
                .map(drop),
            }
            .map_err(AppError::from)?;
            // The job is gone: its page has nothing to show.
            if action == JobAction::Delete {
                leptos_axum::redirect("/jobs");
            }
            Ok(())
        }
        .await,
    )
}
