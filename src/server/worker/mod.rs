//! `jobdeck worker`: claims tasks of its queues with long polling and runs PROGRAM once per
//! task (`child`). One heartbeat call a period carries every held lease with what its
//! program reported; its answers pause, resume or stop the programs. A finished task is
//! reported with its lease token until the portal answers (retried with backoff while the
//! portal is down, so a completion is never lost). On SIGTERM it stops claiming, lets
//! running tasks finish up to a grace, then stops them and fails them with
//! `WORKER_SHUTDOWN`, which the portal releases at once.

pub mod child;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use self::child::{Outcome, Report};
use super::client::{CallError, OpsClient};
use crate::model::dispatch::{codes, Claimed, ClaimedTask, HeartbeatAnswer, LeaseAnswer};
use crate::model::TaskCall;

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub url: String,
    pub token: String,
    pub worker_id: String,
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub memory_mb: Option<i64>,
    pub cpus: Option<f64>,
    pub program: Vec<String>,
    pub heartbeat: Duration,
    /// How long running tasks may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Between SIGTERM and SIGKILL when a program is told to stop.
    pub stop_grace: Duration,
}

/// A task this worker holds: its lease, its program's reports, and the heartbeat's word.
struct Held {
    task: ClaimedTask,
    report: Arc<Mutex<Report>>,
    control: watch::Sender<LeaseAnswer>,
}

#[derive(Clone)]
struct Worker {
    options: Arc<WorkerOptions>,
    client: OpsClient,
    held: Arc<Mutex<HashMap<Uuid, Held>>>,
    /// A slot freed: the claim loop may ask for more.
    freed: Arc<Notify>,
}

pub async fn run(options: WorkerOptions) -> Result<(), String> {
    if options.program.is_empty() {
        return Err("give the program to run after --".into());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(45))
        .build()
        .map_err(|e| e.to_string())?;
    let worker = Worker {
        client: OpsClient::new(http, &options.url, &options.token),
        options: Arc::new(options),
        held: Arc::default(),
        freed: Arc::default(),
    };
    tracing::info!(worker = %worker.options.worker_id, queues = ?worker.options.queues, "worker started");
    let beats = tokio::spawn(worker.clone().heartbeats());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = worker.clone().claims() => {}
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    worker.shut_down().await;
    beats.abort();
    Ok(())
}

