//! Keeps the history within its retention, in small steps that never hold a lock for long:
//! raw samples (`task_metrics`) and seed 003's reports (`job_reports`) live in one partition
//! per UTC day, made ahead of time and dropped whole once older than their retention;
//! rollups (`rollups.rs`), finished jobs (by how they ended) and the alert history are
//! deleted in batches.
//!
//! Every portal process runs this; a pass holds a session advisory lock, so while one process
//! runs it the others skip theirs. Each step is its own transaction that waits at most a
//! second for a lock; a step that fails (a busy lock, a deadlock PostgreSQL broke) is logged
//! and left for the next pass, and the pass goes on with the others.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::model::{JobAction, JobStatus};
use crate::server::audit::{self, Actor, Event, Outcome};

/// The `JOBDECK_*_RETENTION_DAYS` settings.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Days of raw samples kept (`RAW`, default 7).
    pub raw_days: u64,
    /// Days of per-minute and per-hour rollups kept (`ROLLUP`, default 400).
    pub rollup_days: u64,
    /// Days of seed 003's script reports kept (`REPORT`, default 90).
    pub report_days: u64,
    /// Days a completed or cancelled job is kept after it finished (`SUCCEEDED_JOB`, default
    /// 90); its tasks, logs, samples and rollups go with it.
    pub succeeded_job_days: u64,
    /// Days a failed job is kept after it failed (`FAILED_JOB`, default 400).
    pub failed_job_days: u64,
    /// Days of alert history kept (`ALERT`, default 400): events with their deliveries and
    /// attempts (never one still owed), notes of alerts no longer open, ended silences.
    pub alert_days: u64,
}

impl Retention {
    /// The longest either may be set to (a hundred years).
    pub const MAX_DAYS: u64 = 36_500;
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_days: 7,
            rollup_days: 400,
            report_days: 90,
            succeeded_job_days: 90,
            failed_job_days: 400,
            alert_days: 400,
        }
    }
}

const EVERY: Duration = Duration::from_secs(600);
/// Days of partitions made ahead of today.
const DAYS_AHEAD: u64 = 3;
/// Rows deleted per statement from a default partition and the rollups.
const DELETE_BATCH: i64 = 5_000;
/// Jobs deleted per statement (each takes its tasks, logs, samples and rollups along), and
/// the most jobs and tasks together one statement deletes.
const JOB_BATCH: i64 = 200;
const JOB_LOAD: i64 = 20_000;
/// `pg_try_advisory_lock` key of this task ("jdmaint").
const LOCK_KEY: i64 = 0x006a_646d_6169_6e74;

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    pub partitions_created: usize,
    pub partitions_dropped: usize,
    /// Samples and reports older than their retention deleted from a default partition.
    pub strays_deleted: u64,
    pub rollups_deleted: u64,
    /// Finished jobs past their retention.
    pub jobs_deleted: u64,
    /// Alert events, notes and silences past theirs.
    pub alert_rows_deleted: u64,
    /// Steps left for the next pass (a busy lock, a deadlock; each logged).
    pub skipped: usize,
    /// Another process was running its pass.
    pub other_process: bool,
}

/// Runs a pass at start and every 10 minutes; `passes` counts the passes tried.
pub async fn run_metric_maintenance(pool: PgPool, retention: Retention, passes: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match maintain(&pool, retention, Utc::now()).await {
            Ok(done) if done != Maintained::default() => {
                tracing::info!(?done, "monitoring data maintained")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "monitoring maintenance failed; trying again later")
            }
        }
        passes.fetch_add(1, Ordering::Release);
    }
}

/// A table partitioned by UTC day on `column`, with a default partition `{table}_default`.
struct Daily {
    table: &'static str,
    column: &'static str,
    /// What a deletion cascading into the table locks first, locked in that order before
    /// the default partition, so a partition's creation cannot deadlock with a deletion.
    locked_first: &'static str,
    /// Whether rows arrive dated in the past (a sample reported late), so that partitions are
    /// made for every day kept, not only from today.
    dated_by_writer: bool,
}

