//! `POST /alert-operations` (issue 25): a thin handler over `alerts::operations::perform`.

use axum::extract::State;
use axum::response::Response;

use super::envelope::Envelope;
use super::error::ApiError;
use super::jobs::answer;
use crate::server::accounts::Principal;
use crate::server::alerts::operations::{self, AlertOperation};
use crate::server::AppState;

pub async fn alert_operations(
    State(state): State<AppState>,
    principal: Principal,
    Envelope(operation): Envelope<AlertOperation>,
) -> Result<Response, ApiError> {
    let (name, created) = (operation.name(), operation.creates());
    let actor = principal.actor();
    let done = operations::perform(
        &state.pool,
        &state.senders,
        &actor,
        operation,
        chrono::Utc::now(),
    )
    .await?;
    Ok(answer(created, name, done))
}
