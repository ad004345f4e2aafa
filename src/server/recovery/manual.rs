//! `manualRecover`: runs a failed job's work again from one error record. The record's task
//! and everything downstream of it run again, with whatever else the failure left unfinished
//! (the job cannot complete without it); completed tasks never do. Under the job's row lock,
//! so of two concurrent recoveries of one record the second finds it `in_progress` (409).

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::input::{ManualRecover, RecoveryOptions};
use super::{retry_configs, store, FailureFacts, RecoveryError};
use crate::model::{
    ErrorCall, JobDriver, JobKind, JobStatus, RecoveryStatus, RerunReason, TaskStatus, JOB_LIMITS,
    RECOVERY_LIMITS,
};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::jobs::{self, in_locked_job};

#[derive(Debug, FromRow)]
struct RecordRow {
    id: Uuid,
    job_id: Option<Uuid>,
    task_id: Option<Uuid>,
    job_status_id: Option<Uuid>,
    error_type: String,
    error_message: String,
    #[sqlx(try_from = "String")]
    recovery_status: RecoveryStatus,
    recovery_attempts: Value,
}

#[derive(FromRow)]
struct JobFacts {
    #[sqlx(try_from = "String")]
    status: JobStatus,
    #[sqlx(try_from = "String")]
    kind: JobKind,
    queue: String,
    priority: i16,
    product_id: Option<String>,
    sending_group_id: Option<String>,
    max_attempts: i32,
    #[sqlx(try_from = "String")]
    driver: JobDriver,
}

#[derive(Clone, FromRow)]
struct TaskRow {
    id: Uuid,
    /// The order the tasks were added in, which answers list them in.
    seq: i64,
    name: String,
    #[sqlx(try_from = "String")]
    status: TaskStatus,
    depends_on: Vec<String>,
    attempt: i32,
    payload: Value,
}

#[derive(Debug, Serialize)]
pub struct RerunTask {
    pub task_id: Uuid,
    pub name: String,
    /// Before the re-run.
    pub status: TaskStatus,
    pub attempt: i32,
    pub reason: RerunReason,
}

/// What a recovery re-runs (or, for a dry run, would).
#[derive(Debug, Serialize)]
pub struct Recovery {
    pub error_record_id: Uuid,
    pub job_id: Uuid,
    pub dry_run: bool,
    pub rerun: Vec<RerunTask>,
    /// Completed tasks, left as they are.
    pub kept: Vec<String>,
    pub recovery_status: RecoveryStatus,
    pub recovery_attempts: Value,
}

