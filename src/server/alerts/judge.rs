//! What each kind of rule sees at `now`: one set-based query per kind for every claimed rule
//! of that kind, answering the subjects whose condition holds. A subject missing from the
//! answer is fine. Each query reaches its subjects through the rule's scope: a `job_key`
//! rule by an index lookup on the key, the broad ones by the subjects' own indexes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use super::schedule::{last_seen, StoredSchedule};
use crate::model::AlertKind;

/// A subject whose condition holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule_id: Uuid,
    pub subject: String,
    pub job_key: Option<String>,
    pub job_kind: Option<String>,
    pub label: String,
    pub facts: Value,
}

/// The scripts (`job_status` rows) each rule of `$1` covers, as a CTE named `scripts`.
macro_rules! with_scripts {
    ($rest:literal) => {
        concat!(
            "WITH scripts AS (
                SELECT r.id AS rule_id, r.params, r.min_runs, s.id AS status_id, s.job_key, s.title,
                       s.last_status, s.last_finished_at
                FROM alert_rules r JOIN job_status s ON s.job_key = r.scope_value
                WHERE r.id = ANY($1) AND r.scope_kind = 'job_key'
                UNION ALL
                SELECT r.id, r.params, r.min_runs, s.id, s.job_key, s.title, s.last_status, s.last_finished_at
                FROM alert_rules r CROSS JOIN job_status s
                WHERE r.id = ANY($1) AND (r.scope_kind = 'all' OR (r.scope_kind = 'job_kind' AND r.scope_value = 'script'))
            ) ",
            $rest
        )
    };
}

/// The controlled jobs each rule of `$1` covers that are in status `$3`, as a CTE `scoped`.
macro_rules! with_jobs {
    ($rest:literal) => {
        concat!(
            "WITH scoped AS (
                SELECT r.id AS rule_id, r.params, r.min_runs, j.id, j.kind, j.started_at, j.updated_at,
                       coalesce(j.product_id || ' / ' || j.sending_group_id, j.kind || ' ' || left(j.id::text, 8)) AS label
                FROM alert_rules r JOIN jobs j
                  ON r.scope_kind = 'all' OR (r.scope_kind = 'job_kind' AND j.kind = r.scope_value)
                  OR (r.scope_kind = 'job_key' AND j.id::text = r.scope_value)
                WHERE r.id = ANY($1) AND j.status = $3
            ) ",
            $rest
        )
    };
}

/// Only schedules whose stored deadline has passed (or was never counted) are read: a stored
/// deadline is never later than the true one (see the migration that added it).
const MISSED_RUN_SQL: &str = "
    WITH scheduled AS (
        SELECT r.id AS rule_id, sch.* FROM alert_rules r JOIN job_schedules sch ON sch.job_key = r.scope_value
        WHERE r.id = ANY($1) AND r.scope_kind = 'job_key'
        UNION ALL
        SELECT r.id, sch.* FROM alert_rules r CROSS JOIN job_schedules sch
        WHERE r.id = ANY($1) AND (r.scope_kind = 'all' OR (r.scope_kind = 'job_kind' AND r.scope_value = 'script'))
    )
    SELECT c.rule_id, c.job_key, c.cron, c.timezone, c.period_seconds, c.grace_seconds, c.updated_at,
           c.deadline_at AS stored_deadline, coalesce(s.title, c.job_key) AS title, s.last_finished_at,
           st.started_at
    FROM scheduled c
    LEFT JOIN job_status s ON s.job_key = c.job_key
    LEFT JOIN job_starts st ON st.job_key = c.job_key
    WHERE c.deadline_at IS NULL OR c.deadline_at <= $2";

fn never() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
        .expect("a valid date")
        .to_utc()
}

