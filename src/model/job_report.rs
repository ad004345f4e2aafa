use super::wire::wire_enum;

wire_enum! {
    /// The outcome a script reports. Seed 003 allows exactly these two values.
    pub enum ReportStatus ("report status") {
        Success = "success",
        Error = "error",
    }
}

impl ReportStatus {
    /// A job whose last report has this status is an incident: listed first and counted
    /// by the sidebar badge. The one place that decides it.
    pub fn is_failing(self) -> bool {
        self == ReportStatus::Error
    }
}

/// The documented limits of a job report; the webhook, the README and the tests read them here.
#[derive(Clone, Copy, Debug)]
pub struct ReportLimits {
    /// Largest accepted request body; larger bodies get 413.
    pub body_bytes: usize,
    /// `job_key`, in characters.
    pub job_key_chars: usize,
    /// `title`, in characters.
    pub title_chars: usize,
    /// `message`, in characters.
    pub message_chars: usize,
    /// How far `finished_at` may lie in the future (clock skew), in seconds. A report
    /// from the far future would pin the job's last status forever.
    pub future_skew_secs: i64,
    /// Earliest accepted year of `finished_at` / `started_at`.
    pub min_year: i32,
    /// Longest accepted `duration_ms`: 31 days.
    pub max_duration_ms: i64,
}

pub const REPORT_LIMITS: ReportLimits = ReportLimits {
    body_bytes: 64 * 1024,
    job_key_chars: 200,
    title_chars: 200,
    message_chars: 10_000,
    future_skew_secs: 24 * 60 * 60,
    min_year: 2000,
    max_duration_ms: 31 * 24 * 60 * 60 * 1000,
};
