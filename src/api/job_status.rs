use leptos::prelude::*;

use crate::model::{IncidentDetailView, IncidentsView};

#[cfg(feature = "ssr")]
fn state() -> Result<crate::server::AppState, ServerFnError> {
    use_context::<crate::server::AppState>()
        .ok_or_else(|| ServerFnError::new("application state is missing"))
}

/// Database errors are logged here and reach the browser only as a short message; what an
/// error means is decided in `server::db`, as for the JSON routes.
#[cfg(feature = "ssr")]
fn unavailable(error: sqlx::Error) -> ServerFnError {
    if crate::server::db::is_unavailable(&error) {
        tracing::warn!(%error, "job status query failed: database unavailable");
        ServerFnError::new("the database is unavailable")
    } else {
        tracing::error!(%error, "job status query failed");
        ServerFnError::new("internal error")
    }
}

#[server]
pub async fn get_incidents() -> Result<IncidentsView, ServerFnError> {
    crate::server::job_status::incidents(&state()?.pool)
        .await
        .map_err(unavailable)
}

#[server]
pub async fn get_job_error_count() -> Result<i64, ServerFnError> {
    crate::server::job_status::error_count(&state()?.pool)
        .await
        .map_err(unavailable)
}

#[server]
pub async fn get_incident_detail(
    job_key: String,
) -> Result<Option<IncidentDetailView>, ServerFnError> {
    crate::server::job_status::detail(&state()?.pool, &job_key)
        .await
        .map_err(unavailable)
}