/// Stores the deadlines just counted, for schedules not changed meanwhile; rows another
/// process holds are left for a later cycle rather than waited for.
const STORE_DEADLINES_SQL: &str = "
    WITH counted AS (
        SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS c(job_key, updated_at, deadline_at)
    ), mine AS (
        SELECT sch.job_key FROM job_schedules sch JOIN counted c USING (job_key)
        WHERE sch.updated_at = c.updated_at
        FOR UPDATE OF sch SKIP LOCKED
    )
    UPDATE job_schedules sch SET deadline_at = c.deadline_at
    FROM counted c JOIN mine USING (job_key)
    WHERE sch.job_key = c.job_key";

const STUCK_SCRIPTS_SQL: &str = "
    WITH started AS (
        SELECT r.id AS rule_id, r.params, st.* FROM alert_rules r JOIN job_starts st ON st.job_key = r.scope_value
        WHERE r.id = ANY($1) AND r.scope_kind = 'job_key'
        UNION ALL
        SELECT r.id, r.params, st.* FROM alert_rules r CROSS JOIN job_starts st
        WHERE r.id = ANY($1) AND (r.scope_kind = 'all' OR (r.scope_kind = 'job_kind' AND r.scope_value = 'script'))
    )
    SELECT c.rule_id, c.job_key, coalesce(s.title, c.job_key) AS label, c.started_at,
           coalesce((c.params->>'grace_seconds')::int, sch.grace_seconds, 3600) AS grace
    FROM started c
    LEFT JOIN job_status s ON s.job_key = c.job_key
    LEFT JOIN job_schedules sch ON sch.job_key = c.job_key
    WHERE c.started_at > coalesce(s.last_finished_at, '-infinity')
      AND c.started_at + make_interval(secs => coalesce((c.params->>'grace_seconds')::int, sch.grace_seconds, 3600)) <= $2";

/// A running job shows life by its own updates and its tasks' heartbeats.
const STUCK_JOBS_SQL: &str = with_jobs!(
    "SELECT c.rule_id, c.id, c.kind, c.label, l.last_sign,
            coalesce((c.params->>'grace_seconds')::int, 3600) AS grace
     FROM scoped c
     CROSS JOIN LATERAL (
         SELECT greatest(c.updated_at, max(t.heartbeat_at)) AS last_sign
         FROM job_tasks t WHERE t.job_id = c.id AND t.status = 'running'
     ) l
     WHERE l.last_sign + make_interval(secs => coalesce((c.params->>'grace_seconds')::int, 3600)) <= $2"
);

/// K failures in a row (K > 1, or any K with min_runs > 1): only a script whose latest
/// report failed can qualify; its last K reports up to `now` are read.
const CONSECUTIVE_SQL: &str = with_scripts!(
    "SELECT c.rule_id, c.job_key, c.title, k.errors, (c.params->>'consecutive')::int AS wanted
     FROM scripts c
     CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE x.status = 'error') AS errors FROM (
             SELECT status FROM job_reports
             WHERE job_status_id = c.status_id AND finished_at <= $2
             ORDER BY finished_at DESC LIMIT (c.params->>'consecutive')::int
         ) x
     ) k
     WHERE ((c.params->>'consecutive')::int > 1 OR c.min_runs > 1) AND c.last_status = 'error'
       AND k.errors = (c.params->>'consecutive')::int
       AND (c.min_runs <= 1 OR (SELECT count(*) FROM (
             SELECT 1 FROM job_reports WHERE job_status_id = c.status_id AND finished_at <= $2 LIMIT c.min_runs) m) >= c.min_runs)"
);

/// One failure in a row needs no history: the script's status is its latest report.
const FIRST_FAILURE_SQL: &str = with_scripts!(
    "SELECT c.rule_id, c.job_key, c.title, c.last_finished_at, c.params
     FROM scripts c
     WHERE (c.params->>'consecutive')::int = 1 AND c.min_runs <= 1
       AND c.last_status = 'error' AND c.last_finished_at <= $2"
);

