//! The one error type of the JSON routes. Each variant knows its status code; the body is
//! always `{"error": "...", "field": "..."}` (`field` only when one field is at fault).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::server::job_report::{InvalidReport, SubmitError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Server configuration error")]
    NotConfigured,
    #[error("Invalid or missing webhook secret")]
    Unauthorized,
    #[error("{}", .0.message)]
    InvalidReport(InvalidReport),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("could not read the request body")]
    UnreadableBody,
    #[error("tool_id names no tool")]
    UnknownTool,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// 503 with `Retry-After`; nothing was done, so the request can simply be sent again.
    #[error("{0}; retry later")]
    Unavailable(&'static str),
    /// 504: the database stopped answering after the work was sent; it may have been done.
    #[error("the database stopped answering; the report may or may not be stored")]
    OutcomeUnknown,
    #[error("internal error")]
    Internal,
}

pub const DATABASE_UNAVAILABLE: &str = "the database is unavailable";
pub const QUEUE_FULL: &str = "too many reports are waiting";
pub const OVERLOADED: &str = "the portal is serving as many requests as it can";

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotConfigured | ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::InvalidReport(_) | ApiError::UnreadableBody => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnknownTool => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OutcomeUnknown => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::InvalidReport(invalid) => invalid.field,
            ApiError::UnknownTool => Some("tool_id"),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: self.to_string(),
            field: self.field(),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<InvalidReport> for ApiError {
    fn from(invalid: InvalidReport) -> Self {
        ApiError::InvalidReport(invalid)
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::UnknownTool => ApiError::UnknownTool,
            SubmitError::QueueFull => ApiError::Unavailable(QUEUE_FULL),
            SubmitError::Unavailable => ApiError::Unavailable(DATABASE_UNAVAILABLE),
            SubmitError::OutcomeUnknown => ApiError::OutcomeUnknown,
            SubmitError::Failed => ApiError::Internal,
        }
    }
}
