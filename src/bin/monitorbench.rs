//! Job monitoring under load, through HTTP: `fetchJobHistory` with filters and every
//! aggregate, `analyzeErrors` and the recovery pages over a million error records, `getJobMetrics` over a day and a month of one job's samples, `reportMetrics`
//! ingest, and one portal holding many open event streams while a change reaches them all.
//!
//! cargo run --release --features bench --bin monitorbench -- --url URL --bearer ADMIN_TOKEN
//!     --metrics-job JOB_ID [--requests 200] [--streams 1000] [--ingest-seconds 10]
//!
//! `scripts/bench-monitoring` seeds the history and the samples, then runs it. Prints one
//! line per measurement.

use std::time::{Duration, Instant};

use jobdeck::model::TaskCall;
use jobdeck::model::{Call, ErrorCall, JobCall};
use jobdeck::server::client::OpsClient;
use serde_json::{json, Value};

struct Args {
    url: String,
    bearer: String,
    metrics_job: String,
    requests: usize,
    streams: usize,
    ingest_seconds: u64,
}

fn args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:3200".into(),
        bearer: String::new(),
        metrics_job: String::new(),
        requests: 200,
        streams: 1000,
        ingest_seconds: 10,
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
            "--metrics-job" => args.metrics_job = value.clone(),
            "--requests" => args.requests = number(),
            "--streams" => args.streams = number(),
            "--ingest-seconds" => args.ingest_seconds = number() as u64,
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.bearer.is_empty(), "--bearer TOKEN (an admin token)");
    args
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// `requests` calls one after the other; p50 and p99 of their answers.
async fn timed(
    api: &OpsClient,
    label: &str,
    requests: usize,
    call: impl Into<Call> + Copy,
    data: Value,
) {
    let mut times = Vec::with_capacity(requests);
    let (mut size, mut failed, mut first_failure) = (0, 0, None);
    for _ in 0..requests {
        let started = Instant::now();
        match api.call(call, data.clone()).await {
            Ok(answer) => {
                times.push(started.elapsed());
                size = answer.to_string().len();
            }
            // Counted, not timed: a 503 past the database timeout is a finding, not a crash.
            Err(error) => {
                failed += 1;
                first_failure.get_or_insert(error.to_string());
            }
        }
    }
    if times.is_empty() {
        println!(
            "{label}: all {requests} calls failed: {}",
            first_failure.unwrap_or_default()
        );
        return;
    }
    times.sort();
    println!(
        "{label}: {requests} calls, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({size} bytes){}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        first_failure.map_or(String::new(), |e| format!("; {failed} failed: {e}"))
    );
}

async fn history(api: &OpsClient, args: &Args) {
    let all = json!({ "success_rate": true, "avg_duration": true, "error_rate": true });
    let now = chrono::Utc::now();
    let month = json!({ "start": now - chrono::Duration::days(30), "end": now });
    let day = json!({ "start": now - chrono::Duration::days(1), "end": now });
    for (label, data) in [
        (
            "history: no filter, all aggregations (every job)",
            json!({ "aggregations": all }),
        ),
        (
            "history: failed in the last 30 days, all aggregations",
            json!({ "filters": { "status": ["failed"], "date_range": month }, "aggregations": all }),
        ),
        (
            "history: the last day, all aggregations",
            json!({ "filters": { "date_range": day }, "aggregations": all }),
        ),
        (
            "history: error type TIMEOUT in the last 30 days, all aggregations",
            json!({ "filters": { "error_types": ["TIMEOUT"], "date_range": month }, "aggregations": all }),
        ),
        (
            "history: one user in the last 30 days, all aggregations",
            json!({ "filters": { "user_id": "user-42", "date_range": month }, "aggregations": all }),
        ),
        (
            "history: sorted by duration, page 200 of 50",
            json!({ "sort": { "field": "duration", "order": "desc" }, "pagination": { "page": 200, "per_page": 50 } }),
        ),
    ] {
        timed(api, label, args.requests, JobCall::FetchJobHistory, data).await;
    }
}

