//! Server functions of the incidents pages (seed 003).

use leptos::prelude::*;

use crate::model::{AppError, IncidentDetailView, IncidentsQuery, IncidentsView};

#[cfg(feature = "ssr")]
use crate::model::Permission;

#[server(endpoint = "incidents")]
pub async fn get_incidents(query: IncidentsQuery) -> Result<IncidentsView, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::incidents::incidents(&state.pool, &query).await?)
        }
        .await,
    )
}

#[server(endpoint = "incidents/count")]
pub async fn get_job_error_count() -> Result<i64, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::incidents::error_count(&state.pool).await?)
        }
        .await,
    )
}

#[server(endpoint = "incidents/detail")]
pub async fn get_incident_detail(job_key: String) -> Result<Option<IncidentDetailView>, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::incidents::detail(&state.pool, &job_key).await?)
        }
        .await,
    )
}
