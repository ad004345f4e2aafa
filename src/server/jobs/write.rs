//! The changes to a job. Each is one transaction under the job's row lock that writes the
//! change, its event, and its audit row together.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::input::{DeleteJob, JobCommand, JobUpdate, NewJob};
use super::locked::in_locked_job;
use super::store::{self, record_error, record_event, remove_job, LockedJob};
use super::JobError;
use crate::model::{
    JobAction, JobCall, JobDriver, JobStatus, JobView, TaskStatus, TriggerSource, JOB_LIMITS,
};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::{dispatch, tasks};

/// `createJob`: the job, its tasks and its first event.
pub async fn create_job(pool: &PgPool, actor: &Actor, job: NewJob) -> Result<JobView, JobError> {
    job.check()?;
    let retry = job.retry_config.as_ref();
    let limits = job.resource_limits.as_ref();
    let kind = job.kind();
    let mut tx = pool.begin().await?;
    let job_id: Uuid = sqlx::query_scalar(store::CREATE_JOB_SQL)
        .bind(kind.as_str())
        .bind(job.product_id.as_ref().map(|n| n.as_str()))
        .bind(job.sending_group_id.as_ref().map(|n| n.as_str()))
        .bind(job.user_id.as_ref().map(|n| n.as_str()))
        .bind(job.trigger_source.unwrap_or(TriggerSource::User))
        .bind(
            job.priority
                .map_or(JOB_LIMITS.default_priority, |p| p.get()),
        )
        .bind(
            job.max_parallel_tasks
                .map_or(JOB_LIMITS.default_max_parallel_tasks, |m| m.get()),
        )
        .bind(retry.map_or(JOB_LIMITS.default_max_attempts, |r| r.max_attempts.get()))
        .bind(retry.map_or(JOB_LIMITS.default_retry_interval, |r| {
            r.retry_interval.get()
        }))
        .bind(retry.map_or_else(Vec::new, |r| {
            r.retry_on_errors
                .iter()
                .map(|c| c.as_str().to_string())
                .collect()
        }))
        .bind(limits.map_or(0, |l| l.max_memory.get()))
        .bind(limits.map_or(0.0, |l| l.max_cpu.get()))
        .bind(job.stages())
        .bind(&actor.label)
        .bind(job.driver())
        .bind(job.queue())
        .fetch_one(&mut *tx)
        .await?;
    tasks::insert_tasks(&mut tx, job_id, &job.tasks).await?;
    if job.driver() == JobDriver::Dispatched && !job.tasks.is_empty() {
        dispatch::wake(&mut tx, job.queue()).await?;
    }
    record_event(
        &mut tx,
        job_id,
        None,
        JobStatus::Pending,
        actor,
        Some("created"),
    )
    .await?;
    audit::record(
        &mut tx,
        actor,
        Event {
            action: JobCall::CreateJob.as_str(),
            target: Some(&job_id.to_string()),
            details: json!({ "kind": kind.as_str(), "tasks": job.tasks.len() }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    let view = store::get_job(&mut tx, job_id)
        .await?
        .ok_or(JobError::NotFound(job_id))?;
    tx.commit().await?;
    Ok(view)
}

/// The answer to `updateBatchJob`: where the job was and where it is now.
#[derive(Debug, Serialize)]
pub struct UpdatedJob {
    pub job_id: Uuid,
    pub previous_status: JobStatus,
    pub status: JobStatus,
    pub detailed_status: crate::model::DetailedStatus,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UpdatedRow {
    #[sqlx(try_from = "String")]
    status: JobStatus,
    current_phase: Option<String>,
    progress_percentage: f64,
    active_tasks: i32,
    error_count: i32,
    updated_at: DateTime<Utc>,
}

/// `updateBatchJob`: a status change along the state machine, detailed status, an error.
/// Sending the status the job already has changes no status (a progress report).
/// Progress reports go through `reports` (group commit); the rest, and any report it does
/// not apply, are decided here under the job's row lock.
pub async fn update_batch_job(
    pool: &PgPool,
    reports: &super::ReportQueue,
    actor: &Actor,
    update: JobUpdate,
) -> Result<UpdatedJob, JobError> {
    if let Some(updated) = reports.report(actor, &update).await? {
        return Ok(updated);
    }
    in_locked_job(pool, update.job_id, actor, async |tx, job| {
        if job.driver == JobDriver::Dispatched {
            return Err(JobError::Dispatched(job.id));
        }
        apply_update(
            tx,
            actor,
            JobCall::UpdateBatchJob.as_str(),
            job,
            &update,
            None,
        )
        .await
    })
    .await
}

async fn apply_update(
    tx: &mut PgConnection,
    actor: &Actor,
    action: &'static str,
    job: LockedJob,
    update: &JobUpdate,
    reason: Option<&str>,
) -> Result<UpdatedJob, JobError> {
    let from = job.status;
    let to = update.status.unwrap_or(from);
    if to != from && !from.may_become(to) {
        return Err(JobError::transition(from, Some(to)));
    }
    let needs = from.permission_to(to);
    if !actor.may(needs) {
        return Err(JobError::Forbidden {
            role: actor.role,
            needs,
            current: Some(from),
            wanted: Some(to),
        });
    }
    let reports = update.detailed_status.is_some() || update.error_details.is_some();
    if reports && from.is_finished() && to == from {
        return Err(JobError::transition(from, None));
    }
    let phase = update
        .detailed_status
        .as_ref()
        .map(|d| d.current_phase.as_str());
    if let Some(phase) = phase {
        if !job.stages.is_empty() && !job.stages.iter().any(|s| s == phase) {
            return Err(JobError::invalid(
                "data.detailed_status.current_phase",
                format!(
                    "{phase:?} is not one of the job's stages: {}",
                    job.stages.join(", ")
                ),
            ));
        }
    }
    let detailed = update.detailed_status.as_ref();
    let row: Option<UpdatedRow> = sqlx::query_as(store::UPDATE_BATCH_JOB_SQL)
        .bind(job.id)
        .bind(to)
        .bind(to == JobStatus::Running)
        .bind(to.is_finished())
        .bind(phase)
        .bind(detailed.map(|d| d.progress_percentage.get()))
        .bind(detailed.map(|d| d.active_tasks.get()))
        .bind(detailed.map(|d| d.error_count.get()))
        .bind(from)
        .bind(i32::from(update.error_details.is_some()))
        .fetch_optional(&mut *tx)
        .await?;
    // The row lock makes this unreachable; the condition keeps the update honest anyway.
    let row = row.ok_or(JobError::transition(from, Some(to)))?;
    follow_phase(tx, &job, phase, to).await?;
    if to != from {
        follow_status(tx, &job, to).await?;
    }
    if to != from {
        record_event(tx, job.id, Some(from), to, actor, reason).await?;
    }
    if let Some(error) = &update.error_details {
        record_error(
            tx,
            job.id,
            None,
            error.code.as_str(),
            error.message.as_str(),
            error.stack.as_ref().map(|s| s.as_str()),
        )
        .await?;
    }
    audit::record(
        tx,
        actor,
        Event {
            action,
            target: Some(&job.id.to_string()),
            details: json!({
                "from": from.as_str(),
                "to": to.as_str(),
                "phase": phase,
                "error_code": update.error_details.as_ref().map(|e| e.code.as_str()),
                "reason": reason,
            }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    Ok(UpdatedJob {
        job_id: job.id,
        previous_status: from,
        status: row.status,
        detailed_status: crate::model::DetailedStatus {
            current_phase: row.current_phase,
            progress_percentage: row.progress_percentage,
            active_tasks: row.active_tasks,
            error_count: row.error_count,
        },
        updated_at: row.updated_at,
    })
}

/// What a job's tasks do when the job moves: an ended job ends its unfinished tasks (both
/// drivers); a retried one runs its failed and cancelled tasks again; a dispatched job that
/// may hand out work again (resumed, retried) wakes its queue's waiting workers.
async fn follow_status(
    tx: &mut PgConnection,
    job: &LockedJob,
    to: JobStatus,
) -> Result<(), sqlx::Error> {
    if matches!(to, JobStatus::Failed | JobStatus::Cancelled) {
        sqlx::query(store::END_TASKS_SQL)
            .bind(job.id)
            .bind(TaskStatus::Cancelled)
            .bind([TaskStatus::Pending, TaskStatus::Running].map(TaskStatus::as_str))
            .execute(&mut *tx)
            .await?;
    }
    if job.status == JobStatus::Failed && to == JobStatus::Pending {
        sqlx::query(store::RESET_TASKS_SQL)
            .bind(job.id)
            .bind(TaskStatus::Pending)
            .bind([TaskStatus::Failed, TaskStatus::Cancelled].map(TaskStatus::as_str))
            .execute(&mut *tx)
            .await?;
    }
    if job.driver == JobDriver::Dispatched && JobStatus::HANDING_OUT.contains(&to) {
        dispatch::wake(tx, &job.queue).await?;
    }
    Ok(())
}

/// A dispatched job following its tasks (`dispatch::leases`): completed when every task
/// completed, failed when one failed for good. Under the job's lock, with its event and
/// audit row like any other move.
pub async fn follow_tasks_to(
    tx: &mut PgConnection,
    actor: &Actor,
    action: &'static str,
    job: LockedJob,
    to: JobStatus,
    reason: &str,
) -> Result<UpdatedJob, JobError> {
    let update = JobUpdate {
        job_id: job.id,
        status: Some(to),
        detailed_status: None,
        error_details: None,
    };
    apply_update(tx, actor, action, job, &update, Some(reason)).await
}

/// A new phase closes the open one and opens its own; a finished run closes the last.
async fn follow_phase(
    tx: &mut PgConnection,
    job: &LockedJob,
    phase: Option<&str>,
    to: JobStatus,
) -> Result<(), sqlx::Error> {
    let changed = phase.is_some_and(|p| job.current_phase.as_deref() != Some(p));
    if changed || to.is_finished() {
        sqlx::query(store::CLOSE_PHASE_SQL)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
    }
    if let (true, Some(phase), false) = (changed, phase, to.is_finished()) {
        sqlx::query(store::OPEN_PHASE_SQL)
            .bind(job.id)
            .bind(phase)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// An operator's pause, resume, cancel or retry: a transition through the same state
/// machine, offered only from the statuses `model::JobAction` names (so asking for the
/// status the job already has is a conflict, unlike a pipeline's report).
pub async fn command(
    pool: &PgPool,
    actor: &Actor,
    action: JobAction,
    command: JobCommand,
) -> Result<UpdatedJob, JobError> {
    let Some(to) = action.target() else {
        return Err(JobError::invalid(
            "action",
            "deleteJob is not a status change",
        ));
    };
    in_locked_job(pool, command.job_id, actor, async |tx, job| {
        if !action.allowed(job.status) {
            return Err(JobError::NotNow {
                action,
                current: job.status,
            });
        }
        let update = JobUpdate {
            job_id: command.job_id,
            status: Some(to),
            detailed_status: None,
            error_details: None,
        };
        let reason = command
            .reason
            .as_ref()
            .map(|r| r.as_str())
            .unwrap_or(action.name());
        let mut resumed = job.clone();
        let updated = apply_update(tx, actor, action.name(), job, &update, Some(reason)).await?;
        // A dispatched job's tasks may have finished while it was paused: it follows them now.
        if to == JobStatus::Running && resumed.driver == JobDriver::Dispatched {
            if let Some((next, why)) = dispatch::settled_status(tx, resumed.id).await? {
                resumed.status = JobStatus::Running;
                return follow_tasks_to(tx, actor, action.name(), resumed, next, why).await;
            }
        }
        Ok(updated)
    })
    .await
}

/// Error recovery's re-run of a failed job (`recovery::manual_recover`): failed → pending
/// through the state machine, audited as `action`. The caller has made the tasks it re-runs
/// pending first, so the retry's reset of failed and cancelled tasks finds none left over.
pub(crate) async fn reopen(
    tx: &mut PgConnection,
    actor: &Actor,
    action: &'static str,
    job: LockedJob,
    reason: &str,
) -> Result<UpdatedJob, JobError> {
    let update = JobUpdate {
        job_id: job.id,
        status: Some(JobStatus::Pending),
        detailed_status: None,
        error_details: None,
    };
    apply_update(tx, actor, action, job, &update, Some(reason)).await
}

/// What `deleteJob` did.
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Deletion {
    /// Gone with everything under it.
    Deleted { job_id: Uuid },
    /// A live job was cancelled and marked; it goes when its pipeline next calls (which
    /// gets 410) or at `delete_after`, whichever is first.
    Stopping {
        job_id: Uuid,
        delete_after: DateTime<Utc>,
    },
}

/// `deleteJob`: a job no pipeline is driving goes at once; a running or paused one is
/// cancelled and stopped safely first, unless `force`.
pub async fn delete_job(
    pool: &PgPool,
    actor: &Actor,
    delete: DeleteJob,
) -> Result<Deletion, JobError> {
    in_locked_job(pool, delete.job_id, actor, async |tx, job| {
        if delete.force || !job.status.is_live() {
            let why = if delete.force { "force" } else { "not running" };
            remove_job(tx, job.id, actor, why).await?;
            return Ok(Deletion::Deleted { job_id: job.id });
        }
        let cancel = JobUpdate {
            job_id: delete.job_id,
            status: Some(JobStatus::Cancelled),
            detailed_status: None,
            error_details: None,
        };
        let job_id = job.id;
        // The lock is held: the transition cannot be refused (running and paused may
        // cancel). Audited as `deleteJob` with the reason `deleteJob`; the removal is
        // audited when it happens.
        let action = JobAction::Delete.name();
        apply_update(tx, actor, action, job, &cancel, Some(action)).await?;
        let requested: DateTime<Utc> = sqlx::query_scalar(store::REQUEST_DELETE_SQL)
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await?;
        Ok(Deletion::Stopping {
            job_id,
            delete_after: requested + Duration::seconds(JOB_LIMITS.delete_grace_secs),
        })
    })
    .await
}
