//! Types shared by the server and the browser: statuses, roles, limits and the views pages
//! render.

mod account;
mod dashboard;
mod error;
mod job;
mod job_report;
mod job_status;

pub use account::{
    local_path, AuditEventView, AuditPage, CreatedToken, CurrentUser, Permission, Role, TokenView,
    UserView, HOME,
};
pub use dashboard::{
    ActiveJob, DashboardCharts, DashboardError, DashboardFilter, GenreProgress, HourStats,
    JobProgress, JobStats, RecapDashboard, RecentJob, StageProgress, StageState, StageStats,
    WindowStats, ACTIVE_JOBS, RECENT_JOBS,
};
pub use error::AppError;
pub use job::{
    DetailedStatus, ErrorClass, JobDetailView, JobErrorView, JobEventView, JobKind, JobLimits,
    JobLogView, JobPhaseView, JobStatus, JobTaskView, JobView, JobsQuery, JobsView, ResourceLimits,
    RetryConfig, TaskCounts, TaskStatus, JOB_LIMITS, RECAP_STAGES,
};
pub use job_report::{ReportLimits, ReportStatus, REPORT_LIMITS};
pub use job_status::{
    encode_component, incident_path, IncidentDetailView, IncidentsQuery, IncidentsView,
    JobReportView, JobStatusView, StatusFilter,
};
