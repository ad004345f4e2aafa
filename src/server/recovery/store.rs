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
