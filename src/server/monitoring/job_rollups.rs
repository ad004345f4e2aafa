//! Jobs counted per UTC day of creation, kind, status and set of error types (`job_rollups`),
//! so that `fetchJobHistory`'s aggregates over a wide filter (every job, a status, a kind, an
//! error type, whole days) read a few rows a day instead of every job. A change to a job
//! appends deltas in its own transaction (the triggers in `migrations/*_job_rollups.sql` and
//! `*_job_error_types.sql`); [`fold`] moves them into the rollups in batches, and a read sums rollups, deltas and the raw jobs of the range's
//! partial first and last days, so it is exact whenever it runs.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use sqlx::PgPool;

/// Deltas folded per statement.
const FOLD_BATCH: i64 = 10_000;
const EVERY: Duration = Duration::from_secs(1);

/// Moves a batch of deltas into the rollups. Safe in every process at once: each batch takes
/// the rows no other fold holds, and upserts its keys in order, so two folds cannot deadlock.
const FOLD_SQL: &str = "
    WITH moved AS (
        DELETE FROM job_rollup_deltas WHERE id IN (
            SELECT id FROM job_rollup_deltas ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING day, kind, status, error_types, jobs, timed, duration_us),
    folded AS (
        INSERT INTO job_rollups AS r (day, kind, status, error_types, jobs, timed, duration_us)
        SELECT day, kind, status, error_types, sum(jobs), sum(timed), sum(duration_us)
        FROM moved GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (day, kind, status, error_types) DO UPDATE SET
            jobs = r.jobs + EXCLUDED.jobs,
            timed = r.timed + EXCLUDED.timed,
            duration_us = r.duration_us + EXCLUDED.duration_us)
    SELECT count(*) FROM moved";

/// Folds until fewer than a batch are left; returns how many deltas moved.
pub async fn fold(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut moved = 0;
    loop {
        let batch: i64 = sqlx::query_scalar(FOLD_SQL)
            .bind(FOLD_BATCH)
            .fetch_one(pool)
            .await?;
        moved += batch as u64;
        if batch < FOLD_BATCH {
            return Ok(moved);
        }
    }
}

/// Folds every second for the life of the process.
pub async fn run_job_rollups(pool: PgPool) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = fold(&pool).await {
            tracing::warn!(%error, "folding job rollups failed; trying again");
        }
    }
}

/// The whole UTC days of `[start, end)` the rollups answer for (`None`: unbounded that way);
/// the rest of the range, its partial first and last days, is read from the jobs. `None` when
/// the range holds no whole day, where the jobs alone are as quick.
pub fn whole_days(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Option<(Option<NaiveDate>, Option<NaiveDate>)> {
    let first = start.map(|s| {
        let day = s.date_naive();
        if s.time() == NaiveTime::MIN {
            day
        } else {
            day + Days::new(1)
        }
    });
    let last = end.map(|e| e.date_naive());
    match (first, last) {
        (Some(first), Some(last)) if first >= last => None,
        days => Some(days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    #[test]
    fn whole_days_leave_the_partial_ends_to_the_jobs() {
        assert_eq!(whole_days(None, None), Some((None, None)));
        assert_eq!(
            whole_days(Some(at(3, 0)), None),
            Some((Some(date(3)), None))
        );
        assert_eq!(
            whole_days(Some(at(3, 5)), None),
            Some((Some(date(4)), None))
        );
        assert_eq!(
            whole_days(None, Some(at(9, 5))),
            Some((None, Some(date(9))))
        );
        assert_eq!(
            whole_days(Some(at(3, 5)), Some(at(9, 0))),
            Some((Some(date(4)), Some(date(9))))
        );
        // No whole day, within one or across one midnight: the jobs alone.
        assert_eq!(whole_days(Some(at(3, 5)), Some(at(4, 2))), None);
        assert_eq!(whole_days(Some(at(3, 5)), Some(at(3, 9))), None);
        assert_eq!(
            whole_days(Some(at(3, 5)), Some(at(5, 2))),
            Some((Some(date(4)), Some(date(5))))
        );
    }
}
