//! A job's tasks, seed 001. Reported pipelines on `POST /task-operations`: `addTasks`,
//! `updateTasks` and `recordArticles`. Tables: `job_tasks`, `recap_job_articles`. Each call
//! runs under its job's row lock (`jobs::in_locked_job`), like every job change, so a
//! deleted job answers 410 and a finished one 409. Dispatched work (claim, heartbeat) will
//! join these routes.

pub mod input;
mod read;
pub(crate) mod store;

pub use read::{job_tasks, task_counts};

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use self::input::{
    check_tasks, names_to_look_up, NewArticles, NewTask, NewTasks, TaskOperation, TaskUpdates,
};
use crate::model::dispatch::{Claimed, FinishAnswer, HeartbeatAnswer};
use crate::model::{JobDriver, JobStatus, LogLevel, TaskCall, TaskStatus, JOB_LIMITS};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::dispatch::leases::{self, Finisher};
use crate::server::dispatch::{self, DispatchError, Dispatcher};
use crate::server::failure::{DomainError, Failure, Refusal};
use crate::server::input::InvalidInput;
use crate::server::jobs::{in_locked_job, list, record_error, JobError, JobScoped, LockedJob};
use crate::server::monitoring::{self, MetricsReported};

/// What a task operation can refuse; the job's own refusals (not found, gone, finished)
/// come through as [`TaskError::Job`].
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The body is well formed but names a task the job does not have.
    #[error("{message}")]
    Unknown {
        field: Cow<'static, str>,
        message: Cow<'static, str>,
    },
    #[error("task {task:?} is {current}; it may become {}", list(.allowed))]
    Transition {
        task: String,
        current: TaskStatus,
        allowed: &'static [TaskStatus],
    },
    /// `updateTasks` on a dispatched job: its workers drive its tasks.
    #[error(
        "job {0} is dispatched: its tasks are driven by workers (claimTasks), not updateTasks"
    )]
    Dispatched(Uuid),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl JobScoped for TaskError {
    fn is_gone(&self) -> bool {
        matches!(self, TaskError::Job(error) if error.is_gone())
    }
}

impl TaskError {
    fn is_refusal(&self) -> bool {
        match self {
            TaskError::Transition { .. } | TaskError::Dispatched(_) => true,
            TaskError::Job(error) => error.is_refusal(),
            _ => false,
        }
    }
}

impl DomainError for TaskError {
    fn failure(self) -> Failure {
        let message = self.to_string();
        match self {
            TaskError::Invalid(error) => {
                Refusal::new(StatusCode::BAD_REQUEST, message).field(error.field)
            }
            TaskError::Unknown { field, .. } => {
                Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, message).field(field)
            }
            TaskError::Transition {
                task,
                current,
                allowed,
            } => Refusal::new(StatusCode::CONFLICT, message)
                .details(json!({ "task": task, "current_status": current, "allowed": allowed })),
            TaskError::Dispatched(_) => Refusal::new(StatusCode::CONFLICT, message),
            TaskError::Job(error) => return error.failure(),
            TaskError::Dispatch(error) => return error.failure(),
            TaskError::Database(error) => return Failure::Database(error),
        }
        .into()
    }
}

/// What every task operation answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TaskAnswer {
    Changed(TasksChanged),
    Articles(ArticlesRecorded),
    Claimed(Claimed),
    Heartbeat(HeartbeatAnswer),
    Finished(FinishAnswer),
    Metrics(MetricsReported),
}

impl TaskAnswer {
    /// A finishing call whose every task was refused answers with the refusal's status.
    pub fn status(&self) -> StatusCode {
        match self {
            TaskAnswer::Finished(answer) => {
                StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::OK)
            }
            _ => StatusCode::OK,
        }
    }
}

