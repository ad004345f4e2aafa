use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ReportStatus;

/// One job's last reported result, as the incidents page shows it. The server reads it
/// straight from a query row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct JobStatusView {
    pub id: Uuid,
    pub job_key: String,
    pub title: String,
    pub tool_name: Option<String>,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub last_status: ReportStatus,
    pub last_finished_at: DateTime<Utc>,
    pub last_message: Option<String>,
}

/// The incidents page: failing jobs first. `now` is the server's clock at query time, so
/// relative times ("3分前") render the same on the server and at hydration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentsView {
    pub now: DateTime<Utc>,
    /// Jobs whose last report is failing, newest first.
    pub failing: Vec<JobStatusView>,
    /// The rest, newest first.
    pub healthy: Vec<JobStatusView>,
}

/// One accepted report of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct JobReportView {
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub status: ReportStatus,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
}

/// A job's own page: its last status, recent runs and a server-rendered SVG chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetailView {
    pub now: DateTime<Utc>,
    pub job: JobStatusView,
    pub runs: Vec<JobReportView>,
    pub total_runs: i64,
    pub success_runs: i64,
    pub chart_svg: String,
}

/// The path of a job's page. Keys may hold any printable character, so everything but
/// unreserved ASCII is percent-encoded; the same on the server and in the browser.
pub fn incident_path(job_key: &str) -> String {
    let mut path = String::from("/incidents/");
    for byte in job_key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            path.push(byte as char);
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}
