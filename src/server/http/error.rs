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
    #[error("the database is unavailable; retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

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
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            SubmitError::Unavailable => ApiError::Unavailable,
            SubmitError::Failed => ApiError::Internal,
        }
    }
}
