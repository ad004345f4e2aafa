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
    SELECT status, kind, queue, priority, product_id, sending_group_id, max_attempts, driver
    FROM jobs WHERE id = $1";

/// The job's task graph, locked in id order (as every task lock is taken).
pub const JOB_TASKS_SQL: &str = "
    SELECT id, seq, name, status, depends_on, attempt, payload
    FROM job_tasks WHERE job_id = $1 ORDER BY id FOR UPDATE";

/// The same for the record's page, unlocked, in the order they were added.
pub const JOB_TASKS_READ_SQL: &str = "
    SELECT id, seq, name, status, depends_on, attempt, payload
    FROM job_tasks WHERE job_id = $1 ORDER BY seq";

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

/// The record list's rows; `recovery::page` adds the filters, the order and the limit.
pub const RECORD_LINES_SQL: &str = "
    SELECT r.id, r.at, r.error_type, r.recovery_status,
           left(split_part(r.error_message, E'\\n', 1), 200) AS message, r.retry_count, r.job_id,
           j.kind, j.product_id, j.sending_group_id, j.user_id, t.name AS task_name, s.job_key
    FROM error_records r
    LEFT JOIN jobs j ON j.id = r.job_id
    LEFT JOIN job_tasks t ON t.id = r.task_id
    LEFT JOIN job_status s ON s.id = r.job_status_id";

/// Errors per hour and type over `$1`..`$2`, `$3` the types asked for (empty: all).
pub const HOURLY_ERRORS_SQL: &str = concat!(
    "
    SELECT hour, error_type, sum(errors)::int8 AS errors FROM ",
    error_rollups!(),
    "
    WHERE hour >= $1 AND hour < $2 AND (cardinality($3::text[]) = 0 OR error_type = ANY($3))
    GROUP BY hour, error_type"
);

/// The same from one job's (`$4`) records.
pub const HOURLY_JOB_ERRORS_SQL: &str = "
    SELECT date_trunc('hour', at) AS hour, error_type, count(*)::int8 AS errors
    FROM error_records
    WHERE job_id = $4 AND at >= $1 AND at < $2
      AND (cardinality($3::text[]) = 0 OR error_type = ANY($3))
    GROUP BY 1, 2";

/// One record with its job's, task's or script's names, for its page.
pub const RECORD_PAGE_SQL: &str = "
    SELECT r.id, r.error_type, r.error_class, r.error_message, r.stack_trace,
           error_pattern(r.error_message) AS pattern, r.fingerprint, r.at, r.retry_count,
           r.recovery_status, r.recovered_at, r.worker_id, r.recovery_attempts, r.job_id,
           j.status AS job_status, j.kind, j.product_id, j.sending_group_id, j.user_id,
           t.name AS task_name, t.status AS task_status, s.job_key
    FROM error_records r
    LEFT JOIN jobs j ON j.id = r.job_id
    LEFT JOIN job_tasks t ON t.id = r.task_id
    LEFT JOIN job_status s ON s.id = r.job_status_id
    WHERE r.id = $1";

/// The jobs and scripts among each pattern's (`$1`) latest `$4` records in the period
/// (`$2`..`$3`), newest first (`error_records_fingerprint_at_idx`).
pub const AFFECTED_SQL: &str = "
    SELECT f.fp AS fingerprint,
           coalesce(array_agg(l.job_id ORDER BY l.at DESC) FILTER (WHERE l.job_id IS NOT NULL), '{}') AS jobs,
           coalesce(array_agg(s.job_key ORDER BY l.at DESC) FILTER (WHERE s.job_key IS NOT NULL), '{}') AS scripts
    FROM unnest($1::text[]) AS f(fp)
    CROSS JOIN LATERAL (
        SELECT DISTINCT ON (coalesce(e.job_id, e.job_status_id)) e.job_id, e.job_status_id, e.at
        FROM (SELECT job_id, job_status_id, at FROM error_records
              WHERE fingerprint = f.fp AND at >= $2 AND at < $3
              ORDER BY at DESC LIMIT $4) e
        ORDER BY coalesce(e.job_id, e.job_status_id), e.at DESC) l
    LEFT JOIN job_status s ON s.id = l.job_status_id
    GROUP BY f.fp";

/// The same among the records of the jobs `$5` (`error_records_job_at_idx`).
pub const AFFECTED_OF_JOBS_SQL: &str = "
    SELECT f.fp AS fingerprint,
           coalesce(array_agg(l.job_id ORDER BY l.at DESC), '{}') AS jobs,
           '{}'::text[] AS scripts
    FROM unnest($1::text[]) AS f(fp)
    CROSS JOIN LATERAL (
        SELECT e.job_id, max(e.at) AS at FROM error_records e
        WHERE e.job_id = ANY($5) AND e.fingerprint = f.fp AND e.at >= $2 AND e.at < $3
        GROUP BY e.job_id ORDER BY max(e.at) DESC LIMIT $4) l
    GROUP BY f.fp";

/// The memory peaks (hourly rollups) and limits of the jobs among the latest `$3` records of
/// type `$5` (`RESOURCE_LIMIT_EXCEEDED`) in the period (`error_records_type_at_idx`); `$4`
/// the jobs asked for (empty: all).
pub const MEMORY_PEAKS_SQL: &str = "
    WITH failed AS (
        SELECT DISTINCT job_id FROM (
            SELECT job_id FROM error_records
            WHERE error_type = $5 AND at >= $1 AND at < $2
              AND job_id IS NOT NULL AND (cardinality($4::uuid[]) = 0 OR job_id = ANY($4))
            ORDER BY at DESC LIMIT $3) r),
    peaks AS (
        SELECT j.max_memory,
               (SELECT max(m.max) FROM metric_rollups m
                WHERE m.job_id = f.job_id AND m.metric = 'memory' AND m.grain = 'hour') AS peak
        FROM failed f JOIN jobs j ON j.id = f.job_id)
    SELECT count(peak)::int8 AS jobs,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY peak) AS p95_peak,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY max_memory)
               FILTER (WHERE max_memory > 0) AS limit
    FROM peaks";

/// `max_memory` `$1` for the failed jobs below it among the latest `$4` records of type `$2`
/// since `$3` (the records a `raise_memory_limit` suggestion read).
pub const RAISE_MEMORY_LIMIT_SQL: &str = "
    UPDATE jobs SET max_memory = $1, updated_at = now()
    WHERE id IN (SELECT DISTINCT job_id FROM (
                     SELECT job_id FROM error_records
                     WHERE error_type = $2 AND at >= $3 AND job_id IS NOT NULL
                     ORDER BY at DESC LIMIT $4) r)
      AND status = 'failed' AND max_memory < $1
    RETURNING id";
