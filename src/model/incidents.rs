//! Seed 003's incidents: scripts' last reported results (table `job_status`), the list that puts
//! failing ones first, and one script's page with its runs (`job_reports`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Cursor, ReportStatus};

/// One job's last reported result, as the incidents page shows it. The server reads it
/// straight from a query row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct IncidentView {
    pub id: Uuid,
    pub job_key: String,
    pub title: String,
    pub tool_name: Option<String>,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub last_status: ReportStatus,
    pub last_finished_at: DateTime<Utc>,
    pub last_message: Option<String>,
}

/// Which jobs the incidents page lists (`?status=` in its URL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    #[default]
    All,
    Failing,
    Healthy,
}

impl StatusFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Failing => "failing",
            StatusFilter::Healthy => "healthy",
        }
    }

    pub fn parse(text: &str) -> StatusFilter {
        match text {
            "failing" => StatusFilter::Failing,
            "healthy" => StatusFilter::Healthy,
            _ => StatusFilter::All,
        }
    }
}

/// The incidents page's URL: a search over key and title, a status filter, and the key of
/// the last job of the previous page (`after`, see [`IncidentsView::next`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentsQuery {
    pub q: String,
    pub status: StatusFilter,
    pub after: Option<Cursor>,
}

impl IncidentsQuery {
    /// The page's address for this query; empty parts are left out.
    pub fn href(&self) -> String {
        let mut params = Vec::new();
        if !self.q.is_empty() {
            params.push(format!("q={}", encode_component(&self.q)));
        }
        if self.status != StatusFilter::All {
            params.push(format!("status={}", self.status.as_str()));
        }
        if let Some(after) = &self.after {
            params.push(format!("after={}", after.as_str()));
        }
        if params.is_empty() {
            "/incidents".to_string()
        } else {
            format!("/incidents?{}", params.join("&"))
        }
    }
}

/// One page of the incidents list: failing jobs first, then the rest, each newest first.
/// `now` is the server's clock at query time, so relative times ("3分前") render the same on
/// the server and at hydration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentsView {
    pub now: DateTime<Utc>,
    /// Every failing job, whatever the page and filter (the badge's count).
    pub failing_total: i64,
    pub jobs: Vec<IncidentView>,
    /// The `after` of the next page, when there is one.
    pub next: Option<Cursor>,
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
    pub job: IncidentView,
    pub runs: Vec<JobReportView>,
    pub total_runs: i64,
    pub success_runs: i64,
    pub chart_svg: String,
}

/// The path of a job's page. Keys may hold any printable character, so everything but
/// unreserved ASCII is percent-encoded; the same on the server and in the browser.
pub fn incident_path(job_key: &str) -> String {
    format!("/incidents/{}", encode_component(job_key))
}

/// Percent-encodes everything but unreserved ASCII.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
