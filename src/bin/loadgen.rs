//! Load generator for the job-report webhook. Posts valid reports from N concurrent
//! connections for a fixed time and prints reports/s and latency percentiles; only 200s
//! count, anything else is reported as a failure.
//!
//! cargo run --release --features bench --bin loadgen -- [--url URL] [--seconds 10]
//!     [--concurrency 1,16,64] [--jobs 1000]      (secret from TC_PORTAL_WEBHOOK_SECRET)
//!
//! With `--rate N` it is open-loop instead: N requests a second whatever the answers, to
//! see overload as a client does (goodput, fast 503s, latency of what got through).
//!
//! With `--get` it sends `GET --url` instead, with `--bearer TOKEN` as its identity: an
//! authenticated read (`/api/me`, a page) under the same closed loop. A `{n}` in the URL
//! becomes a counter shared by all connections, modulo `--jobs`, so every request can ask
//! something new (a cache miss).
//!
//! With `--job-ops create` or `--job-ops update` (and `--bearer` an operator token, `--url`
//! the `/job-operations` route) it sends seed 001's `createJob`, or `updateBatchJob`
//! progress reports spread over `--jobs` running jobs it creates first.

use std::time::{Duration, Instant};

use jobdeck::model::{Call, JobCall};
use jobdeck::server::client::OpsClient;
use serde_json::json;

struct Args {
    url: String,
    secret: String,
    seconds: u64,
    concurrency: Vec<usize>,
    jobs: usize,
    rate: Option<u64>,
    get: bool,
    bearer: Option<String>,
    job_ops: Option<JobOps>,
    /// The running jobs `--job-ops update` reports on, created before the first run.
    job_ids: std::sync::OnceLock<Vec<String>>,
}

#[derive(Clone, Copy, PartialEq)]
enum JobOps {
    Create,
    Update,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:3000/api/monitor/job-report".into(),
        secret: std::env::var("TC_PORTAL_WEBHOOK_SECRET").unwrap_or_default(),
        seconds: 10,
        concurrency: vec![1, 16, 64],
        jobs: 1000,
        rate: None,
        get: false,
        bearer: None,
        job_ops: None,
        job_ids: std::sync::OnceLock::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--get" {
            args.get = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--seconds" => args.seconds = value.parse().map_err(bad)?,
            "--jobs" => args.jobs = value.parse().map_err(bad)?,
            "--rate" => args.rate = Some(value.parse().map_err(bad)?),
            "--bearer" => args.bearer = Some(value.clone()),
            "--job-ops" => {
                args.job_ops = Some(match value.as_str() {
                    "create" => JobOps::Create,
                    "update" => JobOps::Update,
                    _ => return Err(format!("--job-ops is create or update, not {value}")),
                })
            }
            "--concurrency" => {
                args.concurrency = value
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(bad)?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.job_ops.is_some() && args.bearer.is_none() {
        return Err("--job-ops needs --bearer".into());
    }
    if !args.get && args.job_ops.is_none() && args.secret.is_empty() {
        return Err("TC_PORTAL_WEBHOOK_SECRET is not set".into());
    }
    Ok(args)
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failures: u64,
}

async fn worker(
    client: reqwest::Client,
    args: &'static Args,
    worker: usize,
    until: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut n = worker;
    while Instant::now() < until {
        let body = body(args, n);
        n += 1;
        let started = Instant::now();
        if (200..300).contains(&post(&client, args, body).await) {
            tally
                .latencies_us
                .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            tally.failures += 1;
        }
    }
    tally
}

/// Posts one report (or with `--get`, reads the URL) and reads the whole answer; its
/// status, or 0 for a transport error.
async fn post(client: &reqwest::Client, args: &Args, body: String) -> u16 {
    let request = if args.job_ops.is_some() {
        client
            .post(&args.url)
            .header("Content-Type", "application/json")
            .bearer_auth(args.bearer.as_deref().unwrap_or_default())
            .body(body)
    } else if args.get {
        // One counter for all workers, so that no two requests share a `{n}`.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let url = if args.url.contains("{n}") {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            args.url.replace("{n}", &(n % args.jobs).to_string())
        } else {
            args.url.clone()
        };
        let request = client.get(url);
        match &args.bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    } else {
        client
            .post(&args.url)
            .header("Content-Type", "application/json")
            .header("X-TC-Portal-Webhook-Secret", &args.secret)
            .body(body)
    };
    let response = request.send().await;
    match response {
        Ok(r) => {
            let status = r.status().as_u16();
            if r.bytes().await.is_ok() {
                status
            } else {
                0
            }
        }
        Err(_) => 0,
    }
}

fn body(args: &Args, n: usize) -> String {
    match args.job_ops {
        None => report_body(args, n),
        Some(JobOps::Create) => create_body(args.jobs, n),
        Some(JobOps::Update) => {
            let ids = args.job_ids.get().expect("jobs created");
            let data = format!(
                r#"{{"job_id":"{}","status":"running","detailed_status":{{"current_phase":"load","progress_percentage":{},"active_tasks":1,"error_count":0}}}}"#,
                ids[n % ids.len()],
                n % 100
            );
            OpsClient::envelope(JobCall::UpdateBatchJob, &data)
        }
    }
}

fn create_body(jobs: usize, n: usize) -> String {
    let data = format!(
        r#"{{"product_id":"load-{}","sending_group_id":"group-{}","priority":{}}}"#,
        n % jobs,
        n % 200,
        n % 10 + 1
    );
    OpsClient::envelope(JobCall::CreateJob, &data)
}

