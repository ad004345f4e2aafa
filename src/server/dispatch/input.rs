//! The worker protocol's bodies on `POST /task-operations` (`claimTasks`, `heartbeat`,
//! `completeTasks`, `failTasks`), parsed into validating newtypes, and the checks that span
//! a call's items.

use serde::Deserialize;
use uuid::Uuid;

use crate::server::input::{
    bounded, check_batch, first_duplicate, Counter, InvalidInput, Measure, Message, Name, Percent,
    QueueName, Stack,
};

/// The most tasks one call may claim, report on or finish.
pub const MAX_BATCH: usize = 1000;
/// The most queues one worker may serve.
pub const MAX_QUEUES: usize = 32;
/// The longest a claim may wait for work.
pub const MAX_WAIT_MS: i64 = 30_000;
/// The most log lines one heartbeat may carry per task.
pub const MAX_LOG_LINES: usize = 200;

bounded!(ClaimSize, usize, (1, MAX_BATCH));
bounded!(WaitMs, u64, (0, MAX_WAIT_MS));

/// What a worker can take on; a bound left out is no bound. What it already holds is
/// subtracted before anything more is handed out.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub memory_mb: Option<Counter>,
    pub cpus: Option<Measure>,
}

/// `claimTasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker_id: Name,
    pub queues: Vec<QueueName>,
    pub max_tasks: Option<ClaimSize>,
    #[serde(default)]
    pub capacity: Capacity,
    pub wait_ms: Option<WaitMs>,
}

impl ClaimRequest {
    pub fn check(&self) -> Result<(), InvalidInput> {
        check_batch("data.queues", self.queues.len(), MAX_QUEUES)?;
        if let Some(dup) = first_duplicate(self.queues.iter().map(|q| q.as_str())) {
            return Err(InvalidInput::new(
                "data.queues",
                format!("queue {dup:?} is listed twice"),
            ));
        }
        Ok(())
    }

    pub fn max_tasks(&self) -> usize {
        self.max_tasks.map_or(1, |m| m.get())
    }
}

/// What a process used, as its worker measured it.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub cpu_percent: Option<Measure>,
    pub memory_mb: Option<Measure>,
    pub items: Option<Counter>,
}

/// One held task in a heartbeat: the lease to extend and what the task reports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseReport {
    pub task_id: Uuid,
    pub lease_token: Uuid,
    pub progress: Option<Percent>,
    pub phase: Option<Name>,
    pub message: Option<Message>,
    pub metrics: Option<Metrics>,
    /// Lines for the job's log, oldest first (the program's stdout, batched by the worker).
    #[serde(default)]
    pub log: Vec<Message>,
}

/// `heartbeat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub worker_id: Name,
    pub leases: Vec<LeaseReport>,
}

impl HeartbeatRequest {
    pub fn check(&self) -> Result<(), InvalidInput> {
        check_batch("data.leases", self.leases.len(), MAX_BATCH)?;
        unique_tasks("data.leases", self.leases.iter().map(|l| l.task_id))?;
        for (i, lease) in self.leases.iter().enumerate() {
            if lease.log.len() > MAX_LOG_LINES {
                return Err(InvalidInput::new(
                    format!("data.leases[{i}].log"),
                    format!("at most {MAX_LOG_LINES} lines per heartbeat"),
                ));
            }
        }
        Ok(())
    }
}

/// A task as its holder names it: the lease token fences out a holder that lost it.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    pub task_id: Uuid,
    pub lease_token: Uuid,
}

/// `completeTasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub worker_id: Name,
    pub tasks: Vec<Held>,
}

/// Why a task failed, as its holder says it.
#[derive(Clone, Debug)]
pub struct TaskFailure {
    pub code: Name,
    pub message: Message,
    pub stack: Option<Stack>,
    /// `false`: never retry this one, whatever the job's retry settings say.
    pub retryable: Option<bool>,
}

/// A failed task: its lease and the failure's `{code, message, stack?, retryable?}`.
impl TaskFailure {
    /// The lease sweeper's failure for a task whose holder went quiet.
    pub fn lease_expired(holder: &str) -> Self {
        TaskFailure {
            code: Name::try_from(crate::model::dispatch::codes::LEASE_EXPIRED.to_string())
                .expect("a valid code"),
            message: Message::try_from(format!(
                "the lease held by {} ran out without a heartbeat",
                holder.chars().take(200).collect::<String>()
            ))
            .expect("a short message"),
            stack: None,
            retryable: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedTask {
    pub task_id: Uuid,
    pub lease_token: Uuid,
    pub code: Name,
    pub message: Message,
    pub stack: Option<Stack>,
    pub retryable: Option<bool>,
}

/// `failTasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub worker_id: Name,
    pub tasks: Vec<FailedTask>,
}

pub fn unique_tasks(
    field: &'static str,
    ids: impl Iterator<Item = Uuid>,
) -> Result<(), InvalidInput> {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    match first_duplicate(ids.iter().map(String::as_str)) {
        Some(dup) => Err(InvalidInput::new(
            field,
            format!("task {dup} is listed twice"),
        )),
        None => Ok(()),
    }
}

/// A completion or a failure, as the one finishing path takes them (`leases::finish`);
/// the lease sweeper builds failures too.
#[derive(Debug)]
pub struct Finish {
    pub task_id: Uuid,
    pub lease_token: Uuid,
    pub failure: Option<TaskFailure>,
}

impl CompleteRequest {
    pub fn into_finishes(self) -> Result<Vec<Finish>, InvalidInput> {
        check_batch("data.tasks", self.tasks.len(), MAX_BATCH)?;
        unique_tasks("data.tasks", self.tasks.iter().map(|t| t.task_id))?;
        Ok(self
            .tasks
            .into_iter()
            .map(|t| Finish {
                task_id: t.task_id,
                lease_token: t.lease_token,
                failure: None,
            })
            .collect())
    }
}

impl FailRequest {
    pub fn into_finishes(self) -> Result<Vec<Finish>, InvalidInput> {
        check_batch("data.tasks", self.tasks.len(), MAX_BATCH)?;
        unique_tasks("data.tasks", self.tasks.iter().map(|t| t.task_id))?;
        // Only the lease sweeper says a lease expired (it is retried whatever the job lists).
        if let Some(i) = self
            .tasks
            .iter()
            .position(|t| t.code.as_str() == crate::model::dispatch::codes::LEASE_EXPIRED)
        {
            return Err(InvalidInput::new(
                format!("data.tasks[{i}].code"),
                "LEASE_EXPIRED is the portal's own code; a worker may not send it",
            ));
        }
        Ok(self
            .tasks
            .into_iter()
            .map(|t| Finish {
                task_id: t.task_id,
                lease_token: t.lease_token,
                failure: Some(TaskFailure {
                    code: t.code,
                    message: t.message,
                    stack: t.stack,
                    retryable: t.retryable,
                }),
            })
            .collect())
    }
}
