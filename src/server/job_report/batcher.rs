//! Group commit for the webhook. Concurrent reports share one transaction, and each caller
//! is answered only after the transaction holding its report has committed. While every
//! writer is busy, reports queue up and the next batch takes them all at once, so batches
//! grow with load and a lone report is written at once.
//!
//! What a caller is told is always true (README, "Delivery guarantees"):
//! - a full queue is refused at once, before anything is queued;
//! - a report waits in the queue at most `deadline`; when it runs out the report is taken
//!   back (abandoned) and the caller gets 503. A writer skips abandoned reports, and also the
//!   reports of callers that hung up, so nothing refused is ever written;
//! - once a writer has claimed a report, its caller waits for that batch's real outcome.
//!   PostgreSQL cancels a statement that runs past the database timeout (rolled back: 503);
//!   a database that stops answering altogether leaves the outcome unknown (504).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::store::{self, Stored};
use super::NewReport;
use crate::server::db;
use crate::server::failure::{DomainError, Failure, Refusal};
use axum::http::StatusCode;

/// Tuning of the batcher; the defaults are what the README's figures were measured with.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions {
    /// Most reports in one transaction.
    pub max_batch: usize,
    /// Transactions in flight at once (each holds one pooled connection).
    pub writers: usize,
    /// Reports waiting for a writer; past it new ones are refused at once with 503.
    pub queue: usize,
    /// Longest a report waits in the queue for a writer before its caller gets 503.
    pub deadline: Duration,
    /// Longest a writer waits for the database to answer a batch it has sent. Past it the
    /// outcome is unknown and the callers get 504.
    pub stall_timeout: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            writers: 4,
            queue: 1024,
            deadline: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(7),
        }
    }
}

/// Why a report was not acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("tool_id names no tool")]
    UnknownTool,
    /// Refused on arrival; not stored.
    #[error("too many reports are waiting")]
    QueueFull,
    /// Not stored: the database could not be reached in time, or rolled the batch back.
    #[error("the database is unavailable")]
    Unavailable,
    /// The database stopped answering after the batch was sent: it may have committed.
    #[error("the database stopped answering; the report may or may not be stored")]
    OutcomeUnknown,
    /// Not stored: the database refused the report (a bug; logged).
    #[error("the report could not be stored")]
    Failed,
}

/// 503s say "retry later" with `Retry-After`: nothing was stored, so sending again is safe.
/// A 504 says the opposite: the report may be stored, and a resend may store it twice.
impl DomainError for SubmitError {
    fn failure(self) -> Failure {
        let refusal = match self {
            SubmitError::UnknownTool => {
                Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, self).field("tool_id")
            }
            SubmitError::QueueFull | SubmitError::Unavailable => Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{self}; retry later"),
            )
            .retry_after(1),
            SubmitError::OutcomeUnknown => Refusal::new(StatusCode::GATEWAY_TIMEOUT, self),
            SubmitError::Failed => {
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        };
        refusal.into()
    }
}

/// Counters for tests and logs; they only grow.
#[derive(Debug, Default)]
pub struct BatcherStats {
    /// Batches sent to the database (retries not counted).
    pub batches: AtomicU64,
    /// Reports skipped because their caller had given up before a writer took them.
    pub skipped: AtomicU64,
    /// Reports committed.
    pub stored: AtomicU64,
}

const QUEUED: u8 = 0;
const CLAIMED: u8 = 1;
const ABANDONED: u8 = 2;

/// Who owns a queued report: its caller may take it back until a writer claims it.
#[derive(Default)]
struct Claim(AtomicU8);

impl Claim {
    fn claim(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn abandon(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Takes the report back if its caller goes away (deadline or hang-up) before a writer has it.
struct AbandonOnDrop(Arc<Claim>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

struct Pending {
    report: NewReport,
    reply: oneshot::Sender<Result<uuid::Uuid, SubmitError>>,
    claim: Arc<Claim>,
}

/// Handle to the batcher task; cheap to clone.
#[derive(Clone)]
pub struct JobReportBatcher {
    queue: mpsc::Sender<Pending>,
    deadline: Duration,
    stats: Arc<BatcherStats>,
}

impl JobReportBatcher {
    /// Starts the batcher on the current tokio runtime.
    pub fn start(pool: PgPool, options: BatchOptions) -> Self {
        let (queue, inbox) = mpsc::channel(options.queue);
        let stats = Arc::new(BatcherStats::default());
        tokio::spawn(collect(pool, inbox, options, stats.clone()));
        Self {
            queue,
            deadline: options.deadline,
            stats,
        }
    }

    pub fn stats(&self) -> &BatcherStats {
        &self.stats
    }

    /// Stores one report; `Ok` means its transaction committed. Returns its `job_status.id`.
    pub async fn submit(&self, report: NewReport) -> Result<uuid::Uuid, SubmitError> {
        let (reply, mut answer) = oneshot::channel();
        let claim = Arc::new(Claim::default());
        let pending = Pending {
            report,
            reply,
            claim: claim.clone(),
        };
        self.queue.try_send(pending).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => SubmitError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Unavailable,
        })?;
        let _abandon_if_dropped = AbandonOnDrop(claim.clone());
        let outcome = match tokio::time::timeout(self.deadline, &mut answer).await {
            Ok(outcome) => outcome,
            Err(_) if claim.abandon() => return Err(SubmitError::Unavailable),
            // A writer has it: its batch is being written, so wait for the real answer.
            Err(_) => answer.await,
        };
        // A dropped reply means the writer task panicked; its batch did not commit.
        outcome.unwrap_or(Err(SubmitError::Failed))
    }
}

async fn collect(
    pool: PgPool,
    mut inbox: mpsc::Receiver<Pending>,
    options: BatchOptions,
    stats: Arc<BatcherStats>,
) {
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
        let received = batch.len();
        batch.retain(|pending| !pending.reply.is_closed() && pending.claim.claim());
        let skipped = received - batch.len();
        if skipped > 0 {
            stats.skipped.fetch_add(skipped as u64, Ordering::Relaxed);
            tracing::debug!(skipped, "skipped reports whose callers had given up");
        }
        if batch.is_empty() {
            continue;
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        let pool = pool.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            write(&pool, batch, options, &stats).await;
            drop(writer);
        });
    }
}

