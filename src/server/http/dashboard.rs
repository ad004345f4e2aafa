//! `GET /v1/dashboard/job-progress` and `GET /v1/dashboard/job-stats` (seed 002): thin
//! handlers over `server::dashboard`, for a viewer's session or token.

use axum::extract::{Query, State};
use axum::Json;

use super::error::ApiError;
use crate::model::{DashboardFilter, JobProgress, JobStats, Permission};
use crate::server::accounts::Principal;
use crate::server::AppState;

/// `?user_id=` and nothing else.
fn filter(params: &[(String, String)]) -> Result<DashboardFilter, ApiError> {
    let mut user_id = None;
    for (name, value) in params {
        match name.as_str() {
            "user_id" if user_id.is_none() => user_id = Some(value.as_str()),
            "user_id" => return Err(ApiError::invalid(Some("user_id"), "user_id is given twice")),
            _ => {
                return Err(ApiError::invalid(
                    None,
                    format!("unknown parameter {name:?}; the only one is user_id"),
                ))
            }
        }
    }
    DashboardFilter::parse(user_id).map_err(|message| ApiError::invalid(Some("user_id"), message))
}

pub async fn job_progress(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<JobProgress>, ApiError> {
    principal.require(Permission::ReadJobs)?;
    let filter = filter(&params)?;
    let progress = state.dashboard.job_progress(&state.pool, &filter).await?;
    Ok(Json(JobProgress::clone(&progress)))
}

pub async fn job_stats(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<JobStats>, ApiError> {
    principal.require(Permission::ReadJobs)?;
    let filter = filter(&params)?;
    let stats = state.dashboard.job_stats(&state.pool, &filter).await?;
    Ok(Json(stats.stats.clone()))
}
