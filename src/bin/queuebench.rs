//! The worker protocol under load, through HTTP like a real worker: no-op tasks claimed and
//! completed by W concurrent workers, one task per call or `--batch N` per call, every
//! completion committed before its answer; then pickup latency: a task added to an idle
//! system, timed until a long-polling worker has it.
//!
//! cargo run --release --features bench --bin queuebench -- --url URL --bearer TOKEN
//!     [--tasks 20000] [--workers 8] [--batch 1] [--jobs 10] [--limit 1000] [--pickups 200]
//!
//! Prints one line per measurement. `--limit` is each job's `max_parallel_tasks`; a sampler
//! counts each job's running tasks through the portal while the workers run and reports
//! the most it saw beside the limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobdeck::model::{JobCall, TaskCall};
use jobdeck::server::client::OpsClient;
use serde_json::{json, Value};

struct Args {
    url: String,
    bearer: String,
    tasks: usize,
    workers: usize,
    batch: usize,
    jobs: usize,
    limit: usize,
    pickups: usize,
}

fn args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:3200".into(),
        bearer: String::new(),
        tasks: 20_000,
        workers: 8,
        batch: 1,
        jobs: 10,
        limit: 1000,
        pickups: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{flag}: a number"))
        };
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--bearer" => args.bearer = value.clone(),
            "--tasks" => args.tasks = number(),
            "--workers" => args.workers = number(),
            "--batch" => args.batch = number(),
            "--jobs" => args.jobs = number(),
            "--limit" => args.limit = number(),
            "--pickups" => args.pickups = number(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        !args.bearer.is_empty(),
        "--bearer TOKEN (an operator or worker token)"
    );
    args
}

fn client(args: &Args) -> OpsClient {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    OpsClient::new(http, &args.url, &args.bearer)
}

/// `--jobs` dispatched jobs in `queue` holding `--tasks` no-op tasks between them.
async fn seed(api: &OpsClient, args: &Args, queue: &str) -> Vec<String> {
    let per_job = args.tasks.div_ceil(args.jobs);
    let mut ids = Vec::new();
    for j in 0..args.jobs {
        let job = api
            .call(
                JobCall::CreateJob,
                json!({ "product_id": "bench", "sending_group_id": "bench", "driver": "dispatched",
                        "queue": queue, "max_parallel_tasks": args.limit }),
            )
            .await
            .expect("createJob");
        let id = job["id"].as_str().unwrap().to_string();
        for chunk in (0..per_job).collect::<Vec<_>>().chunks(1000) {
            let tasks: Vec<Value> = chunk
                .iter()
                .map(|t| json!({ "name": format!("t{j}-{t}") }))
                .collect();
            api.call(TaskCall::AddTasks, json!({ "job_id": id, "tasks": tasks }))
                .await
                .expect("addTasks");
        }
        ids.push(id);
    }
    ids
}

async fn throughput(args: &Args, queue: &str) {
    let api = client(args);
    let jobs = seed(&api, args, queue).await;
    let total = jobs.len() * args.tasks.div_ceil(args.jobs);
    let done = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (api, jobs, peak, stop) = (api.clone(), jobs.clone(), peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for id in &jobs {
                    if let Ok(info) = api.call(JobCall::GetJobInfo, json!({ "job_id": id })).await {
                        let running = info["tasks"]["running"].as_u64().unwrap_or(0);
                        peak.fetch_max(running, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.workers {
        let (api, done, queue, batch) = (api.clone(), done.clone(), queue.to_string(), args.batch);
        workers.push(tokio::spawn(async move {
            let id = format!("bench-{w}");
            loop {
                let claimed = api
                    .call(
                        TaskCall::ClaimTasks,
                        json!({ "worker_id": id, "queues": [queue], "max_tasks": batch }),
                    )
                    .await
                    .expect("claimTasks");
                let tasks = claimed["tasks"].as_array().cloned().unwrap_or_default();
                if tasks.is_empty() {
                    return;
                }
                let held: Vec<Value> = tasks
                    .iter()
                    .map(|t| json!({ "task_id": t["task_id"], "lease_token": t["lease_token"] }))
                    .collect();
                let answer = api
                    .call(
                        TaskCall::CompleteTasks,
                        json!({ "worker_id": id, "tasks": held }),
                    )
                    .await
                    .expect("completeTasks");
                let completed = answer["results"].as_array().map_or(0, |r| {
                    r.iter().filter(|r| r["result"] == "completed").count()
                });
                done.fetch_add(completed as u64, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let done = done.load(Ordering::Relaxed);
    println!(
        "workers={} batch={} tasks={done}/{total} in {:.2} s: {:.0} tasks/s (claim + complete, each committed); most running in one job seen {} (limit {})",
        args.workers,
        args.batch,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        peak.load(Ordering::Relaxed),
        args.limit,
    );
}

async fn pickup(args: &Args) {
    let api = client(args);
    let queue = format!("pickup-{}", std::process::id());
    let job = api
        .call(
            JobCall::CreateJob,
            json!({ "product_id": "bench", "sending_group_id": "bench", "driver": "dispatched", "queue": queue }),
        )
        .await
        .expect("createJob")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut latencies = Vec::with_capacity(args.pickups);
    for i in 0..args.pickups {
        let waiter = {
            let (api, queue) = (api.clone(), queue.clone());
            tokio::spawn(async move {
                let claimed = api
                    .call(
                        TaskCall::ClaimTasks,
                        json!({ "worker_id": "pickup", "queues": [queue], "wait_ms": 30000 }),
                    )
                    .await
                    .expect("claimTasks");
                (Instant::now(), claimed)
            })
        };
        // Let the claim reach its wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        api.call(
            TaskCall::AddTasks,
            json!({ "job_id": job, "tasks": [{ "name": format!("p{i}") }] }),
        )
        .await
        .expect("addTasks");
        let (arrived, claimed) = waiter.await.unwrap();
        let task = &claimed["tasks"][0];
        assert!(task.is_object(), "the waiting claim got nothing: {claimed}");
        latencies.push(arrived.duration_since(sent));
        api.call(
            TaskCall::CompleteTasks,
            json!({ "worker_id": "pickup", "tasks": [{ "task_id": task["task_id"], "lease_token": task["lease_token"] }] }),
        )
        .await
        .expect("completeTasks");
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "pickup: {} tasks added to an idle queue, each until a long-polling worker had it: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    throughput(
        &args,
        &format!("bench-{}-{}", std::process::id(), args.batch),
    )
    .await;
    if args.pickups > 0 {
        pickup(&args).await;
    }
}
