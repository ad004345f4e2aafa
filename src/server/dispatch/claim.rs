//! `claimTasks`: hands out ready tasks under leases, the per-job limit and the worker's
//! capacity enforced in the claim's two statements (`store::LOCK_OPEN_JOBS_SQL`,
//! `store::CLAIM_SQL`), which lock and then fill the jobs; with `wait_ms`, a
//! call that finds nothing waits for a wake-up (`wakeup`) rather than polling.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::input::ClaimRequest;
use super::{store, DispatchError, Dispatcher};
use crate::model::dispatch::{Claimed, ClaimedTask};
use crate::model::{JobStatus, ResourceLimits, TaskStatus};
use crate::server::audit::Actor;

#[derive(FromRow)]
struct ClaimedRow {
    task_id: Uuid,
    job_id: Uuid,
    name: String,
    payload: serde_json::Value,
    attempt: i32,
    lease_token: Uuid,
    lease_expires_at: DateTime<Utc>,
    priority: i16,
    max_memory: i64,
    max_cpu: f64,
}

pub async fn claim(
    dispatcher: &Dispatcher,
    actor: &Actor,
    request: ClaimRequest,
) -> Result<Claimed, DispatchError> {
    request.check()?;
    let queues: Vec<&str> = request.queues.iter().map(|q| q.as_str()).collect();
    seen(dispatcher, actor, &request, &queues).await?;
    let started = Instant::now();
    let wait = Duration::from_millis(request.wait_ms.map_or(0, |w| w.get()));
    // Subscribed before the first look, so a wake-up between the look and the wait is kept.
    let mut wakeups = dispatcher.wakeups.subscribe();
    loop {
        let tasks = claim_once(dispatcher, actor, &request, &queues).await?;
        dispatcher
            .counts
            .claimed
            .fetch_add(tasks.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let left = wait.saturating_sub(started.elapsed());
        if !tasks.is_empty() || left.is_zero() {
            return Ok(Claimed {
                tasks,
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        let woken = tokio::time::timeout(left, async {
            loop {
                match wakeups.recv().await {
                    Ok(wake) if wake.concerns(&queues) => return,
                    Ok(_) => continue,
                    // Missed some: one of them may have been ours.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        })
        .await;
        if woken.is_err() {
            return Ok(Claimed {
                tasks: Vec::new(),
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
    }
}

async fn claim_once(
    dispatcher: &Dispatcher,
    actor: &Actor,
    request: &ClaimRequest,
    queues: &[&str],
) -> Result<Vec<ClaimedTask>, DispatchError> {
    let mut tx = dispatcher.protocol_pool.begin().await?;
    let jobs: Vec<Uuid> = sqlx::query_scalar(store::LOCK_OPEN_JOBS_SQL)
        .bind(request.worker_id.as_str())
        .bind(queues)
        .bind(request.max_tasks() as i32)
        .bind(request.capacity.memory_mb.map(|m| m.get()))
        .bind(request.capacity.cpus.map(|c| c.get()))
        .bind(TaskStatus::Completed)
        .fetch_all(&mut *tx)
        .await?;
    if jobs.is_empty() {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    let rows: Vec<ClaimedRow> = sqlx::query_as(store::CLAIM_SQL)
        .bind(request.worker_id.as_str())
        .bind(&jobs)
        .bind(request.max_tasks() as i32)
        .bind(request.capacity.memory_mb.map(|m| m.get()))
        .bind(request.capacity.cpus.map(|c| c.get()))
        .bind(dispatcher.lease.as_secs_f64())
        .bind(TaskStatus::Pending)
        // A claim starts an attempt: it moves the task into the status that does.
        .bind(TaskStatus::ATTEMPT_STARTS)
        .bind(TaskStatus::Completed)
        .bind(JobStatus::Running)
        .bind(JobStatus::Pending)
        .bind(&actor.label)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedTask {
            task_id: r.task_id,
            job_id: r.job_id,
            name: r.name,
            lease_token: r.lease_token,
            lease_expires_at: r.lease_expires_at,
            attempt: r.attempt,
            priority: r.priority,
            resource_limits: ResourceLimits {
                max_memory: r.max_memory,
                max_cpu: r.max_cpu,
            },
            payload: r.payload,
        })
        .collect())
}

/// The workers page and the explainer read what workers said they serve and can take,
/// written at most every `SEEN_EVERY` per worker by this portal.
async fn seen(
    dispatcher: &Dispatcher,
    actor: &Actor,
    request: &ClaimRequest,
    queues: &[&str],
) -> Result<(), sqlx::Error> {
    let said = (
        queues.iter().map(|q| q.to_string()).collect(),
        request.capacity.memory_mb.map(|m| m.get()),
        request.capacity.cpus.map(|c| c.get().to_bits()),
    );
    if !dispatcher.worker_row_due(request.worker_id.as_str(), said) {
        return Ok(());
    }
    sqlx::query(store::SEEN_WORKER_SQL)
        .bind(request.worker_id.as_str())
        .bind(queues)
        .bind(request.capacity.memory_mb.map(|m| m.get()))
        .bind(request.capacity.cpus.map(|c| c.get()))
        .bind(&actor.label)
        .execute(&dispatcher.protocol_pool)
        .await?;
    Ok(())
}