/// Writes a batch and answers its callers.
async fn write(pool: &PgPool, batch: Vec<Pending>, options: BatchOptions, stats: &BatcherStats) {
    let reports: Vec<&NewReport> = batch.iter().map(|p| &p.report).collect();
    match save(pool, &reports, options).await {
        Ok(stored) => reply_all(batch, stored.into_iter().map(from_stored), stats),
        Err(SubmitError::Failed) if batch.len() > 1 => {
            // Every report passed validation, so this should not happen; if one report
            // still poisons the batch, write each alone so only it fails.
            let mut results = Vec::with_capacity(batch.len());
            for report in &reports {
                results.push(save(pool, &[report], options).await.map(|s| s[0]));
            }
            reply_all(
                batch,
                results.into_iter().map(|r| r.and_then(from_stored)),
                stats,
            )
        }
        Err(failure) => reply_all(batch, std::iter::repeat(Err(failure)), stats),
    }
}

/// Writes one batch on its own connection, trying again after a deadlock or serialization
/// failure, and says what became of it.
async fn save(
    pool: &PgPool,
    reports: &[&NewReport],
    options: BatchOptions,
) -> Result<Vec<Stored>, SubmitError> {
    let mut attempt = 0;
    loop {
        let mut conn = pool.acquire().await.map_err(|error| {
            log_failure(&error, reports.len());
            SubmitError::Unavailable
        })?;
        let written =
            tokio::time::timeout(options.stall_timeout, store::save_batch(&mut conn, reports))
                .await;
        let error = match written {
            Ok(Ok(stored)) => return Ok(stored),
            Ok(Err(error)) => error,
            Err(_) => {
                // The database took the batch and went silent. Drop the socket rather than
                // hand a connection with a statement in flight back to the pool.
                drop(conn.detach());
                tracing::error!(
                    reports = reports.len(),
                    "the database stopped answering a batch; its outcome is unknown"
                );
                return Err(SubmitError::OutcomeUnknown);
            }
        };
        if db::is_retryable(&error) && attempt < 3 {
            attempt += 1;
            tracing::debug!(%error, attempt, "retrying a job-report batch");
            continue;
        }
        log_failure(&error, reports.len());
        return Err(if db::is_outcome_unknown(&error) {
            SubmitError::OutcomeUnknown
        } else if db::is_unavailable(&error) {
            SubmitError::Unavailable
        } else {
            SubmitError::Failed
        });
    }
}

fn from_stored(stored: Stored) -> Result<uuid::Uuid, SubmitError> {
    match stored {
        Stored::Saved(id) => Ok(id),
        Stored::UnknownTool => Err(SubmitError::UnknownTool),
    }
}

/// Answers each caller; the stored ones are counted first, so a caller that reads the
/// counters after its answer sees its report.
fn reply_all(
    batch: Vec<Pending>,
    results: impl IntoIterator<Item = Result<uuid::Uuid, SubmitError>>,
    stats: &BatcherStats,
) {
    let answers: Vec<_> = batch.into_iter().zip(results).collect();
    let stored = answers.iter().filter(|(_, result)| result.is_ok()).count();
    stats.stored.fetch_add(stored as u64, Ordering::Relaxed);
    for (pending, result) in answers {
        // The caller may have hung up after the writer claimed its report; the outcome
        // stands (README: a connection dropped while its batch commits may be stored).
        let _ = pending.reply.send(result);
    }
}

fn log_failure(error: &sqlx::Error, reports: usize) {
    if db::is_unavailable(error) {
        tracing::warn!(%error, reports, "job reports not stored: database unavailable");
    } else {
        tracing::error!(%error, reports, "job reports not stored");
    }
}
