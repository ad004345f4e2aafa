//! The recovery domain's SQL (tables `retry_configs`, `error_records`; the records are
//! written by the triggers of migration `recovery`).

/// One config per error type: a new one, or the old one replaced whole. `created` tells
/// which (`xmax` is 0 on a row this statement inserted).
pub const CONFIGURE_RETRY_SQL: &str = "
    INSERT INTO retry_configs (error_type, max_attempts, initial_delay, max_delay, backoff_factor,
                               retry_conditions, updated_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (error_type) DO UPDATE SET
        max_attempts = EXCLUDED.max_attempts, initial_delay = EXCLUDED.initial_delay,
        max_delay = EXCLUDED.max_delay, backoff_factor = EXCLUDED.backoff_factor,
        retry_conditions = EXCLUDED.retry_conditions, updated_by = EXCLUDED.updated_by,
        updated_at = now()
    RETURNING updated_at, xmax = 0 AS created";

/// The configs of the codes a finishing call failed with.
pub const RETRY_CONFIGS_SQL: &str = "
    SELECT error_type, max_attempts, initial_delay, max_delay, backoff_factor, retry_conditions
    FROM retry_configs WHERE error_type = ANY($1)";

/// A record, to find its job before the job is locked.
pub const RECORD_SQL: &str = "
    SELECT id, job_id, task_id, job_status_id, error_type, error_message, recovery_status,
           recovery_attempts
    FROM error_records WHERE id = $1";

/// The same record under the job's lock: a concurrent recovery that got there first has
/// already committed its status.
pub const LOCK_RECORD_SQL: &str = "
    SELECT id, job_id, task_id, job_status_id, error_type, error_message, recovery_status,
           recovery_attempts
    FROM error_records WHERE id = $1 FOR UPDATE";

/// What retry conditions and the attempt rule read of the locked job.
pub const JOB_FACTS_SQL: &str = "
    SELECT kind, queue, priority, product_id, sending_group_id, max_attempts, driver
    FROM jobs WHERE id = $1";

/// The job's task graph, locked in id order (as every task lock is taken).
pub const JOB_TASKS_SQL: &str = "
    SELECT id, seq, name, status, depends_on, attempt, payload
    FROM job_tasks WHERE job_id = $1 ORDER BY id FOR UPDATE";

/// The re-run set, pending again with its attempts kept and its payload merged. `$3`
/// pending.
pub const RERUN_TASKS_SQL: &str = "
    UPDATE job_tasks t SET
        status = $3, payload = i.payload, finished_at = NULL, not_before = NULL,
        lease_token = NULL, leased_until = NULL, progress = NULL, updated_at = now()
    FROM unnest($1::uuid[], $2::jsonb[]) AS i(id, payload)
    WHERE t.id = i.id";

/// `$2` in_progress; `$3` the attempt, appended.
pub const START_RECOVERY_SQL: &str = "
    UPDATE error_records SET recovery_status = $2, recovery_attempts = recovery_attempts || $3
    WHERE id = $1
    RETURNING recovery_status, recovery_attempts";

/// The error rollups as a read sees them: folded rows and the deltas not folded yet
/// (`recovery::rollups`), summed by the query around it.
macro_rules! error_rollups {
    () => {
        "(SELECT hour, error_type, fingerprint, pattern, errors, recovered, failed, attempted,
                 recovered_attempts, first_at, last_at FROM error_rollups
          UNION ALL
          SELECT hour, error_type, fingerprint, pattern, errors, recovered, failed, attempted,
                 recovered_attempts, first_at, last_at FROM error_rollup_deltas) r"
    };
}

/// Per error type over the period (`$1`, `$2`) and the one before it (`$3`), from the hourly
/// rollups; `$4` the types asked for (empty: all). Largest first, at most 200 types, each
/// row with the period's total over every type.
pub const TYPES_FROM_ROLLUPS_SQL: &str = concat!(
    "
    WITH t AS (
        SELECT error_type,
               coalesce(sum(errors) FILTER (WHERE hour >= $1), 0)::int8 AS errors,
               coalesce(sum(recovered) FILTER (WHERE hour >= $1), 0)::int8 AS recovered,
               coalesce(sum(failed) FILTER (WHERE hour >= $1), 0)::int8 AS failed,
               coalesce(sum(attempted) FILTER (WHERE hour >= $1), 0)::int8 AS attempted,
               coalesce(sum(recovered_attempts) FILTER (WHERE hour >= $1), 0)::int8 AS recovered_attempts,
               coalesce(sum(errors) FILTER (WHERE hour < $1), 0)::int8 AS previous
        FROM ",
    error_rollups!(),
    "
        WHERE hour >= $3 AND hour < $2 AND (cardinality($4::text[]) = 0 OR error_type = ANY($4))
        GROUP BY error_type
    )
    SELECT *, sum(errors) OVER ()::int8 AS total, sum(previous) OVER ()::int8 AS previous_total
    FROM t ORDER BY errors DESC, error_type LIMIT 200"
);

