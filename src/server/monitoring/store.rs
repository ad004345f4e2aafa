//! The monitoring domain's SQL (tables `jobs`, `job_errors`, `job_tasks`, `task_metrics`):
//! one statement per operation, as named constants. `fetchJobHistory`'s page and its
//! aggregates share one `WHERE` (`history_where!`), so they count the same jobs; over wide
//! filters the aggregates come from the day rollups instead, tested to give the same figures.

use crate::server::jobs::store::job_select;

/// `fetchJobHistory`'s filters: `$1` statuses (empty: any), `$2`/`$3` the `created_at`
/// range (`[start, end)`, either open), `$4` the user, `$5` error codes or classes (empty:
/// any job; a job matches when it ever had one of them, `jobs.error_types`), `$6` the kind.
macro_rules! history_where {
    () => {
        "WHERE (cardinality($1::text[]) = 0 OR j.status = ANY($1::text[]))
           AND ($2::timestamptz IS NULL OR j.created_at >= $2)
           AND ($3::timestamptz IS NULL OR j.created_at < $3)
           AND ($4::text IS NULL OR j.user_id = $4)
           AND (cardinality($5::text[]) = 0 OR j.error_types && $5::text[])
           AND ($6::text IS NULL OR j.kind = $6)"
    };
}

/// One page after `($7, $8)` in one sort: the key expression is the one its index in
/// `migrations/*_monitoring.sql` is built on, so the page is a range scan of it. `$9` rows,
/// `$10` skipped (the seed's `page`). The page's ids are chosen first and only they get the
/// columns and latest error (joined in the scan, every skipped row probed `job_errors` too).
macro_rules! history_page {
    ($key:literal, $cast:literal, $cmp:literal, $dir:literal) => {
        job_select!(
            "WHERE j.id = ANY(ARRAY(
                 SELECT j.id FROM jobs j ",
            history_where!(),
            " AND (",
            $key,
            ", j.id) ",
            $cmp,
            " ($7::",
            $cast,
            ", $8::uuid)
                 ORDER BY ",
            $key,
            " ",
            $dir,
            ", j.id ",
            $dir,
            "
                 LIMIT $9 OFFSET $10))
             ORDER BY ",
            $key,
            " ",
            $dir,
            ", j.id ",
            $dir
        )
    };
}

macro_rules! history_sort {
    ($asc:ident, $desc:ident, $key:literal, $cast:literal) => {
        pub const $asc: &str = history_page!($key, $cast, ">", "ASC");
        pub const $desc: &str = history_page!($key, $cast, "<", "DESC");
    };
}

history_sort!(
    HISTORY_CREATED_ASC_SQL,
    HISTORY_CREATED_DESC_SQL,
    "j.created_at",
    "timestamptz"
);
history_sort!(
    HISTORY_STARTED_ASC_SQL,
    HISTORY_STARTED_DESC_SQL,
    "coalesce(j.started_at, 'infinity'::timestamptz)",
    "timestamptz"
);
history_sort!(
    HISTORY_FINISHED_ASC_SQL,
    HISTORY_FINISHED_DESC_SQL,
    "coalesce(j.finished_at, 'infinity'::timestamptz)",
    "timestamptz"
);
history_sort!(
    HISTORY_PRIORITY_ASC_SQL,
    HISTORY_PRIORITY_DESC_SQL,
    "j.priority",
    "int2"
);
history_sort!(
    HISTORY_DURATION_ASC_SQL,
    HISTORY_DURATION_DESC_SQL,
    "coalesce(extract(epoch FROM j.finished_at - j.started_at), 'Infinity'::numeric)",
    "numeric"
);

/// `fetchJobHistory` with aggregates: its two statements see the same jobs.
pub const ONE_SNAPSHOT_SQL: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// The aggregates over every job the filters select, not only the page. `$7` completed,
/// `$8` failed, `$9` the final statuses.
pub const HISTORY_AGGREGATES_SQL: &str = concat!(
    "SELECT count(*) AS total,
            count(*) FILTER (WHERE j.status = ANY($9::text[])) AS finished,
            count(*) FILTER (WHERE j.status = $7) AS completed,
            count(*) FILTER (WHERE j.status = $8) AS failed,
            (avg(extract(epoch FROM j.finished_at - j.started_at) * 1000)
                FILTER (WHERE j.status = ANY($9::text[]) AND j.started_at IS NOT NULL))::float8
                AS avg_duration_ms
     FROM jobs j ",
    history_where!()
);

