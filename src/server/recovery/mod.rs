//! Error recovery, seed 004, on `POST /error-operations`: `configureRetry` stores how one
//! error type is retried, which the workers' retry decision (`dispatch::retry`) reads.
//! Tables: `retry_configs`, and `error_records`, which the migration's triggers fill from
//! every task and job failure and every script's error report, and close when that work
//! later succeeds.

mod analyze;
mod backoff;
mod breaker;
mod charts;
mod conditions;
mod graph;
pub mod input;
mod limits;
mod manual;
mod page;
pub mod rollups;
mod store;

pub use analyze::{analyze_errors, Analysis};
pub use backoff::Backoff;
pub use breaker::RetryBreaker;
pub use conditions::{Condition, FailureFacts};
pub use limits::{raise_memory_limit, RaisedLimit, RAISE_MEMORY_LIMIT};
pub use manual::{manual_recover, Recovery, RerunTask};
pub use page::{record_page, recovery_page};

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use self::input::{ConfigureRetry, ErrorOperation};
use crate::model::{ErrorCall, ErrorRetryConfig, Permission, RetryCondition, Role};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::failure::{DomainError, Failure, Refusal};
use crate::server::input::InvalidInput;
use crate::server::jobs::{JobError, JobScoped};

/// A stored `RetryConfig`, checked, as the retry decision reads it.
#[derive(Clone, Debug)]
pub struct TypedRetry {
    pub max_attempts: i32,
    pub backoff: Backoff,
    /// All must hold for the type to be retried.
    pub conditions: Vec<Condition>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("the {role} role may not do this (it needs {needs:?})")]
    Forbidden { role: Role, needs: Permission },
    #[error("error record {0} not found")]
    NotFound(Uuid),
    /// The record's state, or its job's, does not allow it now.
    #[error("{0}")]
    Conflict(String),
    /// Well formed, but not something this action can do (a script's record).
    #[error("{0}")]
    Unprocessable(String),
    /// The job's own refusals (gone, a transition).
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl JobScoped for RecoveryError {
    fn is_gone(&self) -> bool {
        matches!(self, RecoveryError::Job(error) if error.is_gone())
    }
}

impl RecoveryError {
    /// A refusal the audit log records (403, 409).
    fn is_refusal(&self) -> bool {
        match self {
            RecoveryError::Forbidden { .. } | RecoveryError::Conflict(_) => true,
            RecoveryError::Job(error) => error.is_refusal(),
            _ => false,
        }
    }
}

impl DomainError for RecoveryError {
    fn failure(self) -> Failure {
        let message = self.to_string();
        match self {
            RecoveryError::Invalid(error) => {
                Refusal::new(StatusCode::BAD_REQUEST, message).field(error.field)
            }
            RecoveryError::Forbidden { .. } => Refusal::new(StatusCode::FORBIDDEN, message),
            RecoveryError::NotFound(_) => Refusal::new(StatusCode::NOT_FOUND, message),
            RecoveryError::Conflict(_) => Refusal::new(StatusCode::CONFLICT, message),
            RecoveryError::Unprocessable(_) => {
                Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            RecoveryError::Job(error) => return error.failure(),
            RecoveryError::Database(error) => return Failure::Database(error),
        }
        .into()
    }
}

/// What an operation answers, in its `data`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ErrorAnswer {
    Configured(ConfiguredRetry),
    Recovered(Recovery),
    Analysis(Box<Analysis>),
}

#[derive(Debug, Serialize)]
pub struct ConfiguredRetry {
    #[serde(flatten)]
    pub config: ErrorRetryConfig,
    /// False when it replaced the type's earlier config.
    pub created: bool,
    pub updated_at: DateTime<Utc>,
}

/// The one door both the JSON route and the pages go through: the caller's permission,
/// the action, and an audit row for a refusal.
pub async fn perform(
    pool: &PgPool,
    actor: &Actor,
    operation: ErrorOperation,
) -> Result<ErrorAnswer, RecoveryError> {
    let (name, target) = (operation.name(), operation.target());
    let result = run(pool, actor, operation).await;
    if let Err(error) = &result {
        if error.is_refusal() {
            let why = error.to_string();
            audit::record_refusal(pool, actor, name, target.as_deref(), &why).await;
        }
    }
    result
}

