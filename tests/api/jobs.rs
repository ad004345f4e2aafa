//! Job control (seed 001) over real HTTP: the state machine, racing updates, the seed's
//! bodies, malformed ones, safe deletion, roles, and reported pipelines.

use std::collections::HashMap;

use jobdeck::model::{JobStatus, Role, RECAP_STAGES};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

async fn task_op(app: &TestApp, action: &str, data: Value) -> (u16, Value) {
    call(app, &app.client, "/task-operations", action, data).await
}

fn batch_job() -> Value {
    json!({ "product_id": "prod-1", "sending_group_id": "group-1" })
}

async fn create(app: &TestApp, data: Value) -> Uuid {
    let (status, body) = job_op(app, "createJob", data).await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().parse().unwrap()
}

async fn set_status(app: &TestApp, job: Uuid, status: JobStatus) -> (u16, Value) {
    job_op(
        app,
        "updateBatchJob",
        json!({ "job_id": job, "status": status.as_str() }),
    )
    .await
}

/// The state machine as DESIGN.md and the README draw it, written out here rather than read
/// from `JobStatus::next`, so a change to the code that the documents do not make fails.
/// Columns: pending, running, paused, completed, failed, cancelled.
const TRANSITIONS: [(JobStatus, &str); 6] = [
    (JobStatus::Pending, ".X...X"),
    (JobStatus::Running, "..XXXX"),
    (JobStatus::Paused, ".X...X"),
    (JobStatus::Completed, "......"),
    (JobStatus::Failed, "X....."),
    (JobStatus::Cancelled, "......"),
];
const COLUMNS: [JobStatus; 6] = [
    JobStatus::Pending,
    JobStatus::Running,
    JobStatus::Paused,
    JobStatus::Completed,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

fn legal(from: JobStatus, to: JobStatus) -> bool {
    let row = TRANSITIONS.iter().find(|(s, _)| *s == from).unwrap().1;
    let column = COLUMNS.iter().position(|s| *s == to).unwrap();
    row.as_bytes()[column] == b'X'
}

fn allowed_from(from: JobStatus) -> Vec<&'static str> {
    COLUMNS
        .into_iter()
        .filter(|to| legal(from, *to))
        .map(JobStatus::as_str)
        .collect()
}

/// A legal way from `pending` to each status.
fn paths() -> HashMap<JobStatus, Vec<JobStatus>> {
    use JobStatus::*;
    HashMap::from([
        (Pending, vec![]),
        (Running, vec![Running]),
        (Paused, vec![Running, Paused]),
        (Completed, vec![Running, Completed]),
        (Failed, vec![Running, Failed]),
        (Cancelled, vec![Cancelled]),
    ])
}

#[test]
fn the_code_draws_the_documented_state_machine() {
    for from in JobStatus::ALL {
        for to in JobStatus::ALL {
            assert_eq!(from.may_become(to), legal(from, to), "{from} -> {to}");
        }
    }
}

/// The report queue's (statements, grouped, fallback) counts, to see which path ran.
fn queue_stats(app: &TestApp) -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = app.state.job_updates.stats();
    (
        stats.batches.load(Relaxed),
        stats.grouped.load(Relaxed),
        stats.fallback.load(Relaxed),
    )
}

async fn job_count(pool: &PgPool, table: &str, job: Uuid) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE job_id = $1"))
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn every_transition_is_allowed_or_refused_by_the_state_machine(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let paths = paths();
    for from in JobStatus::ALL {
        for to in JobStatus::ALL {
            if from == to {
                continue;
            }
            let job = create(&app, batch_job()).await;
            for &step in &paths[&from] {
                let (status, body) = set_status(&app, job, step).await;
                assert_eq!(status, 200, "setting up {from}: {body}");
            }
            let events_before = job_count(&pool, "job_events", job).await;
            let (status, body) = set_status(&app, job, to).await;
            if legal(from, to) {
                assert_eq!(status, 200, "{from} -> {to}: {body}");
                assert_eq!(body["data"]["status"], to.as_str());
                assert_eq!(body["data"]["previous_status"], from.as_str());
                assert_eq!(job_count(&pool, "job_events", job).await, events_before + 1);
            } else {
                assert_eq!(status, 409, "{from} -> {to} must be refused: {body}");
                assert_eq!(body["current_status"], from.as_str());
                let mut allowed: Vec<String> =
                    serde_json::from_value(body["allowed"].clone()).unwrap();
                allowed.sort();
                let mut want = allowed_from(from);
                want.sort();
                assert_eq!(allowed, want);
                assert!(body["error"].as_str().unwrap().contains(from.as_str()));
                assert_eq!(job_count(&pool, "job_events", job).await, events_before);
            }
            // The schema's own rule: a finished time exactly when the run has ended.
            let (finished,): (bool,) =
                sqlx::query_as("SELECT finished_at IS NOT NULL FROM jobs WHERE id = $1")
                    .bind(job)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            let now = if legal(from, to) { to } else { from };
            assert_eq!(finished, now.is_finished(), "{from} -> {to}");
        }
    }
}