const SAMPLES: Daily = Daily {
    table: "task_metrics",
    column: "at",
    locked_first: "jobs, job_tasks",
    dated_by_writer: true,
};

const REPORTS: Daily = Daily {
    table: "job_reports",
    column: "received_at",
    locked_first: "job_status",
    // A report is dated by its arrival.
    dated_by_writer: false,
};

impl Daily {
    fn partition(&self, day: NaiveDate) -> String {
        format!("{}_p{}", self.table, day.format("%Y%m%d"))
    }

    fn day_of(&self, name: &str) -> Option<NaiveDate> {
        let day = name.strip_prefix(self.table)?.strip_prefix("_p")?;
        NaiveDate::parse_from_str(day, "%Y%m%d").ok()
    }
}

fn days_before(day: NaiveDate, days: u64) -> NaiveDate {
    day.checked_sub_days(Days::new(days))
        .unwrap_or(NaiveDate::MIN)
}

/// The pool's connection while it holds the session lock. Dropped without `release` (a
/// failed unlock, a panic, a cancelled pass) it is closed, not returned to the pool, so the
/// lock ends with its session and never outlives the pass.
struct Locked(Option<PoolConnection<Postgres>>);

impl Locked {
    fn conn(&mut self) -> &mut PgConnection {
        self.0.as_mut().expect("held until released")
    }

    async fn release(mut self) {
        let mut conn = self.0.take().expect("held until released");
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            drop(conn.detach());
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

/// One pass at `now`: old strays and rollups deleted, partitions made for every day from the
/// oldest kept to a few days ahead, older ones dropped.
pub async fn maintain(
    pool: &PgPool,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Maintained, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !held {
        return Ok(Maintained {
            other_process: true,
            ..Maintained::default()
        });
    }
    let mut locked = Locked(Some(conn));
    let done = pass(locked.conn(), retention, now).await;
    locked.release().await;
    done
}

async fn pass(
    conn: &mut PgConnection,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Maintained, sqlx::Error> {
    let mut done = Maintained::default();
    let today = now.date_naive();
    let raw = [
        (SAMPLES, days_before(today, retention.raw_days)),
        (REPORTS, days_before(today, retention.report_days)),
    ];
    // Strays first, so the partitions made next scan less of the default partitions.
    for (table, oldest_kept) in &raw {
        // Names are constants of this file, never input.
        let strays = format!(
            "DELETE FROM {t}_default WHERE ctid IN
                 (SELECT ctid FROM {t}_default WHERE {c} < $1 LIMIT $2)",
            t = table.table,
            c = table.column
        );
        let cutoff = at_midnight(*oldest_kept);
        done.strays_deleted += delete_in_batches(conn, &strays, cutoff, &mut done.skipped).await?;
    }
    done.rollups_deleted = delete_in_batches(
        conn,
        "DELETE FROM metric_rollups WHERE ctid IN
             (SELECT ctid FROM metric_rollups WHERE bucket < $1 LIMIT $2)",
        at_midnight(days_before(today, retention.rollup_days)),
        &mut done.skipped,
    )
    .await?;
    for (table, oldest_kept) in &raw {
        keep_days(conn, table, *oldest_kept, today, &mut done).await?;
    }
    let alert_cutoff = at_midnight(days_before(today, retention.alert_days));
    for sql in OLD_ALERT_ROWS {
        done.alert_rows_deleted +=
            delete_in_batches(conn, sql, alert_cutoff, &mut done.skipped).await?;
    }
    for status in JobStatus::ALL.into_iter().filter(|s| s.is_finished()) {
        let days = match status {
            JobStatus::Failed => retention.failed_job_days,
            _ => retention.succeeded_job_days,
        };
        let cutoff = at_midnight(days_before(today, days));
        done.jobs_deleted += delete_finished_jobs(conn, status, cutoff, &mut done.skipped).await?;
    }
    Ok(done)
}

/// The alert history older than `$1`, `$2` rows a statement. An event goes with its
/// deliveries and their attempts (cascade), but not while one of them is still owed.
const OLD_ALERT_ROWS: [&str; 3] = [
    "DELETE FROM alert_events WHERE id IN (
         SELECT e.id FROM alert_events e
         WHERE e.at < $1 AND NOT EXISTS (
             SELECT 1 FROM alert_deliveries d
             WHERE d.event_id = e.id AND d.status IN ('queued', 'sending'))
         LIMIT $2)",
    "DELETE FROM alert_notes WHERE id IN (
         SELECT n.id FROM alert_notes n
         WHERE n.created_at < $1 AND NOT EXISTS (
             SELECT 1 FROM alert_states a WHERE a.rule_id = n.rule_id AND a.subject = n.subject)
         LIMIT $2)",
    "DELETE FROM alert_silences WHERE id IN (
         SELECT id FROM alert_silences WHERE ends_at < $1 LIMIT $2)",
];

