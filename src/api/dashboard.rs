//! The Recap dashboard page's server function: the same cached figures as
//! `GET /v1/dashboard/job-progress` and `/job-stats`, with the charts.

use leptos::prelude::*;

use crate::model::{AppError, RecapDashboard};

#[cfg(feature = "ssr")]
use crate::model::{DashboardFilter, Permission};

#[server(endpoint = "dashboard/recap")]
pub async fn get_recap_dashboard(user_id: Option<String>) -> Result<RecapDashboard, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadJobs)?;
            let filter = DashboardFilter::parse(user_id.as_deref()).map_err(|message| {
                AppError::Invalid {
                    field: Some("user_id".into()),
                    message,
                }
            })?;
            Ok(state.dashboard.recap(&state.pool, &filter).await?)
        }
        .await,
    )
}
