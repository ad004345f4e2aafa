//! The workers page's server function; the same read as the protocol records.

use leptos::prelude::*;

use crate::model::dispatch::WorkersView;
use crate::model::AppError;

#[cfg(feature = "ssr")]
use crate::model::Permission;

#[server(endpoint = "workers/list")]
pub async fn list_workers() -> Result<WorkersView, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            Ok(crate::server::dispatch::list_workers(&state.pool).await?)
        }
        .await,
    )
}
