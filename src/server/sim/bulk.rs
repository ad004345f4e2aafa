//! `jobdeck sim --bulk N`: a large, realistic history written straight into the database
//! with COPY, for benchmarks and for looking at the pages at volume. Deterministic (seeded).
//!
//! What it writes, per job (the README lists the same):
//! - `jobs`: created over the last 365 days, 70 % `recap` (seed 002's eight stages, a user,
//!   `trigger_source` 80 % system) and 30 % `batch` (one of 50 products × 200 sending
//!   groups); priority 1–10; status 85 % completed, 8 % failed, 3 % cancelled, 2 % running,
//!   1 % pending, 1 % paused; runs of 1–60 minutes.
//! - `job_events`: the job's path through the state machine (2–4 rows).
//! - `job_errors`: one per failed job, codes TIMEOUT 40 %, RATE_LIMITED 30 %,
//!   PARSE_ERROR 20 %, OUT_OF_MEMORY 10 %.
//! - For recap jobs created in the last [`DETAIL_DAYS`] days (what the dashboard reads is
//!   the last two; rows for the whole year made the load four times slower):
//!   - `job_phases`: its stages up to where it is or ended, the run split by seed 002's
//!     typical stage times (the live one open);
//!   - `recap_job_articles`: three, from feeds of any of 5,000 users (a sample: real jobs
//!     take in hundreds, but the dashboard's user filter only needs who they came from).

use std::fmt::Write;

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;

use super::{GENRES, STAGE_SECS};
use crate::model::{ErrorClass, JobKind, JobStatus, RECAP_STAGES};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BulkCounts {
    pub jobs: u64,
    pub events: u64,
    pub errors: u64,
    pub phases: u64,
    pub articles: u64,
}

/// How far back recap jobs get their stage runs and articles.
pub const DETAIL_DAYS: i64 = 30;

const STATUS_WEIGHTS: [(JobStatus, u32); 6] = [
    (JobStatus::Completed, 850),
    (JobStatus::Failed, 80),
    (JobStatus::Cancelled, 30),
    (JobStatus::Running, 20),
    (JobStatus::Pending, 10),
    (JobStatus::Paused, 10),
];

const ERROR_CODES: [(&str, u32, &str); 4] = [
    ("TIMEOUT", 40, "upstream did not answer within 30s"),
    ("RATE_LIMITED", 30, "429 from the feed provider"),
    ("PARSE_ERROR", 20, "unexpected token in feed XML"),
    ("OUT_OF_MEMORY", 10, "clustering exceeded its memory limit"),
];

fn pick<T: Copy>(rng: &mut StdRng, weighted: &[(T, u32)]) -> T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (value, weight) in weighted {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    weighted[0].0
}

/// The path from `pending` to `status`, as the state machine allows it.
fn path(status: JobStatus) -> &'static [JobStatus] {
    use JobStatus::*;
    match status {
        Pending => &[Pending],
        Running => &[Pending, Running],
        Paused => &[Pending, Running, Paused],
        Completed => &[Pending, Running, Completed],
        Failed => &[Pending, Running, Failed],
        Cancelled => &[Pending, Running, Cancelled],
    }
}

pub async fn bulk(pool: &PgPool, jobs: u64, seed: u64) -> Result<BulkCounts, sqlx::Error> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tx = pool.begin().await?;
    let mut counts = BulkCounts::default();
    let now = Utc::now();
    let mut left = jobs;
    // Chunks keep memory bounded: each is five COPYs (jobs, then their events, errors,
    // phases and articles).
    while left > 0 {
        let n = left.min(CHUNK_JOBS);
        let rows = generate(&mut rng, n, now, &mut counts);
        for (statement, text) in [
            (COPY_JOBS_SQL, rows.jobs),
            (COPY_EVENTS_SQL, rows.events),
            (COPY_ERRORS_SQL, rows.errors),
            (COPY_PHASES_SQL, rows.phases),
            (COPY_ARTICLES_SQL, rows.articles),
        ] {
            let mut copy = tx.copy_in_raw(statement).await?;
            copy.send(text.into_bytes()).await?;
            copy.finish().await?;
        }
        left -= n;
    }
    tx.commit().await?;
    sqlx::query("ANALYZE jobs, job_events, job_errors, job_phases, recap_job_articles")
        .execute(pool)
        .await?;
    Ok(counts)
}

const COPY_JOBS_SQL: &str = "
    COPY jobs (id, kind, status, product_id, sending_group_id, user_id, trigger_source,
               priority, max_parallel_tasks, max_attempts, retry_interval, current_phase,
               progress_percentage, error_count, stages, created_by, created_at,
               started_at, finished_at, updated_at, error_types) FROM STDIN";
const COPY_PHASES_SQL: &str = "COPY job_phases (job_id, name, started_at, finished_at) FROM STDIN";
const COPY_ARTICLES_SQL: &str =
    "COPY recap_job_articles (job_id, feed_id, original_user_id, genre, created_at) FROM STDIN";
const COPY_EVENTS_SQL: &str =
    "COPY job_events (job_id, from_status, to_status, at, actor) FROM STDIN";
const COPY_ERRORS_SQL: &str = "COPY job_errors (job_id, code, class, message, at) FROM STDIN";

/// Jobs per chunk.
const CHUNK_JOBS: u64 = 20_000;

#[derive(Default)]
struct Rows {
    jobs: String,
    events: String,
    errors: String,
    phases: String,
    articles: String,
}

