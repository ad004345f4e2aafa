//! `GET /v1/jobs/{id}/events` and `GET /v1/events`: Server-Sent Events, thin handlers over
//! `monitoring::live`. A client resumes with `Last-Event-ID` (`EventSource` sends it by
//! itself) or `?since=` (an event id).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::error::ApiError;
use crate::model::Permission;
use crate::server::accounts::Principal;
use crate::server::jobs;
use crate::server::monitoring::live::{self, parse_event_id, Opened};
use crate::server::AppState;

/// A comment this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct Resume {
    since: Option<String>,
}

/// Where the client left off, if it says.
fn resume_from(headers: &HeaderMap, query: &Resume) -> Result<Option<String>, ApiError> {
    let header = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::invalid(Some("Last-Event-ID"), "not text"))
        })
        .transpose()?;
    Ok(header.or_else(|| query.since.clone()))
}

pub async fn job_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(job_id): Path<String>,
    Query(resume): Query<Resume>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadJobs)?;
    let job_id: Uuid = job_id
        .parse()
        .map_err(|_| ApiError::invalid(Some("job_id"), "not a job id"))?;
    let since = match resume_from(&headers, &resume)? {
        None => None,
        Some(text) => Some(parse_event_id(&text).ok_or_else(|| {
            ApiError::invalid(Some("since"), "not an event id this stream gave out")
        })?),
    };
    let stream = match live::job_stream(state.pool.clone(), &state.live, job_id, since).await {
        Opened::Stream(stream) => stream,
        // A job that is not there is a 404 (410 if deleted), not an empty stream.
        Opened::NotThere => {
            jobs::get_job_info(&state.pool, job_id).await?;
            return Err(ApiError::Unavailable(
                "the job could not be read; try again",
            ));
        }
    };
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

pub async fn portal_events(
    State(state): State<AppState>,
    principal: Principal,
    Query(resume): Query<Resume>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadJobs)?;
    let resuming = resume_from(&headers, &resume)?.is_some();
    let stream = live::portal_stream(&state.live, resuming);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
