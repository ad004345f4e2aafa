//! `jobdeck worker` end to end: the real binary against a real portal, running real
//! programs: payload on stdin, the command syntax, memory limits, pause / cancel reaching
//! the process, and SIGTERM releasing its task to another worker at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobdeck::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

pub(crate) struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Worker {
    fn signal(&self, signal: &str) {
        assert!(Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap()
            .success());
    }
}

pub(crate) async fn start_worker(app: &TestApp, id: &str, extra: &[&str], script: &str) -> Worker {
    let token = app.token(Role::Worker).await;
    let mut args = vec![
        "worker",
        "--url",
        &app.base_url,
        "--queue",
        "cli",
        "--id",
        id,
        "--heartbeat-ms",
        "200",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    let child = Command::new(env!("CARGO_BIN_EXE_jobdeck"))
        .args(&args)
        .env("JOBDECK_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start jobdeck worker");
    Worker(child)
}

async fn create(app: &TestApp, fields: Value) -> Uuid {
    let mut data = json!({ "product_id": "p", "sending_group_id": "g", "driver": "dispatched", "queue": "cli" });
    for (key, value) in fields.as_object().unwrap() {
        data[key] = value.clone();
    }
    let response = app
        .client
        .post(app.url("/job-operations"))
        .json(&json!({ "action": "createJob", "data": data }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    body_json(response).await["data"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Polls `query` (one row, one text column) until `done` holds, failing after `within`.
pub(crate) async fn until(
    pool: &PgPool,
    query: &str,
    job: Uuid,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let value: Option<String> = sqlx::query_scalar(query)
            .bind(job)
            .fetch_optional(pool)
            .await
            .unwrap()
            .flatten();
        let value = value.unwrap_or_default();
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: still {value:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const STATUS: &str = "SELECT status FROM jobs WHERE id = $1";

#[sqlx::test]
async fn a_worker_runs_its_program_with_the_payload_and_the_job_follows_what_it_prints(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(
        &app,
        json!({ "tasks": [{ "name": "a", "payload": { "word": "hi" } }] }),
    )
    .await;
    let script = r#"read -r p; echo "got $p for $JOBDECK_JOB_ID attempt $JOBDECK_ATTEMPT"; echo "::phase Crunch"; echo "::progress 40"; sleep 1.5; echo bye"#;
    let _worker = start_worker(&app, "w-run", &[], script).await;
    until(
        &pool,
        "SELECT progress_percentage::text FROM jobs WHERE id = $1",
        job,
        Duration::from_secs(10),
        |p| p == "40",
    )
    .await;
    until(
        &pool,
        "SELECT current_phase FROM jobs WHERE id = $1",
        job,
        Duration::from_secs(5),
        |p| p == "Crunch",
    )
    .await;
    until(&pool, STATUS, job, Duration::from_secs(10), |s| {
        s == "completed"
    })
    .await;
    let lines: Vec<String> =
        sqlx::query_scalar("SELECT message FROM job_logs WHERE job_id = $1 ORDER BY id")
            .bind(job)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        lines.contains(&format!(r#"got {{"word":"hi"}} for {job} attempt 1"#)),
        "{lines:?}"
    );
    assert!(lines.contains(&"bye".to_string()), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("::")),
        "commands are not log lines: {lines:?}"
    );
    let samples: i64 =
        sqlx::query_scalar("SELECT count(*) FROM task_metrics WHERE job_id = $1 AND memory_mb > 0")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(samples > 0, "the child's memory was measured and sent");
}

#[sqlx::test]
async fn a_program_past_the_jobs_memory_limit_is_killed_and_its_code_fails_the_job(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(
        &app,
        json!({
            "resource_limits": { "max_memory": 64, "max_cpu": 1 },
            "retry_config": { "max_attempts": 1, "retry_interval": 0, "retry_on_errors": [] },
            "tasks": [{ "name": "hog" }, { "name": "exit" }],
            "max_parallel_tasks": 1,
        }),
    )
    .await;
    // 200 MB held in a child of the shell: the whole process tree counts.
    let script = r#"python3 -c "import time; x = b'x' * (200 * 1024 * 1024); time.sleep(30)""#;
    let _worker = start_worker(&app, "w-hog", &[], script).await;
    until(&pool, STATUS, job, Duration::from_secs(20), |s| {
        s == "failed"
    })
    .await;
    let code: String = sqlx::query_scalar("SELECT code FROM job_errors WHERE job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(code, "RESOURCE_LIMIT_EXCEEDED");

    // An exit status without ::error is EXIT_<n>; with one, its code.
    // Another queue: a claim the killed worker had in flight may still be answered to it
    // (its task then waits for the lease sweeper).
    let job = create(&app, json!({ "queue": "cli2", "retry_config": { "max_attempts": 1, "retry_interval": 0, "retry_on_errors": [] }, "tasks": [{ "name": "x" }] })).await;
    let _other = start_worker(
        &app,
        "w-exit",
        &["--queue", "cli2"],
        "echo '::error FEED_DOWN the feed is down'; exit 3",
    )
    .await;
    until(&pool, STATUS, job, Duration::from_secs(20), |s| {
        s == "failed"
    })
    .await;
    let (code, message): (String, String) =
        sqlx::query_as("SELECT code, message FROM job_errors WHERE job_id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("FEED_DOWN", "the feed is down")
    );
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

async fn until_state(pid: u32, want: impl Fn(Option<char>) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !want(process_state(pid)) {
        assert!(
            Instant::now() < deadline,
            "process {pid} never became {what}: {:?}",
            process_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn pause_and_cancel_reach_the_running_program(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(&app, json!({ "tasks": [{ "name": "long" }] })).await;
    let _worker = start_worker(
        &app,
        "w-pause",
        &["--stop-grace-secs", "1"],
        r#"echo "pid $$"; exec sleep 60"#,
    )
    .await;
    let line = until(
        &pool,
        "SELECT message FROM job_logs WHERE job_id = $1 AND message LIKE 'pid %'",
        job,
        Duration::from_secs(10),
        |l| !l.is_empty(),
    )
    .await;
    let pid: u32 = line.trim_start_matches("pid ").parse().unwrap();
    let op = |action: &'static str| {
        let (client, url) = (app.client.clone(), app.url("/job-operations"));
        async move {
            let response = client
                .post(url)
                .json(&json!({ "action": action, "data": { "job_id": job } }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{action}");
        }
    };
    op("pauseJob").await;
    until_state(pid, |s| s == Some('T'), "stopped (SIGSTOP)").await;
    op("resumeJob").await;
    until_state(
        pid,
        |s| matches!(s, Some('S' | 'R')),
        "running again (SIGCONT)",
    )
    .await;
    op("cancelJob").await;
    until_state(pid, |s| s.is_none() || s == Some('Z'), "gone").await;
}

#[sqlx::test]
async fn sigterm_releases_the_workers_task_to_another_worker_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(&app, json!({ "tasks": [{ "name": "long" }] })).await;
    let first = start_worker(
        &app,
        "w-first",
        &["--grace-secs", "0", "--stop-grace-secs", "1"],
        "exec sleep 60",
    )
    .await;
    until(
        &pool,
        "SELECT leased_by FROM job_tasks WHERE job_id = $1 AND lease_token IS NOT NULL",
        job,
        Duration::from_secs(10),
        |w| w == "w-first",
    )
    .await;
    let _second = start_worker(&app, "w-second", &[], "exec sleep 60").await;
    let released = Instant::now();
    first.signal("-TERM");
    // Far sooner than the 30 s lease.
    until(
        &pool,
        "SELECT leased_by FROM job_tasks WHERE job_id = $1 AND lease_token IS NOT NULL",
        job,
        Duration::from_secs(8),
        |w| w == "w-second",
    )
    .await;
    assert!(released.elapsed() < Duration::from_secs(8));
    let attempt: i32 = sqlx::query_scalar("SELECT attempt FROM job_tasks WHERE job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempt, 1, "a shutdown does not count as an attempt");
    let code: String = sqlx::query_scalar("SELECT code FROM job_errors WHERE job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(code, "WORKER_SHUTDOWN");
}
