//! Held tasks: `heartbeat` extends leases and answers continue / pause / stop;
//! `completeTasks` and `failTasks` finish tasks through [`finish`], which the lease sweeper
//! uses too. Every finishing call presents the task's current lease token: one that does
//! not (the lease expired and went to another worker, or the job ended) is refused for that
//! task and changes nothing, so a task is never finished twice.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use super::input::{Finish, HeartbeatRequest};
use super::retry::{Next, RetryRules};
use super::wakeup::{wake, wake_at};
use super::{store, DispatchError, Dispatcher};
use crate::model::dispatch::{
    FinishAnswer, Finished, HeartbeatAnswer, LeaseAnswer, LeaseVerdict, TaskResult,
};
use crate::model::{ErrorClass, JobStatus, LogLevel, TaskStatus};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::jobs::{self, LockedJob};
use crate::server::recovery::{self, FailureFacts};

#[derive(FromRow)]
struct Extended {
    id: Uuid,
    job_id: Uuid,
    name: String,
    job_status: JobStatus,
    deleting: bool,
}

pub async fn heartbeat(
    dispatcher: &Dispatcher,
    request: HeartbeatRequest,
) -> Result<HeartbeatAnswer, DispatchError> {
    request.check()?;
    let pool = &dispatcher.protocol_pool;
    let leases = &request.leases;
    let extended: Vec<Extended> = sqlx::query_as(store::HEARTBEAT_SQL)
        .bind(leases.iter().map(|l| l.task_id).collect::<Vec<_>>())
        .bind(leases.iter().map(|l| l.lease_token).collect::<Vec<_>>())
        .bind(
            leases
                .iter()
                .map(|l| l.progress.map(|p| p.get()))
                .collect::<Vec<_>>(),
        )
        .bind(
            leases
                .iter()
                .map(|l| l.phase.as_ref().map(|p| p.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(
            leases
                .iter()
                .map(|l| l.message.as_ref().map(|m| m.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(dispatcher.lease.as_secs_f64())
        .bind(TaskStatus::Running)
        .fetch_all(pool)
        .await?;
    let lease_expires_at = Utc::now() + Duration::from_std(dispatcher.lease).unwrap_or_default();
    let held: HashMap<Uuid, &Extended> = extended.iter().map(|e| (e.id, e)).collect();
    // Passed over because another change held the row: still theirs if the token is current
    // (extended by the next heartbeat).
    let passed: Vec<&super::input::LeaseReport> = leases
        .iter()
        .filter(|l| !held.contains_key(&l.task_id))
        .collect();
    let still_held: std::collections::HashSet<Uuid> = if passed.is_empty() {
        Default::default()
    } else {
        sqlx::query_scalar::<_, Uuid>(store::STILL_HELD_SQL)
            .bind(passed.iter().map(|l| l.task_id).collect::<Vec<_>>())
            .bind(passed.iter().map(|l| l.lease_token).collect::<Vec<_>>())
            .bind(TaskStatus::Running)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
    };
    let verdicts = leases
        .iter()
        .map(|lease| LeaseVerdict {
            task_id: lease.task_id,
            answer: match held.get(&lease.task_id) {
                Some(task) if task.deleting => LeaseAnswer::Stop,
                Some(task) if task.job_status == JobStatus::Paused => LeaseAnswer::Pause,
                Some(task) if JobStatus::HANDING_OUT.contains(&task.job_status) => {
                    LeaseAnswer::Continue
                }
                None if still_held.contains(&lease.task_id) => LeaseAnswer::Continue,
                _ => LeaseAnswer::Stop,
            },
        })
        .collect();

    // What the live tasks measured and printed, one statement each.
    let mut metrics = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut logs = (Vec::new(), Vec::new(), Vec::new());
    for lease in leases {
        let Some(task) = held.get(&lease.task_id) else {
            continue;
        };
        if let Some(m) = &lease.metrics {
            metrics.0.push(task.job_id);
            metrics.1.push(task.id);
            metrics.2.push(m.cpu_percent.map(|c| c.get()));
            metrics.3.push(m.memory_mb.map(|c| c.get()));
            metrics.4.push(m.items.map(|c| c.get()));
        }
        for line in &lease.log {
            logs.0.push(task.job_id);
            logs.1.push(task.name.as_str());
            logs.2.push(line.as_str());
        }
    }
    if !metrics.0.is_empty() {
        sqlx::query(store::INSERT_METRICS_SQL)
            .bind(request.worker_id.as_str())
            .bind(&metrics.0)
            .bind(&metrics.1)
            .bind(&metrics.2)
            .bind(&metrics.3)
            .bind(&metrics.4)
            .execute(pool)
            .await?;
    }
    if !logs.0.is_empty() {
        sqlx::query(store::INSERT_LOGS_SQL)
            .bind(LogLevel::Info)
            .bind(&logs.0)
            .bind(&logs.1)
            .bind(&logs.2)
            .execute(pool)
            .await?;
    }
    // The jobs follow what their tasks reported, where no one else holds them just now.
    let reported: BTreeSet<Uuid> = leases
        .iter()
        .filter(|l| l.progress.is_some() || l.phase.is_some())
        .filter_map(|l| held.get(&l.task_id).map(|t| t.job_id))
        .collect();
    if !reported.is_empty() {
        let mut tx = pool.begin().await?;
        let free: Vec<Uuid> = sqlx::query_scalar(store::LOCK_JOBS_NOWAIT_SQL)
            .bind(reported.into_iter().collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
        follow(&mut tx, &free).await?;
        tx.commit().await?;
    }
    sqlx::query(store::HEARD_WORKER_SQL)
        .bind(request.worker_id.as_str())
        .execute(pool)
        .await?;
    // Their progress, phase or samples: the live streams hear of it with the next send.
    dispatcher
        .changes
        .touch_all(held.values().map(|task| task.job_id));
    Ok(HeartbeatAnswer {
        leases: verdicts,
        lease_expires_at,
    })
}

#[derive(FromRow)]
struct Followed {
    id: Uuid,
    all_completed: bool,
}

/// The jobs' running tasks, progress and phase from their held tasks (the jobs are locked).
async fn follow(tx: &mut PgConnection, job_ids: &[Uuid]) -> Result<Vec<Followed>, sqlx::Error> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(store::FOLLOW_SQL)
        .bind(job_ids)
        .bind(TaskStatus::Running)
        .fetch_all(tx)
        .await
}

#[derive(FromRow)]
struct JobToFollow {
    #[sqlx(flatten)]
    locked: LockedJob,
    #[sqlx(flatten)]
    rules: RetryRules,
    /// At its limit before this call: a finished task frees a slot a claim may be
    /// waiting for.
    full: bool,
    /// Pending tasks with dependencies: a completion may make one ready.
    has_waiting_dependents: bool,
}

#[derive(FromRow)]
struct HeldTask {
    id: Uuid,
    job_id: Uuid,
    name: String,
    status: TaskStatus,
    lease_token: Option<Uuid>,
    attempt: i32,
    expired: bool,
}

/// Who is finishing tasks: a worker with its call, or the lease sweeper.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Finisher<'a> {
    Worker(&'static str),
    /// Fails only tasks whose lease is still past its time once locked (a heartbeat that
    /// got there first keeps its task).
    LeaseSweeper {
        holder: &'a str,
    },
}

/// `job_errors` rows as columns, for one `unnest`.
#[derive(Default)]
struct ErrorRows {
    jobs: Vec<Uuid>,
    tasks: Vec<String>,
    codes: Vec<String>,
    classes: Vec<ErrorClass>,
    messages: Vec<String>,
    stacks: Vec<Option<String>>,
}

#[derive(Default)]
struct Plan {
    /// Tasks and the lease tokens they were checked under.
    completes: (Vec<Uuid>, Vec<Uuid>),
    /// Task, seconds to wait, attempt given back, message.
    retries: (Vec<Uuid>, Vec<f64>, Vec<i32>, Vec<String>),
    fails: (Vec<Uuid>, Vec<String>),
    /// Jobs with a task failed for good by this call.
    failed_jobs: BTreeSet<Uuid>,
    errors: ErrorRows,
    error_counts: HashMap<Uuid, i32>,
    touched: BTreeSet<Uuid>,
    /// Jobs with a task pending again at once.
    released: BTreeSet<Uuid>,
    /// Queues to wake when a delayed retry's time comes.
    later: Vec<(String, std::time::Duration)>,
}

/// Completes or fails held tasks in one transaction: jobs locked in id order, then tasks
/// (in id order, or by the one fenced UPDATE of a call that only completes: the job locks
/// already keep other finishing calls out); each task decided on its own (refused,
/// completed, retried, failed); their jobs follow (a final failure fails a running job and
/// ends its other tasks; all completed completes it); an audit row when a task failed or
/// was retried; a wake-up for each queue that may have work again.
pub async fn finish(
    dispatcher: &Dispatcher,
    actor: &Actor,
    finisher: Finisher<'_>,
    finishes: Vec<Finish>,
) -> Result<FinishAnswer, DispatchError> {
    let pool = &dispatcher.protocol_pool;
    let ids: Vec<Uuid> = finishes.iter().map(|f| f.task_id).collect();
    let mut tx = pool.begin().await?;
    let jobs: Vec<JobToFollow> = sqlx::query_as(store::LOCK_JOBS_OF_TASKS_SQL)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    let jobs: HashMap<Uuid, JobToFollow> = jobs.into_iter().map(|j| (j.locked.id, j)).collect();
    let mut plan = Plan::default();
    let mut results = Vec::with_capacity(finishes.len());
    let only_completions =
        matches!(finisher, Finisher::Worker(_)) && finishes.iter().all(|f| f.failure.is_none());
    // The common call, a worker completing what it holds, decides nothing per task: one
    // statement completes the tasks whose token is current (the others are read only to
    // say why they were refused).
    let tasks: HashMap<Uuid, HeldTask> = if only_completions {
        let tokens: Vec<Uuid> = finishes.iter().map(|f| f.lease_token).collect();
        let completed: HashMap<Uuid, Uuid> = sqlx::query_as(store::COMPLETE_HELD_SQL)
            .bind(&ids)
            .bind(&tokens)
            .bind(TaskStatus::Completed)
            .bind(TaskStatus::Running)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let refused: Vec<Uuid> = ids
            .iter()
            .filter(|id| !completed.contains_key(id))
            .copied()
            .collect();
        let mut tasks = HashMap::new();
        if !refused.is_empty() {
            let rows: Vec<HeldTask> = sqlx::query_as(store::LOCK_TASKS_SQL)
                .bind(&refused)
                .fetch_all(&mut *tx)
                .await?;
            tasks.extend(rows.into_iter().map(|t| (t.id, t)));
        }
        for finish in &finishes {
            match completed.get(&finish.task_id) {
                Some(job_id) => {
                    plan.touched.insert(*job_id);
                    results.push(TaskResult {
                        task_id: finish.task_id,
                        status: 200,
                        result: Finished::Completed,
                        not_before: None,
                        error: None,
                    });
                }
                None => results.push(refusal(finish.task_id, tasks.get(&finish.task_id))),
            }
        }
        HashMap::new()
    } else {
        let tasks: Vec<HeldTask> = sqlx::query_as(store::LOCK_TASKS_SQL)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
        tasks.into_iter().map(|t| (t.id, t)).collect()
    };
    // The per-type retry configs of the codes this call fails tasks with.
    let mut codes: Vec<String> = finishes
        .iter()
        .filter_map(|f| {
            f.failure
                .as_ref()
                .map(|failure| failure.code.as_str().to_string())
        })
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let retry_configs = recovery::retry_configs(&mut tx, &codes).await?;
    let open_breakers = dispatcher.breaker.open(&mut tx, &codes).await?;
    for finish in finishes.into_iter().filter(|_| !only_completions) {
        let task = tasks.get(&finish.task_id);
        let (Some(task), Some(job)) = (task, task.and_then(|t| jobs.get(&t.job_id))) else {
            results.push(refusal(finish.task_id, None));
            continue;
        };
        if task.status != TaskStatus::Running || task.lease_token != Some(finish.lease_token) {
            results.push(refusal(finish.task_id, Some(task)));
            continue;
        }
        if matches!(finisher, Finisher::LeaseSweeper { .. }) && !task.expired {
            continue;
        }
        plan.touched.insert(job.locked.id);
        let Some(failure) = finish.failure else {
            plan.completes.0.push(task.id);
            plan.completes.1.push(finish.lease_token);
            results.push(TaskResult {
                task_id: task.id,
                status: 200,
                result: Finished::Completed,
                not_before: None,
                error: None,
            });
            continue;
        };
        let code = failure.code.as_str();
        let message = failure.message.as_str().to_string();
        plan.errors.jobs.push(job.locked.id);
        plan.errors.tasks.push(task.name.clone());
        plan.errors.codes.push(code.to_string());
        plan.errors.classes.push(ErrorClass::of_code(code));
        plan.errors.messages.push(message.clone());
        plan.errors
            .stacks
            .push(failure.stack.as_ref().map(|s| s.as_str().to_string()));
        *plan.error_counts.entry(job.locked.id).or_default() += 1;
        let facts = FailureFacts {
            kind: job.rules.kind,
            queue: &job.locked.queue,
            priority: job.rules.priority,
            attempt: task.attempt,
            error_type: code,
            message: &message,
            task_name: &task.name,
            product_id: job.rules.product_id.as_deref(),
            sending_group_id: job.rules.sending_group_id.as_deref(),
        };
        let next = job.rules.after_failure(
            &facts,
            failure.retryable,
            retry_configs.get(code),
            rand::random::<f64>(),
        );
        let paused = open_breakers.contains(code);
        let next = dispatcher.breaker.hold(next, paused);
        let result = match next {
            Next::Retry { after } => {
                plan.retries.0.push(task.id);
                plan.retries.1.push(after.as_secs_f64());
                plan.retries.2.push(0);
                plan.retries.3.push(if paused {
                    format!(
                        "{code}: {message} (retries of {code} paused: {} failures within {} s)",
                        dispatcher.breaker.failures,
                        dispatcher.breaker.window.as_secs()
                    )
                } else {
                    format!("{code}: {message}")
                });
                if after.is_zero() {
                    plan.released.insert(job.locked.id);
                } else {
                    plan.later.push((job.locked.queue.clone(), after));
                }
                Finished::Retrying
            }
            Next::Release => {
                plan.released.insert(job.locked.id);
                plan.retries.0.push(task.id);
                plan.retries.1.push(0.0);
                plan.retries.2.push(1);
                plan.retries.3.push(format!("{code}: {message}"));
                Finished::Retrying
            }
            Next::Fail => {
                plan.fails.0.push(task.id);
                plan.fails.1.push(format!("{code}: {message}"));
                plan.failed_jobs.insert(job.locked.id);
                Finished::Failed
            }
        };
        results.push(TaskResult {
            task_id: task.id,
            status: 200,
            result,
            not_before: None,
            error: None,
        });
    }

    let not_before = write_plan(&mut tx, &plan).await?;
    for result in &mut results {
        result.not_before = not_before.get(&result.task_id).copied();
    }
    if let Finisher::LeaseSweeper { holder } = finisher {
        for job_id in &plan.touched {
            let job = &jobs[job_id].locked;
            jobs::record_event(
                &mut tx,
                job.id,
                Some(job.status),
                job.status,
                actor,
                Some(&format!(
                    "the lease of {holder} ran out; its task counts as failed (LEASE_EXPIRED)"
                )),
            )
            .await?;
        }
    }
    let touched: Vec<Uuid> = plan.touched.iter().copied().collect();
    let action = match finisher {
        Finisher::Worker(call) => call,
        Finisher::LeaseSweeper { .. } => "leaseExpired",
    };
    let mut queues = BTreeSet::new();
    let released = &plan.released;
    for followed in follow(&mut tx, &touched).await? {
        let Some(job) = jobs.get(&followed.id) else {
            continue;
        };
        let to = match job.locked.status {
            JobStatus::Running if plan.failed_jobs.contains(&followed.id) => {
                Some(JobStatus::Failed)
            }
            JobStatus::Running if followed.all_completed => Some(JobStatus::Completed),
            _ => None,
        };
        match to {
            Some(to) => {
                let reason = if to == JobStatus::Failed {
                    "a task failed for good"
                } else {
                    "every task completed"
                };
                jobs::follow_tasks_to(&mut tx, actor, action, job.locked.clone(), to, reason)
                    .await?;
            }
            // Only a change a waiting claim could not have used before wakes it: a slot
            // freed in a full job, a dependency completed, a task released at once. (A
            // NOTIFY serialises commits in PostgreSQL; sent on every completion it held
            // single-task throughput to a few hundred a second.)
            None if JobStatus::HANDING_OUT.contains(&job.locked.status)
                && (job.full
                    || job.has_waiting_dependents
                    || released.contains(&job.locked.id)) =>
            {
                queues.insert(job.locked.queue.as_str());
            }
            None => {}
        }
    }
    // Work that went as planned (claims, heartbeats, completions) is on its tasks, not in
    // the audit log: at thousands a second it would bury the decisions people look for.
    // A failure, a retry and a lease taken back are recorded.
    if !plan.retries.0.is_empty() || !plan.fails.0.is_empty() {
        audit::record(
            &mut tx,
            actor,
            Event {
                action,
                target: None,
                details: json!({
                    "completed": plan.completes.0.len(),
                    "retried": plan.retries.0.len(),
                    "failed": plan.fails.0.len(),
                    "jobs": touched,
                }),
                outcome: Outcome::Success,
            },
        )
        .await?;
    }
    for queue in queues {
        wake(&mut tx, queue).await?;
    }
    tx.commit().await?;
    dispatcher.changes.touch_all(touched);
    for (queue, after) in plan.later {
        wake_at(pool, queue, after);
    }
    for result in &results {
        dispatcher.counts.finished(result.result);
    }
    Ok(FinishAnswer { results })
}

/// Why a finishing call's task was refused: unknown (404), or not held under this lease.
fn refusal(task_id: Uuid, task: Option<&HeldTask>) -> TaskResult {
    let (status, error) = match task {
        None => (404, "no such task".to_string()),
        Some(task) => (
            409,
            format!(
                "the task is {} and this lease is not its current one; nothing was changed",
                task.status
            ),
        ),
    };
    TaskResult {
        task_id,
        status,
        result: Finished::Refused,
        not_before: None,
        error: Some(error),
    }
}

/// Writes the plan; returns when each retried task may run again.
async fn write_plan(
    tx: &mut PgConnection,
    plan: &Plan,
) -> Result<HashMap<Uuid, DateTime<Utc>>, sqlx::Error> {
    let mut not_before = HashMap::new();
    if !plan.completes.0.is_empty() {
        sqlx::query(store::COMPLETE_HELD_SQL)
            .bind(&plan.completes.0)
            .bind(&plan.completes.1)
            .bind(TaskStatus::Completed)
            .bind(TaskStatus::Running)
            .execute(&mut *tx)
            .await?;
    }
    if !plan.retries.0.is_empty() {
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(store::RETRY_TASKS_SQL)
            .bind(&plan.retries.0)
            .bind(&plan.retries.1)
            .bind(&plan.retries.2)
            .bind(&plan.retries.3)
            .bind(TaskStatus::Pending)
            .fetch_all(&mut *tx)
            .await?;
        not_before.extend(rows);
    }
    if !plan.fails.0.is_empty() {
        sqlx::query(store::FAIL_TASKS_SQL)
            .bind(&plan.fails.0)
            .bind(&plan.fails.1)
            .bind(TaskStatus::Failed)
            .execute(&mut *tx)
            .await?;
    }
    if !plan.errors.jobs.is_empty() {
        let errors = &plan.errors;
        sqlx::query(store::INSERT_ERRORS_SQL)
            .bind(&errors.jobs)
            .bind(&errors.tasks)
            .bind(&errors.codes)
            .bind(&errors.classes)
            .bind(&errors.messages)
            .bind(&errors.stacks)
            .bind(LogLevel::Error)
            .execute(&mut *tx)
            .await?;
        let (jobs, counts): (Vec<Uuid>, Vec<i32>) = plan.error_counts.iter().unzip();
        sqlx::query(store::COUNT_ERRORS_SQL)
            .bind(&jobs)
            .bind(&counts)
            .execute(&mut *tx)
            .await?;
    }
    Ok(not_before)
}

/// One pass of the lease sweeper: every expired lease fails its task with `LEASE_EXPIRED`
/// (retried while attempts are left). Safe on every portal at once: each job is handled
/// under its row lock and each task fenced by the token read here.
pub async fn sweep_expired(dispatcher: &Dispatcher) -> Result<usize, DispatchError> {
    let job_ids: Vec<Uuid> = sqlx::query_scalar(store::EXPIRED_LEASES_SQL)
        .fetch_all(&dispatcher.protocol_pool)
        .await?;
    let mut swept = 0;
    for job_id in job_ids {
        let expired: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(store::EXPIRED_TASKS_SQL)
            .bind(job_id)
            .bind(TaskStatus::Running)
            .fetch_all(&dispatcher.protocol_pool)
            .await?;
        let mut by_holder: HashMap<String, Vec<Finish>> = HashMap::new();
        for (task_id, lease_token, holder) in expired {
            let holder = holder.unwrap_or_else(|| "a worker".into());
            let failure = super::input::TaskFailure::lease_expired(&holder);
            by_holder.entry(holder).or_default().push(Finish {
                task_id,
                lease_token,
                failure: Some(failure),
            });
        }
        for (holder, finishes) in by_holder {
            let answer = finish(
                dispatcher,
                &Actor::system(),
                Finisher::LeaseSweeper { holder: &holder },
                finishes,
            )
            .await?;
            swept += answer.results.iter().filter(|r| r.status == 200).count();
        }
    }
    Ok(swept)
}
