//! Live updates over real HTTP: `getJobInfo`'s seed 000 flags, and the Server-Sent Events
//! streams fed by LISTEN/NOTIFY, across two portals on one database, resumed with
//! `Last-Event-ID`, and resynced after their listener connection is killed in PostgreSQL.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

async fn create_job(app: &TestApp, tasks: usize) -> Uuid {
    let tasks: Vec<Value> = (0..tasks)
        .map(|i| json!({ "name": format!("t{i:04}") }))
        .collect();
    let (status, body) = job_op(
        app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "tasks": tasks }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().parse().unwrap()
}

/// One event as the stream sent it.
#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, path: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.client.get(app.url(path));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("stream");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` if none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = ("message".to_string(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().into());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(Sse {
                    event,
                    id,
                    data: serde_json::from_str(&data).expect("JSON data"),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("stream read")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events until one satisfies `done`, within `wait`.
    async fn until(&mut self, wait: Duration, done: impl Fn(&Sse) -> bool) -> Vec<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        while let Some(event) = self.next(deadline - tokio::time::Instant::now()).await {
            let last = done(&event);
            seen.push(event);
            if last {
                return seen;
            }
        }
        panic!("no such event within {wait:?}; saw {seen:?}");
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[sqlx::test]
async fn get_job_info_adds_metrics_task_details_and_logs_each_paged(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create_job(&app, 501).await;
    // Nothing asked: the job and its counts only, as before.
    let (status, plain) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{plain}");
    for absent in ["metrics", "task_details", "logs", "stream_url"] {
        assert!(plain["data"].get(absent).is_none(), "{absent}");
    }
    assert_eq!(plain["data"]["tasks"]["total"], 501);

    sqlx::query("UPDATE jobs SET status = 'running', started_at = now() - interval '10 seconds' WHERE id = $1")
        .bind(job)
        .execute(&pool)
        .await
        .unwrap();
    let t = |name: &str| json!(name);
    let (status, body) = app
        .client
        .post(app.url("/task-operations"))
        .json(&json!({ "action": "reportMetrics", "data": { "job_id": job, "samples": [
            { "task_name": t("t0000"), "at": (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339(), "cpu_percent": 90.0, "memory_mb": 500.0, "items": 100 },
            { "task_name": t("t0000"), "cpu_percent": 40.0, "memory_mb": 300.0, "items": 150 },
            { "task_name": t("t0001"), "cpu_percent": 25.0, "memory_mb": 200.0, "items": 50 },
        ] } }))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200, "{:?}", body_json(body).await);
    sqlx::query(
        "INSERT INTO job_logs (job_id, level, message) SELECT $1, 'info', 'line ' || i FROM generate_series(1, 150) i",
    )
    .bind(job)
    .execute(&pool)
    .await
    .unwrap();

    let ask = json!({ "job_id": job, "include_metrics": true, "include_task_details": true,
                      "include_logs": true, "real_time": true });
    let (status, body) = job_op(&app, "getJobInfo", ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let metrics = &data["metrics"];
    // Now: the latest sample of each task, summed; peak: the largest single sample.
    assert_eq!(metrics["cpu_percent"], 65.0, "{metrics}");
    assert_eq!(metrics["memory_mb"], 500.0, "{metrics}");
    assert_eq!(metrics["peak_cpu_percent"], 90.0);
    assert_eq!(metrics["peak_memory_mb"], 500.0);
    assert_eq!(metrics["items"], 200);
    let duration = metrics["duration_ms"].as_i64().unwrap();
    assert!((10_000..20_000).contains(&duration), "{metrics}");
    let throughput = metrics["throughput_per_second"].as_f64().unwrap();
    assert!(
        (throughput - 200_000.0 / duration as f64).abs() < 1.0,
        "{metrics}"
    );
    assert_eq!(data["stream_url"], format!("/v1/jobs/{job}/events"));

    // Every task once across the pages (500 a page), in the order they were added, and
    // every log line (100 a page), newest first: both lists end on the second page.
    let mut names = Vec::new();
    let mut logs = Vec::new();
    let (mut task_cursor, mut log_cursor) = (Value::Null, Value::Null);
    for page in 1.. {
        let mut ask = ask.clone();
        ask["task_cursor"] = task_cursor.clone();
        ask["log_cursor"] = log_cursor.clone();
        let (status, body) = job_op(&app, "getJobInfo", ask).await;
        assert_eq!(status, 200, "{body}");
        let details = &body["data"]["task_details"];
        names.extend(
            details["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        logs.extend(
            body["data"]["logs"]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["message"].as_str().unwrap().to_string()),
        );
        task_cursor = details["next_cursor"].clone();
        log_cursor = body["data"]["logs"]["next_cursor"].clone();
        assert_eq!(task_cursor.is_null(), log_cursor.is_null(), "page {page}");
        if task_cursor.is_null() {
            assert_eq!(page, 2);
            break;
        }
    }
    let want: Vec<String> = (0..501).map(|i| format!("t{i:04}")).collect();
    assert_eq!(names, want);
    let want_logs: Vec<String> = (1..=150).rev().map(|i| format!("line {i}")).collect();
    assert_eq!(logs, want_logs);
    let task = &body_first_task(&app, job).await;
    assert_eq!(task["status"], "pending");
    assert_eq!(task["attempts"], 0);

    let (status, body) = job_op(
        &app,
        "getJobInfo",
        json!({ "job_id": job, "include_logs": true, "log_cursor": "zz" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "data.log_cursor");
    let (status, body) = job_op(
        &app,
        "getJobInfo",
        json!({ "job_id": job, "include_everything": true }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

async fn body_first_task(app: &TestApp, job: Uuid) -> Value {
    let (_, body) = job_op(
        app,
        "getJobInfo",
        json!({ "job_id": job, "include_task_details": true }),
    )
    .await;
    body["data"]["task_details"]["tasks"][0].clone()
}

#[sqlx::test]
async fn a_change_through_one_portal_reaches_a_stream_of_the_other(pool: PgPool) {
    let one = TestApp::spawn(pool.clone()).await;
    let other = TestApp::spawn(pool.clone()).await;
    let job = create_job(&one, 1).await;
    let mut stream = Stream::open(&other, &format!("/v1/jobs/{job}/events"), None).await;
    let mut portal = Stream::open(&other, "/v1/events", None).await;
    let first = stream.next(WAIT).await.expect("the job at once");
    assert_eq!(first.event, "job");
    assert_eq!(first.data["status"], "pending");
    assert!(first.id.is_some());

    let (status, body) = job_op(&one, "updateBatchJob", json!({ "job_id": job, "status": "running",
        "detailed_status": { "current_phase": "Fetch", "progress_percentage": 40, "active_tasks": 1, "error_count": 0 } })).await;
    assert_eq!(status, 200, "{body}");
    let seen = stream
        .until(WAIT, |e| {
            e.event == "job" && e.data["detailed_status"]["progress_percentage"] == 40.0
        })
        .await;
    assert_eq!(seen.last().unwrap().data["status"], "running");
    portal
        .until(WAIT, |e| {
            e.event == "jobs" && e.data["job_ids"].as_array().unwrap().contains(&json!(job))
        })
        .await;

    // Deleted: the stream says so and ends.
    let (status, body) = job_op(&one, "deleteJob", json!({ "job_id": job, "force": true })).await;
    assert_eq!(status, 200, "{body}");
    stream.until(WAIT, |e| e.event == "deleted").await;
    assert!(stream.next(Duration::from_millis(500)).await.is_none());
    // And a stream of a job that is not there is a 404, not an empty stream.
    let response = other
        .client
        .get(other.url(&format!("/v1/jobs/{}/events", Uuid::nil())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = other
        .client
        .get(other.url("/v1/jobs/nope/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// A running job asked to go goes when its pipeline next calls (410): its stream hears it.
#[sqlx::test]
async fn a_deletion_completed_by_the_pipelines_call_ends_the_stream(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create_job(&app, 1).await;
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "status": "running" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut stream = Stream::open(&app, &format!("/v1/jobs/{job}/events"), None).await;
    assert_eq!(stream.next(WAIT).await.unwrap().data["status"], "running");
    let (status, body) = job_op(&app, "deleteJob", json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], "stopping");
    stream
        .until(WAIT, |e| {
            e.event == "job" && e.data["delete_requested_at"].is_string()
        })
        .await;
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "status": "running" }),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    stream.until(WAIT, |e| e.event == "deleted").await;
}

#[sqlx::test]
async fn a_stream_resumed_with_its_last_event_id_misses_no_transition(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create_job(&app, 1).await;
    let path = format!("/v1/jobs/{job}/events");
    let last = {
        let mut stream = Stream::open(&app, &path, None).await;
        stream.next(WAIT).await.unwrap().id.unwrap()
    };
    // While no one listens: three transitions.
    for status in ["running", "paused", "running"] {
        let (code, body) = job_op(
            &app,
            "updateBatchJob",
            json!({ "job_id": job, "status": status }),
        )
        .await;
        assert_eq!(code, 200, "{status}: {body}");
    }
    let mut stream = Stream::open(&app, &path, Some(&last)).await;
    let seen = stream.until(WAIT, |e| e.event == "job").await;
    let transitions: Vec<&str> = seen
        .iter()
        .filter(|e| e.event == "transition")
        .map(|e| e.data["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, ["running", "paused", "running"], "{seen:?}");
    assert_eq!(seen.last().unwrap().data["status"], "running");
    // `?since=` does the same for a client that keeps the id itself.
    let mut stream = Stream::open(&app, &format!("{path}?since={last}"), None).await;
    let seen = stream.until(WAIT, |e| e.event == "job").await;
    assert_eq!(seen.iter().filter(|e| e.event == "transition").count(), 3);
    let response = app
        .client
        .get(app.url(&format!("{path}?since=yesterday")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[sqlx::test]
async fn a_killed_listener_connection_leads_to_resync_not_silence(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create_job(&app, 1).await;
    let mut stream = Stream::open(&app, &format!("/v1/jobs/{job}/events"), None).await;
    assert_eq!(stream.next(WAIT).await.unwrap().event, "job");
    let mut portal = Stream::open(&app, "/v1/events", None).await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(killed, 1, "one listening connection per portal");
    stream
        .until(Duration::from_secs(15), |e| e.event == "resync")
        .await;
    portal
        .until(Duration::from_secs(15), |e| e.event == "resync")
        .await;
    // The stream goes on after it: a change made now arrives.
    let (status, body) = job_op(&app, "pauseJob", json!({ "job_id": job })).await;
    assert_eq!(status, 409, "a pending job cannot be paused: {body}");
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "status": "running" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    stream
        .until(WAIT, |e| e.event == "job" && e.data["status"] == "running")
        .await;
}

#[sqlx::test]
async fn many_streams_of_one_job_share_one_watcher_and_hear_its_samples(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let job = create_job(&app, 1).await;
    let path = format!("/v1/jobs/{job}/events");
    let mut streams = Vec::new();
    for _ in 0..50 {
        streams.push(Stream::open(&app, &path, None));
    }
    let mut streams = futures::future::join_all(streams).await;
    for stream in &mut streams {
        let first = stream.next(Duration::from_secs(5)).await.expect("the job");
        assert_eq!(first.event, "job");
    }
    assert_eq!(
        app.state.live.watched(),
        1,
        "one read of the job for all 50"
    );
    // The job's creation is announced within 250 ms; what the streams make of it goes first.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for stream in &mut streams {
        while stream.next(Duration::from_millis(30)).await.is_some() {}
    }

    // Samples change no field of the job: the streams hear of them as `activity`.
    let (status, body) = call(
        &app,
        &app.client,
        "/task-operations",
        "reportMetrics",
        json!({ "job_id": job, "samples": [{ "task_name": "t0000", "cpu_percent": 12.5 }] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for stream in &mut streams {
        let events = stream
            .until(Duration::from_secs(5), |e| e.event == "activity")
            .await;
        assert!(events.iter().all(|e| e.event == "activity"), "{events:?}");
        assert_eq!(events[0].data["job_id"], job.to_string());
    }
    // A change of the job reaches all of them as `job`.
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "detailed_status": { "current_phase": "Fetch", "progress_percentage": 40,
                "active_tasks": 1, "error_count": 0 } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for stream in &mut streams {
        let events = stream
            .until(Duration::from_secs(5), |e| e.event == "job")
            .await;
        assert_eq!(
            events.last().unwrap().data["detailed_status"]["progress_percentage"],
            40.0,
            "{events:?}"
        );
    }
    // The last stream gone, its watcher ends.
    drop(streams);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.state.live.watched() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher outlived its streams"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn a_stream_opened_on_a_watched_job_reads_it_afresh(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create_job(&app, 1).await;
    let path = format!("/v1/jobs/{job}/events");
    let mut first = Stream::open(&app, &path, None).await;
    assert_eq!(first.next(WAIT).await.unwrap().event, "job");
    // A change nobody announced (as when its portal died between commit and notification).
    sqlx::query("UPDATE jobs SET priority = 9, updated_at = now() WHERE id = $1")
        .bind(job)
        .execute(&pool)
        .await
        .unwrap();
    let mut second = Stream::open(&app, &path, None).await;
    let event = second.next(WAIT).await.unwrap();
    assert_eq!(event.event, "job");
    assert_eq!(event.data["priority"], 9, "not the watcher's older copy");
    // The first stream is told too, since the watcher read a new version.
    let events = first.until(WAIT, |e| e.event == "job").await;
    assert_eq!(events.last().unwrap().data["priority"], 9);
    // A job deleted without a word is a 404 for the next stream, not its last copy.
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(job)
        .execute(&pool)
        .await
        .unwrap();
    let response = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