const RATE_SQL: &str = with_scripts!(
    "SELECT c.rule_id, c.job_key, c.title, w.total, w.failed,
            (c.params->>'window_seconds')::int AS window_seconds,
            (c.params->>'threshold_percent')::float8 AS threshold
     FROM scripts c
     CROSS JOIN LATERAL (
         SELECT count(*) AS total, count(*) FILTER (WHERE status = 'error') AS failed
         FROM job_reports
         WHERE job_status_id = c.status_id AND finished_at <= $2
           AND finished_at > $2 - make_interval(secs => (c.params->>'window_seconds')::int)
     ) w
     WHERE c.params->>'threshold_percent' IS NOT NULL
       AND c.last_finished_at > $2 - make_interval(secs => (c.params->>'window_seconds')::int)
       AND w.total >= greatest(c.min_runs, 1)
       AND w.failed * 100.0 >= (c.params->>'threshold_percent')::float8 * w.total"
);

/// Controlled jobs by kind: the jobs of the kind that finished in the window.
const JOB_RATE_SQL: &str = "
    SELECT r.id AS rule_id, j.kind, count(*) AS total, count(*) FILTER (WHERE j.status = 'failed') AS failed,
           (r.params->>'window_seconds')::int AS window_seconds,
           (r.params->>'threshold_percent')::float8 AS threshold
    FROM alert_rules r JOIN jobs j
      ON (r.scope_kind = 'all' OR (r.scope_kind = 'job_kind' AND j.kind = r.scope_value))
     AND coalesce(j.finished_at, 'infinity') <= $2
     AND coalesce(j.finished_at, 'infinity') > $2 - make_interval(secs => (r.params->>'window_seconds')::int)
    WHERE r.id = ANY($1) AND r.params->>'threshold_percent' IS NOT NULL
    GROUP BY r.id, j.kind
    HAVING count(*) >= greatest(min(r.min_runs), 1)
       AND count(*) FILTER (WHERE j.status = 'failed') * 100.0 >= min((r.params->>'threshold_percent')::float8) * count(*)";

/// A script's latest run against max(the fixed limit, k × the p95 of the successful runs
/// before it); only scripts that reported in the last day are judged.
const DURATION_SQL: &str = with_scripts!(
    "SELECT c.rule_id, c.job_key, c.title, last.duration_ms::float8 AS duration_ms, p.p95, p.n,
            (c.params->>'max_seconds')::float8 AS max_seconds, (c.params->>'factor')::float8 AS factor
     FROM scripts c
     CROSS JOIN LATERAL (
         SELECT duration_ms, finished_at FROM job_reports
         WHERE job_status_id = c.status_id AND finished_at <= $2
         ORDER BY finished_at DESC LIMIT 1
     ) last
     CROSS JOIN LATERAL (
         SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY x.duration_ms) AS p95, count(*) AS n FROM (
             SELECT duration_ms FROM job_reports
             WHERE job_status_id = c.status_id AND status = 'success' AND duration_ms IS NOT NULL
               AND finished_at < last.finished_at
             ORDER BY finished_at DESC LIMIT (c.params->>'last_runs')::int
         ) x
     ) p
     WHERE c.last_finished_at > $2 - interval '1 day' AND last.duration_ms IS NOT NULL
       AND last.duration_ms > greatest(
             (c.params->>'max_seconds')::float8 * 1000,
             CASE WHEN p.n >= greatest(c.min_runs, 1) THEN (c.params->>'factor')::float8 * p.p95 END)"
);

const DURATION_JOBS_SQL: &str = with_jobs!(
    "SELECT c.rule_id, c.id, c.kind, c.label,
            (extract(epoch FROM $2 - c.started_at) * 1000)::float8 AS duration_ms, p.p95, p.n,
            (c.params->>'max_seconds')::float8 AS max_seconds, (c.params->>'factor')::float8 AS factor
     FROM scoped c
     CROSS JOIN LATERAL (
         SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY x.ms) AS p95, count(*) AS n FROM (
             SELECT (extract(epoch FROM finished_at - started_at) * 1000)::float8 AS ms FROM jobs
             WHERE kind = c.kind AND status = 'completed' AND started_at IS NOT NULL
             ORDER BY created_at DESC LIMIT (c.params->>'last_runs')::int
         ) x
     ) p
     WHERE c.started_at IS NOT NULL
       AND extract(epoch FROM $2 - c.started_at) * 1000 > greatest(
             (c.params->>'max_seconds')::float8 * 1000,
             CASE WHEN p.n >= greatest(c.min_runs, 1) THEN (c.params->>'factor')::float8 * p.p95 END)"
);

