//! Group commit for the webhook. Concurrent reports share one transaction, and each caller
//! is answered only after the transaction holding its report has committed. While every
//! writer is busy, reports queue up and the next batch takes them all at once, so batches
//! grow with load and a lone report is written at once.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::store::{self, Stored};
use super::NewReport;

/// Tuning of the batcher; the defaults are what the README's figures were measured with.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions {
    /// Most reports in one transaction.
    pub max_batch: usize,
    /// Transactions in flight at once (each holds one pooled connection).
    pub writers: usize,
    /// Reports waiting for a writer before new ones are turned away with 503.
    pub queue: usize,
    /// Longest a report waits for its commit before the caller gets 503.
    pub deadline: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            writers: 4,
            queue: 16_384,
            deadline: Duration::from_secs(5),
        }
    }
}

/// Why a report was not stored. Nothing of it was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("tool_id names no tool")]
    UnknownTool,
    #[error("the database is unavailable")]
    Unavailable,
    #[error("the report could not be stored")]
    Failed,
}

struct Pending {
    report: NewReport,
    reply: oneshot::Sender<Result<uuid::Uuid, SubmitError>>,
}

/// Handle to the batcher task; cheap to clone.
#[derive(Clone)]
pub struct JobReportBatcher {
    queue: mpsc::Sender<Pending>,
    deadline: Duration,
}

impl JobReportBatcher {
    /// Starts the batcher on the current tokio runtime.
    pub fn start(pool: PgPool, options: BatchOptions) -> Self {
        let (queue, inbox) = mpsc::channel(options.queue);
        tokio::spawn(collect(pool, inbox, options));
        Self {
            queue,
            deadline: options.deadline,
        }
    }

    /// Stores one report; `Ok` means its transaction committed. Returns its `job_status.id`.
    pub async fn submit(&self, report: NewReport) -> Result<uuid::Uuid, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let enqueue = self
            .queue
            .send_timeout(Pending { report, reply }, self.deadline);
        enqueue.await.map_err(|_| SubmitError::Unavailable)?;
        match tokio::time::timeout(self.deadline, answer).await {
            Ok(Ok(result)) => result,
            // The writer dropped the reply: its task panicked.
            Ok(Err(_)) => Err(SubmitError::Failed),
            Err(_) => Err(SubmitError::Unavailable),
        }
    }
}

async fn collect(pool: PgPool, mut inbox: mpsc::Receiver<Pending>, options: BatchOptions) {
    let writers = Arc::new(Semaphore::new(options.writers));
    loop {
        // Wait for a free writer first: what arrives meanwhile joins the next batch.
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(options.max_batch);
        if inbox.recv_many(&mut batch, options.max_batch).await == 0 {
            return;
        }
        let pool = pool.clone();
        let deadline = options.deadline;
        tokio::spawn(async move {
            write(&pool, batch, deadline).await;
            drop(writer);
        });
    }
}

async fn write(pool: &PgPool, batch: Vec<Pending>, deadline: Duration) {
    let reports: Vec<&NewReport> = batch.iter().map(|p| &p.report).collect();
    let outcome = save_with_retry(pool, &reports, deadline).await;
    match outcome {
        Ok(stored) => reply_all(batch, stored.into_iter().map(from_stored)),
        Err(error) if is_unavailable(&error) || batch.len() == 1 => {
            log_failure(&error, batch.len());
            let failure = if is_unavailable(&error) {
                SubmitError::Unavailable
            } else {
                SubmitError::Failed
            };
            reply_all(batch, std::iter::repeat(Err(failure)));
        }
        Err(error) => {
            // Every report passed validation, so this should not happen; if one report
            // still poisons the batch, write each alone so only it fails.
            log_failure(&error, batch.len());
            let mut results = Vec::with_capacity(batch.len());
            for report in &reports {
                results.push(match save_with_retry(pool, &[report], deadline).await {
                    Ok(stored) => from_stored(stored[0]),
                    Err(error) if is_unavailable(&error) => Err(SubmitError::Unavailable),
                    Err(error) => {
                        log_failure(&error, 1);
                        Err(SubmitError::Failed)
                    }
                });
            }
            reply_all(batch, results);
        }
    }
}

async fn save_with_retry(
    pool: &PgPool,
    reports: &[&NewReport],
    deadline: Duration,
) -> Result<Vec<Stored>, sqlx::Error> {
    let mut attempt = 0;
    loop {
        let result = match tokio::time::timeout(deadline, store::save_batch(pool, reports)).await {
            Ok(result) => result,
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        };
        match result {
            Err(error) if is_transient_conflict(&error) && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

fn from_stored(stored: Stored) -> Result<uuid::Uuid, SubmitError> {
    match stored {
        Stored::Saved(id) => Ok(id),
        Stored::UnknownTool => Err(SubmitError::UnknownTool),
    }
}

fn reply_all(
    batch: Vec<Pending>,
    results: impl IntoIterator<Item = Result<uuid::Uuid, SubmitError>>,
) {
    for (pending, result) in batch.into_iter().zip(results) {
        // The caller may have given up (deadline or disconnect); the data is committed anyway.
        let _ = pending.reply.send(result);
    }
}

/// Errors that mean "the database cannot be reached right now", answered with 503.
fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    ) || error
        .as_database_error()
        .and_then(|e| e.code())
        // Class 57: operator intervention (admin shutdown, crash shutdown, cannot connect now).
        .is_some_and(|code| code.starts_with("57") || code.starts_with("08"))
}

/// Deadlock or serialization failure: the same batch succeeds when tried again.
fn is_transient_conflict(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

fn log_failure(error: &sqlx::Error, reports: usize) {
    if is_unavailable(error) {
        tracing::warn!(%error, reports, "job reports not stored: database unavailable");
    } else {
        tracing::error!(%error, reports, "job reports not stored");
    }
}