/// The one door of `/task-operations`: the permission, the operation, and an audit row for
/// a refusal (403, 409).
pub async fn perform(
    dispatcher: &Dispatcher,
    actor: &Actor,
    operation: TaskOperation,
) -> Result<TaskAnswer, TaskError> {
    let pool = &dispatcher.pool;
    let (name, job_id) = (operation.name(), operation.job_id());
    let result = async {
        let needs = operation.permission();
        if !actor.may(needs) {
            return Err(TaskError::Job(JobError::Forbidden {
                role: actor.role,
                needs,
                current: None,
                wanted: None,
            }));
        }
        Ok(match operation {
            TaskOperation::AddTasks(new) => TaskAnswer::Changed(add_tasks(pool, actor, new).await?),
            TaskOperation::UpdateTasks(updates) => {
                TaskAnswer::Changed(update_tasks(pool, actor, updates).await?)
            }
            TaskOperation::RecordArticles(batch) => {
                TaskAnswer::Articles(record_articles(pool, actor, batch).await?)
            }
            TaskOperation::ClaimTasks(request) => {
                TaskAnswer::Claimed(dispatch::claim::claim(dispatcher, actor, request).await?)
            }
            TaskOperation::Heartbeat(request) => {
                TaskAnswer::Heartbeat(dispatch::leases::heartbeat(dispatcher, request).await?)
            }
            TaskOperation::CompleteTasks(request) => {
                let finishes = request.into_finishes()?;
                TaskAnswer::Finished(
                    leases::finish(dispatcher, actor, Finisher::Worker(name), finishes).await?,
                )
            }
            TaskOperation::ReportMetrics(request) => {
                TaskAnswer::Metrics(monitoring::report_metrics(pool, request).await?)
            }
            TaskOperation::FailTasks(request) => {
                let finishes = request.into_finishes()?;
                TaskAnswer::Finished(
                    leases::finish(dispatcher, actor, Finisher::Worker(name), finishes).await?,
                )
            }
        })
    }
    .await;
    match &result {
        // Committed: the live streams hear of it with the next send (heartbeats and
        // finishing calls note their jobs in `dispatch::leases`).
        Ok(TaskAnswer::Claimed(claimed)) => dispatcher
            .changes
            .touch_all(claimed.tasks.iter().map(|t| t.job_id)),
        Ok(_) => {
            if let Some(id) = job_id {
                dispatcher.changes.touch(id);
            }
        }
        // A deletion a pipeline's call completed (`jobs::in_locked_job`) is news too.
        Err(TaskError::Job(JobError::Gone { job_id, .. })) => dispatcher.changes.touch(*job_id),
        Err(error) if error.is_refusal() => {
            let target = job_id.map(|id| id.to_string());
            audit::record_refusal(pool, actor, name, target.as_deref(), &error.to_string()).await;
        }
        Err(_) => {}
    }
    result
}

/// Inserts new tasks of a job (already checked) in one statement.
pub async fn insert_tasks(
    tx: &mut PgConnection,
    job_id: Uuid,
    tasks: &[NewTask],
) -> Result<(), sqlx::Error> {
    if tasks.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    let payloads: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            t.payload
                .as_ref()
                .map_or_else(|| json!({}), |p| p.to_value())
        })
        .collect();
    // Postgres has no arrays of arrays of varying length: dependencies travel as JSON.
    let depends_on: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| json!(t.depends_on.iter().map(|d| d.as_str()).collect::<Vec<_>>()))
        .collect();
    sqlx::query(store::ADD_TASKS_SQL)
        .bind(job_id)
        .bind(&names)
        .bind(&payloads)
        .bind(&depends_on)
        .execute(tx)
        .await?;
    Ok(())
}

