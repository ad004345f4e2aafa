//! Load generator for the job-report webhook. Posts valid reports from N concurrent
//! connections for a fixed time and prints reports/s and latency percentiles; only 200s
//! count, anything else is reported as a failure.
//!
//! cargo run --release --features ssr --bin loadgen -- [--url URL] [--seconds 10]
//!     [--concurrency 1,16,64] [--jobs 1000]      (secret from TC_PORTAL_WEBHOOK_SECRET)

use std::time::{Duration, Instant};

struct Args {
    url: String,
    secret: String,
    seconds: u64,
    concurrency: Vec<usize>,
    jobs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:3000/api/monitor/job-report".into(),
        secret: std::env::var("TC_PORTAL_WEBHOOK_SECRET")
            .map_err(|_| "TC_PORTAL_WEBHOOK_SECRET is not set")?,
        seconds: 10,
        concurrency: vec![1, 16, 64],
        jobs: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--seconds" => args.seconds = value.parse().map_err(bad)?,
            "--jobs" => args.jobs = value.parse().map_err(bad)?,
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
        let status = if n.is_multiple_of(10) {
            "error"
        } else {
            "success"
        };
        let body = format!(
            r#"{{"job_key":"load-{}","title":"負荷テスト {}","status":"{status}","finished_at":"{}","duration_ms":{},"message":"run {n}"}}"#,
            n % args.jobs,
            n % args.jobs,
            chrono::Utc::now().to_rfc3339(),
            n % 5000,
        );
        n += 1;
        let started = Instant::now();
        let response = client
            .post(&args.url)
            .header("Content-Type", "application/json")
            .header("X-TC-Portal-Webhook-Secret", &args.secret)
            .body(body)
            .send()
            .await;
        let ok = match response {
            Ok(r) => r.status() == reqwest::StatusCode::OK && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            tally
                .latencies_us
                .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            tally.failures += 1;
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: &'static Args = match parse_args() {
        Ok(args) => Box::leak(Box::new(args)),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    println!("| connections | reports/s | p50 ms | p99 ms | failures |");
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