/// `--job-ops update`: `--jobs` running jobs to report on.
async fn create_running_jobs(args: &Args) {
    let base = args.url.trim_end_matches(Call::JOB_ROUTE);
    let token = args.bearer.as_deref().unwrap_or_default();
    let ops = OpsClient::new(reqwest::Client::new(), base, token);
    let mut ids = Vec::with_capacity(args.jobs);
    for n in 0..args.jobs {
        let data = json!({ "product_id": format!("load-{n}"), "sending_group_id": "group-0" });
        let created = ops.call(JobCall::CreateJob, data).await.expect("createJob");
        let id = created["id"].as_str().expect("job id").to_string();
        ops.call(
            JobCall::UpdateBatchJob,
            json!({ "job_id": id, "status": "running" }),
        )
        .await
        .expect("start the job");
        ids.push(id);
    }
    let _ = args.job_ids.set(ids);
}

fn report_body(args: &Args, n: usize) -> String {
    let status = if n.is_multiple_of(10) {
        "error"
    } else {
        "success"
    };
    format!(
        r#"{{"job_key":"load-{}","title":"負荷テスト {}","status":"{status}","finished_at":"{}","duration_ms":{},"message":"run {n}"}}"#,
        n % args.jobs,
        n % args.jobs,
        chrono::Utc::now().to_rfc3339(),
        n % 5000,
    )
}

/// Open loop: `rate` requests a second for `seconds`, each sent whatever happened to the
/// earlier ones (at most 4,096 outstanding, so the generator's own memory stays bounded).
async fn open_loop(args: &'static Args, rate: u64) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    #[derive(Default)]
    struct Counts {
        ok: AtomicU64,
        fast_503: AtomicU64,
        slow_503: AtomicU64,
        other: AtomicU64,
        not_sent: AtomicU64,
    }
    let counts = Arc::new(Counts::default());
    let ok_latencies = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let outstanding = Arc::new(tokio::sync::Semaphore::new(4096));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let started = Instant::now();
    let total = rate * args.seconds;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due.min(total) {
            sent += 1;
            let Ok(permit) = outstanding.clone().try_acquire_owned() else {
                counts.not_sent.fetch_add(1, Relaxed);
                continue;
            };
            let (client, counts, ok_latencies) =
                (client.clone(), counts.clone(), ok_latencies.clone());
            let body = body(args, sent as usize);
            tokio::spawn(async move {
                let began = Instant::now();
                let status = post(&client, args, body).await;
                let elapsed = began.elapsed();
                match status {
                    200 => {
                        counts.ok.fetch_add(1, Relaxed);
                        ok_latencies
                            .lock()
                            .unwrap()
                            .push(elapsed.as_micros() as u32);
                    }
                    503 if elapsed < Duration::from_millis(100) => {
                        counts.fast_503.fetch_add(1, Relaxed);
                    }
                    503 => {
                        counts.slow_503.fetch_add(1, Relaxed);
                    }
                    _ => {
                        counts.other.fetch_add(1, Relaxed);
                    }
                }
                drop(permit);
            });
        }
    }
    // Let what is outstanding finish.
    let _ = outstanding.acquire_many(4096).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *ok_latencies.lock().unwrap());
    latencies.sort_unstable();
    let share = |n: u64| 100.0 * n as f64 / total as f64;
    let (ok, fast, slow, other, not_sent) = (
        counts.ok.load(Relaxed),
        counts.fast_503.load(Relaxed),
        counts.slow_503.load(Relaxed),
        counts.other.load(Relaxed),
        counts.not_sent.load(Relaxed),
    );
    println!("| offered/s | goodput/s | 200 | 503 < 100 ms | 503 slower | other | not sent | p50 ms (200) | p99 ms (200) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {rate} | {:.0} | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {:.2} | {:.2} |",
        ok as f64 / elapsed,
        share(ok),
        share(fast),
        share(slow),
        share(other),
        share(not_sent),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn main() {
    let args: &'static Args = match parse_args() {
        Ok(args) => Box::leak(Box::new(args)),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    // Closed loop on one thread, as the README's figures were measured; the open loop needs
    // every core it can get to offer more than the portal sustains.
    let runtime = match args.rate {
        Some(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .expect("tokio runtime");
    match args.rate {
        Some(rate) => runtime.block_on(open_loop(args, rate)),
        None => runtime.block_on(closed_loop(args)),
    }
}

async fn closed_loop(args: &'static Args) {
    if args.job_ops == Some(JobOps::Update) {
        create_running_jobs(args).await;
    }
    let unit = match (args.job_ops, args.get) {
        (Some(JobOps::Create), _) => "createJob/s",
        (Some(JobOps::Update), _) => "updateBatchJob/s",
        (None, true) => "requests/s",
        (None, false) => "reports/s",
    };
    println!("| connections | {unit} | p50 ms | p99 ms | failures |");
    println!("|---:|---:|---:|---:|---:|");
    for &connections in &args.concurrency {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let started = Instant::now();
        let until = started + Duration::from_secs(args.seconds);
        let workers: Vec<_> = (0..connections)
            .map(|w| tokio::spawn(worker(client.clone(), args, w * 1_000_003, until)))
            .collect();
        let mut all = Tally::default();
        for w in workers {
            let tally = w.await.expect("worker");
            all.latencies_us.extend(tally.latencies_us);
            all.failures += tally.failures;
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.latencies_us.sort_unstable();
        println!(
            "| {connections} | {:.0} | {:.2} | {:.2} | {} |",
            all.latencies_us.len() as f64 / elapsed,
            percentile(&all.latencies_us, 0.50),
            percentile(&all.latencies_us, 0.99),
            all.failures
        );
    }
}
