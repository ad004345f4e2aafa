//! The dashboard's SQL. Every query has two forms: over all recap jobs, and over one user's
//! (`MINE`: the jobs they triggered, and those with articles from their feeds), so each plan
//! fits its case rather than one generic plan serving both.

/// The kind and the statuses this SQL names itself rather than binds: the partial indexes
/// (`jobs_recap_*_idx`) are chosen only for a query that names their predicate's constants.
/// Each is compared with its enum in the tests below (and the index with the enum in
/// `tests/api/schema.rs`).
macro_rules! recap {
    () => {
        "'recap'"
    };
}
macro_rules! live {
    () => {
        "('pending', 'running', 'paused')"
    };
}
macro_rules! completed {
    () => {
        "'completed'"
    };
}
macro_rules! failed {
    () => {
        "'failed'"
    };
}
macro_rules! cancelled {
    () => {
        "'cancelled'"
    };
}

/// One user's recap jobs, as `mine(id)`; `$2` is the user.
macro_rules! mine {
    () => {
        concat!(
            "WITH mine AS (
             SELECT id FROM jobs WHERE kind = ",
            recap!(),
            " AND user_id = $2
             UNION
             SELECT job_id FROM recap_job_articles WHERE original_user_id = $2
         ) "
        )
    };
}

/// Both forms of a query over `jobs j`: `$filter` goes where a user's filter would.
macro_rules! both {
    ($(#[$doc:meta])* $name:ident, $head:expr, $filter:literal, $tail:literal) => {
        $(#[$doc])*
        pub const $name: [&str; 2] = [
            concat!($head, $tail),
            concat!(mine!(), $head, $filter, $tail),
        ];
    };
}

// `$1` is now in all of them: the window ends there, and the tests can pin it.

both!(
    /// Recap jobs that finished in the 48 hours up to `$1`, counted per 24-hour window
    /// (`current`: the last 24 hours).
    WINDOW_STATS_SQL,
    concat!(
        "SELECT (j.finished_at > $1 - interval '24 hours') AS current,
            count(*) AS jobs,
            count(*) FILTER (WHERE j.status = ", completed!(), ") AS completed,
            count(*) FILTER (WHERE j.status = ", failed!(), ") AS failed,
            count(*) FILTER (WHERE j.status = ", cancelled!(), ") AS cancelled,
            (avg(extract(epoch FROM j.finished_at - j.started_at) * 1000)
                FILTER (WHERE j.status = ", completed!(), "))::float8 AS avg_duration_ms
     FROM jobs j
     WHERE j.kind = ", recap!(), " AND j.finished_at > $1 - interval '48 hours' AND j.finished_at <= $1 "
    ),
    "AND j.id IN (SELECT id FROM mine) ",
    "GROUP BY 1"
);

both!(
    /// Per hour of the last 24: `ago` k is `($1 - (k + 1) h, $1 - k h]`, 0 to 23.
    PER_HOUR_SQL,
    concat!(
        "SELECT floor(extract(epoch FROM $1 - j.finished_at) / 3600)::int AS ago,
            count(*) AS jobs,
            count(*) FILTER (WHERE j.status = ", failed!(), ") AS failures
     FROM jobs j
     WHERE j.kind = ", recap!(), " AND j.finished_at > $1 - interval '24 hours' AND j.finished_at <= $1 "
    ),
    "AND j.id IN (SELECT id FROM mine) ",
    "GROUP BY 1"
);

both!(
    /// Stage runs of recap jobs that ended in the last 24 hours, averaged per stage.
    STAGE_STATS_SQL,
    concat!(
        "SELECT p.name, count(*) AS runs,
            avg(extract(epoch FROM p.finished_at - p.started_at) * 1000)::float8 AS avg_ms
     FROM job_phases p JOIN jobs j ON j.id = p.job_id
     WHERE j.kind = ", recap!(), " AND p.finished_at > $1 - interval '24 hours' AND p.finished_at <= $1 "
    ),
    "AND j.id IN (SELECT id FROM mine) ",
    "GROUP BY p.name"
);

both!(
    /// Live recap jobs, newest first (`jobs_recap_live_idx`); `$3` is how many.
    ACTIVE_JOBS_SQL,
    concat!(
        "SELECT j.id, j.status, j.trigger_source, j.user_id, j.created_at, j.started_at,
            j.finished_at, j.current_phase, j.progress_percentage, j.stages
     FROM jobs j
     WHERE j.kind = ", recap!(), " AND j.status IN ", live!(), " AND j.created_at <= $1 "
    ),
    "AND j.id IN (SELECT id FROM mine) ",
    "ORDER BY j.created_at DESC LIMIT $3"
);

both!(
    /// The newest finished recap jobs with their article and genre counts and last error.
    RECENT_JOBS_SQL,
    concat!(
        "SELECT j.id, j.status, j.trigger_source, j.user_id, j.started_at, j.finished_at,
            t.articles, t.genres, e.code AS error_code, e.message AS error_message,
            e.at AS error_at
     FROM jobs j
     LEFT JOIN LATERAL (
         SELECT coalesce(sum(articles), 0)::int8 AS articles, count(*) AS genres
         FROM job_tasks WHERE job_id = j.id
     ) t ON true
     LEFT JOIN LATERAL (
         SELECT code, message, at FROM job_errors WHERE job_id = j.id ORDER BY id DESC LIMIT 1
     ) e ON true
     WHERE j.kind = ", recap!(), " AND j.finished_at IS NOT NULL AND j.finished_at <= $1 "
    ),
    "AND j.id IN (SELECT id FROM mine) ",
    "ORDER BY j.finished_at DESC LIMIT $3"
);

pub const JOB_SQL: &str = "
    SELECT id, status, trigger_source, user_id, created_at, started_at, finished_at,
           current_phase, progress_percentage, stages
    FROM jobs WHERE id = $1";

pub const PHASES_OF_SQL: &str = "
    SELECT job_id, name, started_at, finished_at FROM job_phases
    WHERE job_id = ANY($1) ORDER BY job_id, id";

pub const GENRES_OF_SQL: &str = "
    SELECT job_id, name, status, articles, clusters, message FROM job_tasks
    WHERE job_id = ANY($1) ORDER BY job_id, name";

pub const LAST_ERRORS_OF_SQL: &str = "
    SELECT DISTINCT ON (job_id) job_id, code, message, at FROM job_errors
    WHERE job_id = ANY($1) ORDER BY job_id, id DESC";

#[cfg(test)]
mod tests {
    use crate::model::{JobKind, JobStatus};

    fn quoted(names: &[&str]) -> String {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn the_names_this_sql_writes_are_the_enums() {
        assert_eq!(recap!(), quoted(&[JobKind::Recap.as_str()]));
        let live: Vec<&str> = JobStatus::ALL
            .into_iter()
            .filter(|s| !s.is_finished())
            .map(JobStatus::as_str)
            .collect();
        assert_eq!(live!(), format!("({})", quoted(&live)));
        assert_eq!(completed!(), quoted(&[JobStatus::Completed.as_str()]));
        assert_eq!(failed!(), quoted(&[JobStatus::Failed.as_str()]));
        assert_eq!(cancelled!(), quoted(&[JobStatus::Cancelled.as_str()]));
    }
}