/// Makes `table`'s partitions from `oldest_kept` (or today) to a few days ahead and drops
/// older ones.
async fn keep_days(
    conn: &mut PgConnection,
    table: &Daily,
    oldest_kept: NaiveDate,
    today: NaiveDate,
    done: &mut Maintained,
) -> Result<(), sqlx::Error> {
    let existing: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass",
    )
    .bind(table.table)
    .fetch_all(&mut *conn)
    .await?;
    let mut day = if table.dated_by_writer {
        oldest_kept
    } else {
        today
    };
    while day <= today + Days::new(DAYS_AHEAD) {
        if !existing.contains(&table.partition(day)) {
            match create_partition(conn, table, day).await? {
                true => done.partitions_created += 1,
                false => done.skipped += 1,
            }
        }
        day = day + Days::new(1);
    }
    for day in existing.iter().filter_map(|name| table.day_of(name)) {
        if day < oldest_kept {
            let name = table.partition(day);
            match run_step(conn, &name, &[format!("DROP TABLE {name}")]).await? {
                true => done.partitions_dropped += 1,
                false => done.skipped += 1,
            }
        }
    }
    Ok(())
}

/// Jobs that ended with `status` before `cutoff`, a batch per transaction, each batch one
/// audit entry: at most `$3` jobs, and no more of them than fit `$4` jobs and tasks (a job
/// takes its tasks along, and the first job is always taken). The streams of the jobs hear
/// they went (`$5`, the live channel; 200 ids fit a notification). (`created_at` never
/// follows `finished_at`; it lets the status index narrow the scan.)
const EXPIRED_JOBS_SQL: &str = "
    WITH picked AS (
        SELECT id, tasks_total FROM jobs
        WHERE status = $1 AND created_at < $2 AND finished_at < $2
        LIMIT $3
        FOR UPDATE SKIP LOCKED),
    batch AS (
        SELECT id FROM (
            SELECT id, sum(tasks_total + 1) OVER (ORDER BY id) - (tasks_total + 1) AS before
            FROM picked) w
        WHERE before < $4),
    gone AS (DELETE FROM jobs WHERE id IN (SELECT id FROM batch) RETURNING id),
    told AS (SELECT pg_notify($5, string_agg(id::text, ',')) FROM gone HAVING count(*) > 0)
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM told)";

async fn delete_finished_jobs(
    conn: &mut PgConnection,
    status: JobStatus,
    cutoff: DateTime<Utc>,
    skipped: &mut usize,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let mut tx = step(conn).await?;
        let batch: i64 = match sqlx::query_as::<_, (i64, i64)>(EXPIRED_JOBS_SQL)
            .bind(status)
            .bind(cutoff)
            .bind(JOB_BATCH)
            .bind(JOB_LOAD)
            .bind(super::live::CHANNEL)
            .fetch_one(&mut *tx)
            .await
        {
            Ok((n, _)) => n,
            Err(error) if is_passing(&error) => {
                tracing::warn!(%error, "deleting old jobs is left for the next pass");
                *skipped += 1;
                return Ok(deleted);
            }
            Err(error) => return Err(error),
        };
        if batch > 0 {
            audit::record(
                &mut tx,
                &Actor::system(),
                Event {
                    action: JobAction::Delete.name(),
                    target: None,
                    details: serde_json::json!({
                        "result": "deleted",
                        "why": "retention",
                        "status": status,
                        "finished_before": cutoff,
                        "jobs": batch,
                    }),
                    outcome: Outcome::Success,
                },
            )
            .await?;
        }
        tx.commit().await?;
        deleted += batch as u64;
        if batch == 0 {
            return Ok(deleted);
        }
    }
}