/// Tasks change only while the job's run has not ended.
fn still_open(job: &LockedJob) -> Result<(), TaskError> {
    if job.status.is_finished() {
        return Err(JobError::transition(job.status, None).into());
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct TasksChanged {
    pub job_id: Uuid,
    pub tasks: usize,
    pub job_status: JobStatus,
    pub active_tasks: i32,
    pub progress_percentage: f64,
}

#[derive(sqlx::FromRow)]
struct Known {
    total: i64,
    names: Vec<String>,
}

/// `addTasks`: more tasks for a job, with dependencies on its tasks old or new. Only the
/// existing tasks the call names are read, not the job's whole graph.
pub async fn add_tasks(
    pool: &PgPool,
    actor: &Actor,
    new: NewTasks,
) -> Result<TasksChanged, TaskError> {
    if new.tasks.is_empty() {
        return Err(InvalidInput::new("data.tasks", "must not be empty").into());
    }
    in_locked_job(pool, new.job_id, actor, async |tx, job| {
        still_open(&job)?;
        let known: Known = sqlx::query_as(store::KNOWN_TASKS_SQL)
            .bind(job.id)
            .bind(names_to_look_up(&new.tasks))
            .fetch_one(&mut *tx)
            .await?;
        let existing: HashSet<String> = known.names.into_iter().collect();
        check_tasks("data.tasks", &new.tasks, &existing)?;
        let total = known.total as usize + new.tasks.len();
        if total > JOB_LIMITS.tasks_per_job {
            return Err(InvalidInput::new(
                "data.tasks",
                format!(
                    "a job has at most {} tasks; this would make {total}",
                    JOB_LIMITS.tasks_per_job
                ),
            )
            .into());
        }
        insert_tasks(tx, job.id, &new.tasks).await?;
        let changed = follow_tasks(tx, &job, new.tasks.len()).await?;
        if job.driver == JobDriver::Dispatched {
            dispatch::wake(tx, &job.queue).await?;
        }
        audit_call(
            tx,
            actor,
            TaskCall::AddTasks,
            job.id,
            json!({ "tasks": new.tasks.len() }),
        )
        .await?;
        Ok(changed)
    })
    .await
}

#[derive(sqlx::FromRow)]
struct TaskState {
    name: String,
    status: TaskStatus,
}

/// `updateTasks`: many tasks per call, all or none: status along the task machine,
/// counters, a message for the job's log, an error for its error list.
pub async fn update_tasks(
    pool: &PgPool,
    actor: &Actor,
    updates: TaskUpdates,
) -> Result<TasksChanged, TaskError> {
    updates.check()?;
    in_locked_job(pool, updates.job_id, actor, async |tx, job| {
        still_open(&job)?;
        if job.driver == JobDriver::Dispatched {
            return Err(TaskError::Dispatched(job.id));
        }
        let names: Vec<&str> = updates.tasks.iter().map(|t| t.name.as_str()).collect();
        let current: Vec<TaskState> = sqlx::query_as(store::LOCK_TASKS_SQL)
            .bind(job.id)
            .bind(&names)
            .fetch_all(&mut *tx)
            .await?;
        let current: HashMap<String, TaskStatus> =
            current.into_iter().map(|t| (t.name, t.status)).collect();
        let mut statuses = Vec::with_capacity(names.len());
        for (i, update) in updates.tasks.iter().enumerate() {
            let Some(&from) = current.get(update.name.as_str()) else {
                return Err(TaskError::Unknown {
                    field: format!("data.tasks[{i}].name").into(),
                    message: format!("the job has no task {:?}", update.name.as_str()).into(),
                });
            };
            let to = update.status.unwrap_or(from);
            if to != from && !from.may_become(to) {
                return Err(TaskError::Transition {
                    task: update.name.as_str().to_string(),
                    current: from,
                    allowed: from.next(),
                });
            }
            statuses.push(to);
        }
        let column = |f: fn(&input::TaskUpdate) -> Option<i64>| {
            updates.tasks.iter().map(f).collect::<Vec<_>>()
        };
        sqlx::query(store::UPDATE_TASKS_SQL)
            .bind(job.id)
            .bind(&names)
            .bind(&statuses)
            .bind(column(|t| t.articles.map(|a| a.get())))
            .bind(column(|t| t.clusters.map(|c| c.get())))
            .bind(
                updates
                    .tasks
                    .iter()
                    .map(|t| t.message.as_ref().map(|m| m.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(TaskStatus::finished())
            .bind(TaskStatus::ATTEMPT_STARTS)
            .execute(&mut *tx)
            .await?;
        for update in &updates.tasks {
            if let Some(message) = &update.message {
                sqlx::query(store::INSERT_TASK_LOG_SQL)
                    .bind(job.id)
                    .bind(update.name.as_str())
                    .bind(message.as_str())
                    .bind(LogLevel::Info)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(error) = &update.error_details {
                record_error(
                    tx,
                    job.id,
                    Some(update.name.as_str()),
                    error.code.as_str(),
                    error.message.as_str(),
                    error.stack.as_ref().map(|s| s.as_str()),
                )
                .await?;
            }
        }
        let changed = follow_tasks(tx, &job, updates.tasks.len()).await?;
        audit_call(
            tx,
            actor,
            TaskCall::UpdateTasks,
            job.id,
            json!({ "tasks": names }),
        )
        .await?;
        Ok(changed)
    })
    .await
}

#[derive(Debug, Serialize)]
pub struct ArticlesRecorded {
    pub job_id: Uuid,
    pub recorded: usize,
}

/// `recordArticles`: a batch of seed 002's articles, with their feed and user, in one
/// statement.
pub async fn record_articles(
    pool: &PgPool,
    actor: &Actor,
    batch: NewArticles,
) -> Result<ArticlesRecorded, TaskError> {
    batch.check()?;
    in_locked_job(pool, batch.job_id, actor, async |tx, job| {
        still_open(&job)?;
        let column = |f: fn(&input::Article) -> Option<&str>| {
            batch.articles.iter().map(f).collect::<Vec<_>>()
        };
        sqlx::query(store::RECORD_ARTICLES_SQL)
            .bind(job.id)
            .bind(column(|a| Some(a.feed_id.as_str())))
            .bind(column(|a| Some(a.original_user_id.as_str())))
            .bind(column(|a| Some(a.genre.as_str())))
            .bind(column(|a| a.article_id.as_ref().map(|i| i.as_str())))
            .execute(&mut *tx)
            .await?;
        audit_call(
            tx,
            actor,
            TaskCall::RecordArticles,
            job.id,
            json!({ "articles": batch.articles.len() }),
        )
        .await?;
        Ok(ArticlesRecorded {
            job_id: job.id,
            recorded: batch.articles.len(),
        })
    })
    .await
}

/// The job's active tasks and progress follow its tasks (a pipeline's own
/// `detailed_status` overwrites them until the next task change).
async fn follow_tasks(
    tx: &mut PgConnection,
    job: &LockedJob,
    tasks: usize,
) -> Result<TasksChanged, sqlx::Error> {
    let (active_tasks, progress_percentage): (i32, f64) = sqlx::query_as(store::FOLLOW_TASKS_SQL)
        .bind(job.id)
        .bind(TaskStatus::Running)
        .bind(TaskStatus::Completed)
        .fetch_one(tx)
        .await?;
    Ok(TasksChanged {
        job_id: job.id,
        tasks,
        job_status: job.status,
        active_tasks,
        progress_percentage,
    })
}

async fn audit_call(
    tx: &mut PgConnection,
    actor: &Actor,
    call: TaskCall,
    job_id: Uuid,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        actor,
        Event {
            action: call.as_str(),
            target: Some(&job_id.to_string()),
            details,
            outcome: Outcome::Success,
        },
    )
    .await
}
