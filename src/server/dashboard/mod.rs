//! Seed 002's Recap job-status dashboard: the live recap jobs with their eight stages and
//! genres, recent jobs, and the last 24 hours' figures. Both are computed at most once per
//! interval per filter ([`cache::Cached`]), so fifty people polling cost what one does, and
//! once computed, a poller never waits for the database: the next figures are computed in
//! the background while the last ones are answered.
//! `GET /v1/dashboard/job-progress`, `GET /v1/dashboard/job-stats` and the page all call
//! [`Dashboard::job_progress`] and [`Dashboard::job_stats`].

mod cache;
mod chart;
mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use self::cache::Cached;
use crate::model::{
    stage_progress, ActiveJob, DashboardCharts, DashboardError, DashboardFilter, GenreProgress,
    HourStats, JobPhaseView, JobProgress, JobStats, JobStatus, RecapDashboard, RecentJob,
    StageStats, TaskStatus, TriggerSource, WindowStats, ACTIVE_JOBS, RECAP_STAGES, RECENT_JOBS,
};

/// The 24-hour figures move slowly: once per poll interval (seed 002: 5 s).
const STATS_TTL: Duration = Duration::from_secs(5);
/// The live jobs move on every report; one second keeps them current and the cost flat.
const PROGRESS_TTL: Duration = Duration::from_secs(1);

/// The 24-hour figures with their charts, drawn once when the figures are computed.
pub struct Figures {
    pub stats: JobStats,
    pub charts: DashboardCharts,
}

/// The dashboard's figures and their caches; cheap to clone.
#[derive(Clone)]
pub struct Dashboard {
    stats: Arc<FiguresCache>,
    progress: Arc<Cached<DashboardFilter, Arc<JobProgress>>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Self {
            stats: Arc::new(Cached::new(STATS_TTL)),
            progress: Arc::new(Cached::new(PROGRESS_TTL)),
        }
    }
}

impl Dashboard {
    pub async fn job_stats(
        &self,
        pool: &PgPool,
        filter: &DashboardFilter,
    ) -> Result<Arc<Figures>, sqlx::Error> {
        figures(&self.stats, pool, filter).await
    }

    pub async fn job_progress(
        &self,
        pool: &PgPool,
        filter: &DashboardFilter,
    ) -> Result<Arc<JobProgress>, sqlx::Error> {
        // Only the figures' cache: the progress cache's own task must not keep it alive.
        let (stats, pool, owned) = (self.stats.clone(), pool.clone(), filter.clone());
        let compute = move || {
            let (stats, pool, filter) = (stats.clone(), pool.clone(), owned.clone());
            async move {
                // Each stage's usual time comes from the 24-hour figures.
                let figures = figures(&stats, &pool, &filter).await?;
                let started = std::time::Instant::now();
                let progress = job_progress_at(&pool, &filter, Utc::now(), &figures.stats).await?;
                tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, user = ?filter.user_id, "job progress computed");
                Ok(Arc::new(progress))
            }
        };
        self.progress.get(filter, compute).await
    }

    /// What the page shows: both endpoints' answers and the charts.
    pub async fn recap(
        &self,
        pool: &PgPool,
        filter: &DashboardFilter,
    ) -> Result<RecapDashboard, sqlx::Error> {
        let figures = self.job_stats(pool, filter).await?;
        let progress = self.job_progress(pool, filter).await?;
        Ok(RecapDashboard {
            stats: figures.stats.clone(),
            progress: JobProgress::clone(&progress),
            charts: figures.charts.clone(),
        })
    }
}

type FiguresCache = Cached<DashboardFilter, Arc<Figures>>;

async fn figures(
    cache: &Arc<FiguresCache>,
    pool: &PgPool,
    filter: &DashboardFilter,
) -> Result<Arc<Figures>, sqlx::Error> {
    let (pool, owned) = (pool.clone(), filter.clone());
    let compute = move || {
        let (pool, filter) = (pool.clone(), owned.clone());
        async move {
            let started = std::time::Instant::now();
            let stats = job_stats_at(&pool, &filter, Utc::now()).await?;
            let charts = chart::charts(&stats);
            // scripts/bench reads these to report what one computation costs.
            tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, user = ?filter.user_id, "job stats computed");
            Ok(Arc::new(Figures { stats, charts }))
        }
    };
    cache.get(filter, compute).await
}