#[sqlx::test]
async fn racing_updates_have_one_winner_per_step_and_a_consistent_trail(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(&app, batch_job()).await;
    assert_eq!(set_status(&app, job, JobStatus::Running).await.0, 200);
    let targets = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Paused,
        JobStatus::Cancelled,
        JobStatus::Pending,
        JobStatus::Running,
    ];
    let calls = (0..100).map(|i| {
        let app = &app;
        let to = targets[i % targets.len()];
        async move { (to, set_status(app, job, to).await) }
    });
    let results = futures::future::join_all(calls).await;
    let mut transitions = 0;
    for (to, (status, body)) in &results {
        match status {
            200 => {
                let from =
                    JobStatus::parse(body["data"]["previous_status"].as_str().unwrap()).unwrap();
                assert_eq!(body["data"]["status"], to.as_str());
                if from != *to {
                    assert!(legal(from, *to), "{from} -> {to} won");
                    transitions += 1;
                }
            }
            409 => {
                let current = JobStatus::parse(body["current_status"].as_str().unwrap()).unwrap();
                assert!(
                    !legal(current, *to) && current != *to,
                    "{current} -> {to} lost"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(transitions >= 1, "someone won");

    // The trail is one chain from creation to the final status, one event per win.
    let events: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT from_status, to_status FROM job_events WHERE job_id = $1 ORDER BY id",
    )
    .bind(job)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2 + transitions, "{events:?}");
    assert_eq!(events[0], (None, "pending".to_string()));
    for pair in events.windows(2) {
        assert_eq!(pair[1].0.as_deref(), Some(pair[0].1.as_str()), "{events:?}");
    }
    let (status,): (String,) = sqlx::query_as("SELECT status FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().1, status);
}

#[sqlx::test]
async fn every_seed_body_is_accepted_as_written(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // createJob (拡張版), every field as seed 001 prints it.
    let (status, created) = job_op(
        &app,
        "createJob",
        json!({
            "product_id": "product-123",
            "sending_group_id": "group-456",
            "priority": 8,
            "max_parallel_tasks": 4,
            "retry_config": {
                "max_attempts": 5,
                "retry_interval": 30,
                "retry_on_errors": ["TIMEOUT", "RATE_LIMITED"]
            },
            "resource_limits": { "max_memory": 2048, "max_cpu": 2 }
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let job = &created["data"];
    assert_eq!(job["status"], "pending");
    assert_eq!(job["priority"], 8);
    assert_eq!(job["max_parallel_tasks"], 4);
    assert_eq!(job["retry_config"]["max_attempts"], 5);
    assert_eq!(
        job["retry_config"]["retry_on_errors"],
        json!(["TIMEOUT", "RATE_LIMITED"])
    );
    assert_eq!(job["resource_limits"]["max_memory"], 2048);
    assert_eq!(job["resource_limits"]["max_cpu"], 2.0);
    let id = job["id"].as_str().unwrap().to_string();

    // The documented defaults.
    let (_, minimal) = job_op(&app, "createJob", batch_job()).await;
    let minimal = &minimal["data"];
    assert_eq!(minimal["priority"], 5);
    assert_eq!(minimal["max_parallel_tasks"], 4);
    assert_eq!(
        minimal["retry_config"],
        json!({"max_attempts": 3, "retry_interval": 60, "retry_on_errors": []})
    );
    assert_eq!(
        minimal["resource_limits"],
        json!({"max_memory": 0, "max_cpu": 0.0})
    );
    assert_eq!(minimal["kind"], "batch");
    assert_eq!(minimal["trigger_source"], "user");

    // updateBatchJob (改良版): status, detailed_status and error_details.
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({
            "job_id": id,
            "status": "running",
            "detailed_status": {
                "current_phase": "fetching",
                "progress_percentage": 42.5,
                "active_tasks": 3,
                "error_count": 1
            },
            "error_details": { "code": "TIMEOUT", "message": "upstream timed out", "stack": "at fetch()" }
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["detailed_status"]["progress_percentage"], 42.5);
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": id })).await;
    assert_eq!(
        info["data"]["job"]["detailed_status"]["current_phase"],
        "fetching"
    );
    assert_eq!(info["data"]["job"]["last_error"]["code"], "TIMEOUT");
    assert_eq!(info["data"]["job"]["last_error"]["class"], "transient");
    assert_eq!(info["data"]["job"]["last_error"]["stack"], "at fetch()");

    // Every failure is kept, not only the last.
    let (status, _) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": id, "error_details": { "code": "PARSE_ERROR", "message": "bad row 7" } }),
    )
    .await;
    assert_eq!(status, 200);
    let uuid: Uuid = id.parse().unwrap();
    assert_eq!(job_count(&pool, "job_errors", uuid).await, 2);
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": id })).await;
    assert_eq!(info["data"]["job"]["detailed_status"]["error_count"], 2);
    assert_eq!(info["data"]["job"]["last_error"]["class"], "input");

    // deleteJob, with force.
    let (status, body) = job_op(&app, "deleteJob", json!({ "job_id": id, "force": true })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], "deleted");

    // Every change is in the audit log.
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE target = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        audited,
        ["createJob", "updateBatchJob", "updateBatchJob", "deleteJob"]
    );
}

#[sqlx::test]
async fn malformed_bodies_get_400s_naming_the_field_and_write_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(&app, batch_job()).await;
    let before = (
        count(&pool, "jobs").await,
        count(&pool, "job_events").await,
        count(&pool, "audit_events").await,
    );
    let with = |field: &str, value: Value| {
        let mut data = batch_job();
        data[field] = value;
        data
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("createJob", with("priority", json!(0)), "data.priority"),
        ("createJob", with("priority", json!(11)), "data.priority"),
        (
            "createJob",
            with("priority", json!("high")),
            "data.priority",
        ),
        ("createJob", with("priority", json!(2.5)), "data.priority"),
        (
            "createJob",
            with("max_parallel_tasks", json!(0)),
            "data.max_parallel_tasks",
        ),
        (
            "createJob",
            with(
                "retry_config",
                json!({"max_attempts": 0, "retry_interval": 1, "retry_on_errors": []}),
            ),
            "data.retry_config.max_attempts",
        ),
        (
            "createJob",
            with(
                "retry_config",
                json!({"max_attempts": 2, "retry_interval": -1, "retry_on_errors": []}),
            ),
            "data.retry_config.retry_interval",
        ),
        (
            "createJob",
            with(
                "retry_config",
                json!({"max_attempts": 2, "retry_interval": 1}),
            ),
            "data.retry_config",
        ),
        (
            "createJob",
            with("resource_limits", json!({"max_memory": -1, "max_cpu": 1})),
            "data.resource_limits.max_memory",
        ),
        (
            "createJob",
            with("resource_limits", json!({"max_memory": 1, "max_cpu": -0.5})),
            "data.resource_limits.max_cpu",
        ),
        (
            "createJob",
            json!({"sending_group_id": "g"}),
            "data.product_id",
        ),
        (
            "createJob",
            with("product_id", json!("")),
            "data.product_id",
        ),
        ("createJob", with("product_id", json!(7)), "data.product_id"),
        ("createJob", with("kind", json!("nightly")), "data.kind"),
        ("createJob", with("priorty", json!(3)), "data.priorty"),
        (
            "createJob",
            with(
                "tasks",
                json!([{"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}]),
            ),
            "data.tasks",
        ),
        (
            "createJob",
            with("tasks", json!([{"name": "a", "depends_on": ["missing"]}])),
            "data.tasks",
        ),
        (
            "updateBatchJob",
            json!({"job_id": "not-a-uuid"}),
            "data.job_id",
        ),
        (
            "updateBatchJob",
            json!({"job_id": job, "status": "done"}),
            "data.status",
        ),
        (
            "updateBatchJob",
            json!({"job_id": job, "detailed_status": {"current_phase": "x", "progress_percentage": 101, "active_tasks": 0, "error_count": 0}}),
            "data.detailed_status.progress_percentage",
        ),
        (
            "updateBatchJob",
            json!({"job_id": job, "detailed_status": {"current_phase": "x", "progress_percentage": 1, "active_tasks": -1, "error_count": 0}}),
            "data.detailed_status.active_tasks",
        ),
        (
            "updateBatchJob",
            json!({"job_id": job, "error_details": {"message": "no code"}}),
            "data.error_details",
        ),
        (
            "deleteJob",
            json!({"job_id": job, "force": "yes"}),
            "data.force",
        ),
        ("deleteJob", json!({}), "data"),
        ("launchJob", json!({"job_id": job}), "action"),
    ];
    for (action, data, field) in cases {
        let (status, body) = job_op(&app, action, data.clone()).await;
        assert_eq!(status, 400, "{action} {data}: {body}");
        assert_eq!(body["field"], field, "{action} {data}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Not JSON at all, and no body.
    let response = app
        .client
        .post(app.url("/job-operations"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let after = (
        count(&pool, "jobs").await,
        count(&pool, "job_events").await,
        count(&pool, "audit_events").await,
    );
    assert_eq!(before, after, "nothing was written");
}

#[sqlx::test]
async fn deleting_a_running_job_stops_its_pipeline_and_leaves_no_orphans(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(
        &app,
        json!({ "kind": "recap", "tasks": [{"name": "tech"}, {"name": "sports", "depends_on": ["tech"]}] }),
    )
    .await;
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "status": "running",
                "detailed_status": {"current_phase": "Fetch", "progress_percentage": 5, "active_tasks": 1, "error_count": 0},
                "error_details": {"code": "RATE_LIMITED", "message": "slow down"} }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = task_op(
        &app,
        "updateTasks",
        json!({ "job_id": job, "tasks": [{"name": "tech", "status": "running", "message": "started"}] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = task_op(
        &app,
        "recordArticles",
        json!({ "job_id": job, "articles": [{"feed_id": "f1", "original_user_id": "u1", "genre": "tech"}] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Its samples, and their rollups.
    let (status, body) = task_op(
        &app,
        "reportMetrics",
        json!({ "job_id": job, "samples": [{"task_name": "tech", "cpu_percent": 12.5, "memory_mb": 64}] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Every table that holds a job's rows, from the catalog, so a new one is not forgotten.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name FROM information_schema.columns
         WHERE column_name = 'job_id' AND table_schema = current_schema()
           AND table_name <> 'job_tombstones'
           -- A partition's rows are its parent's.
           AND table_name NOT IN (SELECT c.relname FROM pg_inherits i
                                  JOIN pg_class c ON c.oid = i.inhrelid)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.len() >= 6, "{tables:?}");
    for table in &tables {
        assert!(
            job_count(&pool, table, job).await > 0,
            "{table} has rows to clean"
        );
    }

    let (status, body) = job_op(&app, "deleteJob", json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], "stopping");
    assert!(body["data"]["delete_after"].is_string());
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(info["data"]["job"]["status"], "cancelled");

    // The pipeline's next call learns it is gone, and the job goes with everything under it.
    let worker = app.client_as(Role::Worker).await;
    let (status, body) = call(
        &app,
        &worker,
        "/task-operations",
        "updateTasks",
        json!({ "job_id": job, "tasks": [{"name": "tech", "articles": 10}] }),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["job_id"], job.to_string());
    assert!(body["error"].as_str().unwrap().contains("deleted"));
    for table in &tables {
        assert_eq!(job_count(&pool, table, job).await, 0, "{table} left rows");
    }
    let (status, _) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(status, 410);

    // force removes a running job at once.
    let forced = create(&app, batch_job()).await;
    set_status(&app, forced, JobStatus::Running).await;
    let (status, body) = job_op(
        &app,
        "deleteJob",
        json!({ "job_id": forced, "force": true }),
    )
    .await;
    assert_eq!(
        (status, body["data"]["result"].as_str()),
        (200, Some("deleted"))
    );
    assert_eq!(set_status(&app, forced, JobStatus::Completed).await.0, 410);

    // A job nobody runs goes at once; an unknown one is 404.
    let idle = create(&app, batch_job()).await;
    let (_, body) = job_op(&app, "deleteJob", json!({ "job_id": idle })).await;
    assert_eq!(body["data"]["result"], "deleted");
    let (status, body) = job_op(
        &app,
        "deleteJob",
        json!({ "job_id": "00000000-0000-4000-8000-000000000042" }),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // A pipeline that never calls again: the sweeper removes the job after the grace.
    let silent = create(&app, batch_job()).await;
    set_status(&app, silent, JobStatus::Running).await;
    job_op(&app, "deleteJob", json!({ "job_id": silent })).await;
    assert_eq!(
        jobdeck::server::jobs::sweep_deletions(&pool).await.unwrap(),
        0
    );
    sqlx::query("UPDATE jobs SET delete_requested_at = now() - interval '1 hour' WHERE id = $1")
        .bind(silent)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        jobdeck::server::jobs::sweep_deletions(&pool).await.unwrap(),
        1
    );
    assert_eq!(job_count(&pool, "job_events", silent).await, 0);
}

#[sqlx::test]
async fn viewers_read_operators_change_and_workers_only_report(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create(&app, batch_job()).await;
    set_status(&app, job, JobStatus::Running).await;
    let id = json!({ "job_id": job });
    let report = json!({ "job_id": job, "status": "running" });
    // Each caller adds its own task, so the worker's success is a success of its own.
    let task = json!({ "job_id": job, "tasks": [{"name": "ROLE"}] });
    let create_body = batch_job();
    // (route, action, data, may viewer, may operator, may worker)
    let cases = [
        (
            "/job-operations",
            "getJobInfo",
            id.clone(),
            true,
            true,
            false,
        ),
        (
            "/job-operations",
            "createJob",
            create_body,
            false,
            true,
            false,
        ),
        (
            "/job-operations",
            "updateBatchJob",
            report,
            false,
            true,
            true,
        ),
        (
            "/job-operations",
            "pauseJob",
            id.clone(),
            false,
            true,
            false,
        ),
        (
            "/job-operations",
            "resumeJob",
            id.clone(),
            false,
            true,
            false,
        ),
        ("/task-operations", "addTasks", task, false, true, true),
        (
            "/job-operations",
            "cancelJob",
            id.clone(),
            false,
            true,
            false,
        ),
        (
            "/job-operations",
            "deleteJob",
            id.clone(),
            false,
            true,
            false,
        ),
    ];
    let viewer = app.client_as(Role::Viewer).await;
    let operator = app.client_as(Role::Operator).await;
    let worker = app.client_as(Role::Worker).await;
    let data_for = |data: &Value, role: &str| -> Value {
        serde_json::from_str(&data.to_string().replace("ROLE", &format!("t-{role}"))).unwrap()
    };
    for (route, action, data, viewer_may, operator_may, worker_may) in cases {
        for (role, client, may) in [
            ("viewer", &viewer, viewer_may),
            ("worker", &worker, worker_may),
        ] {
            if !may {
                let (status, body) = call(&app, client, route, action, data_for(&data, role)).await;
                assert_eq!(status, 403, "{role} {action}: {body}");
            }
        }
        let data_operator = data_for(&data, "operator");
        let (status, body) = call(&app, &operator, route, action, data_operator).await;
        assert_eq!(
            operator_may,
            (200..300).contains(&status),
            "operator {action}: {body}"
        );
        for (role, client, may) in [
            ("viewer", &viewer, viewer_may),
            ("worker", &worker, worker_may),
        ] {
            if may {
                let (status, body) = call(&app, client, route, action, data_for(&data, role)).await;
                assert!(
                    (200..300).contains(&status),
                    "{role} {action}: {status} {body}"
                );
            }
        }
        if action == "addTasks" {
            let names: Vec<String> =
                sqlx::query_scalar("SELECT name FROM job_tasks WHERE job_id = $1 ORDER BY name")
                    .bind(job)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            assert_eq!(names, ["t-operator", "t-worker"]);
        }
    }
    let (status, _) = call(&app, &app.anonymous, "/job-operations", "getJobInfo", id).await;
    assert_eq!(status, 401);
}

/// A worker drives a run (start it, report on it, finish it); pausing, resuming,
/// cancelling and retrying are an operator's, by `updateBatchJob` as by their own actions.
#[sqlx::test]
async fn a_worker_token_only_moves_a_job_the_pipelines_way(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let worker = app.client_as(Role::Worker).await;
    let update = |job: Uuid, status: &str| json!({ "job_id": job, "status": status });
    let as_worker = |data: Value| call(&app, &worker, "/job-operations", "updateBatchJob", data);

    // pending -> running -> (progress) -> completed, and running -> failed: allowed.
    let job = create(&app, batch_job()).await;
    assert_eq!(as_worker(update(job, "running")).await.0, 200);
    let progress = json!({ "job_id": job, "status": "running", "detailed_status": {
        "current_phase": "load", "progress_percentage": 10.0, "active_tasks": 1, "error_count": 0 }});
    assert_eq!(as_worker(progress).await.0, 200);
    assert_eq!(as_worker(update(job, "completed")).await.0, 200);
    let failing = create(&app, batch_job()).await;
    assert_eq!(as_worker(update(failing, "running")).await.0, 200);
    assert_eq!(as_worker(update(failing, "failed")).await.0, 200);

    // Each of the operator's moves, refused with 403 and the job left where it was.
    let running = create(&app, batch_job()).await;
    assert_eq!(set_status(&app, running, JobStatus::Running).await.0, 200);
    let paused = create(&app, batch_job()).await;
    assert_eq!(set_status(&app, paused, JobStatus::Running).await.0, 200);
    assert_eq!(set_status(&app, paused, JobStatus::Paused).await.0, 200);
    let refused = [
        (running, "paused"),
        (running, "cancelled"),
        (paused, "running"),
        (paused, "cancelled"),
        (failing, "pending"),
    ];
    for (job, to) in refused {
        let before: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
        let (status, body) = as_worker(update(job, to)).await;
        assert_eq!(status, 403, "{before} -> {to}: {body}");
        assert_eq!(body["current_status"], before.as_str(), "{body}");
        let after: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(after, before, "{to}");
    }
    for action in [
        "pauseJob",
        "cancelJob",
        "resumeJob",
        "retryJob",
        "deleteJob",
    ] {
        let (status, body) = call(
            &app,
            &worker,
            "/job-operations",
            action,
            json!({ "job_id": running }),
        )
        .await;
        assert_eq!(status, 403, "{action}: {body}");
    }
    // Every refusal is in the audit log, as a failure of the action asked for.
    let refusals: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE outcome = 'failure' AND actor LIKE 'token:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(refusals, 10);
}

/// `model::JobAction` decides where an operator's command is offered; the route refuses
/// the rest with 409 and says from where it would be allowed.
#[sqlx::test]
async fn commands_are_allowed_only_from_their_statuses(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // (action, the statuses it is allowed from, where it sends the job), as the README says.
    let commands = [
        ("pauseJob", vec!["running"], "paused"),
        ("resumeJob", vec!["paused"], "running"),
        (
            "cancelJob",
            vec!["pending", "running", "paused"],
            "cancelled",
        ),
        ("retryJob", vec!["failed"], "pending"),
    ];
    for (action, allowed, target) in commands {
        for (from, path) in paths() {
            let job = create(&app, batch_job()).await;
            for step in path {
                assert_eq!(set_status(&app, job, step).await.0, 200);
            }
            let (status, body) = job_op(&app, action, json!({ "job_id": job })).await;
            if allowed.contains(&from.as_str()) {
                assert_eq!(status, 200, "{action} from {from}: {body}");
                assert_eq!(body["data"]["status"], target);
            } else {
                assert_eq!(status, 409, "{action} from {from}: {body}");
                assert_eq!(body["current_status"], from.as_str());
                assert_eq!(body["allowed_from"], json!(allowed));
            }
        }
    }
    // A conflict is audited as a failure of the action, with the job as its target.
    let (status, _) = job_op(
        &app,
        "resumeJob",
        json!({ "job_id": create(&app, batch_job()).await }),
    )
    .await;
    assert_eq!(status, 409);
    let conflicts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'resumeJob' AND outcome = 'failure'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        conflicts, 6,
        "five statuses besides paused, and the last one"
    );
}

#[sqlx::test]
async fn a_recap_pipeline_reports_stages_tasks_and_articles(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (status, created) = job_op(
        &app,
        "createJob",
        json!({ "kind": "recap", "user_id": "user-1", "trigger_source": "system" }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["stages"], json!(RECAP_STAGES));
    assert_eq!(created["data"]["product_id"], Value::Null);
    let job: Uuid = created["data"]["id"].as_str().unwrap().parse().unwrap();

    let (status, body) = task_op(
        &app,
        "addTasks",
        json!({ "job_id": job, "tasks": [
            {"name": "tech", "payload": {"genre": "tech"}},
            {"name": "sports"},
            {"name": "summary", "depends_on": ["tech", "sports"]}
        ]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = task_op(
        &app,
        "addTasks",
        json!({ "job_id": job, "tasks": [{"name": "tech"}] }),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("data.tasks")),
        "{body}"
    );

    for (i, stage) in RECAP_STAGES.iter().enumerate() {
        let (status, body) = job_op(
            &app,
            "updateBatchJob",
            json!({ "job_id": job, "status": "running", "detailed_status": {
                "current_phase": stage, "progress_percentage": (i * 100 / 8), "active_tasks": 2, "error_count": 0 } }),
        )
        .await;
        assert_eq!(status, 200, "{stage}: {body}");
    }
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "detailed_status": {
            "current_phase": "Nap", "progress_percentage": 99, "active_tasks": 0, "error_count": 0 } }),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("data.detailed_status.current_phase"))
    );

    let (status, body) = task_op(
        &app,
        "updateTasks",
        json!({ "job_id": job, "tasks": [
            {"name": "tech", "status": "running"},
            {"name": "sports", "status": "running", "articles": 40}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["active_tasks"], 2);
    let (_, body) = task_op(
        &app,
        "updateTasks",
        json!({ "job_id": job, "tasks": [
            {"name": "tech", "status": "completed", "articles": 120, "clusters": 14},
            {"name": "sports", "status": "failed", "error_details": {"code": "TIMEOUT", "message": "model timed out"}}
        ]}),
    )
    .await;
    assert_eq!(body["data"]["active_tasks"], 0);
    assert_eq!(body["data"]["progress_percentage"], 33.3);
    // A finished task cannot go back; an unknown one is named.
    let (status, body) = task_op(
        &app,
        "updateTasks",
        json!({ "job_id": job, "tasks": [{"name": "tech", "status": "running"}] }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["task"], "tech");
    let (status, body) = task_op(
        &app,
        "updateTasks",
        json!({ "job_id": job, "tasks": [{"name": "tech", "articles": 1}, {"name": "nope", "articles": 1}] }),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("data.tasks[1].name"))
    );

    let articles: Vec<Value> = (0..500)
        .map(|i| json!({"feed_id": format!("feed-{}", i % 7), "original_user_id": format!("user-{}", i % 3), "genre": "tech"}))
        .collect();
    let (status, body) = task_op(
        &app,
        "recordArticles",
        json!({ "job_id": job, "articles": articles }),
    )
    .await;
    assert_eq!(
        (status, body["data"]["recorded"].as_u64()),
        (201, Some(500))
    );

    assert_eq!(set_status(&app, job, JobStatus::Completed).await.0, 200);
    let phases: Vec<(String, bool)> = sqlx::query_as(
        "SELECT name, finished_at IS NOT NULL FROM job_phases WHERE job_id = $1 ORDER BY id",
    )
    .bind(job)
    .fetch_all(&pool)
    .await
    .unwrap();
    let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, RECAP_STAGES);
    assert!(
        phases.iter().all(|(_, closed)| *closed),
        "every phase closed"
    );
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(info["data"]["tasks"]["total"], 3);
    assert_eq!(info["data"]["tasks"]["completed"], 1);
    assert_eq!(info["data"]["tasks"]["failed"], 1);
    assert_eq!(info["data"]["job"]["last_error"]["task"], "sports");
    // A finished job takes no more reports.
    let (status, _) = task_op(
        &app,
        "recordArticles",
        json!({ "job_id": job, "articles": [{"feed_id": "f", "original_user_id": "u", "genre": "g"}] }),
    )
    .await;
    assert_eq!(status, 409);
}

/// A progress report in the job's phase takes the one-statement path, a phase change the
/// general one; both leave the same event and audit rows.
#[sqlx::test]
async fn both_update_paths_record_the_same_event_and_audit_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let id = create(&app, batch_job()).await;
    let report = |status: &str, phase: &str, progress: f64| {
        json!({
            "job_id": id, "status": status,
            "detailed_status": {
                "current_phase": phase, "progress_percentage": progress,
                "active_tasks": 1, "error_count": 0
            }
        })
    };
    // pending → running with a first phase (general path), a report in that phase (one
    // statement), then a new phase (general path) and a pause without one (one statement).
    for (data, progress, grouped) in [
        (report("running", "load", 10.0), 10.0, false),
        (report("running", "load", 20.0), 20.0, true),
        (report("running", "send", 30.0), 30.0, false),
        (json!({ "job_id": id, "status": "paused" }), 30.0, true),
    ] {
        let before = queue_stats(&app);
        let (status, body) = job_op(&app, "updateBatchJob", data).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["detailed_status"]["progress_percentage"],
            progress
        );
        let after = queue_stats(&app);
        let path = (after.1 - before.1, after.2 - before.2);
        assert_eq!(path, if grouped { (1, 0) } else { (0, 1) }, "{body}");
    }
    let audited: Vec<Value> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE target = $1 AND action = 'updateBatchJob' ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    let shape = |from: &str, to: &str, phase: Value| json!({ "from": from, "to": to, "phase": phase, "error_code": null, "reason": null });
    assert_eq!(
        audited,
        [
            shape("pending", "running", json!("load")),
            shape("running", "running", json!("load")),
            shape("running", "running", json!("send")),
            shape("running", "paused", Value::Null),
        ]
    );
    let events: Vec<(Option<String>, String, String)> = sqlx::query_as(
        "SELECT from_status, to_status, actor FROM job_events WHERE job_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    let actors: Vec<&str> = events.iter().map(|e| e.2.as_str()).collect();
    assert!(actors.windows(2).all(|w| w[0] == w[1]), "{events:?}");
    let trail: Vec<(Option<&str>, &str)> = events
        .iter()
        .map(|e| (e.0.as_deref(), e.1.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            (None, "pending"),
            (Some("pending"), "running"),
            (Some("running"), "paused")
        ]
    );
    let phases: Vec<(String, bool)> = sqlx::query_as(
        "SELECT name, finished_at IS NOT NULL FROM job_phases WHERE job_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(phases, [("load".into(), true), ("send".into(), false)]);
}

/// Reports on many jobs at once share statements; several on one job wait for each other.
/// Every report is answered after it is written, and each has its audit row.
#[sqlx::test]
async fn concurrent_reports_on_many_jobs_are_each_written_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let id = create(&app, batch_job()).await;
        let start = json!({ "job_id": id, "status": "running", "detailed_status": {
            "current_phase": "load", "progress_percentage": 0.0, "active_tasks": 1, "error_count": 0 }});
        let (status, _) = job_op(&app, "updateBatchJob", start).await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    let before = queue_stats(&app);
    let calls = (0..200).map(|n| {
        let (app, id) = (&app, ids[n % 10]);
        async move {
            let data = json!({
                "job_id": id, "status": "running",
                "detailed_status": {
                    "current_phase": "load", "progress_percentage": (n / 10) as f64,
                    "active_tasks": 1, "error_count": 0
                }
            });
            job_op(app, "updateBatchJob", data).await
        }
    });
    let answers = futures::future::join_all(calls).await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(refused.is_empty(), "{:?}", refused.first());
    // Every report went through the shared statement, and statements held several.
    let after = queue_stats(&app);
    assert_eq!(after.2 - before.2, 0, "none took the general path");
    assert_eq!(after.1 - before.1, 200);
    assert!(
        after.0 - before.0 < 200,
        "{} statements for 200 reports",
        after.0 - before.0
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'updateBatchJob'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 10 + 200);
    // No status changed, so no event beyond created and started; one phase per job.
    assert_eq!(count(&pool, "job_events").await, 20);
    assert_eq!(count(&pool, "job_phases").await, 10);
}