async fn metrics(api: &OpsClient, args: &Args) {
    let now = chrono::Utc::now();
    let job = &args.metrics_job;
    let rolled_up = ["cpu", "memory"];
    let every = ["cpu", "memory", "throughput", "duration"];
    for (range, interval, days) in [("24 hours in 5m", "5m", 1), ("30 days in 1h", "1h", 30)] {
        for (metrics, which) in [
            (&rolled_up[..], "cpu and memory (rollups)"),
            (&every[..], "4 metrics"),
        ] {
            let label = format!("metrics: one job, {range} buckets, {which}");
            let data = json!({ "job_ids": [job], "metrics": metrics, "interval": interval,
                               "start_time": now - chrono::Duration::days(days), "end_time": now });
            timed(api, &label, args.requests, JobCall::GetJobMetrics, data).await;
        }
    }
}

/// `analyzeErrors` over the error records the script seeded (1,000,000 in the last 30 days).
async fn analysis(api: &OpsClient, args: &Args) {
    let now = chrono::Utc::now();
    let month = json!({ "start": now - chrono::Duration::days(30), "end": now });
    for (label, data) in [
        (
            "analyzeErrors: the last 30 days, every type",
            json!({ "period": month }),
        ),
        (
            "analyzeErrors: the last 30 days, TIMEOUT and PARSE_ERROR",
            json!({ "period": month, "error_types": ["TIMEOUT", "PARSE_ERROR"] }),
        ),
    ] {
        timed(api, label, args.requests, ErrorCall::AnalyzeErrors, data).await;
    }
}

/// The recovery pages over the same records, as a browser gets them (server-rendered HTML).
async fn recovery_pages(http: &reqwest::Client, args: &Args) {
    let get = |path: String| {
        let request = http
            .get(format!("{}{path}", args.url.trim_end_matches('/')))
            .bearer_auth(&args.bearer);
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.text().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("{status}"))
            }
        }
    };
    let first = get("/recovery?period=30d&status=all".into())
        .await
        .expect("the recovery page");
    let record = first
        .split("data-record=\"")
        .nth(1)
        .map(|rest| rest[..36].to_string())
        .expect("a record on the page");
    let deep = first
        .find("\" rel=\"next\"")
        .map(|end| {
            let start = first[..end].rfind("href=\"").unwrap() + "href=\"".len();
            first[start..end].replace("&amp;", "&")
        })
        .expect("a second page");
    for (label, path) in [
        (
            "page /recovery (7 days, open records)",
            "/recovery".to_string(),
        ),
        (
            "page /recovery?period=30d&status=all",
            "/recovery?period=30d&status=all".into(),
        ),
        (
            "page /recovery?period=30d, TIMEOUT, failed",
            "/recovery?period=30d&type=TIMEOUT&status=failed".into(),
        ),
        ("page /recovery, the second page by cursor", deep),
        ("page /recovery/<record>", format!("/recovery/{record}")),
    ] {
        let mut times = Vec::with_capacity(args.requests);
        let (mut size, mut failure) = (0, None);
        for _ in 0..args.requests {
            let started = Instant::now();
            match get(path.clone()).await {
                Ok(body) => {
                    times.push(started.elapsed());
                    size = body.len();
                }
                Err(error) => failure = Some(error),
            }
        }
        if times.is_empty() {
            println!(
                "{label}: every request failed: {}",
                failure.unwrap_or_default()
            );
            continue;
        }
        times.sort();
        println!(
            "{label}: {} pages, p50 {:.2} ms, p99 {:.2} ms ({size} bytes){}",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            failure.map_or(String::new(), |e| format!("; some failed: {e}"))
        );
    }
}

async fn create_job(api: &OpsClient) -> String {
    let job = api
        .call(
            JobCall::CreateJob,
            json!({ "product_id": "bench", "sending_group_id": "bench" }),
        )
        .await
        .expect("createJob");
    let id = job["id"].as_str().unwrap().to_string();
    api.call(
        JobCall::UpdateBatchJob,
        json!({ "job_id": id, "status": "running" }),
    )
    .await
    .expect("start");
    id
}

