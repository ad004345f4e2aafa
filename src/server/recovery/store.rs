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
