//! Keeps the monitoring data within its retention, in small steps that never hold a lock for
//! long: raw samples live in one `task_metrics` partition per UTC day, made ahead of time and
//! dropped whole once the day is older than `raw_days`; rollups (`rollups.rs`) are deleted in
//! batches once older than `rollup_days`.
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

/// `JOBDECK_RAW_RETENTION_DAYS` and `JOBDECK_ROLLUP_RETENTION_DAYS`.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Days of raw samples kept (default 7).
    pub raw_days: u64,
    /// Days of per-minute and per-hour rollups kept (default 400).
    pub rollup_days: u64,
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
        }
    }
}

const EVERY: Duration = Duration::from_secs(600);
/// Days of partitions made ahead of today.
const DAYS_AHEAD: u64 = 3;
/// Rows deleted per statement from the default partition and the rollups.
const DELETE_BATCH: i64 = 5_000;
/// `pg_try_advisory_lock` key of this task ("jdmaint").
const LOCK_KEY: i64 = 0x006a_646d_6169_6e74;

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    pub partitions_created: usize,
    pub partitions_dropped: usize,
    /// Samples older than the raw retention deleted from the default partition.
    pub strays_deleted: u64,
    pub rollups_deleted: u64,
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

fn partition_name(day: NaiveDate) -> String {
    format!("task_metrics_p{}", day.format("%Y%m%d"))
}

fn day_of(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("task_metrics_p")?, "%Y%m%d").ok()
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
    let oldest_kept = days_before(today, retention.raw_days);
    // Strays first, so the partitions made next scan less of the default partition.
    done.strays_deleted = delete_in_batches(
        conn,
        "DELETE FROM task_metrics_default WHERE ctid IN
             (SELECT ctid FROM task_metrics_default WHERE at < $1 LIMIT $2)",
        at_midnight(oldest_kept),
        &mut done.skipped,
    )
    .await?;
    done.rollups_deleted = delete_in_batches(
        conn,
        "DELETE FROM metric_rollups WHERE ctid IN
             (SELECT ctid FROM metric_rollups WHERE bucket < $1 LIMIT $2)",
        at_midnight(days_before(today, retention.rollup_days)),
        &mut done.skipped,
    )
    .await?;
    let existing: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'task_metrics'::regclass",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut day = oldest_kept;
    while day <= today + Days::new(DAYS_AHEAD) {
        if !existing.contains(&partition_name(day)) {
            match create_partition(conn, day).await? {
                true => done.partitions_created += 1,
                false => done.skipped += 1,
            }
        }
        day = day + Days::new(1);
    }
    for day in existing.iter().filter_map(|name| day_of(name)) {
        if day < oldest_kept {
            match drop_partition(conn, day).await? {
                true => done.partitions_dropped += 1,
                false => done.skipped += 1,
            }
        }
    }
    Ok(done)
}

fn at_midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A step's transaction, which waits at most a second for a lock.
async fn step(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '1s'")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Whether a step's failure is one to leave for the next pass: a busy lock, a deadlock,
/// a check that new rows made fail. Anything else stops the pass.
fn is_passing(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("55P03" | "40P01" | "40001" | "23514")))
}

/// Makes the day's partition beside the table and attaches it (which locks the parent less
/// than `CREATE TABLE ... PARTITION OF`), first moving in the day's samples that reached the
/// default partition. The tables are locked in the order a job's deletion locks them (the
/// jobs, then the samples), and the default partition before its rows move, so no sample
/// lands there between the move and the attach. `false` when left for the next pass.
async fn create_partition(conn: &mut PgConnection, day: NaiveDate) -> Result<bool, sqlx::Error> {
    let name = partition_name(day);
    let (from, to) = (at_midnight(day), at_midnight(day + Days::new(1)));
    // Names and bounds are made here from a date, never from input.
    let statements = [
        "LOCK TABLE jobs, job_tasks IN SHARE ROW EXCLUSIVE MODE".to_string(),
        "LOCK TABLE task_metrics_default IN ACCESS EXCLUSIVE MODE".to_string(),
        format!("CREATE TABLE {name} (LIKE task_metrics INCLUDING DEFAULTS)"),
        format!(
            "WITH moved AS (DELETE FROM task_metrics_default
                            WHERE at >= '{from:?}' AND at < '{to:?}' RETURNING *)
             INSERT INTO {name} SELECT * FROM moved"
        ),
        format!(
            "ALTER TABLE task_metrics ATTACH PARTITION {name}
             FOR VALUES FROM ('{from:?}') TO ('{to:?}')"
        ),
    ];
    run_step(conn, &name, &statements).await
}

/// Dropping a partition takes an exclusive lock on `task_metrics` for a moment; it waits at
/// most a second for it, while samples queue behind it.
async fn drop_partition(conn: &mut PgConnection, day: NaiveDate) -> Result<bool, sqlx::Error> {
    let name = partition_name(day);
    run_step(conn, &name, &[format!("DROP TABLE {name}")]).await
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