/// The same per fingerprint, the 20 largest of the period.
pub const PATTERNS_FROM_ROLLUPS_SQL: &str = concat!(
    "
    SELECT error_type, fingerprint, max(pattern) AS pattern,
           coalesce(sum(errors) FILTER (WHERE hour >= $1), 0)::int8 AS errors,
           coalesce(sum(errors) FILTER (WHERE hour < $1), 0)::int8 AS previous,
           min(first_at) FILTER (WHERE hour >= $1) AS first_at,
           max(last_at) FILTER (WHERE hour >= $1) AS last_at
    FROM ",
    error_rollups!(),
    "
    WHERE hour >= $3 AND hour < $2 AND (cardinality($4::text[]) = 0 OR error_type = ANY($4))
    GROUP BY error_type, fingerprint
    HAVING sum(errors) FILTER (WHERE hour >= $1) > 0
    ORDER BY errors DESC, fingerprint LIMIT 20"
);

/// For `job_ids` (`$5`): the same two answers from those jobs' records.
pub const TYPES_FROM_RECORDS_SQL: &str = "
    WITH t AS (
        SELECT error_type,
               count(*) FILTER (WHERE at >= $1)::int8 AS errors,
               count(*) FILTER (WHERE at >= $1 AND recovery_status = 'recovered')::int8 AS recovered,
               count(*) FILTER (WHERE at >= $1 AND recovery_status = 'failed')::int8 AS failed,
               count(recovered_attempt) FILTER (WHERE at >= $1 AND recovery_status = 'recovered')::int8 AS attempted,
               coalesce(sum(recovered_attempt) FILTER (WHERE at >= $1 AND recovery_status = 'recovered'), 0)::int8 AS recovered_attempts,
               count(*) FILTER (WHERE at < $1)::int8 AS previous
        FROM error_records
        WHERE job_id = ANY($5) AND at >= $3 AND at < $2
          AND (cardinality($4::text[]) = 0 OR error_type = ANY($4))
        GROUP BY error_type
    )
    SELECT *, sum(errors) OVER ()::int8 AS total, sum(previous) OVER ()::int8 AS previous_total
    FROM t ORDER BY errors DESC, error_type LIMIT 200";

pub const PATTERNS_FROM_RECORDS_SQL: &str = "
    SELECT error_type, fingerprint, min(error_pattern(error_message)) AS pattern,
           count(*) FILTER (WHERE at >= $1)::int8 AS errors,
           count(*) FILTER (WHERE at < $1)::int8 AS previous,
           min(at) FILTER (WHERE at >= $1) AS first_at,
           max(at) FILTER (WHERE at >= $1) AS last_at
    FROM error_records
    WHERE job_id = ANY($5) AND at >= $3 AND at < $2
      AND (cardinality($4::text[]) = 0 OR error_type = ANY($4))
    GROUP BY error_type, fingerprint
    HAVING count(*) FILTER (WHERE at >= $1) > 0
    ORDER BY errors DESC, fingerprint LIMIT 20";

/// Attempts completed and failed per worker in the period, the 20 with most failures, each
/// with the failures of every worker.
pub const WORKERS_SQL: &str = "
    WITH w AS (
        SELECT worker_id, sum(completed)::int8 AS completed, sum(failed)::int8 AS failed
        FROM (SELECT hour, worker_id, completed, failed FROM worker_task_rollups
              UNION ALL
              SELECT hour, worker_id, completed, failed FROM worker_rollup_deltas) r
        WHERE hour >= $1 AND hour < $2
        GROUP BY worker_id
    )
    SELECT *, sum(failed) OVER ()::int8 AS all_failed FROM w
    ORDER BY failed DESC, worker_id LIMIT 20";

/// The types that have a stored retry config.
pub const CONFIGURED_TYPES_SQL: &str =
    "SELECT error_type FROM retry_configs WHERE error_type = ANY($1)";

/// For `job_ids`: the failures per worker among those jobs' records (their completions are
/// not kept per job).
pub const WORKERS_FROM_RECORDS_SQL: &str = "
    WITH w AS (
        SELECT worker_id, 0::int8 AS completed, count(*)::int8 AS failed
        FROM error_records
        WHERE job_id = ANY($3) AND worker_id IS NOT NULL AND at >= $1 AND at < $2
        GROUP BY worker_id
    )
    SELECT *, sum(failed) OVER ()::int8 AS all_failed FROM w
    ORDER BY failed DESC, worker_id LIMIT 20";
