//! Reads of a job's tasks (`job_tasks`): their counts by status for `getJobInfo`, and the
//! first of them for a job's page.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::model::{JobTaskView, TaskCounts, TaskStatus};

const TASK_COUNTS_SQL: &str = "
    SELECT status, count(*) AS n FROM job_tasks WHERE job_id = $1 GROUP BY status";

const JOB_TASKS_SQL: &str = "
    SELECT name, status, attempt, depends_on, articles, clusters, message, started_at, finished_at
    FROM job_tasks WHERE job_id = $1 ORDER BY seq LIMIT $2";

pub async fn task_counts(pool: &PgPool, job_id: Uuid) -> Result<TaskCounts, sqlx::Error> {
    let rows: Vec<(TaskStatus, i64)> = sqlx::query_as(TASK_COUNTS_SQL)
        .bind(job_id)
        .fetch_all(pool)
        .await?;
    let mut counts = TaskCounts::default();
    for (status, n) in rows {
        counts.total += n;
        *match status {
            TaskStatus::Pending => &mut counts.pending,
            TaskStatus::Running => &mut counts.running,
            TaskStatus::Completed => &mut counts.completed,
            TaskStatus::Failed => &mut counts.failed,
            TaskStatus::Cancelled => &mut counts.cancelled,
        } = n;
    }
    Ok(counts)
}

#[derive(FromRow)]
struct TaskRow {
    name: String,
    status: TaskStatus,
    attempt: i32,
    depends_on: Vec<String>,
    articles: i64,
    clusters: i64,
    message: Option<String>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// The first `limit` tasks of a job, in the order they were added.
pub async fn job_tasks(
    pool: &PgPool,
    job_id: Uuid,
    limit: i64,
) -> Result<Vec<JobTaskView>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(JOB_TASKS_SQL)
        .bind(job_id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| JobTaskView {
            name: t.name,
            status: t.status,
            attempt: t.attempt,
            depends_on: t.depends_on,
            articles: t.articles,
            clusters: t.clusters,
            message: t.message,
            started_at: t.started_at,
            finished_at: t.finished_at,
        })
        .collect())
}
