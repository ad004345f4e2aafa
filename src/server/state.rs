use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

use super::accounts::login::LoginGate;
use super::accounts::tokens::TokenCache;
use super::config::{AccountSettings, Config, WebhookSecret};
use super::dashboard::Dashboard;
use super::db::Readiness;
use super::dispatch::Dispatcher;
use super::job_report::JobReportBatcher;
use super::jobs::ReportQueue;
use super::monitoring::{JobChanges, Retention};

/// Everything a request needs. Axum hands it to the JSON routes; leptos_axum provides it as
/// context to server functions and SSR.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    /// The stylesheet's (hashed) URL, looked up once.
    pub stylesheet_href: String,
    pub pool: PgPool,
    /// Set once the database has been reached and migrated (`startup::start_services`).
    pub readiness: Readiness,
    pub job_reports: JobReportBatcher,
    /// Group commit for `updateBatchJob` progress reports.
    pub job_updates: ReportQueue,
    pub webhook_secret: Option<WebhookSecret>,
    pub accounts: AccountSettings,
    pub tokens: TokenCache,
    /// At most one password check per core (`accounts::login`).
    pub login_gate: LoginGate,
    /// The Recap dashboard's figures, computed once per interval.
    pub dashboard: Dashboard,
    /// The bound on rendering a page (`http::render_bound`).
    pub render_timeout: std::time::Duration,
    /// The worker protocol's leases and wake-ups (`dispatch`).
    pub dispatch: Dispatcher,
    /// Job changes this process noted and heard, for the live streams.
    pub live: JobChanges,
    /// How long monitoring data is kept (`monitoring::retention`).
    pub retention: Retention,
    /// Maintenance passes this process has tried (tests wait for the first).
    pub maintenance_passes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The JSON routes' latencies, for `/metrics`.
    pub telemetry: super::telemetry::Telemetry,
    /// How often alert rules are judged; what notifications are sent with.
    pub alert_timing: super::alerts::AlertTiming,
    pub senders: super::alerts::Senders,
}

impl AppState {
    /// The state of a portal configured by `config`, around a pool that may not be able to
    /// reach its database yet. Starts the two batchers on the current runtime; the
    /// other background services are started by `startup::start_services`.
    pub fn build(pool: PgPool, leptos_options: LeptosOptions, config: &Config) -> Self {
        let live = JobChanges::default();
        Self {
            stylesheet_href: super::http::assets::stylesheet_href(&leptos_options),
            leptos_options,
            job_reports: JobReportBatcher::start(pool.clone(), config.batch),
            job_updates: ReportQueue::start(pool.clone()),
            dispatch: Dispatcher::new(pool.clone(), config.lease, config.breaker, live.clone()),
            live,
            pool,
            readiness: Readiness::default(),
            webhook_secret: config.webhook_secret.clone(),
            accounts: config.accounts.clone(),
            tokens: TokenCache::default(),
            login_gate: LoginGate::new(config.accounts.login_concurrency),
            dashboard: Dashboard::default(),
            render_timeout: config.http.render_timeout,
            retention: config.retention,
            maintenance_passes: Default::default(),
            telemetry: Default::default(),
            alert_timing: config.alerts,
            // A send must end before its claim lapses, or a second process could send it too.
            senders: super::alerts::Senders::new(
                config.smtp.clone(),
                config.accounts.public_origin.clone(),
                (config.alerts.delivery_claim / 2).min(std::time::Duration::from_secs(15)),
            ),
        }
    }
}
