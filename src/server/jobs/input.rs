//! The bodies of `POST /job-operations`, `{action, data}` as seed 001 prints them, parsed by
//! serde into validating newtypes (`server::input`), so a service function only ever sees
//! valid values. Checks that span fields (a batch job needs its product) are in
//! [`NewJob::check`].

use std::collections::HashSet;

use serde::Deserialize;
use uuid::Uuid;

use super::JobError;
use crate::model::{
    JobAction, JobCall, JobDriver, JobKind, JobStatus, Permission, TriggerSource, JOB_LIMITS,
    RECAP_STAGES,
};
use crate::server::input::{
    bounded, first_duplicate, Count, Message, Name, Percent, QueueName, Stack,
};
use crate::server::monitoring::input::{FetchJobHistory, GetJobMetrics, JobInfoRequest};
use crate::server::tasks::input::{check_tasks, NewTask};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", content = "data", rename_all = "camelCase")]
pub enum JobOperation {
    CreateJob(NewJob),
    UpdateBatchJob(JobUpdate),
    DeleteJob(DeleteJob),
    GetJobInfo(JobInfoRequest),
    PauseJob(JobCommand),
    ResumeJob(JobCommand),
    CancelJob(JobCommand),
    RetryJob(JobCommand),
    FetchJobHistory(FetchJobHistory),
    GetJobMetrics(GetJobMetrics),
}

impl JobOperation {
    /// An operator's command among them, which `model::JobAction` describes.
    pub fn action(&self) -> Option<JobAction> {
        match self {
            JobOperation::PauseJob(_) => Some(JobAction::Pause),
            JobOperation::ResumeJob(_) => Some(JobAction::Resume),
            JobOperation::CancelJob(_) => Some(JobAction::Cancel),
            JobOperation::RetryJob(_) => Some(JobAction::Retry),
            JobOperation::DeleteJob(_) => Some(JobAction::Delete),
            _ => None,
        }
    }

    /// The action, as serde reads it; its name is also the audit row's action.
    pub fn call(&self) -> JobCall {
        match self {
            JobOperation::CreateJob(_) => JobCall::CreateJob,
            JobOperation::UpdateBatchJob(_) => JobCall::UpdateBatchJob,
            JobOperation::GetJobInfo(_) => JobCall::GetJobInfo,
            JobOperation::PauseJob(_) => JobCall::PauseJob,
            JobOperation::ResumeJob(_) => JobCall::ResumeJob,
            JobOperation::CancelJob(_) => JobCall::CancelJob,
            JobOperation::RetryJob(_) => JobCall::RetryJob,
            JobOperation::DeleteJob(_) => JobCall::DeleteJob,
            JobOperation::FetchJobHistory(_) => JobCall::FetchJobHistory,
            JobOperation::GetJobMetrics(_) => JobCall::GetJobMetrics,
        }
    }

    pub fn name(&self) -> &'static str {
        self.call().as_str()
    }

    /// What the caller's role must allow. `updateBatchJob` also checks the transition
    /// itself (`JobStatus::permission_to`) once the job's status is known.
    pub fn permission(&self) -> Permission {
        match self {
            JobOperation::GetJobInfo(_)
            | JobOperation::FetchJobHistory(_)
            | JobOperation::GetJobMetrics(_) => Permission::ReadJobs,
            JobOperation::UpdateBatchJob(_) => Permission::ReportOnJobs,
            JobOperation::CreateJob(_) => Permission::ActOnJobs,
            other => other
                .action()
                .map_or(Permission::ActOnJobs, JobAction::permission),
        }
    }

    pub fn job_id(&self) -> Option<Uuid> {
        match self {
            JobOperation::CreateJob(_)
            | JobOperation::FetchJobHistory(_)
            | JobOperation::GetJobMetrics(_) => None,
            JobOperation::UpdateBatchJob(update) => Some(update.job_id),
            JobOperation::DeleteJob(delete) => Some(delete.job_id),
            JobOperation::GetJobInfo(job) => Some(job.job_id),
            JobOperation::PauseJob(command)
            | JobOperation::ResumeJob(command)
            | JobOperation::CancelJob(command)
            | JobOperation::RetryJob(command) => Some(command.job_id),
        }
    }

    /// Whether it only reads (nothing for the live streams to announce).
    pub fn reads(&self) -> bool {
        self.permission() == Permission::ReadJobs
    }

    /// Whether success is `201 Created`.
    pub fn creates(&self) -> bool {
        matches!(self, JobOperation::CreateJob(_))
    }
}

bounded!(Priority, i16, JOB_LIMITS.priority);
bounded!(MaxParallelTasks, i32, JOB_LIMITS.max_parallel_tasks);
bounded!(MaxAttempts, i32, JOB_LIMITS.max_attempts);
bounded!(RetryInterval, i32, JOB_LIMITS.retry_interval);
bounded!(MaxMemory, i64, JOB_LIMITS.max_memory);

/// CPU cores: a number from 0 (no limit) up to `JOB_LIMITS.max_cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct MaxCpu(f64);

impl TryFrom<f64> for MaxCpu {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        let (min, max) = JOB_LIMITS.max_cpu;
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(MaxCpu(value))
        } else {
            Err(format!("must be between {min} and {max}, got {value}"))
        }
    }
}

