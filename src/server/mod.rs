//! Server only: configuration, state, database, services and the HTTP routes.

pub mod chart;
pub mod config;
pub mod http;
pub mod job_report;
pub mod job_status;
mod state;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use state::AppState;

use config::{Config, WebhookSecret};
use job_report::{BatchOptions, JobReportBatcher};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A pool that gives up on an unreachable database within `timeout`, so callers get a 503
/// instead of hanging, and that checks connections before use, so it heals by itself
/// once the database is back.
pub fn pool_options(max_connections: u32, timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .test_before_acquire(true)
}

/// Applies pending migrations; they are compiled into the binary.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// Builds the state around an existing pool (also used by the integration tests).
pub fn app_state(
    pool: PgPool,
    leptos_options: leptos::config::LeptosOptions,
    webhook_secret: Option<WebhookSecret>,
    batch: BatchOptions,
) -> AppState {
    let job_reports = JobReportBatcher::start(pool.clone(), batch);
    AppState {
        leptos_options,
        pool,
        job_reports,
        webhook_secret,
    }
}

/// Reads the configuration, migrates, and serves until SIGTERM or Ctrl-C; requests in
/// flight are finished before it returns.
pub async fn serve_from_env() -> Result<(), StartError> {
    let config = Config::from_env()?;
    let leptos_options = config::leptos_options(&config.leptos_config)?;
    let pool = pool_options(config.db_max_connections, config.db_timeout)
        .connect(&config.database_url)
        .await?;
    migrate(&pool).await?;
    if config.webhook_secret.is_none() {
        tracing::warn!(
            "TC_PORTAL_WEBHOOK_SECRET is not set: the job-report webhook will answer 500"
        );
    }
    let addr = leptos_options.site_addr;
    let state = app_state(pool, leptos_options, config.webhook_secret, config.batch);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("Jobdeck listening on http://{addr}");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("Jobdeck stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