fn form(sql: &[&'static str; 2], filter: &DashboardFilter) -> &'static str {
    sql[usize::from(filter.user_id.is_some())]
}

#[derive(sqlx::FromRow)]
struct WindowRow {
    current: bool,
    jobs: i64,
    completed: i64,
    failed: i64,
    cancelled: i64,
    avg_duration_ms: Option<f64>,
}

/// The figures as of `now` (the tests pin it), uncached.
pub async fn job_stats_at(
    pool: &PgPool,
    filter: &DashboardFilter,
    now: DateTime<Utc>,
) -> Result<JobStats, sqlx::Error> {
    let user = filter.user_id.as_deref();
    let windows: Vec<WindowRow> = sqlx::query_as(form(&store::WINDOW_STATS_SQL, filter))
        .bind(now)
        .bind(user)
        .fetch_all(pool)
        .await?;
    let window = |current: bool| {
        windows
            .iter()
            .find(|w| w.current == current)
            .map(|w| WindowStats {
                jobs: w.jobs,
                completed: w.completed,
                failed: w.failed,
                cancelled: w.cancelled,
                success_rate: (w.completed + w.failed > 0)
                    .then(|| w.completed as f64 * 100.0 / (w.completed + w.failed) as f64),
                avg_duration_ms: w.avg_duration_ms,
            })
            .unwrap_or_default()
    };
    let hours: Vec<(i32, i64, i64)> = sqlx::query_as(form(&store::PER_HOUR_SQL, filter))
        .bind(now)
        .bind(user)
        .fetch_all(pool)
        .await?;
    let per_hour = (0..24)
        .rev()
        .map(|ago: i32| {
            let (jobs, failures) = hours
                .iter()
                .find(|h| h.0 == ago)
                .map_or((0, 0), |h| (h.1, h.2));
            HourStats {
                start: now - chrono::Duration::hours(i64::from(ago) + 1),
                jobs,
                failures,
            }
        })
        .collect();
    let stage_rows: Vec<(String, i64, f64)> = sqlx::query_as(form(&store::STAGE_STATS_SQL, filter))
        .bind(now)
        .bind(user)
        .fetch_all(pool)
        .await?;
    let stages = RECAP_STAGES
        .iter()
        .filter_map(|stage| {
            stage_rows
                .iter()
                .find(|row| row.0 == *stage)
                .map(|row| StageStats {
                    name: row.0.clone(),
                    runs: row.1,
                    avg_ms: row.2,
                })
        })
        .collect();
    Ok(JobStats {
        generated_at: now,
        user_id: filter.user_id.clone(),
        last_24h: window(true),
        previous_24h: window(false),
        per_hour,
        stages,
    })
}

#[derive(sqlx::FromRow)]
struct ActiveRow {
    id: Uuid,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    trigger_source: TriggerSource,
    user_id: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    current_phase: Option<String>,
    progress_percentage: f64,
    stages: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct RecentRow {
    id: Uuid,
    #[sqlx(try_from = "String")]
    status: JobStatus,
    trigger_source: TriggerSource,
    user_id: Option<String>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    articles: i64,
    genres: i64,
    error_code: Option<String>,
    error_message: Option<String>,
    error_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct PhaseRow {
    job_id: Uuid,
    #[sqlx(flatten)]
    run: JobPhaseView,
}

#[derive(sqlx::FromRow)]
struct GenreRow {
    job_id: Uuid,
    name: String,
    #[sqlx(try_from = "String")]
    status: TaskStatus,
    articles: i64,
    clusters: i64,
    message: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ErrorRow {
    job_id: Uuid,
    code: String,
    message: String,
    at: DateTime<Utc>,
}

fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// The live jobs and recent ones as of `now`, uncached; `stats` gives each stage's usual
/// duration.
pub async fn job_progress_at(
    pool: &PgPool,
    filter: &DashboardFilter,
    now: DateTime<Utc>,
    stats: &JobStats,
) -> Result<JobProgress, sqlx::Error> {
    let user = filter.user_id.as_deref();
    let active: Vec<ActiveRow> = sqlx::query_as(form(&store::ACTIVE_JOBS_SQL, filter))
        .bind(now)
        .bind(user)
        // One more than shown, to know whether there are more.
        .bind(ACTIVE_JOBS + 1)
        .fetch_all(pool)
        .await?;
    let recent: Vec<RecentRow> = sqlx::query_as(form(&store::RECENT_JOBS_SQL, filter))
        .bind(now)
        .bind(user)
        .bind(RECENT_JOBS)
        .fetch_all(pool)
        .await?;
    let mut active = active;
    let more_active = active.len() > ACTIVE_JOBS as usize;
    active.truncate(ACTIVE_JOBS as usize);
    // With no live job, the pipeline shows the last run: where it stopped, or failed.
    let mut last_finished = None;
    if active.is_empty() {
        if let Some(last) = recent.first() {
            let row: Option<ActiveRow> = sqlx::query_as(store::JOB_SQL)
                .bind(last.id)
                .fetch_optional(pool)
                .await?;
            last_finished = row.map(|row| (row, last.status));
        }
    }
    let ids: Vec<Uuid> = active
        .iter()
        .chain(last_finished.as_ref().map(|(row, _)| row))
        .map(|job| job.id)
        .collect();
    let (phases, genres, errors) = if ids.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let phases: Vec<PhaseRow> = sqlx::query_as(store::PHASES_OF_SQL)
            .bind(&ids)
            .fetch_all(pool)
            .await?;
        let genres: Vec<GenreRow> = sqlx::query_as(store::GENRES_OF_SQL)
            .bind(&ids)
            .fetch_all(pool)
            .await?;
        let errors: Vec<ErrorRow> = sqlx::query_as(store::LAST_ERRORS_OF_SQL)
            .bind(&ids)
            .fetch_all(pool)
            .await?;
        (phases, genres, errors)
    };
    let usual: HashMap<&str, i64> = stats
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.avg_ms.round() as i64))
        .collect();
    let build = |job: ActiveRow, finished: Option<JobStatus>| {
        let runs: Vec<JobPhaseView> = phases
            .iter()
            .filter(|p| p.job_id == job.id)
            .map(|p| p.run.clone())
            .collect();

        let declared = if job.stages.is_empty() {
            RECAP_STAGES.iter().map(|s| s.to_string()).collect()
        } else {
            job.stages.clone()
        };
        let mut stages = stage_progress(&declared, &runs, finished.unwrap_or(job.status), now);
        for stage in &mut stages {
            stage.usual_ms = usual.get(stage.name.as_str()).copied();
        }
        ActiveJob {
            elapsed_ms: millis(
                job.started_at.unwrap_or(job.created_at),
                job.finished_at.unwrap_or(now),
            ),
            genres: genres
                .iter()
                .filter(|g| g.job_id == job.id)
                .map(|g| GenreProgress {
                    genre: g.name.clone(),
                    status: g.status,
                    articles: g.articles,
                    clusters: g.clusters,
                    message: g.message.clone(),
                })
                .collect(),
            last_error: errors
                .iter()
                .find(|e| e.job_id == job.id)
                .map(|e| DashboardError {
                    code: e.code.clone(),
                    message: e.message.clone(),
                    at: e.at,
                }),
            id: job.id,
            status: job.status,
            trigger_source: job.trigger_source,
            user_id: job.user_id,
            created_at: job.created_at,
            started_at: job.started_at,
            current_stage: job.current_phase,
            progress_percentage: job.progress_percentage,
            stages,
        }
    };
    let last_finished = last_finished.map(|(row, status)| build(row, Some(status)));
    let active = active.drain(..).map(|job| build(job, None)).collect();
    let recent = recent
        .into_iter()
        .map(|job| RecentJob {
            duration_ms: job
                .started_at
                .zip(job.finished_at)
                .map(|(s, f)| millis(s, f)),
            last_error: match (job.error_code, job.error_message, job.error_at) {
                (Some(code), Some(message), Some(at)) => Some(DashboardError { code, message, at }),
                _ => None,
            },
            id: job.id,
            status: job.status,
            trigger_source: job.trigger_source,
            user_id: job.user_id,
            started_at: job.started_at,
            finished_at: job.finished_at,
            articles: job.articles,
            genres: job.genres,
        })
        .collect();
    Ok(JobProgress {
        generated_at: now,
        user_id: filter.user_id.clone(),
        active,
        more_active,
        last_finished,
        recent,
    })
}
