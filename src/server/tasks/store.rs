//! The tasks domain's SQL. Batches travel as parallel arrays through `unnest`, so a call of
//! a thousand tasks is one statement.

pub const ADD_TASKS_SQL: &str = "
    INSERT INTO job_tasks (job_id, name, payload, depends_on)
    SELECT $1, t.name, t.payload,
           ARRAY(SELECT jsonb_array_elements_text(t.depends_on))
    FROM unnest($2::text[], $3::jsonb[], $4::jsonb[]) AS t(name, payload, depends_on)";

/// How many tasks the job has, and which of the names `$2` (a call's new names and the
/// dependencies it names) it has already.
pub const KNOWN_TASKS_SQL: &str = "
    SELECT count(*) AS total,
           coalesce(array_agg(name) FILTER (WHERE name = ANY($2)), '{}') AS names
    FROM job_tasks WHERE job_id = $1";

pub const LOCK_TASKS_SQL: &str = "
    SELECT name, status FROM job_tasks WHERE job_id = $1 AND name = ANY($2) FOR UPDATE";

/// `$7` lists the finished statuses and `$8` is `TaskStatus::ATTEMPT_STARTS`: entering it
/// starts an attempt, a finished status stamps `finished_at`.
pub const UPDATE_TASKS_SQL: &str = "
    UPDATE job_tasks t SET
        status = u.status,
        attempt = t.attempt + (u.status = $8 AND t.status <> $8)::int,
        started_at = CASE WHEN u.status = $8 AND t.status <> $8 THEN now() ELSE t.started_at END,
        finished_at = CASE WHEN u.status = ANY($7) THEN coalesce(t.finished_at, now()) ELSE NULL END,
        articles = coalesce(u.articles, t.articles),
        clusters = coalesce(u.clusters, t.clusters),
        message = coalesce(u.message, t.message),
        updated_at = now()
    FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
         AS u(name, status, articles, clusters, message)
    WHERE t.job_id = $1 AND t.name = u.name";

pub const INSERT_TASK_LOG_SQL: &str = "
    INSERT INTO job_logs (job_id, task_name, level, message) VALUES ($1, $2, $4, $3)";

/// A job's progress from its tasks' counts `c` (`completed`, `total`, and `running_progress`,
/// the sum of what running tasks reported): the one formula, for reported and dispatched
/// jobs alike.
macro_rules! progress_from_tasks {
    () => {
        "CASE WHEN c.total = 0 THEN j.progress_percentage
              ELSE round((100.0 * c.completed + c.running_progress::numeric) / c.total, 1) END"
    };
}
pub(crate) use progress_from_tasks;

/// Recomputes the job's active tasks and progress from its tasks.
pub const FOLLOW_TASKS_SQL: &str = concat!(
    "
    WITH c AS (
        SELECT count(*) FILTER (WHERE status = $2) AS running,
               count(*) FILTER (WHERE status = $3) AS completed,
               count(*) AS total,
               coalesce(sum(progress) FILTER (WHERE status = $2), 0) AS running_progress
        FROM job_tasks WHERE job_id = $1
    )
    UPDATE jobs j SET
        active_tasks = c.running,
        progress_percentage = ",
    progress_from_tasks!(),
    ",
        updated_at = now()
    FROM c WHERE j.id = $1
    RETURNING j.active_tasks, j.progress_percentage"
);

pub const RECORD_ARTICLES_SQL: &str = "
    INSERT INTO recap_job_articles (job_id, feed_id, original_user_id, genre, article_id)
    SELECT $1, a.feed_id, a.original_user_id, a.genre, a.article_id
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
         AS a(feed_id, original_user_id, genre, article_id)";