/// Error records of the rule's scope in the window, by fingerprint: a rule on one script or
/// job reads that one's records by its index, a broad rule the window once
/// (`error_records_at_idx`).
const ERROR_SPIKE_SQL: &str = "
    WITH scoped AS (
        SELECT r.id AS rule_id, e.fingerprint, e.error_type
        FROM alert_rules r
        JOIN job_status s ON s.job_key = r.scope_value
        JOIN error_records e ON e.job_status_id = s.id
        WHERE r.id = ANY($1) AND r.scope_kind = 'job_key'
          AND e.at <= $2 AND e.at > $2 - make_interval(secs => (r.params->>'window_seconds')::int)
          AND (r.params->>'fingerprint' IS NULL OR e.fingerprint = r.params->>'fingerprint')
        UNION ALL
        SELECT r.id, e.fingerprint, e.error_type
        FROM alert_rules r
        JOIN error_records e ON e.job_id = CASE WHEN r.scope_value ~ '^[0-9a-fA-F-]{36}$' THEN r.scope_value::uuid END
        WHERE r.id = ANY($1) AND r.scope_kind = 'job_key'
          AND e.at <= $2 AND e.at > $2 - make_interval(secs => (r.params->>'window_seconds')::int)
          AND (r.params->>'fingerprint' IS NULL OR e.fingerprint = r.params->>'fingerprint')
        UNION ALL
        SELECT r.id, e.fingerprint, e.error_type
        FROM alert_rules r
        JOIN error_records e
          ON e.at <= $2 AND e.at > $2 - make_interval(secs => (r.params->>'window_seconds')::int)
        LEFT JOIN jobs j ON j.id = e.job_id
        WHERE r.id = ANY($1) AND r.scope_kind <> 'job_key'
          AND (r.params->>'fingerprint' IS NULL OR e.fingerprint = r.params->>'fingerprint')
          AND (r.scope_kind = 'all'
               OR (r.scope_value = 'script' AND e.job_status_id IS NOT NULL)
               OR j.kind = r.scope_value)
    )
    SELECT c.rule_id, c.fingerprint, min(c.error_type) AS error_type, count(*) AS count,
           (r.params->>'window_seconds')::int AS window_seconds,
           CASE WHEN r.scope_kind = 'job_key' THEN r.scope_value END AS job_key,
           CASE WHEN r.scope_kind = 'job_kind' THEN r.scope_value
                WHEN r.scope_kind = 'job_key' THEN
                    CASE WHEN EXISTS (SELECT 1 FROM job_status s WHERE s.job_key = r.scope_value) THEN 'script'
                         ELSE (SELECT j.kind FROM jobs j WHERE j.id::text = r.scope_value) END
           END AS job_kind
    FROM scoped c JOIN alert_rules r ON r.id = c.rule_id
    GROUP BY c.rule_id, r.scope_kind, r.scope_value, r.params, c.fingerprint
    HAVING count(*) > (r.params->>'count')::int";

fn script(rule_id: Uuid, job_key: String, label: String, facts: Value) -> Finding {
    Finding {
        rule_id,
        subject: format!("script:{job_key}"),
        job_key: Some(job_key),
        job_kind: Some("script".into()),
        label,
        facts,
    }
}

fn job(rule_id: Uuid, id: Uuid, kind: String, label: String, facts: Value) -> Finding {
    Finding {
        rule_id,
        subject: format!("job:{id}"),
        job_key: Some(id.to_string()),
        job_kind: Some(kind),
        label,
        facts,
    }
}

