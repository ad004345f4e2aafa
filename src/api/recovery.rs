//! Server functions of the recovery pages. Recovering and applying a suggestion go through
//! `recovery::perform`, the door of `/error-operations`: its permission, checks and audit.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{AppError, ErrorRecordView, RecoveryQuery, RecoveryView};

#[cfg(feature = "ssr")]
use crate::model::Permission;

#[server(endpoint = "recovery/page")]
pub async fn recovery_page(query: RecoveryQuery) -> Result<RecoveryView, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            let breaker = state.dispatch.breaker;
            Ok(crate::server::recovery::recovery_page(&state.pool, &breaker, &query).await?)
        }
        .await,
    )
}

/// `None` when there is no such record (or its work was deleted with it).
#[server(endpoint = "recovery/record")]
pub async fn error_record(id: Uuid) -> Result<Option<ErrorRecordView>, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::recovery::record_page(&state.pool, id).await?)
        }
        .await,
    )
}

/// The record page's button: `manualRecover` with the options ticked (a checkbox posts
/// `on`, an unticked one nothing).
#[server(endpoint = "recovery/recover")]
pub async fn recover_record(
    error_record_id: Uuid,
    force: Option<String>,
    ignore_conditions: Option<String>,
) -> Result<(), AppError> {
    use crate::server::recovery::input::{ErrorOperation, ManualRecover, RecoveryOptions};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let operation = ErrorOperation::ManualRecover(ManualRecover {
                error_record_id,
                recovery_options: Some(RecoveryOptions {
                    force: Some(force.is_some()),
                    ignore_conditions: Some(ignore_conditions.is_some()),
                    ..Default::default()
                }),
            });
            crate::server::recovery::perform(&state.pool, &principal.actor(), operation).await?;
            Ok(())
        }
        .await,
    )
}

/// A suggestion's "apply": its proposed config, sent to `configureRetry` as the JSON route
/// would take it.
#[server(endpoint = "recovery/apply")]
pub async fn apply_suggestion(
    error_type: String,
    max_attempts: i32,
    initial_delay: f64,
    max_delay: f64,
    backoff_factor: f64,
) -> Result<(), AppError> {
    use crate::server::recovery::input::ErrorOperation;
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let body = serde_json::json!({
                "action": "configureRetry",
                "data": {
                    "error_type": error_type,
                    "config": {
                        "max_attempts": max_attempts, "initial_delay": initial_delay,
                        "max_delay": max_delay, "backoff_factor": backoff_factor,
                        "retry_conditions": [],
                    },
                },
            });
            let operation: ErrorOperation =
                serde_json::from_value(body).map_err(|error| AppError::Invalid {
                    field: None,
                    message: error.to_string(),
                })?;
            crate::server::recovery::perform(&state.pool, &principal.actor(), operation).await?;
            Ok(())
        }
        .await,
    )
}

/// A `raise_memory_limit` suggestion's "apply": the failed jobs it was read from, in the
/// page's period, get the proposed limit (`recovery::raise_memory_limit`, audited).
#[server(endpoint = "recovery/raise-limit")]
pub async fn raise_memory_limit(max_memory: i64, period: String) -> Result<(), AppError> {
    use crate::model::RecoveryPeriod;
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let period = RecoveryPeriod::parse(&period).ok_or_else(|| AppError::Invalid {
                field: Some("period".into()),
                message: format!(
                    "period {period:?} is not one of {}",
                    RecoveryPeriod::NAMES.join(", ")
                ),
            })?;
            crate::server::recovery::raise_memory_limit(
                &state.pool,
                &principal.actor(),
                max_memory,
                period,
            )
            .await?;
            Ok(())
        }
        .await,
    )
}
