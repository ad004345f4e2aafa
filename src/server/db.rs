//! The database: how the pool connects, how the schema is brought up to date, and the one
//! place that decides what a database error means for a caller (unavailable, retry, bug).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// A pool that never blocks start-up: it connects on first use, gives up on an unreachable
/// database within `timeout` (callers get a 503 instead of hanging), checks connections
/// before use so it heals by itself once the database is back, and asks PostgreSQL to cancel
/// any statement that runs longer than `timeout`. A cancelled statement is rolled back, so
/// its caller can be told for certain that nothing was written.
pub fn connect_lazy(options: PgConnectOptions, max_connections: u32, timeout: Duration) -> PgPool {
    let options = options.options([("statement_timeout", timeout.as_millis().to_string())]);
    pool_options(max_connections, timeout).connect_lazy_with(options)
}

/// The pool settings of [`connect_lazy`], for a test that brings its own connect options.
pub fn pool_options(max_connections: u32, timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .test_before_acquire(true)
}

/// Applies pending migrations (compiled into the binary). They may run for longer than the
/// pool's statement timeout, so they run without one. Several portals may start at once:
/// sqlx serialises them with an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    let result = sqlx::migrate!("./migrations").run_direct(&mut *conn).await;
    sqlx::query("RESET statement_timeout")
        .execute(&mut *conn)
        .await?;
    result
}

/// Whether the schema is in place. The portal starts without its database and serves 503s
/// until [`bring_up`] has migrated it.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Migrates as soon as the database can be reached, retrying with a growing pause (up to
/// 5 s), then marks the portal ready. A background service: started once per process.
pub async fn migrate_with_backoff(pool: &PgPool) {
    let mut pause = Duration::from_millis(250);
    loop {
        match migrate(pool).await {
            Ok(()) => {
                tracing::info!("database reachable and migrated");
                return;
            }
            Err(sqlx::migrate::MigrateError::Execute(error)) if is_unavailable(&error) => {
                tracing::warn!(%error, "database unreachable; retrying in {pause:?}");
            }
            Err(error) => {
                tracing::error!(%error, "cannot migrate the database; retrying in {pause:?}");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Errors that mean "the database cannot be reached or answer right now": the caller gets
/// 503 and may retry. A statement cancelled by `statement_timeout` (57014) is one of them;
/// PostgreSQL rolled it back.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    // A broken connection is unavailable too; only the batcher, which knows whether its
    // statement was sent, also asks `is_outcome_unknown`.
    is_outcome_unknown(error)
        || matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
        || sqlstate(error).is_some_and(|code| {
            // 57: operator intervention (shutdown, cancelled statement, cannot connect now);
            // 08: connection exception; 53: insufficient resources (too many connections).
            code.starts_with("57") || code.starts_with("08") || code.starts_with("53")
        })
}

/// Deadlock or serialization failure: the same work succeeds when tried again.
pub fn is_retryable(error: &sqlx::Error) -> bool {
    sqlstate(error).is_some_and(|code| code == "40P01" || code == "40001")
}

/// The connection broke while a statement was in flight: it may or may not have committed.
/// Only a statement already sent can be in this state; a failed acquire is plain unavailable.
pub fn is_outcome_unknown(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

fn sqlstate(error: &sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    error.as_database_error().and_then(|e| e.code())
}

/// The name of the constraint a database error violated, if any: domains map the
/// violations they expect by name before falling back to a 500.
pub fn constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|e| e.constraint())
}

/// What a server function's page shows for a database error; the cause is logged here.
impl From<sqlx::Error> for crate::model::AppError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            tracing::warn!(%error, "database unavailable");
            crate::model::AppError::Unavailable
        } else {
            tracing::error!(%error, "database error");
            crate::model::AppError::Internal
        }
    }
}
