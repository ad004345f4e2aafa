//! `createJob`'s `warnings` (seed 004's prevention: risk detection before the run): the job
//! is created either way, and told what similar work did lately. Its product or sending
//! group failed repeatedly in the last 24 hours; or its resource limits are below what the
//! last finished jobs of its product peaked at (from the hourly metric rollups).

use serde::Serialize;
use sqlx::{FromRow, PgPool};

use crate::model::JobView;

/// This many failed jobs of one product or sending group in 24 hours is "repeatedly".
pub const REPEATED_FAILURES: i64 = 3;
/// The finished jobs of a product whose peaks a new one's limits are held against.
pub const SIMILAR_JOBS: i64 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    RepeatedFailures,
    MemoryBelowPeak,
    CpuBelowPeak,
}

#[derive(Debug, Serialize)]
pub struct JobWarning {
    pub kind: WarningKind,
    /// The warning with its figures, in words.
    pub message: String,
    /// The figures: `{field, value, failed}` or `{limit, peak, jobs}`.
    pub figures: serde_json::Value,
}

/// Failed jobs of the product and of the sending group in the last 24 hours. The status is
/// written out: it is the predicate of the partial indexes these read.
const REPEATED_FAILURES_SQL: &str = "
    SELECT 'product_id' AS field, $1 AS value,
           (SELECT count(*) FROM jobs WHERE status = 'failed' AND product_id = $1
              AND finished_at > now() - interval '24 hours') AS failed
    UNION ALL
    SELECT 'sending_group_id', $2,
           (SELECT count(*) FROM jobs WHERE status = 'failed' AND sending_group_id = $2
              AND finished_at > now() - interval '24 hours')";

/// The peaks of the product's last finished jobs (`jobs_product_created_idx`, then the
/// hourly rollups of each).
const PEAKS_SQL: &str = "
    WITH recent AS (
        SELECT id FROM jobs
        WHERE product_id = $1 AND id <> $2 AND finished_at IS NOT NULL
        ORDER BY created_at DESC LIMIT $3)
    SELECT (SELECT count(*) FROM recent) AS jobs,
           max(r.max) FILTER (WHERE r.metric = 'memory') AS memory,
           max(r.max) FILTER (WHERE r.metric = 'cpu') AS cpu
    FROM recent s
    JOIN metric_rollups r ON r.job_id = s.id AND r.grain = 'hour' AND r.metric IN ('cpu', 'memory')";

#[derive(FromRow)]
struct Failures {
    field: String,
    value: Option<String>,
    failed: i64,
}

#[derive(FromRow)]
struct Peaks {
    jobs: i64,
    memory: Option<f64>,
    cpu: Option<f64>,
}

pub async fn for_new_job(pool: &PgPool, job: &JobView) -> Result<Vec<JobWarning>, sqlx::Error> {
    let mut warnings = Vec::new();
    if job.product_id.is_none() && job.sending_group_id.is_none() {
        return Ok(warnings);
    }
    let failures: Vec<Failures> = sqlx::query_as(REPEATED_FAILURES_SQL)
        .bind(&job.product_id)
        .bind(&job.sending_group_id)
        .fetch_all(pool)
        .await?;
    for f in failures {
        if let (Some(value), true) = (f.value, f.failed >= REPEATED_FAILURES) {
            warnings.push(JobWarning {
                kind: WarningKind::RepeatedFailures,
                message: format!(
                    "{} {value:?} had {} failed jobs in the last 24 hours",
                    f.field, f.failed
                ),
                figures: serde_json::json!({ "field": f.field, "value": value, "failed": f.failed }),
            });
        }
    }
    let Some(product) = &job.product_id else {
        return Ok(warnings);
    };
    let peaks: Peaks = sqlx::query_as(PEAKS_SQL)
        .bind(product)
        .bind(job.id)
        .bind(SIMILAR_JOBS)
        .fetch_one(pool)
        .await?;
    let limits = &job.resource_limits;
    if let Some(peak) = peaks.memory {
        if limits.max_memory > 0 && (limits.max_memory as f64) < peak {
            warnings.push(JobWarning {
                kind: WarningKind::MemoryBelowPeak,
                message: format!(
                    "max_memory {} MB is below the {peak:.0} MB that the last {} finished jobs \
                     of product {product:?} peaked at",
                    limits.max_memory, peaks.jobs
                ),
                figures: serde_json::json!({ "limit": limits.max_memory, "peak": peak, "jobs": peaks.jobs }),
            });
        }
    }
    // A sample's cpu_percent is of one core.
    if let Some(peak) = peaks.cpu.map(|percent| percent / 100.0) {
        if limits.max_cpu > 0.0 && limits.max_cpu < peak {
            warnings.push(JobWarning {
                kind: WarningKind::CpuBelowPeak,
                message: format!(
                    "max_cpu {} cores is below the {peak:.2} cores that the last {} finished \
                     jobs of product {product:?} peaked at",
                    limits.max_cpu, peaks.jobs
                ),
                figures: serde_json::json!({ "limit": limits.max_cpu, "peak": peak, "jobs": peaks.jobs }),
            });
        }
    }
    Ok(warnings)
}