fn generate(rng: &mut StdRng, n: u64, now: chrono::DateTime<Utc>, counts: &mut BulkCounts) -> Rows {
    let stages = format!("{{{}}}", RECAP_STAGES.join(","));
    let mut rows = Rows::default();
    let ts = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string();
    for _ in 0..n {
        let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        let kind = if rng.random_ratio(7, 10) {
            JobKind::Recap
        } else {
            JobKind::Batch
        };
        let status = pick(rng, &STATUS_WEIGHTS);
        let created = now - Duration::seconds(rng.random_range(60..365 * 86_400));
        let started = created + Duration::seconds(rng.random_range(0..120));
        let run = Duration::seconds(rng.random_range(60..3_600));
        let finished = status.is_finished().then_some(started + run);
        let ran = status != JobStatus::Pending;
        let (product, group, user, trigger) = match kind {
            JobKind::Recap => (
                NULL.to_string(),
                NULL.to_string(),
                format!("user-{}", rng.random_range(0..5_000)),
                if rng.random_ratio(4, 5) {
                    "system"
                } else {
                    "user"
                },
            ),
            JobKind::Batch => (
                format!("product-{}", rng.random_range(0..50)),
                format!("group-{}", rng.random_range(0..200)),
                NULL.to_string(),
                "user",
            ),
        };
        // The recap stage a run reached (the last one when it completed).
        let mut reached = None;
        let (phase, progress) = match (kind, status) {
            (_, JobStatus::Pending) => (NULL.to_string(), 0.0),
            (JobKind::Recap, JobStatus::Completed) => {
                reached = Some(RECAP_STAGES.len() - 1);
                ("Persist".to_string(), 100.0)
            }
            (JobKind::Recap, _) => {
                let at = rng.random_range(0..RECAP_STAGES.len());
                reached = Some(at);
                (RECAP_STAGES[at].to_string(), (at * 100 / 8) as f64)
            }
            (JobKind::Batch, JobStatus::Completed) => ("done".to_string(), 100.0),
            (JobKind::Batch, _) => ("work".to_string(), rng.random_range(0..100) as f64),
        };
        let failed = status == JobStatus::Failed;
        let error = failed.then(|| pick(rng, &ERROR_CODES.map(|(code, weight, _)| (code, weight))));
        // The job's error set as the `job_errors` trigger keeps it, so COPYing the errors
        // after it changes nothing.
        let error_types = error.map_or("{}".into(), |code| {
            format!("{{{code},{}}}", ErrorClass::of_code(code).as_str())
        });
        let _ = writeln!(
            rows.jobs,
            "{id}\t{}\t{}\t{product}\t{group}\t{user}\t{trigger}\t{}\t{}\t3\t60\t{phase}\t{progress}\t{}\t{}\tsim\t{}\t{}\t{}\t{}\t{error_types}",
            kind.as_str(),
            status.as_str(),
            rng.random_range(1..=10),
            rng.random_range(1..=8),
            u8::from(failed),
            if kind == JobKind::Recap { stages.as_str() } else { "{}" },
            ts(created),
            if ran { ts(started) } else { NULL.into() },
            finished.map(ts).unwrap_or_else(|| NULL.into()),
            ts(finished.unwrap_or(started)),
        );
        let mut from = NULL;
        for (step, to) in path(status).iter().enumerate() {
            let at = match step {
                0 => created,
                1 => started,
                _ => finished.unwrap_or(started + run),
            };
            let _ = writeln!(
                rows.events,
                "{id}\t{from}\t{}\t{}\tsim",
                to.as_str(),
                ts(at)
            );
            from = to.as_str();
            counts.events += 1;
        }
        let detailed = created > now - Duration::days(DETAIL_DAYS);
        if let Some(reached) = reached.filter(|_| detailed) {
            // Each stage takes its typical share of the run.
            let total: u32 = STAGE_SECS.iter().sum();
            let mut at = started;
            for (i, name) in RECAP_STAGES.iter().enumerate().take(reached + 1) {
                let end = if i < reached {
                    Some(at + run * STAGE_SECS[i] as i32 / total as i32)
                } else {
                    // The stage it is in stays open; a finished run ended in it.
                    finished
                };
                let _ = writeln!(
                    rows.phases,
                    "{id}\t{name}\t{}\t{}",
                    ts(at),
                    end.map(ts).unwrap_or_else(|| NULL.into())
                );
                at = end.unwrap_or(at);
                counts.phases += 1;
            }
            for _ in 0..3 {
                let _ = writeln!(
                    rows.articles,
                    "{id}\tfeed-{}\tuser-{}\t{}\t{}",
                    rng.random_range(0..20_000),
                    rng.random_range(0..5_000),
                    GENRES[rng.random_range(0..GENRES.len())],
                    ts(started)
                );
                counts.articles += 1;
            }
        }
        if let Some(code) = error {
            let message = ERROR_CODES.iter().find(|c| c.0 == code).map_or("", |c| c.2);
            let _ = writeln!(
                rows.errors,
                "{id}\t{code}\t{}\t{message}\t{}",
                ErrorClass::of_code(code).as_str(),
                ts(finished.unwrap_or(now)),
            );
            counts.errors += 1;
        }
        counts.jobs += 1;
    }
    rows
}

/// COPY's text format for NULL.
const NULL: &str = "\\N";