pub async fn manual_recover(
    pool: &PgPool,
    actor: &Actor,
    request: ManualRecover,
) -> Result<Recovery, RecoveryError> {
    let options = request.recovery_options.unwrap_or_default();
    let record: Option<RecordRow> = sqlx::query_as(store::RECORD_SQL)
        .bind(request.error_record_id)
        .fetch_optional(pool)
        .await?;
    let record = record.ok_or(RecoveryError::NotFound(request.error_record_id))?;
    let Some(job_id) = record.job_id else {
        return Err(RecoveryError::Unprocessable(format!(
            "error record {} is a script's (job_status {}): a script recovers with its next \
             successful report",
            record.id,
            record.job_status_id.unwrap_or_default()
        )));
    };
    in_locked_job(pool, job_id, actor, async |tx, job| {
        let record: RecordRow = sqlx::query_as(store::LOCK_RECORD_SQL)
            .bind(request.error_record_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(RecoveryError::NotFound(request.error_record_id))?;
        // Before the tasks are locked: the loser of two concurrent recoveries stops here.
        check_open(&record)?;
        let facts: JobFacts = sqlx::query_as(store::JOB_FACTS_SQL)
            .bind(job.id)
            .fetch_one(&mut *tx)
            .await?;
        let mut tasks: Vec<TaskRow> = sqlx::query_as(store::JOB_TASKS_SQL)
            .bind(job.id)
            .fetch_all(&mut *tx)
            .await?;
        tasks.sort_by_key(|t| t.seq);
        let (rerun, kept) = plan(&mut *tx, &record, job.id, &facts, &tasks, &options).await?;
        if options.dry_run.unwrap_or(false) {
            return Ok(Recovery {
                error_record_id: record.id,
                job_id: job.id,
                dry_run: true,
                rerun,
                kept,
                recovery_status: record.recovery_status,
                recovery_attempts: record.recovery_attempts,
            });
        }
        let params = options.custom_params.as_ref();
        let payloads = rerun
            .iter()
            .map(|r| {
                let task = tasks
                    .iter()
                    .find(|t| t.id == r.task_id)
                    .expect("in the graph");
                merged(&task.name, &task.payload, params)
            })
            .collect::<Result<Vec<Value>, RecoveryError>>()?;
        let ids: Vec<Uuid> = rerun.iter().map(|r| r.task_id).collect();
        sqlx::query(store::RERUN_TASKS_SQL)
            .bind(&ids)
            .bind(&payloads)
            .bind(TaskStatus::Pending)
            .execute(&mut *tx)
            .await?;
        let names: Vec<&str> = rerun.iter().map(|r| r.name.as_str()).collect();
        let action = ErrorCall::ManualRecover.as_str();
        let reason = format!("manualRecover of error record {}", record.id);
        jobs::reopen(tx, actor, action, job, &reason).await?;
        let attempt = json!([{
            "timestamp": Utc::now(),
            "method": "manual",
            "result": format!("re-running {}", names.join(", ")),
            "actor": actor.label,
        }]);
        let (status, attempts): (String, Value) = sqlx::query_as(store::START_RECOVERY_SQL)
            .bind(record.id)
            .bind(RecoveryStatus::InProgress)
            .bind(&attempt)
            .fetch_one(&mut *tx)
            .await?;
        let event = Event {
            action,
            target: Some(&record.id.to_string()),
            details: json!({
                "job_id": job_id,
                "rerun": names,
                "force": options.force.unwrap_or(false),
                "ignore_conditions": options.ignore_conditions.unwrap_or(false),
                "custom_params": params.map(|p| p.keys().collect::<Vec<_>>()),
            }),
            outcome: Outcome::Success,
        };
        audit::record(tx, actor, event).await?;
        Ok(Recovery {
            error_record_id: record.id,
            job_id,
            dry_run: false,
            rerun,
            kept,
            recovery_status: RecoveryStatus::parse(&status).unwrap_or(RecoveryStatus::InProgress),
            recovery_attempts: attempts,
        })
    })
    .await
}

/// What a recovery of `record` runs again and what it keeps, or why it is refused now: the
/// checks every recovery, dry run and the record's page share.
async fn plan(
    conn: &mut PgConnection,
    record: &RecordRow,
    job_id: Uuid,
    facts: &JobFacts,
    tasks: &[TaskRow],
    options: &RecoveryOptions,
) -> Result<(Vec<RerunTask>, Vec<String>), RecoveryError> {
    check_open(record)?;
    if facts.driver != JobDriver::Dispatched {
        return Err(RecoveryError::Conflict(format!(
            "job {job_id} is reported: its own pipeline runs it again (retryJob marks it for a retry)"
        )));
    }
    if facts.status != JobStatus::Failed {
        return Err(RecoveryError::Conflict(format!(
            "job {job_id} is {}: only a failed job is recovered (a running one retries its tasks \
             by itself)",
            facts.status
        )));
    }
    let failed = record
        .task_id
        .and_then(|id| tasks.iter().find(|t| t.id == id));
    if let Some(task) = failed {
        check_attempts(conn, record, task, facts, options).await?;
    }
    let rerun = rerun_set(tasks, failed.map(|t| t.name.as_str()));
    let ceiling = RECOVERY_LIMITS.attempts_ceiling;
    if let Some(spent) = rerun.iter().find(|r| r.attempt >= ceiling) {
        return Err(RecoveryError::Conflict(format!(
            "task {:?} has run {} times, the most any task may (even with force)",
            spent.name, spent.attempt
        )));
    }
    if rerun.is_empty() {
        return Err(RecoveryError::Conflict(format!(
            "job {job_id} has no unfinished task to run again"
        )));
    }
    let kept = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Completed)
        .map(|t| t.name.clone())
        .collect();
    Ok((rerun, kept))
}

