//! `POST /task-operations` (seed 001): a thin handler over `tasks::perform`.

use axum::extract::State;
use axum::response::Response;

use super::envelope::Envelope;
use super::error::ApiError;
use super::jobs::answer;
use crate::server::accounts::Principal;
use crate::server::tasks::{self, input::TaskOperation};
use crate::server::AppState;

pub async fn task_operations(
    State(state): State<AppState>,
    principal: Principal,
    Envelope(operation): Envelope<TaskOperation>,
) -> Result<Response, ApiError> {
    let (name, created) = (operation.name(), operation.creates());
    let done = tasks::perform(&state.dispatch, &principal.actor(), operation).await?;
    let status = done.status();
    let mut response = answer(created, name, done);
    if status != axum::http::StatusCode::OK {
        *response.status_mut() = status;
    }
    Ok(response)
}
