use leptos::prelude::*;

use crate::model::{IncidentsView, JobDetailView};

#[cfg(feature = "ssr")]
fn state() -> Result<crate::server::AppState, ServerFnError> {
    use_context::<crate::server::AppState>()
        .ok_or_else(|| ServerFnError::new("application state is missing"))
}

/// Database errors are logged here and reach the browser only as a short message.
#[cfg(feature = "ssr")]
fn unavailable(error: sqlx::Error) -> ServerFnError {
    tracing::warn!(%error, "job status query failed");
    ServerFnError::new("the database is unavailable")
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
pub async fn get_job_detail(job_key: String) -> Result<Option<JobDetailView>, ServerFnError> {
    crate::server::job_status::detail(&state()?.pool, &job_key)
        .await
        .map_err(unavailable)
}
