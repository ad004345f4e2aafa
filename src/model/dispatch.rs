//! Dispatched work as both ends see it: what a claim hands a worker, what a heartbeat and a
//! finishing call answer (read by `server::dispatch` and by `jobdeck worker`), the failure
//! codes with a meaning of their own, why a task waits, and the workers page's rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::wire_enum;
use super::ResourceLimits;

/// Failure codes the dispatch rules treat on their own (`server::dispatch::retry`).
pub mod codes {
    /// The holder stopped heartbeating and its lease ran out (the lease sweeper says so).
    /// Retried while attempts are left, whatever `retry_on_errors` lists.
    pub const LEASE_EXPIRED: &str = "LEASE_EXPIRED";
    /// The worker was told to stop (SIGTERM) before the task finished: the task goes back
    /// to pending at once and the attempt is not counted.
    pub const WORKER_SHUTDOWN: &str = "WORKER_SHUTDOWN";
    /// `jobdeck worker` killed the program for using more memory than the job allows.
    pub const RESOURCE_LIMIT_EXCEEDED: &str = "RESOURCE_LIMIT_EXCEEDED";
}

/// A task handed to a worker by `claimTasks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimedTask {
    pub task_id: Uuid,
    pub job_id: Uuid,
    pub name: String,
    pub lease_token: Uuid,
    pub lease_expires_at: DateTime<Utc>,
    /// 1 for the first run, counting every attempt the retry rules counted.
    pub attempt: i32,
    pub priority: i16,
    pub resource_limits: ResourceLimits,
    pub payload: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    pub tasks: Vec<ClaimedTask>,
    /// How long the call waited for work before answering.
    pub waited_ms: u64,
}

wire_enum! {
    /// A heartbeat's word on one held task.
    pub enum LeaseAnswer ("lease answer") {
        /// Keep going; the lease was extended.
        Continue = "continue",
        /// The job is paused: suspend the task (or let it finish) and keep heartbeating;
        /// `continue` comes back when it is resumed.
        Pause = "pause",
        /// Stop the task now: the job was cancelled, failed or deleted, or the lease was
        /// lost (expired and handed to another worker). Nothing it sends will be accepted.
        Stop = "stop",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseVerdict {
    pub task_id: Uuid,
    pub answer: LeaseAnswer,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub leases: Vec<LeaseVerdict>,
    /// Until when the extended leases hold.
    pub lease_expires_at: DateTime<Utc>,
}

wire_enum! {
    /// What `completeTasks` or `failTasks` did with one task.
    pub enum Finished ("finish result") {
        Completed = "completed",
        /// Failed, and pending again (after `not_before`) under the job's retry settings.
        Retrying = "retrying",
        /// Failed for good: the job failed with it.
        Failed = "failed",
        /// Nothing changed: the lease token is not the task's current one (409), or there
        /// is no such task (404).
        Refused = "refused",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: Uuid,
    /// The HTTP status this task alone would have got: 200, 404 or 409.
    pub status: u16,
    pub result: Finished,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinishAnswer {
    pub results: Vec<TaskResult>,
}

impl FinishAnswer {
    /// A call whose every task was refused changed nothing, and is answered with the
    /// refusal's status; any accepted task makes it a 200 with the per-task results.
    pub fn status(&self) -> u16 {
        let refused: Vec<u16> = self
            .results
            .iter()
            .filter(|r| r.result == Finished::Refused)
            .map(|r| r.status)
            .collect();
        if refused.len() == self.results.len() && !refused.is_empty() {
            if refused.contains(&409) {
                409
            } else {
                404
            }
        } else {
            200
        }
    }
}

/// Why a pending task of a dispatched job is not running, each that applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WaitReason {
    /// The job is paused (or not handing out work: finished, being deleted).
    JobPaused,
    /// `running`/`limit` tasks of the job run already.
    LimitReached { running: i32, limit: i32 },
    /// These dependencies have not completed.
    Dependencies { waiting_for: Vec<String> },
    /// A retry, not before then.
    RetryAt { not_before: DateTime<Utc> },
    /// No worker serving the queue asked for work in the last minute.
    NoWorker { queue: String },
    /// Workers of the queue asked, but none declared enough capacity; the largest seen.
    NoCapacity {
        needs_memory_mb: i64,
        needs_cpus: f64,
        largest_memory_mb: Option<i64>,
        largest_cpus: Option<f64>,
    },
    /// Nothing holds it back: the next claim of its queue takes it.
    Ready,
}

impl WaitReason {
    /// The reason in a sentence, as the job's page shows it.
    pub fn text(&self) -> String {
        match self {
            WaitReason::JobPaused => "the job is not handing out work (paused)".into(),
            WaitReason::LimitReached { running, limit } => {
                format!("the job's limit is reached: {running}/{limit} running")
            }
            WaitReason::Dependencies { waiting_for } => {
                format!("waits for {}", waiting_for.join(", "))
            }
            WaitReason::RetryAt { not_before } => {
                format!("retry not before {}", not_before.format("%H:%M:%S UTC"))
            }
            WaitReason::NoWorker { queue } => {
                format!("no worker of queue {queue} asked in the last minute")
            }
            WaitReason::NoCapacity {
                needs_memory_mb,
                needs_cpus,
                largest_memory_mb,
                largest_cpus,
            } => format!(
                "no worker declared {needs_memory_mb} MB and {needs_cpus} cores (largest: {} MB, {} cores)",
                largest_memory_mb.map_or("—".into(), |m| m.to_string()),
                largest_cpus.map_or("—".into(), |c| c.to_string()),
            ),
            WaitReason::Ready => "ready: the next claim of its queue takes it".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitingTask {
    pub name: String,
    pub reasons: Vec<WaitReason>,
}

/// A worker on the workers page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct WorkerView {
    pub id: String,
    pub queues: Vec<String>,
    pub memory_mb: Option<i64>,
    pub cpus: Option<f64>,
    pub actor: String,
    pub held: i64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Pending and running tasks of a queue's dispatched jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct QueueDepth {
    pub queue: String,
    pub pending: i64,
    pub running: i64,
    pub jobs: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkersView {
    pub now: DateTime<Utc>,
    pub workers: Vec<WorkerView>,
    pub queues: Vec<QueueDepth>,
}
