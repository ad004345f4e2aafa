//! The simulator's dispatched work: batch jobs in queue `demo` run by real `jobdeck worker`
//! processes it starts, each task running `jobdeck demo-task` (shipped for it: it sleeps,
//! reports its phase and progress, and fails with a seed-like code at a rate).

use std::io::Read;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::model::JobCall;
use crate::server::client::OpsClient;

pub const QUEUE: &str = "demo";

const CODES: [(&str, &str); 3] = [
    ("TIMEOUT", "upstream did not answer in 30s"),
    ("RATE_LIMITED", "429 from the summariser; retry later"),
    ("PARSE_ERROR", "unexpected token in the feed at line 212"),
];

/// The demo's worker processes: told to shut down (SIGTERM, so they release their tasks)
/// when the simulator ends.
pub struct DemoWorkers(Vec<tokio::process::Child>);

impl Drop for DemoWorkers {
    fn drop(&mut self) {
        for child in &self.0 {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child's pid; no memory is involved.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
        }
    }
}

/// Starts `workers` worker processes of this binary serving the demo queue.
pub fn spawn_workers(url: &str, token: &str, workers: usize) -> std::io::Result<DemoWorkers> {
    let exe = std::env::current_exe()?;
    let children = (0..workers)
        .map(|i| {
            tokio::process::Command::new(&exe)
                .args([
                    "worker",
                    "--url",
                    url,
                    "--queue",
                    QUEUE,
                    "--concurrency",
                    "2",
                ])
                .args(["--memory-mb", "2048", "--cpus", "2", "--id"])
                .arg(format!("demo-worker-{}-{i}", std::process::id()))
                .arg("--")
                .arg(&exe)
                .arg("demo-task")
                .env("JOBDECK_TOKEN", token)
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(DemoWorkers(children))
}

/// A dispatched batch job every `every` seconds (at `speed`): 4 to 8 tasks of a few seconds
/// each, at most 2 at once, retried once on TIMEOUT or RATE_LIMITED; `fail_every`: one task in
/// N fails (0: none).
pub async fn create_jobs(ops: OpsClient, every: f64, speed: f64, fail_every: u32) {
    let mut rng = StdRng::from_os_rng();
    loop {
        let tasks: Vec<Value> = (1..=rng.random_range(4..=8))
            .map(|i| {
                json!({ "name": format!("chunk-{i}"), "payload": {
                    "seconds": rng.random_range(3.0..12.0) / speed.max(0.01),
                    "fail_every": fail_every,
                } })
            })
            .collect();
        let created = ops
            .call(
                JobCall::CreateJob,
                json!({
                    "product_id": format!("demo-{}", rng.random_range(1..40)),
                    "sending_group_id": "demo",
                    "driver": "dispatched", "queue": QUEUE,
                    "priority": rng.random_range(1..=10), "max_parallel_tasks": 2,
                    "retry_config": { "max_attempts": 2, "retry_interval": 5,
                                      "retry_on_errors": ["TIMEOUT", "RATE_LIMITED"] },
                    "resource_limits": { "max_memory": 256, "max_cpu": 1 },
                    "tasks": tasks,
                }),
            )
            .await;
        if let Err(error) = created {
            tracing::warn!(%error, "could not create a dispatched demo job");
        }
        tokio::time::sleep(Duration::from_secs_f64(every / speed.max(0.01))).await;
    }
}

/// `jobdeck demo-task`: the program the demo's workers run. Reads `{seconds, fail_every}`
/// on stdin, works through a few phases printing progress, and exits 0, or 1 after an
/// `::error` line.
pub fn demo_task() -> i32 {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let payload: Value = serde_json::from_str(&input).unwrap_or(Value::Null);
    let seconds = payload["seconds"].as_f64().unwrap_or(5.0).clamp(0.1, 600.0);
    let fail_every = payload["fail_every"].as_u64().unwrap_or(0);
    let mut rng = StdRng::from_os_rng();
    let fails = fail_every > 0 && rng.random_ratio(1, fail_every as u32);
    let steps = 10;
    for step in 1..=steps {
        let phase = match step {
            1..=3 => "Fetch",
            4..=8 => "Process",
            _ => "Store",
        };
        println!("::phase {phase}");
        std::thread::sleep(Duration::from_secs_f64(seconds / steps as f64));
        println!("::items {}", step * 37);
        println!("::progress {}", step * 100 / steps);
        if fails && step == 6 {
            let (code, message) = CODES[rng.random_range(0..CODES.len())];
            println!("::error {code} {message}");
            return 1;
        }
    }
    println!("done: {} items", steps * 37);
    0
}
