//! Reported pipelines on `POST /task-operations` (seed 001 names the function): `addTasks`,
//! `updateTasks` and `recordArticles`. Tables: `job_tasks`, `recap_job_articles`. Each call
//! takes its job's row lock first, like every job change, so a deleted job answers 410 and
//! a finished one 409. Dispatched work (claim, heartbeat) will join these routes.

mod store;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{JobStatus, TaskStatus};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::jobs::input::{check_tasks, NewArticles, NewTask, NewTasks, TaskUpdates};
use crate::server::jobs::{lock_job, record_error, JobError, LockedJob};

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
        .map(|t| serde_json::Value::Object(t.payload.clone().unwrap_or_default()))
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

async fn lock_open_job(
    tx: &mut PgConnection,
    job_id: Uuid,
    actor: &Actor,
) -> Result<LockedJob, JobError> {
    let job = lock_job(tx, job_id, actor).await?;
    if job.status.is_finished() {
        return Err(JobError::Transition {
            current: job.status,
            allowed: job.status.next(),
            wanted: None,
        });
    }
    Ok(job)
}

/// Runs `work` in a transaction under the job's lock; a `Gone` (which may have removed the
/// job) is committed, any other error rolls everything back.
macro_rules! in_job_tx {
    ($pool:expr, $job_id:expr, $actor:expr, |$tx:ident, $job:ident| $work:expr) => {{
        let mut tx = $pool.begin().await?;
        let result = async {
            let $job = lock_open_job(&mut tx, $job_id, $actor).await?;
            let $tx = &mut *tx;
            $work
        }
        .await;
        match result {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(error @ JobError::Gone { .. }) => {
                tx.commit().await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }};
}

#[derive(Debug, Serialize)]
pub struct TasksChanged {
    pub job_id: Uuid,
    pub tasks: usize,
    pub job_status: JobStatus,
    pub active_tasks: i32,
    pub progress_percentage: f64,
}

/// `addTasks`: more tasks for a job, with dependencies on its tasks old or new.
pub async fn add_tasks(
    pool: &PgPool,
    actor: &Actor,
    new: NewTasks,
) -> Result<TasksChanged, JobError> {
    in_job_tx!(pool, new.job_id, actor, |tx, job| {
        let existing: Vec<(String, Vec<String>)> = sqlx::query_as(store::TASK_GRAPH_SQL)
            .bind(job.id)
            .fetch_all(&mut *tx)
            .await?;
        let existing: HashMap<String, Vec<String>> = existing.into_iter().collect();
        check_tasks("data.tasks", &new.tasks, &existing)?;
        if new.tasks.is_empty() {
            return Err(JobError::invalid("data.tasks", "must not be empty"));
        }
        insert_tasks(tx, job.id, &new.tasks).await?;
        let changed = follow_tasks(tx, &job, new.tasks.len()).await?;
        audit_call(
            tx,
            actor,
            "addTasks",
            job.id,
            json!({ "tasks": new.tasks.len() }),
        )
        .await?;
        Ok(changed)
    })
}

#[derive(sqlx::FromRow)]
struct TaskState {
    name: String,
    #[sqlx(try_from = "String")]
    status: TaskStatus,
}

/// `updateTasks`: many tasks per call, all or none: status along the task machine,
/// counters, a message for the job's log, an error for its error list.
pub async fn update_tasks(
    pool: &PgPool,
    actor: &Actor,
    updates: TaskUpdates,
) -> Result<TasksChanged, JobError> {
    updates.check()?;
    in_job_tx!(pool, updates.job_id, actor, |tx, job| {
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
                return Err(JobError::Unknown {
                    field: format!("data.tasks[{i}].name").into(),
                    message: format!("the job has no task {:?}", update.name.as_str()).into(),
                });
            };
            let to = update.status.unwrap_or(from);
            if to != from && !from.may_become(to) {
                return Err(JobError::TaskTransition {
                    task: update.name.as_str().to_string(),
                    current: from,
                    allowed: from.next(),
                });
            }
            statuses.push(to.as_str());
        }
        sqlx::query(store::UPDATE_TASKS_SQL)
            .bind(job.id)
            .bind(&names)
            .bind(&statuses)
            .bind(
                updates
                    .tasks
                    .iter()
                    .map(|t| t.articles.map(|a| a.get()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                updates
                    .tasks
                    .iter()
                    .map(|t| t.clusters.map(|c| c.get()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                updates
                    .tasks
                    .iter()
                    .map(|t| t.message.as_ref().map(|m| m.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                TaskStatus::ALL
                    .into_iter()
                    .filter(|s| s.is_finished())
                    .map(TaskStatus::as_str)
                    .collect::<Vec<_>>(),
            )
            .bind(TaskStatus::Running.as_str())
            .execute(&mut *tx)
            .await?;
        for update in &updates.tasks {
            if let Some(message) = &update.message {
                sqlx::query(store::INSERT_TASK_LOG_SQL)
                    .bind(job.id)
                    .bind(update.name.as_str())
                    .bind(message.as_str())
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
        audit_call(tx, actor, "updateTasks", job.id, json!({ "tasks": names })).await?;
        Ok(changed)
    })
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
) -> Result<ArticlesRecorded, JobError> {
    batch.check()?;
    in_job_tx!(pool, batch.job_id, actor, |tx, job| {
        let column = |f: fn(&crate::server::jobs::input::Article) -> Option<&str>| {
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
            "recordArticles",
            job.id,
            json!({ "articles": batch.articles.len() }),
        )
        .await?;
        Ok(ArticlesRecorded {
            job_id: job.id,
            recorded: batch.articles.len(),
        })
    })
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
        .bind(TaskStatus::Running.as_str())
        .bind(TaskStatus::Completed.as_str())
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
    action: &'static str,
    job_id: Uuid,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        actor,
        Event {
            action,
            target: Some(&job_id.to_string()),
            details,
            outcome: Outcome::Success,
        },
    )
    .await
}
