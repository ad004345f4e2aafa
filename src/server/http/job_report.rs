//! `POST /api/monitor/job-report` (seed 003).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use super::error::{ApiError, DATABASE_UNAVAILABLE};
use crate::model::REPORT_LIMITS;
use crate::server::job_report::NewReport;
use crate::server::AppState;

pub const SECRET_HEADER: &str = "X-TC-Portal-Webhook-Secret";

/// A caller that sent the webhook secret. Checked from the headers alone, so a caller
/// without it is refused before its body is read.
pub struct WebhookCaller;

impl FromRequestParts<AppState> for WebhookCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = state
            .webhook_secret
            .as_ref()
            .ok_or(ApiError::Internal("Server configuration error".into()))?;
        let provided = parts
            .headers
            .get(SECRET_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if provided.is_empty() || !secret.matches(provided) {
            return Err(ApiError::Unauthorized(
                "Invalid or missing webhook secret".into(),
            ));
        }
        Ok(WebhookCaller)
    }
}

#[derive(Serialize)]
pub struct Accepted {
    success: bool,
    id: Uuid,
    job_key: String,
}

pub async fn job_report(
    _caller: WebhookCaller,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let body = body.map_err(body_error)?;
    let report = NewReport::from_json(&body, chrono::Utc::now())?;
    if !state.readiness.is_ready() {
        return Err(ApiError::Unavailable(DATABASE_UNAVAILABLE));
    }
    let job_key = report.job_key().to_owned();
    let id = state.job_reports.submit(report).await?;
    Ok(Json(Accepted {
        success: true,
        id,
        job_key,
    }))
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge {
            limit: REPORT_LIMITS.body_bytes,
        };
    }
    // The body-timeout layer's error sits somewhere in the rejection's chain of sources.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::RequestTimeout("the request body did not arrive in time".into());
        }
        source = error.source();
    }
    ApiError::invalid(None, "could not read the request body")
}

/// The body of `POST /api/monitor/job-start`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobStart {
    job_key: String,
    started_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Serialize)]
pub struct Started {
    success: bool,
    job_key: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// A start signal (issue 25): the run of `job_key` began; `stuck` rules watch for its report.
pub async fn job_start(
    _caller: WebhookCaller,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Started>, ApiError> {
    let body = body.map_err(body_error)?;
    let start: JobStart = super::envelope::parse(&body)?;
    if !state.readiness.is_ready() {
        return Err(ApiError::Unavailable(DATABASE_UNAVAILABLE));
    }
    let started_at = crate::server::alerts::schedule::record_start(
        &state.pool,
        &start.job_key,
        start.started_at.map(|t| t.to_utc()),
        chrono::Utc::now(),
    )
    .await?;
    Ok(Json(Started {
        success: true,
        job_key: start.job_key,
        started_at,
    }))
}
