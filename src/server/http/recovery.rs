//! `POST /error-operations` (seed 004): a thin handler over `recovery::perform`.

use axum::extract::State;
use axum::response::Response;

use super::envelope::Envelope;
use super::error::ApiError;
use super::jobs::answer;
use crate::server::accounts::Principal;
use crate::server::recovery::{self, input::ErrorOperation};
use crate::server::AppState;

pub async fn error_operations(
    State(state): State<AppState>,
    principal: Principal,
    Envelope(operation): Envelope<ErrorOperation>,
) -> Result<Response, ApiError> {
    let name = operation.name();
    let done = recovery::perform(&state.pool, &principal.actor(), operation).await?;
    Ok(answer(false, name, done))
}
