//! Dispatched work, seed 001's parallelism, resource and retry settings enforced: workers
//! ask for a dispatched job's tasks on `POST /task-operations` (`claimTasks`), hold them
//! under leases they extend (`heartbeat`), and finish them (`completeTasks`, `failTasks`);
//! the job follows its tasks. Tables: `jobs` (`driver`, `queue`, `running_tasks`),
//! `job_tasks` (the lease columns, `not_before`), `workers`, `task_metrics`.

pub mod claim;
mod explain;
pub mod input;
pub mod leases;
pub mod retry;
mod store;
pub mod wakeup;
mod workers;

pub use explain::waiting_tasks;
pub use wakeup::{wake, Wakeups};
pub use workers::list_workers;

use std::time::Duration;

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::server::failure::{DomainError, Failure, Refusal};
use crate::server::input::InvalidInput;
use crate::server::monitoring::JobChanges;

/// How long a claim or heartbeat holds a task (`JOBDECK_LEASE_SECS`, default 30).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often the lease sweeper looks for leases past their time.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// What the protocol's calls share in a portal process.
#[derive(Clone)]
pub struct Dispatcher {
    pub pool: PgPool,
    /// The protocol's own connections (claims, heartbeats, finishing calls, the sweeper):
    /// a flood of workers waits for these and never takes the pages' connections; and
    /// their statements are planned once per connection and reused (`plan_cache_mode`):
    /// the plans do not depend on the values bound (the statuses that choose an index are
    /// written out), and planning the claim anew took 2 to 5 ms, longer than running it.
    /// PostgreSQL otherwise keeps choosing custom plans, which it estimates cheaper.
    pub protocol_pool: PgPool,
    pub wakeups: Wakeups,
    /// Jobs whose state a call changed, for the live streams (`monitoring::live`).
    pub changes: JobChanges,
    pub lease: Duration,
    /// Pauses the automatic retries of an error type that fails too often (`recovery`).
    pub breaker: crate::server::recovery::RetryBreaker,
    /// Tasks this process handed out and finished, for `/metrics`.
    pub counts: std::sync::Arc<crate::server::telemetry::TaskCounts>,
    /// When this process last wrote each worker's row (`claim::seen`).
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, WorkerSeen>>>,
}

/// What a worker last said when its row was written, and when.
#[derive(Clone, PartialEq)]
struct WorkerSeen {
    at: std::time::Instant,
    said: (Vec<String>, Option<i64>, Option<u64>),
}

/// A worker's row is written at most this often by one portal (unless what it says
/// changes): every write is a commit, and a claim must not wait on one.
pub const SEEN_EVERY: Duration = Duration::from_secs(10);

impl Dispatcher {
    /// `pool` is the portal's; the protocol's own pool is made like it (same database,
    /// size and timeouts).
    pub fn new(
        pool: PgPool,
        lease: Duration,
        breaker: crate::server::recovery::RetryBreaker,
        changes: JobChanges,
    ) -> Self {
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .options([("plan_cache_mode", "force_generic_plan")]);
        let protocol_pool = pool.options().clone().connect_lazy_with(options);
        // It lives as long as the portal's pool: closed with it (a test's database can
        // then be dropped).
        let (closed, protocol) = (pool.close_event(), protocol_pool.clone());
        tokio::spawn(async move {
            closed.await;
            protocol.close().await;
        });
        Self {
            protocol_pool,
            pool,
            wakeups: Wakeups::default(),
            changes,
            lease,
            breaker,
            counts: Default::default(),
            seen: Default::default(),
        }
    }

    /// Whether the worker's row is due a write now; notes that it is being written.
    fn worker_row_due(&self, id: &str, said: (Vec<String>, Option<i64>, Option<u64>)) -> bool {
        let mut seen = self.seen.lock().expect("seen lock");
        let now = std::time::Instant::now();
        if let Some(last) = seen.get(id) {
            if last.said == said && now.duration_since(last.at) < SEEN_EVERY {
                return false;
            }
        }
        if seen.len() > 10_000 {
            seen.retain(|_, last| now.duration_since(last.at) < SEEN_EVERY);
        }
        seen.insert(id.to_string(), WorkerSeen { at: now, said });
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A job moved by its tasks refused the move (cannot happen under its lock; kept honest).
    #[error(transparent)]
    Job(#[from] crate::server::jobs::JobError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DomainError for DispatchError {
    fn failure(self) -> Failure {
        match self {
            DispatchError::Invalid(error) => {
                let field = error.field.clone();
                Refusal::new(StatusCode::BAD_REQUEST, error)
                    .field(field)
                    .into()
            }
            DispatchError::Job(error) => error.failure(),
            DispatchError::Database(error) => Failure::Database(error),
        }
    }
}

/// Where a dispatched job's tasks say it should be, if not running: failed when one failed
/// for good, completed when all completed (read under the job's lock).
pub async fn settled_status(
    tx: &mut sqlx::PgConnection,
    job_id: uuid::Uuid,
) -> Result<Option<(crate::model::JobStatus, &'static str)>, sqlx::Error> {
    use crate::model::{JobStatus, TaskStatus};
    let (failed, completed, total): (i64, i64, i64) = sqlx::query_as(store::SETTLED_SQL)
        .bind(job_id)
        .bind(TaskStatus::Failed)
        .bind(TaskStatus::Completed)
        .fetch_one(tx)
        .await?;
    Ok(if failed > 0 {
        Some((JobStatus::Failed, "a task failed for good"))
    } else if total > 0 && completed == total {
        Some((JobStatus::Completed, "every task completed"))
    } else {
        None
    })
}

/// The lease sweeper: every portal runs it (`leases::sweep_expired` is safe concurrently).
pub async fn run_lease_sweeper(dispatcher: Dispatcher) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        match leases::sweep_expired(&dispatcher).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tasks = n, "expired leases returned to their jobs"),
            Err(error) => tracing::warn!(%error, "lease sweep failed; trying again later"),
        }
    }
}
