//! Group commit for `updateBatchJob`'s common case: a pipeline reporting progress on a job
//! in its current phase, or moving it between live statuses. Concurrent reports share one
//! statement ([`store::REPORT_JOBS_SQL`]) that locks, updates and writes the event and audit
//! rows of all of them, and each caller is answered after that statement has committed.
//! A lone report is sent at once; under load, reports queue while the writers are busy and
//! the next statement takes them all, as the webhook's batcher does.
//!
//! A report the statement does not apply (a refusal, a phase change, a job being deleted)
//! comes back as `None` having written nothing, and `write::update_batch_job` decides it on
//! the general path under the row lock. A statement holds at most one report per job.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use super::input::JobUpdate;
use super::store;
use super::write::UpdatedJob;
use super::JobError;
use crate::model::{AuditOutcome, DetailedStatus, JobCall, JobDriver, JobStatus};
use crate::server::audit::Actor;
use crate::server::db;

/// Reports in one statement at most.
const MAX_BATCH: usize = 128;
/// Statements in flight at once (each holds one pooled connection).
const WRITERS: usize = 2;
/// Reports waiting for a writer; past it a report takes the general path instead.
const QUEUE: usize = 1024;

/// One report the batch statement can apply, as its columns.
struct Report {
    job_id: Uuid,
    status: Option<&'static str>,
    starts: bool,
    phase: Option<String>,
    progress: Option<f64>,
    active_tasks: Option<i32>,
    error_count: Option<i32>,
    /// The statuses the report is legal from, comma-separated.
    sources: String,
    actor: Actor,
}

impl Report {
    /// `None` for what only the general path does: errors, finishing a run.
    fn of(actor: &Actor, update: &JobUpdate) -> Option<Self> {
        if update.error_details.is_some() || update.status.is_some_and(JobStatus::is_finished) {
            return None;
        }
        // Only from statuses this actor may move the job from (a worker may not resume a
        // paused job): the general path answers the rest with its refusal.
        let sources = JobStatus::ALL
            .into_iter()
            .filter(|&from| match update.status {
                Some(to) => {
                    (from == to || from.may_become(to)) && actor.may(from.permission_to(to))
                }
                // Reporting on a finished run is refused, and an empty update of one keeps
                // its `finished_at`: both are the general path's.
                None => !from.is_finished(),
            })
            .map(JobStatus::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let detailed = update.detailed_status.as_ref();
        Some(Self {
            job_id: update.job_id,
            status: update.status.map(JobStatus::as_str),
            starts: update.status == Some(JobStatus::Running),
            phase: detailed.map(|d| d.current_phase.as_str().to_string()),
            progress: detailed.map(|d| d.progress_percentage.get()),
            active_tasks: detailed.map(|d| d.active_tasks.get()),
            error_count: detailed.map(|d| d.error_count.get()),
            sources,
            actor: actor.clone(),
        })
    }
}

type Reply = Result<Option<UpdatedJob>, JobError>;

struct Queued {
    report: Report,
    reply: oneshot::Sender<Reply>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct ReportQueue {
    queue: mpsc::Sender<Queued>,
    stats: Arc<ReportQueueStats>,
}

/// What the queue did since it started, for tests and benchmarks to see which path ran.
#[derive(Debug, Default)]
pub struct ReportQueueStats {
    /// Statements run (a batch retried report by report counts once).
    pub batches: AtomicU64,
    /// Reports a statement applied.
    pub grouped: AtomicU64,
    /// Reports left to the general path (not for the statement, refused by it, or the
    /// queue was full).
    pub fallback: AtomicU64,
}

impl ReportQueue {
    /// Starts the writer on the current tokio runtime.
    pub fn start(pool: PgPool) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE);
        let stats = Arc::new(ReportQueueStats::default());
        tokio::spawn(write_batches(pool, inbox, stats.clone()));
        Self { queue, stats }
    }

    pub fn stats(&self) -> &ReportQueueStats {
        &self.stats
    }