/// The same aggregates from `job_rollups` (`monitoring::job_rollups`), for filters of status
/// (`$1`), range (`$2`/`$3`), kind (`$4`) and error types (`$10`), not the user: the rollups
/// and unfolded deltas of the whole days `[$8, $9)` (either open), plus the jobs of the
/// range's partial first day `[$2, $8)` and last day `[$9, $3)`. `$5` completed, `$6`
/// failed, `$7` the final statuses.
macro_rules! rollup_where {
    () => {
        "WHERE ($8::date IS NULL OR day >= $8) AND ($9::date IS NULL OR day < $9)
           AND (cardinality($1::text[]) = 0 OR status = ANY($1::text[]))
           AND ($4::text IS NULL OR kind = $4)
           AND (cardinality($10::text[]) = 0 OR error_types && $10::text[])"
    };
}

pub const HISTORY_ROLLUP_AGGREGATES_SQL: &str = concat!(
    "WITH counted AS (
        SELECT status, jobs, timed, duration_us FROM job_rollups ",
    rollup_where!(),
    "
        UNION ALL
        SELECT status, jobs, timed, duration_us FROM job_rollup_deltas ",
    rollup_where!(),
    "
        UNION ALL
        SELECT j.status, 1, job_timed(j.started_at, j.finished_at),
               job_duration_us(j.started_at, j.finished_at)
        FROM jobs j
        WHERE ((j.created_at >= $2 AND j.created_at < ($8::date::timestamp AT TIME ZONE 'UTC'))
               OR (j.created_at >= ($9::date::timestamp AT TIME ZONE 'UTC') AND j.created_at < $3))
          AND (cardinality($1::text[]) = 0 OR j.status = ANY($1::text[]))
          AND ($4::text IS NULL OR j.kind = $4)
          AND (cardinality($10::text[]) = 0 OR j.error_types && $10::text[])
    )
    SELECT coalesce(sum(jobs), 0)::int8 AS total,
           coalesce(sum(jobs) FILTER (WHERE status = ANY($7::text[])), 0)::int8 AS finished,
           coalesce(sum(jobs) FILTER (WHERE status = $5), 0)::int8 AS completed,
           coalesce(sum(jobs) FILTER (WHERE status = $6), 0)::int8 AS failed,
           (sum(duration_us) FILTER (WHERE status = ANY($7::text[]))::numeric
               / nullif(sum(timed) FILTER (WHERE status = ANY($7::text[])), 0) / 1000)::float8
               AS avg_duration_ms
    FROM counted"
);

/// The jobs of `$1` that exist (a `getJobMetrics` for another is a 404).
pub const EXISTING_JOBS_SQL: &str = "SELECT id FROM jobs WHERE id = ANY($1::uuid[])";

/// One series per job of `$1`: every bucket of `$2` seconds from `$3` (aligned) up to `$4`,
/// empty ones too, with the count, min, avg, max and p95 of the values `samples` gives for
/// it. `samples` yields `(job_id, at, v)`; they are summed up per bucket before the buckets
/// are joined (joined first, each bucket compared every sample: 0.9 s for a day of 10 s
/// samples).
macro_rules! metric_series {
    ($samples:literal) => {
        concat!(
            "WITH buckets AS (
                 SELECT b FROM generate_series(
                     date_bin(make_interval(secs => $2), $3::timestamptz, timestamptz '2000-01-01 00:00:00+00'),
                     $4::timestamptz - interval '1 microsecond',
                     make_interval(secs => $2)) AS b
             ),
             samples AS (", $samples, "),
             stats AS (
                 SELECT job_id, date_bin(make_interval(secs => $2), at, timestamptz '2000-01-01 00:00:00+00') AS b,
                        count(v) AS count, min(v) AS min, avg(v) AS avg, max(v) AS max,
                        percentile_disc(0.95) WITHIN GROUP (ORDER BY v) AS p95
                 FROM samples
                 WHERE at >= (SELECT min(b) FROM buckets) AND at < $4
                 GROUP BY 1, 2
             )
             SELECT j.job_id, k.b AS bucket, coalesce(s.count, 0) AS count, s.min, s.avg, s.max, s.p95
             FROM unnest($1::uuid[]) AS j(job_id)
             CROSS JOIN buckets k
             LEFT JOIN stats s ON s.job_id = j.job_id AND s.b = k.b
             ORDER BY j.job_id, k.b"
        )
    };
}

