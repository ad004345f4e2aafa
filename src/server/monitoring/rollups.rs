//! Rollups of the cpu, memory and throughput samples, per job per minute and per hour:
//! count, sum, min, max and a log-scale histogram, written in the statement that stores the
//! samples (so a rollup is never behind its samples, and outlives them: `retention.rs`).
//! `getJobMetrics` reads those three series from here at every range.
//!
//! A sample's throughput is its task's items per second since the task's previous sample
//! by time (in the same call, or stored within the hour before it); a counter that went down
//! (the task started over) has none. A sample that arrives after a later one of its task
//! gets its rate; the later one keeps the rate it was stored with.
//!
//! The histogram has 16 bins per doubling (`metric_hist_bin` in the migration): a bin's
//! middle is within 2.2 % of every value in it, so a p95 read from rollups is within 2.2 % of
//! the nearest-rank p95 of the raw samples. Count, min, max and average are exact.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::input::MetricsRange;
use super::metrics::Bucket;
use crate::model::{MetricInterval, MetricName};

/// Wraps an `INSERT INTO task_metrics ... SELECT ... FROM ...` (no `WHERE`, no `RETURNING`)
/// of the samples of the jobs `$jobs` (a `uuid[]`) so that the same statement adds them to the
/// rollups and answers the number of samples stored. The jobs' rows are share-locked first,
/// as a job's deletion locks them before its cascade reaches the rollups (rollup rows locked
/// first, then the jobs by the foreign-key check, deadlocked against a deletion); when none
/// of them exists, nothing is stored. Rollup rows go in key order, so two batches of one
/// job's samples never deadlock either.
macro_rules! with_rollups {
    ($jobs:literal, $insert:literal) => {
        concat!(
            "WITH locked AS (SELECT id FROM jobs WHERE id = ANY(", $jobs, ") ORDER BY id FOR KEY SHARE),
             stored AS (", $insert, " WHERE EXISTS (SELECT 1 FROM locked)
                 RETURNING id, job_id, task_id, at, cpu_percent, memory_mb, items),
             counted AS (
                 SELECT id, job_id, task_id, at, items,
                        lag(at) OVER w AS prev_at, lag(items) OVER w AS prev_items
                 FROM stored WHERE items IS NOT NULL
                 WINDOW w AS (PARTITION BY job_id, task_id ORDER BY at, id)
             ),
             rates AS (
                 SELECT c.job_id, c.at,
                        (c.items - coalesce(c.prev_items, p.items))::float8
                            / nullif(extract(epoch FROM c.at - coalesce(c.prev_at, p.at)), 0)::float8 AS v
                 FROM counted c
                 LEFT JOIN LATERAL (
                     SELECT t.at, t.items FROM task_metrics t
                     WHERE c.prev_at IS NULL AND t.job_id = c.job_id
                       AND t.task_id IS NOT DISTINCT FROM c.task_id AND t.items IS NOT NULL
                       AND t.at >= c.at - interval '1 hour' AND t.at <= c.at
                     ORDER BY t.at DESC, t.id DESC LIMIT 1
                 ) p ON true
                 WHERE c.prev_at >= c.at - interval '1 hour' OR p.at IS NOT NULL
             ),
             rolled AS (
                 INSERT INTO metric_rollups AS r (job_id, metric, grain, bucket, count, sum, min, max, hist)
                 SELECT job_id, metric, grain, bucket, sum(n), sum(s), min(lo), max(hi),
                        array_agg((bin + 32768)::bigint * 4294967296 + n ORDER BY bin)
                 FROM (
                     SELECT job_id, metric, grain, date_trunc(grain, at, 'UTC') AS bucket,
                            metric_hist_bin(v) AS bin, count(*) AS n, sum(v) AS s,
                            min(v) AS lo, max(v) AS hi
                     FROM (SELECT job_id, at, 'cpu' AS metric, cpu_percent AS v FROM stored
                           WHERE cpu_percent IS NOT NULL
                           UNION ALL
                           SELECT job_id, at, 'memory', memory_mb FROM stored
                           WHERE memory_mb IS NOT NULL
                           UNION ALL
                           SELECT job_id, at, 'throughput', v FROM rates WHERE v >= 0) samples
                     CROSS JOIN (VALUES ('minute'), ('hour')) AS grains (grain)
                     GROUP BY 1, 2, 3, 4, 5
                 ) bins
                 GROUP BY 1, 2, 3, 4
                 ORDER BY 1, 2, 3, 4
                 ON CONFLICT (job_id, metric, grain, bucket) DO UPDATE SET
                     count = r.count + excluded.count,
                     sum = r.sum + excluded.sum,
                     min = least(r.min, excluded.min),
                     max = greatest(r.max, excluded.max),
                     hist = metric_hist_merge(r.hist, excluded.hist)
             )
             SELECT count(*) FROM stored"
        )
    };
}
pub(crate) use with_rollups;

const ROLLUPS_SQL: &str = "
    SELECT job_id, bucket, count, sum, min, max, hist FROM metric_rollups
    WHERE job_id = ANY($1::uuid[]) AND metric = $2 AND grain = $3 AND bucket >= $4 AND bucket < $5
    ORDER BY job_id, bucket";

#[derive(FromRow)]
struct RollupRow {
    job_id: Uuid,
    bucket: DateTime<Utc>,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    hist: Vec<i64>,
}