fn at_midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A step's transaction, which waits at most a second for a lock.
async fn step(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    // A step holds its locks briefly, but deleting a batch of large jobs may take longer
    // than the pool's statement timeout for requests.
    for setting in [
        "SET LOCAL lock_timeout = '1s'",
        "SET LOCAL statement_timeout = '60s'",
    ] {
        sqlx::query(setting).execute(&mut *tx).await?;
    }
    Ok(tx)
}

/// Whether a step's failure is one to leave for the next pass: a busy lock, a deadlock,
/// a check that new rows made fail. Anything else stops the pass.
fn is_passing(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("55P03" | "40P01" | "40001" | "23514")))
}

/// Makes the day's partition beside the table and attaches it (which locks the parent less
/// than `CREATE TABLE ... PARTITION OF`), first moving in the day's rows that reached the
/// default partition. The tables a deletion cascades from are locked first, then the default
/// partition before its rows move, so no row lands there between the move and the attach.
/// `false` when left for the next pass. Dropping a partition takes an exclusive lock on its
/// table for a moment; it too waits at most a second for it, while writes queue behind it.
async fn create_partition(
    conn: &mut PgConnection,
    table: &Daily,
    day: NaiveDate,
) -> Result<bool, sqlx::Error> {
    let name = table.partition(day);
    let (from, to) = (at_midnight(day), at_midnight(day + Days::new(1)));
    let Daily {
        table,
        column,
        locked_first,
        ..
    } = table;
    // Names and bounds are made here from constants and a date, never from input.
    let statements = [
        format!("LOCK TABLE {locked_first} IN SHARE ROW EXCLUSIVE MODE"),
        format!("LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE"),
        format!("CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
        format!(
            "WITH moved AS (DELETE FROM {table}_default
                            WHERE {column} >= '{from:?}' AND {column} < '{to:?}' RETURNING *)
             INSERT INTO {name} SELECT * FROM moved"
        ),
        format!(
            "ALTER TABLE {table} ATTACH PARTITION {name}
             FOR VALUES FROM ('{from:?}') TO ('{to:?}')"
        ),
    ];
    run_step(conn, &name, &statements).await
}

/// Runs the statements in one transaction; `false` (rolled back, logged) when it failed in a
/// way the next pass may not.
async fn run_step(
    conn: &mut PgConnection,
    what: &str,
    statements: &[String],
) -> Result<bool, sqlx::Error> {
    let mut tx = step(conn).await?;
    for statement in statements {
        match sqlx::query(statement).execute(&mut *tx).await {
            Ok(_) => {}
            Err(error) if is_passing(&error) => {
                tracing::warn!(%error, partition = what, "left for the next maintenance pass");
                return Ok(false);
            }
            Err(error) => return Err(error),
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Runs `sql` (bound to the cutoff and a batch size) until a batch deletes fewer rows, each
/// batch in its own short transaction.
async fn delete_in_batches(
    conn: &mut PgConnection,
    sql: &str,
    cutoff: DateTime<Utc>,
    skipped: &mut usize,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let mut tx = step(conn).await?;
        let batch = match sqlx::query(sql)
            .bind(cutoff)
            .bind(DELETE_BATCH)
            .execute(&mut *tx)
            .await
        {
            Ok(done) => done.rows_affected(),
            Err(error) if is_passing(&error) => {
                tracing::warn!(%error, "deleting old monitoring rows is left for the next pass");
                *skipped += 1;
                return Ok(deleted);
            }
            Err(error) => return Err(error),
        };
        tx.commit().await?;
        deleted += batch;
        if batch < DELETE_BATCH as u64 {
            return Ok(deleted);
        }
    }
}