impl Worker {
    /// Asks for as many tasks as there are free slots, waiting for work at the portal.
    async fn claims(self) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let free = self.options.concurrency - self.held.lock().expect("held").len();
            if free == 0 {
                self.freed.notified().await;
                continue;
            }
            let data = json!({
                "worker_id": self.options.worker_id,
                "queues": self.options.queues,
                "max_tasks": free,
                "capacity": { "memory_mb": self.options.memory_mb, "cpus": self.options.cpus },
                "wait_ms": 25_000,
            });
            match self.client.call(TaskCall::ClaimTasks, data).await {
                Ok(answer) => {
                    backoff = Duration::from_millis(200);
                    let claimed: Claimed = match serde_json::from_value(answer) {
                        Ok(claimed) => claimed,
                        Err(error) => {
                            tracing::error!(%error, "cannot read the portal's claim answer");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    for task in claimed.tasks {
                        self.start(task);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "claim failed; trying again in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn start(&self, task: ClaimedTask) {
        let report = Arc::new(Mutex::new(Report::default()));
        let (control, watching) = watch::channel(LeaseAnswer::Continue);
        let id = task.task_id;
        self.held.lock().expect("held").insert(
            id,
            Held {
                task: task.clone(),
                report: report.clone(),
                control,
            },
        );
        let worker = self.clone();
        tokio::spawn(async move {
            tracing::info!(task = %id, job = %task.job_id, attempt = task.attempt, "running");
            let outcome = child::run(
                &worker.options.program,
                &task,
                &report,
                watching,
                worker.options.stop_grace,
            )
            .await;
            worker.report_outcome(&task, outcome).await;
            worker.held.lock().expect("held").remove(&id);
            worker.freed.notify_one();
        });
    }

    /// Sends the outcome with the task's lease token until the portal answers it (the lease
    /// stays held by the heartbeats meanwhile). Stopped tasks report nothing.
    async fn report_outcome(&self, task: &ClaimedTask, outcome: Outcome) {
        let held = json!({ "task_id": task.task_id, "lease_token": task.lease_token });
        let (call, entry) = match outcome {
            Outcome::Stopped => return,
            Outcome::Completed => (TaskCall::CompleteTasks, held),
            Outcome::Failed {
                code,
                message,
                retryable,
            } => {
                let mut entry = held;
                entry["code"] = json!(code);
                entry["message"] = json!(message.chars().take(2000).collect::<String>());
                if let Some(retryable) = retryable {
                    entry["retryable"] = json!(retryable);
                }
                (TaskCall::FailTasks, entry)
            }
        };
        self.flush(task).await;
        let data = json!({ "worker_id": self.options.worker_id, "tasks": [entry] });
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.client.call(call, data.clone()).await {
                Ok(answer) => {
                    tracing::info!(task = %task.task_id, result = %answer["results"][0]["result"], "reported");
                    return;
                }
                Err(CallError::Refused { status, body, .. }) if status < 500 => {
                    tracing::warn!(task = %task.task_id, status, %body, "the portal refused the outcome");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot report an outcome yet; trying again in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// What the program printed after the last heartbeat, sent before its outcome (best
    /// effort: a portal that is down loses these lines, never the outcome).
    async fn flush(&self, task: &ClaimedTask) {
        let Some(lease) = self.lease_report(task.task_id) else {
            return;
        };
        let data = json!({ "worker_id": self.options.worker_id, "leases": [lease] });
        if let Err(error) = self.client.call(TaskCall::Heartbeat, data).await {
            tracing::warn!(%error, "could not send the program's last lines");
        }
    }

    /// A lease and what its program reported since the last one (its log lines drained).
    fn lease_report(&self, task_id: Uuid) -> Option<Value> {
        let held = self.held.lock().expect("held");
        let h = held.get(&task_id)?;
        let mut report = h.report.lock().expect("report");
        let lines = report.log.len().min(200);
        let log: Vec<String> = report.log.drain(..lines).collect();
        Some(json!({
            "task_id": h.task.task_id,
            "lease_token": h.task.lease_token,
            "progress": report.progress,
            "phase": report.phase,
            "metrics": {
                "cpu_percent": report.cpu_percent,
                "memory_mb": report.memory_mb,
                "items": report.items,
            },
            "log": log,
        }))
    }

    /// One call a period for every held lease, with what each program reported since.
    async fn heartbeats(self) {
        let mut tick = tokio::time::interval(self.options.heartbeat);
        loop {
            tick.tick().await;
            let ids: Vec<Uuid> = self.held.lock().expect("held").keys().copied().collect();
            let leases: Vec<Value> = ids
                .into_iter()
                .filter_map(|id| self.lease_report(id))
                .collect();
            if leases.is_empty() {
                continue;
            }
            let data = json!({ "worker_id": self.options.worker_id, "leases": leases });
            match self.client.call(TaskCall::Heartbeat, data).await {
                Ok(answer) => {
                    let Ok(answer) = serde_json::from_value::<HeartbeatAnswer>(answer) else {
                        continue;
                    };
                    let held = self.held.lock().expect("held");
                    for verdict in answer.leases {
                        if let Some(h) = held.get(&verdict.task_id) {
                            h.control.send_if_modified(|current| {
                                let changed = *current != verdict.answer;
                                *current = verdict.answer;
                                changed
                            });
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "heartbeat failed; trying again next period"),
            }
        }
    }

    /// Stop claiming (done by the caller), let running tasks finish up to the grace, then
    /// stop the rest and fail them as `WORKER_SHUTDOWN` so they are handed out again now.
    async fn shut_down(&self) {
        tracing::info!(grace = ?self.options.shutdown_grace, "shutting down: no more claims");
        let deadline = tokio::time::Instant::now() + self.options.shutdown_grace;
        while !self.held.lock().expect("held").is_empty() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left: Vec<ClaimedTask> = {
            let held = self.held.lock().expect("held");
            for h in held.values() {
                let _ = h.control.send(LeaseAnswer::Stop);
            }
            held.values().map(|h| h.task.clone()).collect()
        };
        if left.is_empty() {
            return;
        }
        let tasks: Vec<Value> = left
            .iter()
            .map(|t| {
                json!({
                    "task_id": t.task_id, "lease_token": t.lease_token,
                    "code": codes::WORKER_SHUTDOWN,
                    "message": format!("worker {} shut down before the task finished", self.options.worker_id),
                    "retryable": true,
                })
            })
            .collect();
        let data = json!({ "worker_id": self.options.worker_id, "tasks": tasks });
        for attempt in 0..5 {
            match self.client.call(TaskCall::FailTasks, data.clone()).await {
                Ok(_) => break,
                Err(CallError::Refused { status, .. }) if status < 500 => break,
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot release tasks yet");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
        // The stopped programs' own tasks end with them.
        let deadline =
            tokio::time::Instant::now() + self.options.stop_grace + Duration::from_secs(1);
        while !self.held.lock().expect("held").is_empty() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