    /// Applies `update` if the batch statement can, after it has committed. `Ok(None)`:
    /// nothing was written, take the general path.
    pub async fn report(&self, actor: &Actor, update: &JobUpdate) -> Reply {
        let reply = self.try_report(actor, update).await;
        let counter = match &reply {
            Ok(Some(_)) => &self.stats.grouped,
            Ok(None) => &self.stats.fallback,
            Err(_) => return reply,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        reply
    }

    async fn try_report(&self, actor: &Actor, update: &JobUpdate) -> Reply {
        let Some(report) = Report::of(actor, update) else {
            return Ok(None);
        };
        let (reply, answer) = oneshot::channel();
        if self.queue.try_send(Queued { report, reply }).is_err() {
            return Ok(None);
        }
        // The writer answers every report it takes; a dropped sender means it is gone.
        answer.await.unwrap_or(Ok(None))
    }
}

async fn write_batches(
    pool: PgPool,
    mut inbox: mpsc::Receiver<Queued>,
    stats: Arc<ReportQueueStats>,
) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    // Second reports on a job already in the batch wait for the next one.
    let mut held: Vec<Queued> = Vec::new();
    loop {
        let permit = writers.clone().acquire_owned().await.expect("never closed");
        if held.is_empty() {
            match inbox.recv().await {
                Some(first) => held.push(first),
                None => return,
            }
        }
        while held.len() < MAX_BATCH * 2 {
            match inbox.try_recv() {
                Ok(next) => held.push(next),
                Err(_) => break,
            }
        }
        let mut jobs = HashSet::new();
        let (batch, rest): (Vec<Queued>, Vec<Queued>) = held
            .into_iter()
            .partition(|q| jobs.len() < MAX_BATCH && jobs.insert(q.report.job_id));
        held = rest;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        let pool = pool.clone();
        tokio::spawn(async move {
            write(&pool, batch).await;
            drop(permit);
        });
    }
}

#[derive(sqlx::FromRow)]
struct Written {
    job_id: Uuid,
    #[sqlx(try_from = "String")]
    previous_status: JobStatus,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    current_phase: Option<String>,
    progress_percentage: f64,
    active_tasks: i32,
    error_count: i32,
    updated_at: DateTime<Utc>,
}

async fn write(pool: &PgPool, batch: Vec<Queued>) {
    let reports: Vec<&Report> = batch.iter().map(|q| &q.report).collect();
    match apply(pool, &reports).await {
        Ok(written) => {
            let mut written: std::collections::HashMap<Uuid, Written> =
                written.into_iter().map(|w| (w.job_id, w)).collect();
            for queued in batch {
                let updated = written.remove(&queued.report.job_id).map(updated_job);
                let _ = queued.reply.send(Ok(updated));
            }
        }
        // Rolled back: nobody's report was written.
        Err(error) if !db::is_outcome_unknown(&error) && db::is_unavailable(&error) => {
            tracing::warn!(%error, "database unavailable; {} reports refused", batch.len());
            for queued in batch {
                let _ = queued.reply.send(Err(JobError::Unavailable));
            }
        }
        Err(error) if db::is_outcome_unknown(&error) => {
            tracing::warn!(%error, "connection lost under {} reports", batch.len());
            for queued in batch {
                let _ = queued.reply.send(Err(JobError::OutcomeUnknown));
            }
        }
        // A report the database refuses must not sink the others: each alone gets its own
        // answer.
        Err(error) if batch.len() > 1 => {
            tracing::warn!(%error, "a batch of {} reports failed; writing each alone", batch.len());
            for queued in batch {
                let result = apply(pool, &[&queued.report]).await;
                let _ = queued.reply.send(
                    result
                        .map(|written| written.into_iter().next().map(updated_job))
                        .map_err(JobError::from),
                );
            }
        }
        Err(error) => {
            if let Some(queued) = batch.into_iter().next() {
                let _ = queued.reply.send(Err(JobError::Database(error)));
            }
        }
    }
}

async fn apply(pool: &PgPool, reports: &[&Report]) -> Result<Vec<Written>, sqlx::Error> {
    let column = |f: fn(&Report) -> Option<String>| -> Vec<Option<String>> {
        reports.iter().map(|r| f(r)).collect()
    };
    sqlx::query_as(store::REPORT_JOBS_SQL)
        .bind(reports.iter().map(|r| r.job_id).collect::<Vec<_>>())
        .bind(column(|r| r.status.map(str::to_string)))
        .bind(reports.iter().map(|r| r.starts).collect::<Vec<_>>())
        .bind(column(|r| r.phase.clone()))
        .bind(reports.iter().map(|r| r.progress).collect::<Vec<_>>())
        .bind(reports.iter().map(|r| r.active_tasks).collect::<Vec<_>>())
        .bind(reports.iter().map(|r| r.error_count).collect::<Vec<_>>())
        .bind(column(|r| Some(r.sources.clone())))
        .bind(column(|r| Some(r.actor.label.clone())))
        .bind(reports.iter().map(|r| r.actor.user_id).collect::<Vec<_>>())
        .bind(reports.iter().map(|r| r.actor.token_id).collect::<Vec<_>>())
        .bind(column(|r| r.actor.client_addr.clone()))
        .bind(JobCall::UpdateBatchJob)
        .bind(AuditOutcome::Success)
        .bind(JobDriver::Reported)
        .fetch_all(pool)
        .await
}

fn updated_job(w: Written) -> UpdatedJob {
    UpdatedJob {
        job_id: w.job_id,
        previous_status: w.previous_status,
        status: w.status,
        detailed_status: DetailedStatus {
            current_phase: w.current_phase,
            progress_percentage: w.progress_percentage,
            active_tasks: w.active_tasks,
            error_count: w.error_count,
        },
        updated_at: w.updated_at,
    }
}