impl MaxCpu {
    pub fn get(self) -> f64 {
        self.0
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfigInput {
    pub max_attempts: MaxAttempts,
    pub retry_interval: RetryInterval,
    pub retry_on_errors: Vec<Name>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimitsInput {
    pub max_memory: MaxMemory,
    pub max_cpu: MaxCpu,
}

/// `createJob`. Seed 001's fields, plus `kind`, `user_id`, `trigger_source`, `tasks` and
/// `stages`; every optional field has the default in `JOB_LIMITS`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    pub product_id: Option<Name>,
    pub sending_group_id: Option<Name>,
    pub user_id: Option<Name>,
    pub priority: Option<Priority>,
    pub max_parallel_tasks: Option<MaxParallelTasks>,
    pub retry_config: Option<RetryConfigInput>,
    pub resource_limits: Option<ResourceLimitsInput>,
    pub kind: Option<JobKind>,
    pub trigger_source: Option<TriggerSource>,
    /// `reported` (the default: the pipeline reports) or `dispatched` (workers claim).
    pub driver: Option<JobDriver>,
    /// A dispatched job's queue; `default` when left out.
    pub queue: Option<QueueName>,
    #[serde(default)]
    pub tasks: Vec<NewTask>,
    pub stages: Option<Vec<Name>>,
}

impl NewJob {
    pub fn kind(&self) -> JobKind {
        self.kind.unwrap_or(JobKind::Batch)
    }

    pub fn driver(&self) -> JobDriver {
        self.driver.unwrap_or(JobDriver::Reported)
    }

    pub fn queue(&self) -> &str {
        self.queue
            .as_ref()
            .map_or(QueueName::DEFAULT, |q| q.as_str())
    }

    /// The job's stages: a recap job always has seed 002's eight.
    pub fn stages(&self) -> Vec<String> {
        match (self.kind(), &self.stages) {
            (JobKind::Recap, _) => RECAP_STAGES.map(String::from).to_vec(),
            (JobKind::Batch, Some(stages)) => {
                stages.iter().map(|s| s.as_str().to_string()).collect()
            }
            (JobKind::Batch, None) => Vec::new(),
        }
    }

    pub fn check(&self) -> Result<(), JobError> {
        if self.kind() == JobKind::Batch {
            if self.product_id.is_none() {
                return Err(JobError::invalid(
                    "data.product_id",
                    "product_id is required",
                ));
            }
            if self.sending_group_id.is_none() {
                return Err(JobError::invalid(
                    "data.sending_group_id",
                    "sending_group_id is required",
                ));
            }
        } else if self.stages.is_some() {
            return Err(JobError::invalid(
                "data.stages",
                "a recap job always has seed 002's eight stages; leave stages out",
            ));
        }
        if let Some(stages) = &self.stages {
            if let Some(dup) = first_duplicate(stages.iter().map(|s| s.as_str())) {
                return Err(JobError::invalid(
                    "data.stages",
                    format!("stage {dup:?} is listed twice"),
                ));
            }
            if stages.len() > JOB_LIMITS.max_stages {
                return Err(JobError::invalid(
                    "data.stages",
                    format!(
                        "at most {} stages, got {}",
                        JOB_LIMITS.max_stages,
                        stages.len()
                    ),
                ));
            }
        }
        Ok(check_tasks("data.tasks", &self.tasks, &HashSet::new())?)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedStatusInput {
    pub current_phase: Name,
    pub progress_percentage: Percent,
    pub active_tasks: Count,
    pub error_count: Count,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetails {
    pub code: Name,
    pub message: Message,
    pub stack: Option<Stack>,
}

/// `updateBatchJob`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobUpdate {
    pub job_id: Uuid,
    pub status: Option<JobStatus>,
    pub detailed_status: Option<DetailedStatusInput>,
    pub error_details: Option<ErrorDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteJob {
    pub job_id: Uuid,
    #[serde(default)]
    pub force: bool,
}

/// `pauseJob`, `resumeJob`, `cancelJob`: an operator's command, with an optional reason
/// for the event trail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCommand {
    pub job_id: Uuid,
    pub reason: Option<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::http::envelope::parse;

    #[test]
    fn seed_bodies_parse() {
        let op: JobOperation = parse(
            br#"{"action":"createJob","data":{"product_id":"p","sending_group_id":"g","priority":3,
                "max_parallel_tasks":2,"retry_config":{"max_attempts":3,"retry_interval":60,"retry_on_errors":["TIMEOUT"]},
                "resource_limits":{"max_memory":512,"max_cpu":1.5}}}"#,
        )
        .unwrap();
        let JobOperation::CreateJob(job) = op else {
            panic!("not createJob")
        };
        job.check().unwrap();
        assert_eq!(job.priority.unwrap().get(), 3);
    }

    /// The wire names serde reads are the names the routes answer with and audit.
    #[test]
    fn each_action_is_named_as_serde_reads_it() {
        let id = Uuid::nil();
        for call in JobCall::ALL {
            let data = match call {
                JobCall::CreateJob => {
                    serde_json::json!({"product_id": "p", "sending_group_id": "g"})
                }
                JobCall::FetchJobHistory => serde_json::json!({}),
                JobCall::GetJobMetrics => serde_json::json!({"job_ids": [id], "metrics": ["cpu"]}),
                _ => serde_json::json!({"job_id": id}),
            };
            let body = serde_json::json!({ "action": call.as_str(), "data": data }).to_string();
            let op: JobOperation = parse(body.as_bytes()).unwrap();
            assert_eq!(op.call(), call);
        }
    }

    #[test]
    fn stages_have_a_bound() {
        let stages: Vec<String> = (0..=JOB_LIMITS.max_stages)
            .map(|i| format!("s{i}"))
            .collect();
        let body = serde_json::json!({"action": "createJob", "data": {
            "product_id": "p", "sending_group_id": "g", "stages": stages }})
        .to_string();
        let JobOperation::CreateJob(job) = parse(body.as_bytes()).unwrap() else {
            panic!("not createJob")
        };
        let error = job.check().unwrap_err().to_string();
        assert!(error.contains("at most 64 stages, got 65"), "{error}");
    }
}