/// Every finding of the claimed rules of one kind.
pub async fn findings(
    conn: &mut PgConnection,
    kind: AlertKind,
    rules: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, sqlx::Error> {
    match kind {
        AlertKind::MissedRun => missed_runs(conn, rules, now).await,
        AlertKind::Stuck => stuck(conn, rules, now).await,
        AlertKind::FailureRate => failure_rates(conn, rules, now).await,
        AlertKind::DurationAnomaly => durations(conn, rules, now).await,
        AlertKind::ErrorSpike => error_spikes(conn, rules, now).await,
    }
}

#[derive(FromRow)]
struct ScheduledRow {
    rule_id: Uuid,
    title: String,
    last_finished_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    stored_deadline: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    schedule: StoredSchedule,
}

/// The deadlines are counted here: the schedule is a cron expression Postgres cannot read.
/// Each one counted is stored, so the next cycles skip the schedule until it falls due.
async fn missed_runs(
    conn: &mut PgConnection,
    rules: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let rows: Vec<ScheduledRow> = sqlx::query_as(MISSED_RUN_SQL)
        .bind(rules)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    // One count per script, however many rules cover it: (last seen, expected, deadline).
    type Count = Option<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>;
    let mut counted: HashMap<String, Count> = HashMap::new();
    let mut moved = (Vec::new(), Vec::new(), Vec::new());
    let mut found = Vec::new();
    for row in rows {
        let key = &row.schedule.job_key;
        let count = match counted.get(key) {
            Some(count) => *count,
            None => {
                let anchor = last_seen(
                    row.schedule.updated_at,
                    row.last_finished_at,
                    row.started_at,
                );
                let count =
                    row.schedule.schedule().ok().and_then(|s| {
                        Some((anchor, s.next_after(anchor)?, s.deadline_after(anchor)?))
                    });
                // A schedule with no run left (or unreadable) is not due until it is changed.
                let deadline = count.map_or_else(never, |(_, _, deadline)| deadline);
                if row.stored_deadline != Some(deadline) {
                    moved.0.push(key.clone());
                    moved.1.push(row.schedule.updated_at);
                    moved.2.push(deadline);
                }
                counted.insert(key.clone(), count);
                count
            }
        };
        if let Some((last_seen, expected, deadline)) = count.filter(|c| now >= c.2) {
            let facts =
                json!({ "expected_at": expected, "deadline": deadline, "last_seen": last_seen });
            found.push(script(row.rule_id, row.schedule.job_key, row.title, facts));
        }
    }
    if !moved.0.is_empty() {
        sqlx::query(STORE_DEADLINES_SQL)
            .bind(&moved.0)
            .bind(&moved.1)
            .bind(&moved.2)
            .execute(&mut *conn)
            .await?;
    }
    Ok(found)
}

async fn stuck(
    conn: &mut PgConnection,
    rules: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let scripts: Vec<(Uuid, String, String, DateTime<Utc>, i32)> =
        sqlx::query_as(STUCK_SCRIPTS_SQL)
            .bind(rules)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
    let jobs: Vec<(Uuid, Uuid, String, String, DateTime<Utc>, i32)> =
        sqlx::query_as(STUCK_JOBS_SQL)
            .bind(rules)
            .bind(now)
            .bind("running")
            .fetch_all(&mut *conn)
            .await?;
    let scripts = scripts
        .into_iter()
        .map(|(rule, key, label, started, grace)| {
            script(
                rule,
                key,
                label,
                json!({ "started_at": started, "grace_seconds": grace }),
            )
        });
    let jobs = jobs
        .into_iter()
        .map(|(rule, id, kind, label, last_sign, grace)| {
            job(
                rule,
                id,
                kind,
                label,
                json!({ "last_sign": last_sign, "grace_seconds": grace }),
            )
        });
    Ok(scripts.chain(jobs).collect())
}

async fn failure_rates(
    conn: &mut PgConnection,
    rules: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let mut found = Vec::new();
    let firsts: Vec<(Uuid, String, String, DateTime<Utc>, Value)> =
        sqlx::query_as(FIRST_FAILURE_SQL)
            .bind(rules)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
    for (rule, key, title, at, _) in firsts {
        found.push(script(
            rule,
            key,
            title,
            json!({ "consecutive": 1, "failed_at": at }),
        ));
    }
    let streaks: Vec<(Uuid, String, String, i64, i32)> = sqlx::query_as(CONSECUTIVE_SQL)
        .bind(rules)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    for (rule, key, title, errors, _) in streaks {
        found.push(script(rule, key, title, json!({ "consecutive": errors })));
    }
    let rates: Vec<(Uuid, String, String, i64, i64, i32, f64)> = sqlx::query_as(RATE_SQL)
        .bind(rules)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    for (rule, key, title, total, failed, window, threshold) in rates {
        let facts = rate_facts(failed, total, window, threshold);
        found.push(script(rule, key, title, facts));
    }
    let kinds: Vec<(Uuid, String, i64, i64, i32, f64)> = sqlx::query_as(JOB_RATE_SQL)
        .bind(rules)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    for (rule, kind, total, failed, window, threshold) in kinds {
        found.push(Finding {
            rule_id: rule,
            subject: format!("kind:{kind}"),
            job_key: None,
            job_kind: Some(kind.clone()),
            label: kind,
            facts: rate_facts(failed, total, window, threshold),
        });
    }
    Ok(found)
}

fn rate_facts(failed: i64, total: i64, window: i32, threshold: f64) -> Value {
    json!({
        "failed": failed, "total": total, "window_seconds": window,
        "percent": (failed as f64 * 1000.0 / total.max(1) as f64).round() / 10.0,
        "threshold_percent": threshold,
    })
}

type DurationRow = (
    Uuid,
    String,
    String,
    f64,
    Option<f64>,
    i64,
    Option<f64>,
    f64,
);
type JobDurationRow = (
    Uuid,
    Uuid,
    String,
    String,
    f64,
    Option<f64>,
    i64,
    Option<f64>,
    f64,
);

fn duration_facts(
    ms: f64,
    p95: Option<f64>,
    n: i64,
    max_seconds: Option<f64>,
    factor: f64,
) -> Value {
    json!({
        "seconds": (ms / 100.0).round() / 10.0,
        "p95_seconds": p95.map(|p| (p / 100.0).round() / 10.0),
        "runs": n, "max_seconds": max_seconds, "factor": factor,
    })
}

async fn durations(
    conn: &mut PgConnection,
    rules: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, sqlx::Error> {
    let scripts: Vec<DurationRow> = sqlx::query_as(DURATION_SQL)
        .bind(rules)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    let jobs: Vec<JobDurationRow> = sqlx::query_as(DURATION_JOBS_SQL)
        .bind(rules)
        .bind(now)
        .bind("running")
        .fetch_all(&mut *conn)
        .await?;
    let scripts = scripts
        .into_iter()
        .map(|(rule, key, title, ms, p95, n, max, factor)| {
            script(rule, key, title, duration_facts(ms, p95, n, max, factor))
        });
    let jobs = jobs
        .into_iter()
        .map(|(rule, id, kind, label, ms, p95, n, max, factor)| {
            job(
                rule,
                id,
                kind,
                label,
                duration_facts(ms, p95, n, max, factor),
            )
        });
    Ok(scripts.chain(jobs).collect())
}

async fn error_spikes(
    conn: &mut PgConnection,
    rules: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Finding>, sqlx::Error> {
    type SpikeRow = (
        Uuid,
        String,
        String,
        i64,
        i32,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<SpikeRow> = sqlx::query_as(ERROR_SPIKE_SQL)
        .bind(rules)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(rule, fingerprint, error_type, count, window, job_key, job_kind)| Finding {
                rule_id: rule,
                subject: format!("fingerprint:{fingerprint}"),
                job_key,
                // The rule's scope: a silence of that kind or job covers its spikes.
                job_kind,
                label: format!(
                    "{error_type} ({})",
                    &fingerprint[..fingerprint.len().min(12)]
                ),
                facts: json!({
                    "fingerprint": fingerprint, "error_type": error_type, "count": count,
                    "window_seconds": window,
                }),
            },
        )
        .collect())
}