/// Bins of a histogram and their counts.
#[derive(Default, Debug)]
pub struct Histogram(BTreeMap<i32, u64>);

impl Histogram {
    /// Adds a histogram as stored: `(bin + 32768) << 32 | count` per element.
    pub fn add_stored(&mut self, stored: &[i64]) {
        for &element in stored {
            let bin = (element >> 32) as i32 - 32_768;
            let count = (element & 0xFFFF_FFFF) as u64;
            *self.0.entry(bin).or_default() += count;
        }
    }

    /// The nearest-rank quantile `q`: the middle of the bin holding the ⌈q·n⌉-th value.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (&bin, &count) in &self.0 {
            seen += count;
            if seen >= rank {
                return Some(bin_middle(bin));
            }
        }
        None
    }
}

/// The value a bin stands for: its geometric middle (bin -128 holds the values near 0).
pub fn bin_middle(bin: i32) -> f64 {
    if bin <= -128 {
        0.0
    } else {
        2f64.powf((bin as f64 + 0.5) / 16.0)
    }
}

fn grain(interval: MetricInterval) -> &'static str {
    if interval.seconds() >= 3_600 {
        "hour"
    } else {
        "minute"
    }
}

#[derive(Default)]
struct Totals {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    hist: Histogram,
}

impl Totals {
    fn add(&mut self, row: &RollupRow) {
        if self.count == 0 {
            self.min = row.min;
            self.max = row.max;
        } else {
            self.min = self.min.min(row.min);
            self.max = self.max.max(row.max);
        }
        self.count += row.count;
        self.sum += row.sum;
        self.hist.add_stored(&row.hist);
    }

    fn bucket(self, start: DateTime<Utc>) -> Bucket {
        if self.count == 0 {
            return Bucket {
                start,
                count: 0,
                min: None,
                avg: None,
                max: None,
                p95: None,
            };
        }
        Bucket {
            start,
            count: self.count,
            min: Some(self.min),
            avg: Some(self.sum / self.count as f64),
            max: Some(self.max),
            // Never outside what was measured.
            p95: self
                .hist
                .quantile(0.95)
                .map(|p| p.clamp(self.min, self.max)),
        }
    }
}

/// Every bucket of `range` of each job's `metric` (cpu or memory), empty ones too. Rollup
/// rows are whole minutes or hours, so a bucket that `end` cuts holds the whole of its last
/// minute.
pub async fn series(
    pool: &PgPool,
    job_ids: &[Uuid],
    metric: MetricName,
    range: &MetricsRange,
) -> Result<HashMap<Uuid, Vec<Bucket>>, sqlx::Error> {
    let step = range.interval.seconds();
    let rows: Vec<RollupRow> = sqlx::query_as(ROLLUPS_SQL)
        .bind(job_ids)
        .bind(metric.as_str())
        .bind(grain(range.interval))
        .bind(range.first)
        .bind(range.end)
        .fetch_all(pool)
        .await?;
    let mut totals: HashMap<(Uuid, i64), Totals> = HashMap::new();
    for row in &rows {
        let slot = row.bucket.timestamp().div_euclid(step) * step;
        totals.entry((row.job_id, slot)).or_default().add(row);
    }
    let mut series = HashMap::with_capacity(job_ids.len());
    for &job_id in job_ids {
        let buckets = (0..range.buckets)
            .map(|i| {
                let slot = range.first.timestamp() + i * step;
                let start = DateTime::from_timestamp(slot, 0).unwrap_or(range.first);
                totals
                    .remove(&(job_id, slot))
                    .unwrap_or_default()
                    .bucket(start)
            })
            .collect();
        series.insert(job_id, buckets);
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(bin: i32, count: u64) -> i64 {
        (((bin + 32_768) as i64) << 32) | count as i64
    }

    #[test]
    fn the_quantile_is_the_middle_of_the_bin_holding_the_nearest_rank() {
        let mut hist = Histogram::default();
        // 95 values in bin 0 (1.0 to 1.044), 5 in bin 16 (2.0 to 2.09).
        hist.add_stored(&[stored(0, 95), stored(16, 5)]);
        assert_eq!(hist.quantile(0.95), Some(bin_middle(0)));
        assert_eq!(hist.quantile(0.96), Some(bin_middle(16)));
        assert_eq!(Histogram::default().quantile(0.95), None);
    }

    #[test]
    fn a_bin_middle_is_within_the_documented_error_of_its_edges() {
        for bin in [-127, -1, 0, 1, 100, 300] {
            let low = 2f64.powf(bin as f64 / 16.0);
            let high = 2f64.powf((bin + 1) as f64 / 16.0);
            let middle = bin_middle(bin);
            assert!(middle / low - 1.0 <= 0.022 && 1.0 - middle / high <= 0.022);
        }
        assert_eq!(bin_middle(-128), 0.0);
    }

    #[test]
    fn stored_bins_merge_by_bin() {
        let mut hist = Histogram::default();
        hist.add_stored(&[stored(-128, 2), stored(3, 1)]);
        hist.add_stored(&[stored(3, 4)]);
        assert_eq!(hist.0.get(&3), Some(&5));
        assert_eq!(hist.0.get(&-128), Some(&2));
    }
}