/// Four connections, each reporting for its own job (as workers of different jobs do).
async fn ingest(api: &OpsClient, args: &Args) {
    let deadline = Instant::now() + Duration::from_secs(args.ingest_seconds);
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let job = create_job(api).await;
        let samples: Vec<Value> = (0..1000)
            .map(|i| json!({ "cpu_percent": (i % 100) as f64, "memory_mb": 256.0 + i as f64, "items": i }))
            .collect();
        bodies.push(json!({ "job_id": job, "samples": samples }));
    }
    let started = Instant::now();
    let senders: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut stored = 0u64;
                while Instant::now() < deadline {
                    let answer = api
                        .call(TaskCall::ReportMetrics, body.clone())
                        .await
                        .expect("reportMetrics");
                    stored += answer["stored"].as_u64().unwrap();
                }
                stored
            })
        })
        .collect();
    let mut stored = 0;
    for sender in senders {
        stored += sender.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest: reportMetrics of 1,000 samples a call from 4 connections, one job each: {stored} samples in {secs:.1} s, {:.0} samples/s (each call one statement that stores the samples and updates their rollups, committed before its answer)",
        stored as f64 / secs
    );
}

async fn streams(api: &OpsClient, args: &Args) {
    let job = create_job(api).await;
    let http = reqwest::Client::builder().build().unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u32, Instant)>();
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for n in 0..args.streams {
        let (http, seen_tx, open_tx) = (http.clone(), seen_tx.clone(), open_tx.clone());
        let url = format!("{}/v1/jobs/{job}/events", args.url.trim_end_matches('/'));
        let bearer = args.bearer.clone();
        tokio::spawn(async move {
            let mut response = http
                .get(url)
                .bearer_auth(bearer)
                .send()
                .await
                .expect("stream");
            assert_eq!(response.status(), 200);
            let mut text = String::new();
            let mut opened = false;
            while let Ok(Some(chunk)) = response.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if !opened && text.contains("event: job") {
                    opened = true;
                    let _ = open_tx.send(());
                }
                for round in 1..=5u32 {
                    let marker = format!("\"progress_percentage\":{}.0", round * 11);
                    if text.contains(&marker) {
                        let _ = seen_tx.send((n, round, Instant::now()));
                        text = text.replace(&marker, "");
                    }
                }
                if text.len() > 64 * 1024 {
                    text.drain(..text.len() - 4096);
                }
            }
        });
    }
    let opening = Instant::now();
    for _ in 0..args.streams {
        open_rx.recv().await.expect("a stream opened");
    }
    println!(
        "streams: {} open on one job in {:.1} s",
        args.streams,
        opening.elapsed().as_secs_f64()
    );
    let mut worst = Vec::new();
    for round in 1..=5u32 {
        let sent = Instant::now();
        api.call(
            JobCall::UpdateBatchJob,
            json!({ "job_id": job, "detailed_status": { "current_phase": "bench",
                    "progress_percentage": round * 11, "active_tasks": 1, "error_count": 0 } }),
        )
        .await
        .expect("update");
        let mut reached = 0;
        let mut last = sent;
        while reached < args.streams {
            let (_, r, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await
                .expect("every stream gets the change within 10 s")
                .unwrap();
            if r == round {
                reached += 1;
                last = last.max(at);
            }
        }
        worst.push(last.duration_since(sent));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ms: Vec<String> = worst
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "streams: an update reached all {} streams in {} ms (5 updates; the change is announced within 250 ms of its commit)",
        args.streams,
        ms.join(" / ")
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let api = OpsClient::new(http.clone(), &args.url, &args.bearer);
    history(&api, &args).await;
    analysis(&api, &args).await;
    recovery_pages(&http, &args).await;
    if !args.metrics_job.is_empty() {
        metrics(&api, &args).await;
    }
    ingest(&api, &args).await;
    streams(&api, &args).await;
}
