//! Types shared by the server and the browser: statuses, limits and the views pages render.

mod job_report;
mod job_status;

pub use job_report::{ReportLimits, ReportStatus, REPORT_LIMITS};
pub use job_status::{
    incident_path, IncidentDetailView, IncidentsView, JobReportView, JobStatusView,
};
