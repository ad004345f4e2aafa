//! What a domain's error means to its caller, said once per domain: each error type says
//! which status it is and what its body adds ([`DomainError::failure`]), and both doors
//! convert from that, the JSON routes into `http::error::ApiError` and the server functions
//! into `model::AppError`, so the two always answer a refusal with the same status.

use std::borrow::Cow;

use axum::http::StatusCode;

use crate::model::AppError;

/// A refusal: the status, the message for the caller, the field at fault, and any fields
/// beside `error` in the JSON body (the state a conflict found, when a job was deleted).
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<Cow<'static, str>>,
    pub details: Option<serde_json::Value>,
    /// Seconds, for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl std::fmt::Display) -> Self {
        Self {
            status,
            message: message.to_string(),
            field: None,
            details: None,
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

pub enum Failure {
    Refused(Refusal),
    /// Logged and never shown; `db.rs` decides whether it is a 503 or a 500.
    Database(sqlx::Error),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

pub trait DomainError: Sized {
    fn failure(self) -> Failure;
}

impl<E: DomainError> From<E> for AppError {
    fn from(error: E) -> Self {
        match error.failure() {
            Failure::Database(error) => error.into(),
            Failure::Refused(refusal) => {
                let field = refusal.field.map(Cow::into_owned);
                let message = refusal.message;
                match refusal.status {
                    StatusCode::BAD_REQUEST => AppError::Invalid { field, message },
                    StatusCode::UNPROCESSABLE_ENTITY => AppError::Unprocessable { field, message },
                    StatusCode::UNAUTHORIZED => AppError::Unauthorized,
                    StatusCode::FORBIDDEN => AppError::Forbidden,
                    StatusCode::NOT_FOUND => AppError::NotFound,
                    StatusCode::GONE => AppError::Gone,
                    StatusCode::CONFLICT => AppError::Conflict(message),
                    StatusCode::TOO_MANY_REQUESTS => AppError::Limited(message),
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                        AppError::Unavailable
                    }
                    _ => AppError::Internal,
                }
            }
        }
    }
}

impl<E: DomainError> From<E> for crate::server::http::error::ApiError {
    fn from(error: E) -> Self {
        match error.failure() {
            Failure::Database(error) => error.into(),
            Failure::Refused(refusal) => Self::Refused(refusal),
        }
    }
}

/// Every list paged by key refuses a cursor it did not write the same way.
impl DomainError for crate::model::BadCursor {
    fn failure(self) -> Failure {
        Refusal::new(StatusCode::BAD_REQUEST, self)
            .field("after")
            .into()
    }
}
