//! `POST /api/monitor/job-report` (seed 003).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;

use super::error::ApiError;
use crate::model::REPORT_LIMITS;
use crate::server::job_report::NewReport;
use crate::server::AppState;

pub const SECRET_HEADER: &str = "X-TC-Portal-Webhook-Secret";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/monitor/job-report", post(job_report))
        .layer(DefaultBodyLimit::max(REPORT_LIMITS.body_bytes))
}

#[derive(Serialize)]
struct Accepted {
    success: bool,
    id: Uuid,
    job_key: String,
}

async fn job_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let secret = state
        .webhook_secret
        .as_ref()
        .ok_or(ApiError::NotConfigured)?;
    let provided = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if provided.is_empty() || !secret.matches(provided) {
        return Err(ApiError::Unauthorized);
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: REPORT_LIMITS.body_bytes,
        },
        _ => ApiError::UnreadableBody,
    })?;
    let report = NewReport::from_json(&body, chrono::Utc::now())?;
    let job_key = report.job_key.clone();
    let id = state.job_reports.submit(report).await?;
    Ok(Json(Accepted {
        success: true,
        id,
        job_key,
    }))
}
