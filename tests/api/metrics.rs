//! `getJobMetrics` and `reportMetrics` (seed 000) over real HTTP: samples reported at and
//! around bucket edges, gaps, a counter that starts over, and the figures of each bucket
//! computed here from the samples the test sent.

use chrono::{DateTime, Duration, Utc};
use jobdeck::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

async fn metrics(app: &TestApp, data: Value) -> (u16, Value) {
    call(app, &app.client, "/job-operations", "getJobMetrics", data).await
}

async fn report(app: &TestApp, data: Value) -> (u16, Value) {
    call(app, &app.client, "/task-operations", "reportMetrics", data).await
}

/// 10:00 on a past day: buckets of a minute start on it.
fn t0() -> DateTime<Utc> {
    // Yesterday: inside the raw retention, so the app's own maintenance pass keeps it.
    let day = (Utc::now() - Duration::days(1)).date_naive();
    day.and_hms_opt(10, 0, 0).unwrap().and_utc()
}

fn secs(s: f64) -> DateTime<Utc> {
    t0() + Duration::microseconds((s * 1_000_000.0) as i64)
}

async fn job_with_tasks(app: &TestApp) -> Uuid {
    let (status, body) = call(app, &app.client,
        "/job-operations",
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "tasks": [{ "name": "a" }, { "name": "b" }] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().parse().unwrap()
}

/// The nearest-rank 95th percentile (PostgreSQL's `percentile_disc(0.95)`).
fn p95(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 * 0.95).ceil() as usize).max(1) - 1]
}

/// How far a p95 may be from the samples': cpu, memory and throughput come from the
/// rollups' histogram (within 2.2 %), durations from the raw rows (exact).
fn p95_error(metric: &str) -> f64 {
    match metric {
        "cpu" | "memory" | "throughput" => 0.022,
        _ => 0.0,
    }
}

fn assert_bucket(bucket: &Value, start: DateTime<Utc>, values: &[f64], what: &str) {
    let got_start: DateTime<Utc> = bucket["start"].as_str().unwrap().parse().unwrap();
    assert_eq!(got_start, start, "{what}: {bucket}");
    assert_eq!(bucket["count"], values.len(), "{what}: {bucket}");
    if values.is_empty() {
        for field in ["min", "avg", "max", "p95"] {
            assert!(
                bucket[field].is_null(),
                "{what}: an empty bucket has no {field}: {bucket}"
            );
        }
        return;
    }
    let close = |field: &str, want: f64| {
        let got = bucket[field].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-6,
            "{what}: {field} {got} vs {want}: {bucket}"
        );
    };
    close("min", values.iter().copied().fold(f64::INFINITY, f64::min));
    close(
        "max",
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    close("avg", values.iter().sum::<f64>() / values.len() as f64);
    let (got, want) = (bucket["p95"].as_f64().unwrap(), p95(values));
    assert!(
        (got - want).abs() <= want.abs() * p95_error(what) + 1e-6,
        "{what}: p95 {got} vs {want}: {bucket}"
    );
}

