//! Types shared by the server and the browser: statuses, roles, limits and the views pages
//! render.

mod account;
mod alerts;
mod cursor;
mod dashboard;
pub mod dispatch;
mod error;
mod incidents;
mod job;
mod job_report;
mod monitoring;
mod operations;
mod recovery;
mod recovery_page;
mod stages;
mod wire;

pub use account::{
    local_path, AuditEventView, AuditOutcome, AuditPage, CreatedToken, CurrentUser, Permission,
    Role, TokenView, UserView, HOME,
};
pub use alerts::{
    AlertEventView, AlertKind, AlertLine, AlertNoteView, AlertSettingsView, AlertState,
    ChannelKind, ChannelView, DeliveryStatus, MessageLanguage, RuleView, ScheduleView, ScopeKind,
    Severity, SilenceView, SCOPE_JOB_KINDS,
};
pub use cursor::{parse_id, parse_number, parse_time, time_part, BadCursor, Cursor};
pub use dashboard::{
    ActiveJob, DashboardCharts, DashboardError, DashboardFilter, GenreProgress, HourStats,
    JobProgress, JobStats, RecapDashboard, RecentJob, StageProgress, StageState, StageStats,
    WindowStats, ACTIVE_JOBS, RECENT_JOBS,
};
pub use error::AppError;
pub use incidents::{
    encode_component, incident_path, IncidentDetailView, IncidentView, IncidentsQuery,
    IncidentsView, JobReportView, StatusFilter,
};
pub use job::{
    job_label, DetailedStatus, ErrorClass, JobAction, JobChart, JobCharts, JobDetailView,
    JobDriver, JobErrorView, JobEventView, JobKind, JobLimits, JobLogView, JobPhaseView, JobStatus,
    JobTaskView, JobView, JobsAggregates, JobsQuery, JobsView, LogLevel, ResourceLimits,
    RetryConfig, TaskCounts, TaskStatus, TriggerSource, JOB_LIMITS, RECAP_STAGES,
};
pub use job_report::{ReportLimits, ReportStatus, REPORT_LIMITS};
pub use monitoring::{
    HistorySort, MetricInterval, MetricName, MonitoringLimits, SortOrder, MONITORING_LIMITS,
};
pub use operations::{AlertCall, Call, ErrorCall, JobCall, TaskCall};
pub use recovery::{
    ConditionField, ConditionOperator, ErrorRetryConfig, RecoveryLimits, RecoveryStatus,
    RerunReason, RetryCondition, SuggestionKind, Trend, RECOVERY_LIMITS,
};
pub use recovery_page::{
    AttemptView, ErrorRecordLine, ErrorRecordView, PatternLine, RecoveryPeriod, RecoveryPlan,
    RecoveryQuery, RecoveryView, StatusChoice, SuggestionLine, TypeLine, WorkerLine,
};
pub use stages::stage_progress;