pub const DURATION_SERIES_SQL: &str = metric_series!(
    "SELECT job_id, finished_at AS at,
            (extract(epoch FROM finished_at - started_at) * 1000)::float8 AS v
     FROM job_tasks
     WHERE job_id = ANY($1::uuid[]) AND finished_at >= $3::timestamptz - make_interval(secs => $2)
       AND finished_at < $4 AND started_at IS NOT NULL"
);

/// `reportMetrics`: the named tasks of the job (`$2`) that exist, with their ids.
pub const TASK_IDS_SQL: &str =
    "SELECT name, id FROM job_tasks WHERE job_id = $1 AND name = ANY($2::text[])";

/// `reportMetrics`: every sample of one call in one statement, added to the rollups in it;
/// answers how many were stored.
pub const REPORT_METRICS_SQL: &str = super::rollups::with_rollups!(
    "ARRAY[$1]::uuid[]",
    "INSERT INTO task_metrics (job_id, task_id, at, cpu_percent, memory_mb, items)
     SELECT $1, s.task_id, coalesce(s.at, now()), s.cpu_percent, s.memory_mb, s.items
     FROM unnest($2::uuid[], $3::timestamptz[], $4::float8[], $5::float8[], $6::int8[])
         AS s(task_id, at, cpu_percent, memory_mb, items)"
);

/// `getJobInfo`'s `include_metrics`: the latest sample of each task (and of the job itself)
/// from the last minute, summed, as what the job uses now; the largest single sample as its
/// peak (from the hourly rollups, which outlive the samples); and the items its tasks'
/// counters reached.
pub const JOB_METRICS_NOW_SQL: &str = "
    WITH latest_cpu AS (
        SELECT DISTINCT ON (task_id) cpu_percent FROM task_metrics
        WHERE job_id = $1 AND at > now() - interval '1 minute' AND cpu_percent IS NOT NULL
        ORDER BY task_id, at DESC, id DESC
    ),
    latest_memory AS (
        SELECT DISTINCT ON (task_id) memory_mb FROM task_metrics
        WHERE job_id = $1 AND at > now() - interval '1 minute' AND memory_mb IS NOT NULL
        ORDER BY task_id, at DESC, id DESC
    ),
    reached AS (
        SELECT max(items) AS items FROM task_metrics
        WHERE job_id = $1 AND items IS NOT NULL GROUP BY task_id
    )
    SELECT (SELECT sum(cpu_percent) FROM latest_cpu) AS cpu_percent,
           (SELECT sum(memory_mb) FROM latest_memory) AS memory_mb,
           (SELECT max(max) FROM metric_rollups
            WHERE job_id = $1 AND metric = 'cpu' AND grain = 'hour') AS peak_cpu_percent,
           (SELECT max(max) FROM metric_rollups
            WHERE job_id = $1 AND metric = 'memory' AND grain = 'hour') AS peak_memory_mb,
           (SELECT sum(items) FROM reached)::int8 AS items,
           count(*) AS samples
    FROM task_metrics WHERE job_id = $1";

/// `include_task_details`: one page of the job's tasks in the order they were added, after
/// `seq` `$2`.
pub const TASK_DETAILS_SQL: &str = "
    SELECT seq, name, status, attempt, leased_by AS worker, progress, phase, message,
           created_at, started_at, finished_at, heartbeat_at, leased_until
    FROM job_tasks WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// `include_logs`: one page of the job's log, newest first, before id `$2`.
pub const LOG_PAGE_SQL: &str = "
    SELECT id, task_name, level, message, at FROM job_logs
    WHERE job_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";

/// `live`: one notification with the ids of the jobs a process changed (`$2`, comma-joined).
pub const NOTIFY_JOBS_SQL: &str = "SELECT pg_notify($1, $2)";

/// `live`: what a resuming job stream replays, oldest first: the job's events after the
/// last one its client saw.
pub const TRANSITIONS_SINCE_SQL: &str = "
    SELECT from_status, to_status, at, actor, reason FROM job_events
    WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3";

/// `live`: a job stream's event id, the job's newest event.
pub const LAST_EVENT_SQL: &str =
    "SELECT coalesce(max(id), 0)::int8 FROM job_events WHERE job_id = $1";
