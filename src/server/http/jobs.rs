//! `POST /job-operations` (seed 001): a thin handler over `jobs::perform`, which checks the
//! action's permission, runs it and audits refusals. Every success is
//! `{"action": ..., "data": ...}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::envelope::Envelope;
use super::error::ApiError;
use crate::server::accounts::Principal;
use crate::server::jobs::{self, input::JobOperation};
use crate::server::AppState;

/// The seeds' success body: the action's name and what it answered.
pub fn answer<T: Serialize>(created: bool, action: &str, data: T) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(json!({ "action": action, "data": data }))).into_response()
}

pub async fn job_operations(
    State(state): State<AppState>,
    principal: Principal,
    Envelope(operation): Envelope<JobOperation>,
) -> Result<Response, ApiError> {
    let (name, created) = (operation.name(), operation.creates());
    let done = jobs::perform(
        &state.pool,
        &state.job_updates,
        &state.live,
        &principal.actor(),
        operation,
    )
    .await?;
    Ok(answer(created, name, done))
}
