//! The seeds' `{action, data}` actions by name, for both routes: the one list the server's
//! operation enums answer with (`jobs::input::JobOperation::name`, tested against what serde
//! reads), the audit log records, and every client (`server::client`: `jobdeck sim`,
//! `loadgen`) sends.

use super::wire::wire_enum;

wire_enum! {
    /// An action on `POST /job-operations` (seed 001).
    pub enum JobCall ("job operation") {
        CreateJob = "createJob",
        UpdateBatchJob = "updateBatchJob",
        DeleteJob = "deleteJob",
        GetJobInfo = "getJobInfo",
        PauseJob = "pauseJob",
        ResumeJob = "resumeJob",
        CancelJob = "cancelJob",
        RetryJob = "retryJob",
        FetchJobHistory = "fetchJobHistory",
        GetJobMetrics = "getJobMetrics",
    }
}

wire_enum! {
    /// An action on `POST /task-operations` (seed 001).
    pub enum TaskCall ("task operation") {
        AddTasks = "addTasks",
        UpdateTasks = "updateTasks",
        RecordArticles = "recordArticles",
        ClaimTasks = "claimTasks",
        Heartbeat = "heartbeat",
        CompleteTasks = "completeTasks",
        FailTasks = "failTasks",
        ReportMetrics = "reportMetrics",
    }
}

wire_enum! {
    /// An action on `POST /error-operations` (seed 004).
    pub enum ErrorCall ("error operation") {
        ConfigureRetry = "configureRetry",
        ManualRecover = "manualRecover",
        AnalyzeErrors = "analyzeErrors",
    }
}

wire_enum! {
    /// An action on `POST /alert-operations` (issue 25).
    pub enum AlertCall ("alert operation") {
        ListAlerts = "listAlerts",
        AcknowledgeAlert = "acknowledgeAlert",
        SnoozeAlert = "snoozeAlert",
        NoteAlert = "noteAlert",
        SetSchedule = "setSchedule",
        RemoveSchedule = "removeSchedule",
        ListAlertSettings = "listAlertSettings",
        CreateAlertRule = "createAlertRule",
        UpdateAlertRule = "updateAlertRule",
        DeleteAlertRule = "deleteAlertRule",
        CreateAlertChannel = "createAlertChannel",
        DeleteAlertChannel = "deleteAlertChannel",
        TestAlertChannel = "testAlertChannel",
        CreateSilence = "createSilence",
        EndSilence = "endSilence",
    }
}

/// Any route's action, with the path it is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Job(JobCall),
    Task(TaskCall),
    Error(ErrorCall),
    Alert(AlertCall),
}

impl Call {
    pub const JOB_ROUTE: &'static str = "/job-operations";
    pub const TASK_ROUTE: &'static str = "/task-operations";
    pub const ERROR_ROUTE: &'static str = "/error-operations";
    pub const ALERT_ROUTE: &'static str = "/alert-operations";

    pub fn route(self) -> &'static str {
        match self {
            Call::Job(_) => Self::JOB_ROUTE,
            Call::Task(_) => Self::TASK_ROUTE,
            Call::Error(_) => Self::ERROR_ROUTE,
            Call::Alert(_) => Self::ALERT_ROUTE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Call::Job(call) => call.as_str(),
            Call::Task(call) => call.as_str(),
            Call::Error(call) => call.as_str(),
            Call::Alert(call) => call.as_str(),
        }
    }
}

impl From<JobCall> for Call {
    fn from(call: JobCall) -> Self {
        Call::Job(call)
    }
}

impl From<TaskCall> for Call {
    fn from(call: TaskCall) -> Self {
        Call::Task(call)
    }
}

impl From<ErrorCall> for Call {
    fn from(call: ErrorCall) -> Self {
        Call::Error(call)
    }
}

impl From<AlertCall> for Call {
    fn from(call: AlertCall) -> Self {
        Call::Alert(call)
    }
}
