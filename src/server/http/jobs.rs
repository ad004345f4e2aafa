//! `POST /job-operations` and `POST /task-operations` (seed 001): thin handlers that check
//! the action's permission and call the jobs and tasks services; the domain's errors as
//! `ApiError`. Every success is `{"action": ..., "data": ...}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::envelope::Envelope;
use super::error::{ApiError, DATABASE_UNAVAILABLE};
use crate::model::Permission;
use crate::server::accounts::Principal;
use crate::server::jobs::input::{JobOperation, TaskOperation};
use crate::server::jobs::{self, JobError};
use crate::server::{tasks, AppState};

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::Invalid { field, message } => ApiError::Invalid {
                field: Some(field),
                message,
            },
            JobError::Unknown { field, message } => ApiError::Unprocessable {
                field: Some(field),
                message,
            },
            JobError::NotFound(_) => ApiError::NotFound(error.to_string().into()),
            JobError::Gone { job_id, deleted_at } => ApiError::Detailed {
                status: StatusCode::GONE,
                message: error.to_string().into(),
                details: json!({ "job_id": job_id, "deleted_at": deleted_at }),
            },
            JobError::Transition {
                current,
                allowed,
                wanted,
            } => ApiError::Detailed {
                status: StatusCode::CONFLICT,
                message: error.to_string().into(),
                details: json!({
                    "current_status": current,
                    "allowed": allowed,
                    "requested_status": wanted,
                }),
            },
            JobError::TaskTransition {
                ref task,
                current,
                allowed,
            } => ApiError::Detailed {
                status: StatusCode::CONFLICT,
                message: error.to_string().into(),
                details: json!({ "task": task, "current_status": current, "allowed": allowed }),
            },
            JobError::Database(error) => error.into(),
            JobError::Unavailable => ApiError::Unavailable(DATABASE_UNAVAILABLE),
            JobError::OutcomeUnknown => ApiError::OutcomeUnknown(error.to_string().into()),
        }
    }
}

fn answer<T: Serialize>(status: StatusCode, action: &str, data: T) -> Response {
    (status, Json(json!({ "action": action, "data": data }))).into_response()
}

pub async fn job_operations(
    State(state): State<AppState>,
    principal: Principal,
    Envelope(operation): Envelope<JobOperation>,
) -> Result<Response, ApiError> {
    use JobOperation::*;
    let permission = match &operation {
        GetJobInfo(_) => Permission::ReadJobs,
        UpdateBatchJob(_) => Permission::ReportOnJobs,
        CreateJob(_) | DeleteJob(_) | PauseJob(_) | ResumeJob(_) | CancelJob(_) => {
            Permission::ActOnJobs
        }
    };
    principal.require(permission)?;
    let (pool, actor) = (&state.pool, principal.actor());
    Ok(match operation {
        CreateJob(job) => answer(
            StatusCode::CREATED,
            "createJob",
            jobs::create_job(pool, &actor, job).await?,
        ),
        UpdateBatchJob(update) => answer(
            StatusCode::OK,
            "updateBatchJob",
            jobs::update_batch_job(pool, &state.job_updates, &actor, update).await?,
        ),
        DeleteJob(delete) => answer(
            StatusCode::OK,
            "deleteJob",
            jobs::delete_job(pool, &actor, delete).await?,
        ),
        GetJobInfo(job) => answer(
            StatusCode::OK,
            "getJobInfo",
            jobs::get_job_info(pool, job.job_id).await?,
        ),
        PauseJob(job) => answer(
            StatusCode::OK,
            "pauseJob",
            jobs::pause_job(pool, &actor, job).await?,
        ),
        ResumeJob(job) => answer(
            StatusCode::OK,
            "resumeJob",
            jobs::resume_job(pool, &actor, job).await?,
        ),
        CancelJob(job) => answer(
            StatusCode::OK,
            "cancelJob",
            jobs::cancel_job(pool, &actor, job).await?,
        ),
    })
}

pub async fn task_operations(
    State(state): State<AppState>,
    principal: Principal,
    Envelope(operation): Envelope<TaskOperation>,
) -> Result<Response, ApiError> {
    use TaskOperation::*;
    principal.require(Permission::ReportOnJobs)?;
    let (pool, actor) = (&state.pool, principal.actor());
    Ok(match operation {
        AddTasks(new) => answer(
            StatusCode::CREATED,
            "addTasks",
            tasks::add_tasks(pool, &actor, new).await?,
        ),
        UpdateTasks(updates) => answer(
            StatusCode::OK,
            "updateTasks",
            tasks::update_tasks(pool, &actor, updates).await?,
        ),
        RecordArticles(batch) => answer(
            StatusCode::CREATED,
            "recordArticles",
            tasks::record_articles(pool, &actor, batch).await?,
        ),
    })
}