async fn run(
    pool: &PgPool,
    actor: &Actor,
    operation: ErrorOperation,
) -> Result<ErrorAnswer, RecoveryError> {
    let needs = Permission::ActOnJobs;
    if !actor.may(needs) {
        return Err(RecoveryError::Forbidden {
            role: actor.role,
            needs,
        });
    }
    Ok(match operation {
        ErrorOperation::ConfigureRetry(request) => {
            ErrorAnswer::Configured(configure_retry(pool, actor, request).await?)
        }
        ErrorOperation::ManualRecover(request) => {
            ErrorAnswer::Recovered(manual_recover(pool, actor, request).await?)
        }
        ErrorOperation::AnalyzeErrors(request) => {
            ErrorAnswer::Analysis(Box::new(analyze_errors(pool, request).await?))
        }
    })
}

/// Stores the type's config, replacing any earlier one, audited in the same transaction.
pub async fn configure_retry(
    pool: &PgPool,
    actor: &Actor,
    request: ConfigureRetry,
) -> Result<ConfiguredRetry, RecoveryError> {
    let checked = request.check()?;
    let config = ErrorRetryConfig {
        error_type: request.error_type.as_str().to_string(),
        max_attempts: checked.max_attempts,
        initial_delay: checked.backoff.initial_delay,
        max_delay: checked.backoff.max_delay,
        backoff_factor: checked.backoff.backoff_factor,
        retry_conditions: request.config.retry_conditions,
    };
    let conditions = serde_json::to_value(&config.retry_conditions).expect("plain JSON");
    let mut tx = pool.begin().await?;
    let (updated_at, created): (DateTime<Utc>, bool) = sqlx::query_as(store::CONFIGURE_RETRY_SQL)
        .bind(&config.error_type)
        .bind(config.max_attempts)
        .bind(config.initial_delay)
        .bind(config.max_delay)
        .bind(config.backoff_factor)
        .bind(&conditions)
        .bind(&actor.label)
        .fetch_one(&mut *tx)
        .await?;
    let event = Event {
        action: ErrorCall::ConfigureRetry.as_str(),
        target: Some(&config.error_type),
        details: json!({ "config": &config, "created": created }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(ConfiguredRetry {
        config,
        created,
        updated_at,
    })
}

#[derive(FromRow)]
struct StoredConfig {
    error_type: String,
    max_attempts: i32,
    initial_delay: f64,
    max_delay: f64,
    backoff_factor: f64,
    retry_conditions: sqlx::types::Json<Vec<RetryCondition>>,
}

/// The stored configs of these codes, by code. A config whose conditions no longer parse
/// (a regular expression this build refuses) is left out with a warning, so its type falls
/// back to the job's own settings instead of failing every task.
pub async fn retry_configs(
    conn: &mut PgConnection,
    codes: &[String],
) -> Result<HashMap<String, TypedRetry>, sqlx::Error> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<StoredConfig> = sqlx::query_as(store::RETRY_CONFIGS_SQL)
        .bind(codes)
        .fetch_all(conn)
        .await?;
    let mut configs = HashMap::with_capacity(rows.len());
    for row in rows {
        let conditions: Result<Vec<Condition>, String> = row
            .retry_conditions
            .0
            .iter()
            .map(Condition::parse)
            .collect();
        match conditions {
            Ok(conditions) => {
                configs.insert(
                    row.error_type,
                    TypedRetry {
                        max_attempts: row.max_attempts,
                        backoff: Backoff {
                            initial_delay: row.initial_delay,
                            max_delay: row.max_delay,
                            backoff_factor: row.backoff_factor,
                        },
                        conditions,
                    },
                );
            }
            Err(error) => {
                tracing::warn!(error_type = row.error_type, %error, "a stored retry config no longer parses");
            }
        }
    }
    Ok(configs)
}
