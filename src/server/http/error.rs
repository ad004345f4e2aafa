//! The one error type of every JSON route. Its variants are the HTTP layer's own refusals
//! (no identity, a body too large or too slow, overload) and [`ApiError::Refused`], which
//! carries a domain's refusal as its error type decided it (`server::failure`). The body is
//! always `{"error": "...", "field": "..."}` (`field` only when one field is at fault, and
//! any details beside), and a 429 or 503 carries `Retry-After`.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::server::db;
use crate::server::failure::Refusal;

type Message = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; `field` names the culprit when there is one.
    #[error("{message}")]
    Invalid {
        field: Option<Message>,
        message: Message,
    },
    /// 401: no identity, or a wrong one.
    #[error("{0}")]
    Unauthorized(Message),
    /// 403: an identity that may not do this.
    #[error("{0}")]
    Forbidden(Message),
    /// 408: the request did not arrive in time.
    #[error("{0}")]
    RequestTimeout(Message),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422: well formed, but refers to something that does not fit (an unknown id, ...).
    #[error("{message}")]
    Unprocessable {
        field: Option<Message>,
        message: Message,
    },
    /// 503 with `Retry-After`: nothing was done, so the request can simply be sent again.
    #[error("{0}; retry later")]
    Unavailable(&'static str),
    /// 504: a dependency stopped answering after the work was sent; it may have been done.
    #[error("{0}")]
    OutcomeUnknown(Message),
    /// 500: the message is for the caller; the cause has been logged.
    #[error("{0}")]
    Internal(Message),
    /// A domain's refusal, with the status its error type chose (`server::failure`).
    #[error("{}", .0.message)]
    Refused(Refusal),
}

pub const DATABASE_UNAVAILABLE: &str = "the database is unavailable";
pub const OVERLOADED: &str = "the portal is serving as many requests as it can";

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<Message>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn invalid(field: Option<&'static str>, message: impl Into<Message>) -> Self {
        Self::Invalid {
            field: field.map(Cow::Borrowed),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Refused(refusal) => refusal.status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn field(&self) -> Option<Message> {
        match self {
            ApiError::Invalid { field, .. } => field.clone(),
            ApiError::Unprocessable { field, .. } => field.clone(),
            ApiError::Refused(refusal) => refusal.field.clone(),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::Unavailable(_) => Some(1),
            ApiError::Refused(refusal) => refusal.retry_after,
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            field: self.field(),
            details: match &self {
                ApiError::Refused(refusal) => refusal.details.clone(),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Database errors are logged and never shown: the caller learns only whether retrying
/// may help. Domains map the constraint violations they expect before falling back to this.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if db::is_unavailable(&error) {
            tracing::warn!(%error, "database unavailable");
            ApiError::Unavailable(DATABASE_UNAVAILABLE)
        } else {
            tracing::error!(%error, "database error");
            ApiError::Internal("internal error".into())
        }
    }
}
