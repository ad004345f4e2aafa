//! Seed 002's Recap job-status dashboard: the shapes of `GET /v1/dashboard/job-progress`
//! and `GET /v1/dashboard/job-stats`, which the page renders too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::wire_enum;
use super::{JobStatus, TaskStatus, TriggerSource};

/// Recent jobs in `job-progress`.
pub const RECENT_JOBS: i64 = 20;
/// Active jobs shown at most (a pipeline normally runs one or two).
pub const ACTIVE_JOBS: i64 = 10;

/// Whose jobs: those the user triggered, or whose articles came from the user's feeds
/// (`recap_job_articles.original_user_id`). `None`: every recap job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DashboardFilter {
    pub user_id: Option<String>,
}

impl DashboardFilter {
    /// The longest user id accepted; longer is a 400.
    pub const MAX_USER_ID: usize = 200;

    /// `?user_id=` as given; an empty value means no filter.
    pub fn parse(user_id: Option<&str>) -> Result<Self, String> {
        match user_id.map(str::trim) {
            None | Some("") => Ok(Self::default()),
            Some(id) if id.len() > Self::MAX_USER_ID => Err(format!(
                "user_id is longer than {} characters",
                Self::MAX_USER_ID
            )),
            Some(id) if id.chars().any(char::is_control) => {
                Err("user_id contains control characters".into())
            }
            Some(id) => Ok(Self {
                user_id: Some(id.to_string()),
            }),
        }
    }

    pub fn query(&self) -> String {
        self.user_id
            .as_deref()
            .map(|id| format!("?user_id={}", super::encode_component(id)))
            .unwrap_or_default()
    }
}

wire_enum! {
    /// Where a stage of a job's pipeline is.
    pub enum StageState ("stage state") {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageProgress {
    pub name: String,
    pub state: StageState,
    pub started_at: Option<DateTime<Utc>>,
    /// How long it ran, or has been running.
    pub elapsed_ms: Option<i64>,
    /// Its average over the last 24 hours (from `job-stats`), to compare with.
    pub usual_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenreProgress {
    pub genre: String,
    pub status: TaskStatus,
    pub articles: i64,
    pub clusters: i64,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardError {
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveJob {
    pub id: Uuid,
    pub status: JobStatus,
    pub trigger_source: TriggerSource,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    /// How long it has run; for the last finished job, how long it ran.
    pub elapsed_ms: i64,
    pub current_stage: Option<String>,
    pub progress_percentage: f64,
    pub stages: Vec<StageProgress>,
    pub genres: Vec<GenreProgress>,
    pub last_error: Option<DashboardError>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentJob {
    pub id: Uuid,
    pub status: JobStatus,
    pub trigger_source: TriggerSource,
    pub user_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub articles: i64,
    pub genres: i64,
    pub last_error: Option<DashboardError>,
}

/// `GET /v1/dashboard/job-progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    pub generated_at: DateTime<Utc>,
    pub user_id: Option<String>,
    /// Pending, running and paused recap jobs, newest first, at most [`ACTIVE_JOBS`].
    pub active: Vec<ActiveJob>,
    /// More live jobs than `active` holds.
    pub more_active: bool,
    /// With no live job, the newest finished one, its stages as they ended (the stage a
    /// failed run stopped in is `failed`).
    pub last_finished: Option<ActiveJob>,
    /// The newest finished recap jobs.
    pub recent: Vec<RecentJob>,
}

/// The figures of one 24-hour window, over the recap jobs that finished in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Finished in the window: completed + failed + cancelled.
    pub jobs: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// completed / (completed + failed), in percent; `None` when neither happened.
    pub success_rate: Option<f64>,
    /// Of the completed jobs, from start to finish.
    pub avg_duration_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourStats {
    /// The hour covers `(start, start + 1 h]`; the last one ends at `generated_at`.
    pub start: DateTime<Utc>,
    pub jobs: i64,
    pub failures: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub name: String,
    /// Stage runs that ended in the window.
    pub runs: i64,
    pub avg_ms: f64,
}

/// `GET /v1/dashboard/job-stats`: the last 24 hours, `(generated_at - 24 h, generated_at]`,
/// and the 24 hours before for comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStats {
    pub generated_at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub last_24h: WindowStats,
    pub previous_24h: WindowStats,
    /// 24 hours, oldest first.
    pub per_hour: Vec<HourStats>,
    /// Seed 002's stage order; stages with no run in the window are left out.
    pub stages: Vec<StageStats>,
}

/// The dashboard's charts, drawn on the server as SVG with the figures they show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardCharts {
    /// Jobs and failures per hour over the last 24 hours.
    pub per_hour_svg: String,
    /// Average duration per stage.
    pub stages_svg: String,
}

/// Everything `/desktop/recap/job-status` shows: the two endpoints' figures and the charts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecapDashboard {
    pub stats: JobStats,
    pub progress: JobProgress,
    pub charts: DashboardCharts,
}
