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
    /// For the sampler: it counts each job's running tasks in the database itself.
    database_url: String,
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
        database_url: std::env::var("DATABASE_URL").unwrap_or_default(),
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
            "--database-url" => args.database_url = value.clone(),
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
    // The most running tasks of any one job, counted from the tasks themselves.
    let sampler = {
        let (peak, stop, url) = (peak.clone(), stop.clone(), args.database_url.clone());
        tokio::spawn(async move {
            let pool = sqlx::PgPool::connect(&url)
                .await
                .expect("--database-url (or DATABASE_URL)");
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let most: i64 = sqlx::query_scalar(
                    // The held tasks' partial index: a scan of every task took a third
                    // of a core from the portal being measured.
                    "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM job_tasks
                     WHERE lease_token IS NOT NULL AND status = 'running' GROUP BY job_id) x",
                )
                .fetch_one(&pool)
                .await
                .expect("sample");
                peak.fetch_max(most as u64, Ordering::Relaxed);
                samples += 1;
                // Every 25 ms: a count over hundreds of held tasks takes a few ms of the cores
                // the portal is measured on.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            samples
        })
    };
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.workers {
        let (api, done, queue, batch) = (api.clone(), done.clone(), queue.to_string(), args.batch);
        workers.push(tokio::spawn(async move {
            let id = format!("bench-{w}");
                        // A claim that found every job held by another claim waits for a wake-up; the
            // workers stop once every task is done.
            let mut wait_ms = 0;
            while done.load(Ordering::Relaxed) < total as u64 {
                let claimed = api
                    .call(
                        TaskCall::ClaimTasks,
                        json!({ "worker_id": id, "queues": [queue], "max_tasks": batch, "wait_ms": wait_ms }),
                    )
                    .await
                    .expect("claimTasks");
                let tasks = claimed["tasks"].as_array().cloned().unwrap_or_default();
                if tasks.is_empty() {
                    wait_ms = 200;
                    continue;
                }
                wait_ms = 0;
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
    let samples = sampler.await.unwrap();
    let done = done.load(Ordering::Relaxed);
    println!(
        "workers={} batch={} tasks={done}/{total} in {:.2} s: {:.0} tasks/s (claim + complete, each committed); most running in one job seen {} in {samples} samples (limit {})",
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
    let mut latencies = Vec::with_capacity(args.pickups);
    // How long createJob itself took: the part of the pickup that is the enqueue.
    let mut enqueues = Vec::with_capacity(args.pickups);
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
        // A new job with one task: its first task reaches the idle system with its commit.
        let sent = Instant::now();
        api.call(
            JobCall::CreateJob,
            json!({ "product_id": "bench", "sending_group_id": "bench", "driver": "dispatched",
                    "queue": queue, "tasks": [{ "name": format!("p{i}") }] }),
        )
        .await
        .expect("createJob");
        enqueues.push(sent.elapsed());
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
    enqueues.sort();
    let ms = |sorted: &[Duration], p: f64| {
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "pickup: {} tasks added to an idle queue, each until a long-polling worker had it: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (createJob's own answer: p50 {:.1} ms, p99 {:.1} ms)",
        latencies.len(),
        ms(&latencies, 0.50),
        ms(&latencies, 0.99),
        ms(&latencies, 1.0),
        ms(&enqueues, 0.50),
        ms(&enqueues, 0.99),
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    if args.tasks > 0 {
        throughput(
            &args,
            &format!("bench-{}-{}", std::process::id(), args.batch),
        )
        .await;
    }
    if args.pickups > 0 {
        pickup(&args).await;
    }
}
