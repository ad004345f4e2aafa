//! `getJobMetrics` (series of jobs' samples bucketed by interval, empty buckets included)
//! and `reportMetrics` (a reported pipeline's samples, one statement per call). Both read
//! and write `task_metrics`, which workers' heartbeats also fill.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::input::{GetJobMetrics, MetricsRange, ReportMetrics};
use super::{rollups, store};
use crate::model::{MetricInterval, MetricName};
use crate::server::jobs::{self, JobError};
use crate::server::tasks::TaskError;

#[derive(Debug, Serialize)]
pub struct JobMetrics {
    pub interval: MetricInterval,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// In the order of `job_ids`.
    pub jobs: Vec<JobSeries>,
}

#[derive(Debug, Serialize)]
pub struct JobSeries {
    pub job_id: Uuid,
    /// One series per metric asked for, each with every bucket of the range.
    pub metrics: BTreeMap<&'static str, Series>,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub unit: &'static str,
    pub buckets: Vec<Bucket>,
}

/// A bucket with no sample has `count` 0 and no values.
#[derive(Debug, Serialize, FromRow)]
pub struct Bucket {
    #[serde(rename = "start")]
    #[sqlx(rename = "bucket")]
    pub start: DateTime<Utc>,
    pub count: i64,
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub max: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(FromRow)]
struct BucketRow {
    job_id: Uuid,
    #[sqlx(flatten)]
    bucket: Bucket,
}

/// The series read from raw rows (the tasks' durations); cpu, memory and throughput come
/// from the rollups at any range.
fn raw_series_sql(metric: MetricName) -> Option<&'static str> {
    match metric {
        MetricName::Cpu | MetricName::Memory | MetricName::Throughput => None,
        MetricName::Duration => Some(store::DURATION_SERIES_SQL),
    }
}

fn unit(metric: MetricName) -> &'static str {
    match metric {
        MetricName::Cpu => "percent",
        MetricName::Memory => "MB",
        MetricName::Duration => "ms",
        MetricName::Throughput => "items/s",
    }
}

pub async fn get_job_metrics(
    pool: &PgPool,
    request: GetJobMetrics,
) -> Result<JobMetrics, JobError> {
    let range = request.check(Utc::now())?;
    let existing: HashSet<Uuid> = sqlx::query_scalar(store::EXISTING_JOBS_SQL)
        .bind(&request.job_ids)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
    if let Some(missing) = request.job_ids.iter().find(|id| !existing.contains(id)) {
        return Err(JobError::NotFound(*missing));
    }
    let mut series: HashMap<Uuid, BTreeMap<&'static str, Series>> = HashMap::new();
    for &metric in &request.metrics {
        let mut add = |job_id: Uuid, buckets: Vec<Bucket>| {
            series.entry(job_id).or_default().insert(
                metric.as_str(),
                Series {
                    unit: unit(metric),
                    buckets,
                },
            );
        };
        if let Some(sql) = raw_series_sql(metric) {
            let rows: Vec<BucketRow> = sqlx::query_as(sql)
                .bind(&request.job_ids)
                .bind(range.interval.seconds() as f64)
                .bind(range.start)
                .bind(range.end)
                .fetch_all(pool)
                .await?;
            let mut by_job: HashMap<Uuid, Vec<Bucket>> = HashMap::new();
            for row in rows {
                by_job
                    .entry(row.job_id)
                    .or_insert_with(|| Vec::with_capacity(range.buckets as usize))
                    .push(row.bucket);
            }
            by_job
                .into_iter()
                .for_each(|(job, buckets)| add(job, buckets));
        } else {
            rollups::series(pool, &request.job_ids, metric, &range)
                .await?
                .into_iter()
                .for_each(|(job, buckets)| add(job, buckets));
        }
    }
    let MetricsRange {
        interval,
        start,
        end,
        ..
    } = range;
    Ok(JobMetrics {
        interval,
        start_time: start,
        end_time: end,
        jobs: request
            .job_ids
            .iter()
            .map(|&job_id| JobSeries {
                job_id,
                metrics: series.remove(&job_id).unwrap_or_default(),
            })
            .collect(),
    })
}

/// A job that is not there: deleted (410, stop sending) or never was (404).
async fn missing(pool: &PgPool, job_id: Uuid) -> Result<JobError, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(match jobs::store::tombstone(&mut conn, job_id).await? {
        Some(deleted_at) => JobError::Gone { job_id, deleted_at },
        None => JobError::NotFound(job_id),
    })
}

#[derive(Debug, Serialize)]
pub struct MetricsReported {
    pub job_id: Uuid,
    pub stored: usize,
}

pub async fn report_metrics(
    pool: &PgPool,
    request: ReportMetrics,
) -> Result<MetricsReported, TaskError> {
    request.check(Utc::now())?;
    let job_id = request.job_id;
    let known: Vec<Uuid> = sqlx::query_scalar(store::EXISTING_JOBS_SQL)
        .bind([job_id])
        .fetch_all(pool)
        .await?;
    if known.is_empty() {
        return Err(missing(pool, job_id).await?.into());
    }
    let names: Vec<&str> = request
        .samples
        .iter()
        .filter_map(|s| s.task_name.as_ref().map(|n| n.as_str()))
        .collect();
    let ids: HashMap<String, Uuid> = if names.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, Uuid)>(store::TASK_IDS_SQL)
            .bind(job_id)
            .bind(&names)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
    };
    let mut task_ids = Vec::with_capacity(request.samples.len());
    for (i, sample) in request.samples.iter().enumerate() {
        task_ids.push(match &sample.task_name {
            None => None,
            Some(name) => Some(*ids.get(name.as_str()).ok_or_else(|| TaskError::Unknown {
                field: format!("data.samples[{i}].task_name").into(),
                message: format!("job {job_id} has no task {:?}", name.as_str()).into(),
            })?),
        });
    }
    let samples = &request.samples;
    let at: Vec<Option<DateTime<Utc>>> = samples.iter().map(|s| s.at).collect();
    let cpu: Vec<Option<f64>> = samples
        .iter()
        .map(|s| s.cpu_percent.map(|m| m.get()))
        .collect();
    let memory: Vec<Option<f64>> = samples
        .iter()
        .map(|s| s.memory_mb.map(|m| m.get()))
        .collect();
    let items: Vec<Option<i64>> = samples.iter().map(|s| s.items.map(|c| c.get())).collect();
    let stored = sqlx::query_scalar::<_, i64>(store::REPORT_METRICS_SQL)
        .bind(job_id)
        .bind(&task_ids)
        .bind(&at)
        .bind(&cpu)
        .bind(&memory)
        .bind(&items)
        .fetch_one(pool)
        .await
        .map_err(|error| match &error {
            // The job does not exist, or went while the samples were on their way.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => None,
            _ => Some(error),
        });
    let stored = match stored {
        // The job went before its row could be locked.
        Ok(0) => return Err(missing(pool, job_id).await?.into()),
        Ok(stored) => stored,
        Err(Some(error)) => return Err(error.into()),
        Err(None) => return Err(missing(pool, job_id).await?.into()),
    };
    Ok(MetricsReported {
        job_id,
        stored: stored as usize,
    })
}