/// A record being recovered, or recovered, is not recovered (again).
fn check_open(record: &RecordRow) -> Result<(), RecoveryError> {
    let status = record.recovery_status;
    if status.recoverable() {
        return Ok(());
    }
    Err(RecoveryError::Conflict(format!(
        "error record {} is {status}: {}",
        record.id,
        if status == RecoveryStatus::Recovered {
            "its work has succeeded since"
        } else {
            "a recovery of it is under way"
        }
    )))
}

/// A task of the job, as the record's page draws it.
pub struct GraphTask {
    pub name: String,
    pub status: TaskStatus,
    pub depends_on: Vec<String>,
}

/// The record's page: its job's tasks and what a recovery with no options would do now,
/// read without locks (nothing is changed).
pub struct Preview {
    pub tasks: Vec<GraphTask>,
    pub plan: Result<(Vec<RerunTask>, Vec<String>), RecoveryError>,
}

pub async fn preview(pool: &PgPool, record_id: Uuid) -> Result<Option<Preview>, RecoveryError> {
    let mut conn = pool.acquire().await?;
    let record: Option<RecordRow> = sqlx::query_as(store::RECORD_SQL)
        .bind(record_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((record, job_id)) = record.and_then(|r| r.job_id.map(|job| (r, job))) else {
        return Ok(None);
    };
    let Some(facts) = sqlx::query_as::<_, JobFacts>(store::JOB_FACTS_SQL)
        .bind(job_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let tasks: Vec<TaskRow> = sqlx::query_as(store::JOB_TASKS_READ_SQL)
        .bind(job_id)
        .fetch_all(&mut *conn)
        .await?;
    let options = RecoveryOptions::default();
    let plan = plan(&mut conn, &record, job_id, &facts, &tasks, &options).await;
    Ok(Some(Preview {
        tasks: tasks
            .into_iter()
            .map(|t| GraphTask {
                name: t.name,
                status: t.status,
                depends_on: t.depends_on,
            })
            .collect(),
        plan,
    }))
}

/// The attempts the record's type (or else its job) allows, and its retry conditions:
/// refused unless `force` / `ignore_conditions` (the ceiling is checked for every task of the
/// set by the caller).
async fn check_attempts(
    tx: &mut PgConnection,
    record: &RecordRow,
    task: &TaskRow,
    facts: &JobFacts,
    options: &RecoveryOptions,
) -> Result<(), RecoveryError> {
    let configs = retry_configs(tx, std::slice::from_ref(&record.error_type)).await?;
    let typed = configs.get(&record.error_type);
    let allowed = typed.map_or(facts.max_attempts, |t| t.max_attempts);
    if task.attempt >= allowed && !options.force.unwrap_or(false) {
        return Err(RecoveryError::Conflict(format!(
            "task {:?} has used {} of its {allowed} attempts; recovery_options.force runs it again anyway",
            task.name, task.attempt
        )));
    }
    if let Some(typed) = typed {
        if !options.ignore_conditions.unwrap_or(false) {
            let failure = FailureFacts {
                kind: facts.kind,
                queue: &facts.queue,
                priority: facts.priority,
                attempt: task.attempt,
                error_type: &record.error_type,
                message: &record.error_message,
                task_name: &task.name,
                product_id: facts.product_id.as_deref(),
                sending_group_id: facts.sending_group_id.as_deref(),
            };
            if !typed.conditions.iter().all(|c| c.holds(&failure)) {
                return Err(RecoveryError::Conflict(format!(
                    "the retry conditions of {} do not hold for this failure; \
                     recovery_options.ignore_conditions runs it anyway",
                    record.error_type
                )));
            }
        }
    }
    Ok(())
}

/// The record's task, everything that depends on it (directly or not), and every other
/// unfinished task; completed tasks never. In the order of `tasks`.
fn rerun_set(tasks: &[TaskRow], failed: Option<&str>) -> Vec<RerunTask> {
    let mut downstream: HashSet<&str> = HashSet::new();
    if let Some(failed) = failed {
        let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
        for task in tasks {
            for dependency in &task.depends_on {
                dependents
                    .entry(dependency.as_str())
                    .or_default()
                    .push(task.name.as_str());
            }
        }
        let mut queue = VecDeque::from([failed]);
        while let Some(name) = queue.pop_front() {
            for &next in dependents.get(name).into_iter().flatten() {
                if downstream.insert(next) {
                    queue.push_back(next);
                }
            }
        }
    }
    tasks
        .iter()
        .filter(|t| t.status != TaskStatus::Completed)
        .filter_map(|t| {
            let reason = if Some(t.name.as_str()) == failed {
                RerunReason::Failed
            } else if downstream.contains(t.name.as_str()) {
                RerunReason::Downstream
            } else if matches!(t.status, TaskStatus::Failed | TaskStatus::Cancelled) {
                RerunReason::Unfinished
            } else {
                // Pending work not ended by the failure runs when the job does anyway.
                return None;
            };
            Some(RerunTask {
                task_id: t.id,
                name: t.name.clone(),
                status: t.status,
                attempt: t.attempt,
                reason,
            })
        })
        .collect()
}

/// The task's payload with `custom_params` over it, within the payload limit.
fn merged(
    name: &str,
    payload: &Value,
    params: Option<&Map<String, Value>>,
) -> Result<Value, RecoveryError> {
    let mut payload = payload.clone();
    let Some(params) = params else {
        return Ok(payload);
    };
    let Some(object) = payload.as_object_mut() else {
        return Err(RecoveryError::Invalid(
            crate::server::input::InvalidInput::new(
                "data.recovery_options.custom_params",
                format!("task {name:?}'s payload is not a JSON object: nothing to merge them into"),
            ),
        ));
    };
    for (key, value) in params {
        object.insert(key.clone(), value.clone());
    }
    let size = payload.to_string().len();
    if size > JOB_LIMITS.payload_bytes {
        return Err(RecoveryError::Invalid(
            crate::server::input::InvalidInput::new(
                "data.recovery_options.custom_params",
                format!(
                    "task {name:?}'s payload with them would be {size} bytes, over {}",
                    JOB_LIMITS.payload_bytes
                ),
            ),
        ));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, status: TaskStatus, depends_on: &[&str]) -> TaskRow {
        TaskRow {
            id: Uuid::from_u128(u128::from(name.as_bytes()[0])),
            seq: i64::from(name.as_bytes()[0]),
            name: name.into(),
            status,
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
            attempt: 1,
            payload: json!({}),
        }
    }

    fn reasons(set: &[RerunTask]) -> Vec<(&str, RerunReason)> {
        set.iter().map(|r| (r.name.as_str(), r.reason)).collect()
    }

    #[test]
    fn a_diamond_reruns_the_failed_branch_and_what_joins_it() {
        use TaskStatus::*;
        // a → b → d, a → c → d, d → e; b failed, so d and e were cancelled with the job.
        let tasks = [
            task("a", Completed, &[]),
            task("b", Failed, &["a"]),
            task("c", Completed, &["a"]),
            task("d", Cancelled, &["b", "c"]),
            task("e", Cancelled, &["d"]),
            task("x", Cancelled, &[]),
        ];
        assert_eq!(
            reasons(&rerun_set(&tasks, Some("b"))),
            [
                ("b", RerunReason::Failed),
                ("d", RerunReason::Downstream),
                ("e", RerunReason::Downstream),
                ("x", RerunReason::Unfinished),
            ]
        );
        // A job-level record: every unfinished task.
        assert_eq!(
            reasons(&rerun_set(&tasks, None)),
            [
                ("b", RerunReason::Unfinished),
                ("d", RerunReason::Unfinished),
                ("e", RerunReason::Unfinished),
                ("x", RerunReason::Unfinished),
            ]
        );
    }

    #[test]
    fn custom_params_merge_over_the_payload_within_its_limit() {
        let params: Map<String, Value> =
            serde_json::from_value(json!({ "limit": 10, "mode": "safe" })).unwrap();
        let over = merged("t", &json!({ "limit": 100, "feed": "tech" }), Some(&params)).unwrap();
        assert_eq!(over, json!({ "limit": 10, "mode": "safe", "feed": "tech" }));
        let huge: Map<String, Value> =
            serde_json::from_value(json!({ "blob": "x".repeat(JOB_LIMITS.payload_bytes) }))
                .unwrap();
        assert!(merged("t", &json!({}), Some(&huge)).is_err());
    }
}
