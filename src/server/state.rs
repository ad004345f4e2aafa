use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::config::WebhookSecret;
use super::job_report::JobReportBatcher;

/// Everything a request needs. Axum hands it to the JSON routes; leptos_axum provides it as
/// context to server functions and SSR.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub job_reports: JobReportBatcher,
    pub webhook_secret: Option<WebhookSecret>,
}
