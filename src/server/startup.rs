//! Start-up in one place: read the configuration, build the state, start the background
//! services, serve until SIGTERM.

use super::accounts::password::Password;
use super::accounts::sessions;
use super::accounts::users::{self, Bootstrap};
use super::config::{self, Config};
use super::{alerts, db, dispatch, http, jobs, monitoring, recovery, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("DATABASE_URL is not valid: {0}")]
    DatabaseUrl(sqlx::Error),
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
}

/// Every background service of a portal process, listed here and nowhere else. Each must be
/// safe when several portals share one database, and starts only once the schema is there.
pub fn start_services(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        bring_up(&state).await;
        tokio::spawn(sessions::run_session_sweeper(state.pool.clone()));
        tokio::spawn(jobs::run_deletion_sweeper(
            state.pool.clone(),
            state.live.clone(),
        ));
        tokio::spawn(
            state
                .dispatch
                .wakeups
                .clone()
                .run(state.pool.clone(), state.live.clone()),
        );
        tokio::spawn(state.live.clone().run_sender(state.pool.clone()));
        tokio::spawn(dispatch::run_lease_sweeper(state.dispatch.clone()));
        tokio::spawn(monitoring::job_rollups::run_job_rollups(state.pool.clone()));
        tokio::spawn(recovery::rollups::run_error_rollups(state.pool.clone()));
        tokio::spawn(alerts::run_evaluator(
            state.pool.clone(),
            state.alert_timing,
        ));
        tokio::spawn(alerts::run_outbox(
            state.pool.clone(),
            state.senders.clone(),
            state.alert_timing,
        ));
        tokio::spawn(monitoring::run_metric_maintenance(
            state.pool.clone(),
            state.retention,
            state.maintenance_passes.clone(),
        ));
    });
}

/// Waits for the database, migrates it (sqlx serialises concurrent runs with a lock),
/// creates the first admin if asked and none exists, then marks the portal ready.
async fn bring_up(state: &AppState) {
    db::migrate_with_backoff(&state.pool).await;
    if let Some((email, password)) = &state.accounts.first_admin {
        bootstrap_first_admin(&state.pool, email, password).await;
    }
    state.readiness.set_ready();
}

async fn bootstrap_first_admin(pool: &sqlx::PgPool, email: &str, password: &str) {
    let password = match Password::new(password.to_string()) {
        Ok(password) => password,
        Err(error) => {
            tracing::error!("JOBDECK_ADMIN_PASSWORD: {error}; no admin was created");
            return;
        }
    };
    match users::bootstrap_admin(pool, email, password).await {
        Ok(Bootstrap::Created) => {
            tracing::info!(email, "created the first admin from JOBDECK_ADMIN_EMAIL")
        }
        Ok(Bootstrap::Skipped) => tracing::warn!(
            "JOBDECK_ADMIN_EMAIL and JOBDECK_ADMIN_PASSWORD are ignored: users already exist \
             (use `jobdeck user add` or the users page)"
        ),
        Err(error) => tracing::error!(%error, "could not create the first admin"),
    }
}

/// Serves until SIGTERM or Ctrl-C. The database need not be up: the portal answers 503 and
/// `/healthz` says so until it can migrate it.
pub async fn serve_from_env() -> Result<(), StartError> {
    let config = Config::from_env()?;
    let leptos_options = config::leptos_options(&config.leptos_config)?;
    let connect = config
        .database_url
        .parse()
        .map_err(StartError::DatabaseUrl)?;
    let pool = db::connect_lazy(connect, config.db_max_connections, config.db_timeout);
    if config.webhook_secret.is_none() {
        tracing::warn!(
            "TC_PORTAL_WEBHOOK_SECRET is not set: the job-report webhook will answer 500"
        );
    }
    let addr = leptos_options.site_addr;
    let state = AppState::build(pool, leptos_options, &config);
    start_services(&state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("Jobdeck listening on http://{addr}");
    let app = http::with_limits(http::router(state), &config.http);
    http::serve(listener, app, config.http, shutdown_signal()).await?;
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
}