#[sqlx::test]
async fn buckets_hold_their_edges_show_gaps_and_agree_with_the_samples(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = job_with_tasks(&app).await;
    let quiet = job_with_tasks(&app).await;
    let samples = json!([
        // Before the first bucket, and at the range's end: neither is counted.
        { "task_name": "a", "at": secs(-1.0), "cpu_percent": 77.0 },
        { "task_name": "a", "at": secs(180.0), "cpu_percent": 99.0 },
        // 10:00 holds its first microsecond and its last.
        { "task_name": "a", "at": secs(0.0), "cpu_percent": 10.0, "memory_mb": 100.0 },
        { "task_name": "a", "at": secs(30.0), "cpu_percent": 20.0, "memory_mb": 300.0 },
        { "task_name": "a", "at": secs(59.999999), "cpu_percent": 30.0 },
        // 10:01 is empty; 10:02 starts exactly with this one. Job-level, no task.
        { "at": secs(120.0), "cpu_percent": 50.0, "memory_mb": 200.0 },
        // Task b's items counter: 5/s, then 10/s, then nothing for 110 s, then it started over.
        { "task_name": "b", "at": secs(0.0), "items": 0 },
        { "task_name": "b", "at": secs(10.0), "items": 50 },
        { "task_name": "b", "at": secs(20.0), "items": 150 },
        { "task_name": "b", "at": secs(130.0), "items": 150 },
        { "task_name": "b", "at": secs(140.0), "items": 10 },
    ]);
    let (status, body) = report(&app, json!({ "job_id": job, "samples": samples })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["stored"], 11);
    // Two tasks finished: one in 10:00 (45 s), one in 10:02 (50 s).
    sqlx::query(
        "UPDATE job_tasks SET status = 'completed', started_at = $2, finished_at = $3
         WHERE job_id = $1 AND name = $4",
    )
    .bind(job)
    .bind(secs(0.0))
    .bind(secs(45.0))
    .bind("a")
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE job_tasks SET status = 'completed', started_at = $2, finished_at = $3
         WHERE job_id = $1 AND name = $4",
    )
    .bind(job)
    .bind(secs(100.0))
    .bind(secs(150.0))
    .bind("b")
    .execute(&pool)
    .await
    .unwrap();

    let (status, body) = metrics(
        &app,
        json!({ "job_ids": [job, quiet], "metrics": ["cpu", "memory", "throughput", "duration"],
                "interval": "1m", "start_time": secs(15.0), "end_time": secs(180.0) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["interval"], "1m");
    let jobs = data["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["job_id"], job.to_string());
    assert_eq!(jobs[1]["job_id"], quiet.to_string());
    let starts = [secs(0.0), secs(60.0), secs(120.0)];
    let want: [(&str, &str, [&[f64]; 3]); 4] = [
        ("cpu", "percent", [&[10.0, 20.0, 30.0], &[], &[50.0]]),
        ("memory", "MB", [&[100.0, 300.0], &[], &[200.0]]),
        ("throughput", "items/s", [&[5.0, 10.0], &[], &[0.0]]),
        ("duration", "ms", [&[45_000.0], &[], &[50_000.0]]),
    ];
    for (metric, unit, buckets) in want {
        let series = &jobs[0]["metrics"][metric];
        assert_eq!(series["unit"], unit);
        let got = series["buckets"].as_array().unwrap();
        assert_eq!(got.len(), 3, "{metric}: {series}");
        for ((bucket, start), values) in got.iter().zip(starts).zip(buckets) {
            assert_bucket(bucket, start, values, metric);
        }
        // A job without samples has every bucket, empty.
        let quiet_buckets = jobs[1]["metrics"][metric]["buckets"].as_array().unwrap();
        assert_eq!(quiet_buckets.len(), 3);
        for (bucket, start) in quiet_buckets.iter().zip(starts) {
            assert_bucket(bucket, start, &[], metric);
        }
    }

    // A day's buckets start at midnight UTC.
    let (status, body) = metrics(
        &app,
        json!({ "job_ids": [job], "metrics": ["cpu"], "interval": "1d",
                "start_time": secs(3600.0), "end_time": secs(3700.0) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let buckets = body["data"]["jobs"][0]["metrics"]["cpu"]["buckets"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), 1);
    assert_bucket(
        &buckets[0],
        t0() - Duration::hours(10),
        &[77.0, 10.0, 20.0, 30.0, 50.0, 99.0],
        "cpu",
    );
}

#[sqlx::test]
async fn bad_metric_requests_are_refused_and_store_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = job_with_tasks(&app).await;
    let range = |start: f64, end: f64| (secs(start), secs(end));
    let (s, e) = range(0.0, 3600.0);
    let cases = [
        (
            json!({ "job_ids": [job], "metrics": ["cpu"], "interval": "2m" }),
            "data.interval",
        ),
        (
            json!({ "job_ids": [job], "metrics": ["cpu; DROP TABLE jobs"] }),
            "data.metrics[0]",
        ),
        (json!({ "job_ids": [job], "metrics": [] }), "data.metrics"),
        (
            json!({ "job_ids": [job], "metrics": ["cpu", "cpu"] }),
            "data.metrics",
        ),
        (json!({ "job_ids": [], "metrics": ["cpu"] }), "data.job_ids"),
        (
            json!({ "job_ids": [job, job], "metrics": ["cpu"] }),
            "data.job_ids",
        ),
        (
            json!({ "job_ids": [job], "metrics": ["cpu"], "start_time": e, "end_time": s }),
            "data.start_time",
        ),
        (
            json!({ "job_ids": [job], "metrics": ["cpu"], "start_time": s, "end_time": s }),
            "data.start_time",
        ),
        // Three days of minutes is 4,320 buckets; 2,880 at most.
        (
            json!({ "job_ids": [job], "metrics": ["cpu"], "interval": "1m",
                    "start_time": secs(0.0), "end_time": secs(3.0 * 86400.0) }),
            "data.interval",
        ),
        (
            json!({ "job_ids": [job], "metrics": ["cpu"], "start_time": "noon" }),
            "data.start_time",
        ),
    ];
    for (data, field) in cases {
        let (status, body) = metrics(&app, data.clone()).await;
        assert_eq!(status, 400, "{data}: {body}");
        assert_eq!(body["field"], field, "{data}: {body}");
    }
    // Two days of minutes is exactly the most.
    let (status, body) = metrics(
        &app,
        json!({ "job_ids": [job], "metrics": ["cpu"], "interval": "1m",
                "start_time": secs(0.0), "end_time": secs(2.0 * 86400.0) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["jobs"][0]["metrics"]["cpu"]["buckets"]
            .as_array()
            .unwrap()
            .len(),
        2880
    );
    let (status, body) = metrics(&app, json!({ "job_ids": [job, Uuid::from_u128(0x0bad_0000_0000_4000_8000_0000_0000_0001)], "metrics": ["cpu"] })).await;
    assert_eq!(status, 404, "{body}");

    // reportMetrics: each refusal stores nothing of the call.
    let ok = json!({ "task_name": "a", "cpu_percent": 5.0 });
    let future = Utc::now() + Duration::minutes(5);
    let cases = [
        (
            json!({ "job_id": job, "samples": [ok, { "task_name": "zz", "cpu_percent": 1.0 }] }),
            422,
            "data.samples[1].task_name",
        ),
        (
            json!({ "job_id": job, "samples": [ok, { "task_name": "a" }] }),
            400,
            "data.samples[1]",
        ),
        (
            json!({ "job_id": job, "samples": [{ "cpu_percent": -1.0 }] }),
            400,
            "data.samples[0].cpu_percent",
        ),
        (
            json!({ "job_id": job, "samples": [{ "cpu_percent": 1.0, "at": future }] }),
            400,
            "data.samples[0].at",
        ),
        (json!({ "job_id": job, "samples": [] }), 400, "data.samples"),
        (
            json!({ "job_id": job, "samples": vec![ok.clone(); 1001] }),
            400,
            "data.samples",
        ),
        (
            json!({ "job_id": job, "samples": [{ "items": 1, "disk": 3 }] }),
            400,
            "data.samples[0].disk",
        ),
    ];
    for (data, code, field) in cases {
        let (status, body) = report(&app, data.clone()).await;
        assert_eq!(status, code, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let (status, _) = report(&app, json!({ "job_id": Uuid::from_u128(0x0bad_0000_0000_4000_8000_0000_0000_0001), "samples": [ok] })).await;
    assert_eq!(status, 404);
    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = call(
        &app,
        &viewer,
        "/task-operations",
        "reportMetrics",
        json!({ "job_id": job, "samples": [ok] }),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(count(&pool, "task_metrics").await, 0);
    // A worker token reports; the samples are stored in one call.
    let worker = app.client_as(Role::Worker).await;
    let (status, body) = call(
        &app,
        &worker,
        "/task-operations",
        "reportMetrics",
        json!({ "job_id": job, "samples": vec![ok.clone(); 1000] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&pool, "task_metrics").await, 1000);
}

/// Throughput is rolled up as samples are stored: a call's first sample of a task takes its
/// rate from the task's sample stored by an earlier call (up to an hour before it), a sample
/// that arrives late takes its own, a task's counter that starts over has none. The rollups
/// of the samples as stored equal those built afresh by the migrations' function.
#[sqlx::test]
async fn throughput_rolls_up_across_calls_as_the_rates_between_samples(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = job_with_tasks(&app).await;
    let calls = [
        // a: 100 items in 10 s, then 300 in 20 s.
        json!([{ "task_name": "a", "at": secs(0.0), "items": 0 },
               { "task_name": "a", "at": secs(10.0), "items": 100 }]),
        json!([{ "task_name": "a", "at": secs(30.0), "items": 400 },
               // b's first sample has nothing before it.
               { "task_name": "b", "at": secs(5.0), "items": 7 }]),
        // Out of order within a call; then a's counter starts over.
        json!([{ "task_name": "b", "at": secs(65.0), "items": 127 },
               { "task_name": "b", "at": secs(35.0), "items": 67 },
               { "task_name": "a", "at": secs(40.0), "items": 3 }]),
        // Two hours after a's last: no rate. Then 1/s.
        json!([{ "task_name": "a", "at": secs(7240.0), "items": 50 }]),
        json!([{ "task_name": "a", "at": secs(7250.0), "items": 60 }]),
    ];
    for samples in calls {
        let (status, body) = report(&app, json!({ "job_id": job, "samples": samples })).await;
        assert_eq!(status, 200, "{body}");
    }
    // a: 10, 15 at 10:00:10 and :30 (then the reset); b: 2 at :35, 2 at 10:01:05; a: 1 at 12:00:50.
    let want: [(DateTime<Utc>, &[f64]); 3] = [
        (secs(0.0), &[10.0, 15.0, 2.0]),
        (secs(60.0), &[2.0]),
        (secs(7200.0), &[1.0]),
    ];
    let read = || async {
        let (status, body) = metrics(
            &app,
            json!({ "job_ids": [job], "metrics": ["throughput"], "interval": "1m",
                    "start_time": secs(0.0), "end_time": secs(7260.0) }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["jobs"][0]["metrics"]["throughput"]["buckets"]
            .as_array()
            .unwrap()
            .clone()
    };
    let check = |buckets: Vec<Value>| {
        assert_eq!(buckets.len(), 121);
        for (i, bucket) in buckets.iter().enumerate() {
            let start = secs(60.0 * i as f64);
            let values = want
                .iter()
                .find(|(at, _)| *at == start)
                .map_or(&[][..], |(_, v)| *v);
            assert_bucket(bucket, start, values, "throughput");
        }
    };
    check(read().await);
    sqlx::query("DELETE FROM metric_rollups WHERE metric = 'throughput'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT metric_rollups_add_all(ARRAY['throughput'])")
        .execute(&pool)
        .await
        .unwrap();
    check(read().await);
}
