//! Error recovery (seed 004) on real PostgreSQL and real HTTP: `configureRetry` as the seed
//! writes it and refused when malformed; error records from every door with their
//! fingerprints, closed by the success of their work; and a per-type backoff driving a
//! real `jobdeck worker`'s retry.

use std::time::Duration;

use jobdeck::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;
use crate::worker_cli::{start_worker, until};

async fn error_op(app: &TestApp, action: &str, data: Value) -> (u16, Value) {
    call(app, &app.client, "/error-operations", action, data).await
}

/// Seed 004's configureRetry body, every field as the seed prints it.
fn seed_body() -> Value {
    json!({
        "error_type": "TIMEOUT",
        "config": {
            "error_type": "TIMEOUT",
            "max_attempts": 5,
            "initial_delay": 1.5,
            "max_delay": 60,
            "backoff_factor": 2,
            "retry_conditions": [
                { "field": "priority", "operator": "gte", "value": 3 },
                { "field": "message", "operator": "contains", "value": "timed out" },
            ],
        },
    })
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct StoredConfig {
    max_attempts: i32,
    initial_delay: f64,
    max_delay: f64,
    backoff_factor: f64,
    retry_conditions: Value,
}

async fn stored(pool: &PgPool, error_type: &str) -> Option<StoredConfig> {
    sqlx::query_as(
        "SELECT max_attempts, initial_delay, max_delay, backoff_factor, retry_conditions
         FROM retry_configs WHERE error_type = $1",
    )
    .bind(error_type)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn configure_retry_takes_the_seed_body_and_replaces_the_types_config(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (status, body) = error_op(&app, "configureRetry", seed_body()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "configureRetry");
    let data = &body["data"];
    assert_eq!(data["error_type"], "TIMEOUT");
    assert_eq!(data["created"], true);
    assert_eq!(data["max_attempts"], 5);
    assert_eq!(data["initial_delay"], 1.5);
    assert_eq!(
        data["retry_conditions"],
        seed_body()["config"]["retry_conditions"]
    );
    assert_eq!(
        stored(&pool, "TIMEOUT").await,
        Some(StoredConfig {
            max_attempts: 5,
            initial_delay: 1.5,
            max_delay: 60.0,
            backoff_factor: 2.0,
            retry_conditions: seed_body()["config"]["retry_conditions"].clone(),
        })
    );

    // The config's own error_type may be left out; a second call replaces the first whole.
    let (status, body) = error_op(
        &app,
        "configureRetry",
        json!({ "error_type": "TIMEOUT", "config": {
            "max_attempts": 2, "initial_delay": 0, "max_delay": 0, "backoff_factor": 1 } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["created"], false);
    let replaced = stored(&pool, "TIMEOUT").await.unwrap();
    assert_eq!(replaced.max_attempts, 2);
    assert_eq!(replaced.retry_conditions, json!([]));
    assert_eq!(count(&pool, "retry_configs").await, 1);

    // Both changes are in the audit log, with who made them.
    let audited: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT action, target, details FROM audit_events
         WHERE action = 'configureRetry' AND outcome = 'success' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert_eq!(audited[0].1, "TIMEOUT");
    assert_eq!(audited[0].2["config"]["max_attempts"], 5);
    assert_eq!(audited[1].2["created"], false);
}

#[sqlx::test]
async fn malformed_configs_get_a_400_naming_the_field_and_store_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let edit = |path: &[&str], value: Value| {
        let mut body = seed_body();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        match value {
            Value::Null => {
                at.as_object_mut().unwrap().remove(path[path.len() - 1]);
            }
            value => at[path[path.len() - 1]] = value,
        }
        body
    };
    let condition = |c: Value| edit(&["config", "retry_conditions"], json!([c]));
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "no error_type",
            edit(&["error_type"], Value::Null),
            "data",
            "error_type",
        ),
        (
            "blank error_type",
            edit(&["error_type"], json!(" ")),
            "data.error_type",
            "empty",
        ),
        (
            "no config",
            edit(&["config"], Value::Null),
            "data",
            "config",
        ),
        (
            "unknown field",
            edit(&["config", "jitter"], json!(1)),
            "data.config.jitter",
            "unknown field",
        ),
        (
            "other type inside",
            edit(&["config", "error_type"], json!("RATE_LIMITED")),
            "data.config.error_type",
            "RATE_LIMITED",
        ),
        (
            "0 attempts",
            edit(&["config", "max_attempts"], json!(0)),
            "data.config.max_attempts",
            "between 1 and 100",
        ),
        (
            "101 attempts",
            edit(&["config", "max_attempts"], json!(101)),
            "data.config.max_attempts",
            "between 1 and 100",
        ),
        (
            "attempts as text",
            edit(&["config", "max_attempts"], json!("5")),
            "data.config.max_attempts",
            "invalid type",
        ),
        (
            "negative delay",
            edit(&["config", "initial_delay"], json!(-1)),
            "data.config.initial_delay",
            "between 0",
        ),
        (
            "delay past a day",
            edit(&["config", "max_delay"], json!(86_401)),
            "data.config.max_delay",
            "between 0",
        ),
        (
            "max below initial",
            edit(&["config", "max_delay"], json!(1)),
            "data.config.max_delay",
            "at least initial_delay",
        ),
        (
            "shrinking factor",
            edit(&["config", "backoff_factor"], json!(0.5)),
            "data.config.backoff_factor",
            "between 1 and 10",
        ),
        (
            "no factor",
            edit(&["config", "backoff_factor"], Value::Null),
            "data.config",
            "backoff_factor",
        ),
        (
            "no operator",
            condition(json!({ "field": "priority", "value": 3 })),
            "data.config.retry_conditions[0]",
            "operator",
        ),
        (
            "unknown operator",
            condition(json!({ "field": "priority", "operator": "between", "value": 3 })),
            "data.config.retry_conditions[0].operator",
            "unknown condition operator",
        ),
        (
            "unknown field",
            condition(json!({ "field": "hostname", "operator": "eq", "value": "a" })),
            "data.config.retry_conditions[0].field",
            "unknown condition field",
        ),
        (
            "order on text",
            condition(json!({ "field": "message", "operator": "gt", "value": "a" })),
            "data.config.retry_conditions[0]",
            "applies to numbers",
        ),
        (
            "bad pattern",
            condition(json!({ "field": "message", "operator": "matches", "value": "([" })),
            "data.config.retry_conditions[0]",
            "regular expression",
        ),
        (
            "SQL in a value",
            condition(
                json!({ "field": "priority", "operator": "eq", "value": "1; DROP TABLE jobs" }),
            ),
            "data.config.retry_conditions[0]",
            "must be a number",
        ),
        (
            "too many",
            edit(
                &["config", "retry_conditions"],
                json!(vec![
                    json!({ "field": "attempt", "operator": "lt", "value": 9 });
                    21
                ]),
            ),
            "data.config.retry_conditions",
            "at most 20",
        ),
    ];
    for (case, body, field, why) in cases {
        let (status, answer) = error_op(&app, "configureRetry", body).await;
        assert_eq!(status, 400, "{case}: {answer}");
        assert_eq!(answer["field"], field, "{case}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(why), "{case}: {error}");
    }
    let (status, answer) = error_op(&app, "launchRetry", json!({})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("action")));
    assert_eq!(count(&pool, "retry_configs").await, 0);
}

#[sqlx::test]
async fn only_operators_and_admins_configure_retries(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    for role in [Role::Viewer, Role::Worker] {
        let client = app.client_as(role).await;
        let (status, body) = call(
            &app,
            &client,
            "/error-operations",
            "configureRetry",
            seed_body(),
        )
        .await;
        assert_eq!(status, 403, "{role}: {body}");
    }
    let operator = app.client_as(Role::Operator).await;
    let (status, body) = call(
        &app,
        &operator,
        "/error-operations",
        "configureRetry",
        seed_body(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'configureRetry' AND outcome = 'failure'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(refused, 2);
    let anonymous = reqwest::Client::new()
        .post(app.url("/error-operations"))
        .json(&json!({ "action": "configureRetry", "data": seed_body() }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

async fn fingerprint(pool: &PgPool, error_type: &str, message: &str) -> String {
    sqlx::query_scalar("SELECT error_fingerprint($1, $2)")
        .bind(error_type)
        .bind(message)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn fingerprints_group_repeats_and_keep_different_problems_apart(pool: PgPool) {
    // Pairs that differ only in numbers, ids, UUIDs, paths and quoted values.
    let same = [
        (
            "job 42 failed reading /tmp/a.csv after 30.5 s",
            "job 7 failed reading /srv/data/b.csv after 3 s",
        ),
        (
            "task 3f2a9c1e-1b2c-4d5e-8f90-123456789abc lost its lease",
            "task 00000000-0000-4000-8000-000000000001 lost its lease",
        ),
        ("commit deadbeef42 not found", "commit 0a1b2c3d4e not found"),
        (
            "bad value 'abc' in column \"price\"",
            "bad value 'x y z' in column \"qty\"",
        ),
        (
            "cannot open C:\\data\\in\\file.txt",
            "cannot open D:\\other\\x.txt",
        ),
        (
            "connection to db-3:5432 refused",
            "connection to db-12:6543 refused",
        ),
        ("timeout  after\t30s", "timeout after 5s"),
    ];
    for (a, b) in same {
        assert_eq!(
            fingerprint(&pool, "TIMEOUT", a).await,
            fingerprint(&pool, "TIMEOUT", b).await,
            "{a:?} and {b:?} should group"
        );
    }
    let apart = [
        (
            ("TIMEOUT", "upstream timed out"),
            ("TIMEOUT", "upstream refused"),
        ),
        (("TIMEOUT", "row 7 bad"), ("PARSE_ERROR", "row 7 bad")),
        (("TIMEOUT", "decade facade"), ("TIMEOUT", "decade façade")),
    ];
    for ((ta, a), (tb, b)) in apart {
        assert_ne!(
            fingerprint(&pool, ta, a).await,
            fingerprint(&pool, tb, b).await,
            "{ta} {a:?} and {tb} {b:?} should stay apart"
        );
    }
    let pattern: String = sqlx::query_scalar("SELECT error_pattern($1)")
        .bind("job 42 read /tmp/a.csv for 3f2a9c1e-1b2c-4d5e-8f90-123456789abc: 'x'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pattern, "job <n> read <path> for <uuid>: <value>");
    for (message, expected) in [
        ("Traceback: ValueError: bad row", "ValueError"),
        ("PARSE_ERROR at line 3", "PARSE_ERROR"),
        (
            "java.net.SocketTimeoutException: read",
            "SocketTimeoutException",
        ),
        ("it broke; API down", "SCRIPT_ERROR"),
    ] {
        let found: String = sqlx::query_scalar("SELECT report_error_type($1)")
            .bind(message)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(found, expected, "{message}");
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Record {
    error_type: String,
    error_message: String,
    task_id: Option<Uuid>,
    retry_count: i32,
    recovery_status: String,
    recovered: bool,
    fingerprint: String,
}

async fn records_of(pool: &PgPool, owner: &str, id: Uuid) -> Vec<Record> {
    sqlx::query_as(&format!(
        "SELECT error_type, error_message, task_id, retry_count, recovery_status,
                recovered_at IS NOT NULL AS recovered, fingerprint
         FROM error_records WHERE {owner} = $1 ORDER BY at, error_message"
    ))
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_scripts_error_reports_open_records_and_its_next_success_closes_them(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = format!("nightly-{}", unique());
    for (status, at, message) in [
        (
            "error",
            "2026-12-01T01:00:00Z",
            Some("PARSE_ERROR in row 17 of /in/a.csv"),
        ),
        (
            "error",
            "2026-12-01T02:00:00Z",
            Some("PARSE_ERROR in row 3 of /in/b.csv"),
        ),
        ("error", "2026-12-01T03:00:00Z", None),
    ] {
        let response = app
            .report(&with(report(&key, status, at), "message", json!(message)))
            .await;
        assert_eq!(response.status(), 200);
    }
    let script: Uuid = sqlx::query_scalar("SELECT id FROM job_status WHERE job_key = $1")
        .bind(&key)
        .fetch_one(&pool)
        .await
        .unwrap();
    let records = records_of(&pool, "job_status_id", script).await;
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[0].error_type, "PARSE_ERROR");
    assert_eq!(records[0].fingerprint, records[1].fingerprint);
    assert_eq!(records[2].error_type, "SCRIPT_ERROR");
    assert_eq!(records[2].error_message, "");
    assert!(records.iter().all(|r| r.recovery_status == "pending"));
    // The analysis names the script its pattern touched.
    let period = json!({ "start": "2026-12-01T00:00:00Z", "end": "2026-12-01T04:00:00Z" });
    let (status, body) = error_op(&app, "analyzeErrors", json!({ "period": period })).await;
    assert_eq!(status, 200, "{body}");
    let parse = body["data"]["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["error_type"] == "PARSE_ERROR")
        .cloned()
        .unwrap();
    assert_eq!(parse["count"], 2, "{parse}");
    assert_eq!(parse["affected_scripts"], json!([key]));
    assert_eq!(parse["affected_jobs"], json!([]));

    // A late success of a run older than the last error closes only what came before it.
    let response = app
        .report(&report(&key, "success", "2026-12-01T02:30:00Z"))
        .await;
    assert_eq!(response.status(), 200);
    let statuses: Vec<String> = records_of(&pool, "job_status_id", script)
        .await
        .into_iter()
        .map(|r| r.recovery_status)
        .collect();
    assert_eq!(statuses, ["recovered", "recovered", "pending"]);
    let response = app
        .report(&report(&key, "success", "2026-12-01T04:00:00Z"))
        .await;
    assert_eq!(response.status(), 200);
    let records = records_of(&pool, "job_status_id", script).await;
    assert!(records
        .iter()
        .all(|r| r.recovery_status == "recovered" && r.recovered));
}

#[sqlx::test]
async fn a_reported_jobs_errors_are_recorded_and_recovered_when_it_completes(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (status, body) = job_op(
        &app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "tasks": [{ "name": "fetch" }] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let job: Uuid = body["data"]["id"].as_str().unwrap().parse().unwrap();
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "status": "running",
                "error_details": { "code": "TIMEOUT", "message": "upstream timed out", "stack": "at fetch()" } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &app,
        &app.client,
        "/task-operations",
        "updateTasks",
        json!({ "job_id": job, "tasks": [{ "name": "fetch", "status": "running" }] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &app,
        &app.client,
        "/task-operations",
        "updateTasks",
        json!({ "job_id": job, "tasks": [{ "name": "fetch", "status": "failed",
                "error_details": { "code": "RATE_LIMITED", "message": "429 from feed 12" } }] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let records = records_of(&pool, "job_id", job).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let by_type = |t: &str| records.iter().find(|r| r.error_type == t).unwrap();
    assert_eq!(by_type("TIMEOUT").task_id, None);
    let task: Uuid = sqlx::query_scalar("SELECT id FROM job_tasks WHERE job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(by_type("RATE_LIMITED").task_id, Some(task));
    assert!(records.iter().all(|r| r.recovery_status == "pending"));

    // The task runs again and completes: its record is recovered, the job's is not yet.
    for status in ["running", "completed"] {
        let (code, body) = call(
            &app,
            &app.client,
            "/task-operations",
            "updateTasks",
            json!({ "job_id": job, "tasks": [{ "name": "fetch", "status": status }] }),
        )
        .await;
        assert_eq!(code, 200, "{status}: {body}");
    }
    let records = records_of(&pool, "job_id", job).await;
    let by_type = |t: &str| records.iter().find(|r| r.error_type == t).unwrap();
    assert_eq!(by_type("RATE_LIMITED").recovery_status, "recovered");
    assert_eq!(by_type("TIMEOUT").recovery_status, "pending");
    let (status, body) = job_op(
        &app,
        "updateBatchJob",
        json!({ "job_id": job, "status": "completed" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let records = records_of(&pool, "job_id", job).await;
    assert!(records
        .iter()
        .all(|r| r.recovery_status == "recovered" && r.recovered));

    // A cancelled job's open records end failed; an error reported with the job's final
    // failure is failed at once.
    for (end, data) in [
        ("cancelJob", json!({})),
        (
            "updateBatchJob",
            json!({ "status": "failed",
                    "error_details": { "code": "OUT_OF_MEMORY", "message": "killed at 2 GB" } }),
        ),
    ] {
        let (status, body) = job_op(
            &app,
            "createJob",
            json!({ "product_id": "p", "sending_group_id": "g" }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let other: Uuid = body["data"]["id"].as_str().unwrap().parse().unwrap();
        let (status, body) = job_op(
            &app,
            "updateBatchJob",
            json!({ "job_id": other, "status": "running",
                    "error_details": { "code": "TIMEOUT", "message": "slow" } }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let mut data = data.clone();
        data["job_id"] = json!(other);
        let (status, body) = job_op(&app, end, data).await;
        assert_eq!(status, 200, "{end}: {body}");
        let statuses: Vec<String> = records_of(&pool, "job_id", other)
            .await
            .into_iter()
            .map(|r| r.recovery_status)
            .collect();
        assert!(
            !statuses.is_empty() && statuses.iter().all(|s| s == "failed"),
            "{end}: {statuses:?}"
        );
    }
    assert_rollups_match_records(&pool).await;
}

/// A real `jobdeck worker` runs a program that fails its first attempt with TIMEOUT. The job
/// alone would not retry it (1 attempt); the TIMEOUT config retries it after its backoff, and
/// the record is recovered when the second attempt succeeds. A PARSE_ERROR, which the job
/// does not list, fails its job at once and its record with it.
#[sqlx::test]
async fn a_workers_timeout_is_retried_after_the_types_backoff_and_its_record_recovers(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let (status, body) = error_op(
        &app,
        "configureRetry",
        json!({ "error_type": "TIMEOUT", "config": {
            "max_attempts": 3, "initial_delay": 1, "max_delay": 10, "backoff_factor": 3,
            "retry_conditions": [{ "field": "message", "operator": "matches", "value": "timed out after \\d+ s" }] } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let create = |name: &str| {
        json!({ "action": "createJob", "data": {
            "product_id": "p", "sending_group_id": "g", "driver": "dispatched", "queue": "cli",
            "retry_config": { "max_attempts": 1, "retry_interval": 0, "retry_on_errors": ["TIMEOUT"] },
            "tasks": [{ "name": name }] } })
    };
    let mut jobs = Vec::new();
    for name in ["flaky", "broken"] {
        let response = app
            .client
            .post(app.url("/job-operations"))
            .json(&create(name))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let id: Uuid = body_json(response).await["data"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        jobs.push(id);
    }
    let (flaky, broken) = (jobs[0], jobs[1]);
    let script = format!(
        r#"if [ "$JOBDECK_JOB_ID" = "{broken}" ]; then echo "::error PARSE_ERROR bad row 17"; exit 1; fi
           if [ "$JOBDECK_ATTEMPT" = 1 ]; then echo "::error TIMEOUT feed timed out after 30 s"; exit 1; fi
           echo fine"#
    );
    let _worker = start_worker(&app, "w-recover", &[], &script).await;
    let status = "SELECT status FROM jobs WHERE id = $1";
    until(&pool, status, flaky, Duration::from_secs(20), |s| {
        s == "completed"
    })
    .await;
    until(&pool, status, broken, Duration::from_secs(20), |s| {
        s == "failed"
    })
    .await;

    // The retry waited the first backoff step: 1 s less at most 20 % jitter, and not the
    // second step's 3 s (the worker's claim may add a little on top).
    let waited: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM t.started_at - e.at)::float8
         FROM job_tasks t JOIN job_errors e ON e.job_id = t.job_id WHERE t.job_id = $1",
    )
    .bind(flaky)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((0.8..2.2).contains(&waited), "waited {waited} s");
    let attempts: i32 = sqlx::query_scalar("SELECT attempt FROM job_tasks WHERE job_id = $1")
        .bind(flaky)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    let records = records_of(&pool, "job_id", flaky).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].error_type, "TIMEOUT");
    assert_eq!(records[0].retry_count, 0);
    assert_eq!(records[0].recovery_status, "recovered");
    let records = records_of(&pool, "job_id", broken).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].error_type, "PARSE_ERROR");
    assert_eq!(records[0].recovery_status, "failed");
    let attempts: i32 = sqlx::query_scalar("SELECT attempt FROM job_tasks WHERE job_id = $1")
        .bind(broken)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1);
}

/// A worker's side of the protocol, for the recovery tests: claim up to `max` tasks of
/// queue `rq`, complete or fail one.
async fn claim_in(app: &TestApp, worker: &reqwest::Client, max: usize) -> Vec<Value> {
    let (status, body) = call(
        app,
        worker,
        "/task-operations",
        "claimTasks",
        json!({ "worker_id": "w-rq", "queues": ["rq"], "max_tasks": max }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["tasks"].as_array().unwrap().clone()
}

async fn finish(app: &TestApp, worker: &reqwest::Client, task: &Value, failure: Option<&str>) {
    let mut entry = json!({ "task_id": task["task_id"], "lease_token": task["lease_token"] });
    let action = match failure {
        Some(code) => {
            entry["code"] = json!(code);
            entry["message"] = json!(format!("{code} in task {}", task["name"]));
            "failTasks"
        }
        None => "completeTasks",
    };
    let (status, body) = call(
        app,
        worker,
        "/task-operations",
        action,
        json!({ "worker_id": "w-rq", "tasks": [entry] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn named<'a>(held: &'a [Value], name: &str) -> &'a Value {
    held.iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {held:?}"))
}

/// A dispatched job in queue `rq` with these tasks and retry settings.
async fn job_with(app: &TestApp, tasks: Value, max_attempts: i32) -> Uuid {
    let (status, body) = job_op(
        app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "driver": "dispatched", "queue": "rq",
                "max_parallel_tasks": 2, "tasks": tasks,
                "retry_config": { "max_attempts": max_attempts, "retry_interval": 0,
                                  "retry_on_errors": ["TIMEOUT"] } }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().parse().unwrap()
}

async fn record_of_task(pool: &PgPool, job: Uuid, task: &str) -> Uuid {
    sqlx::query_scalar(
        "SELECT r.id FROM error_records r JOIN job_tasks t ON t.id = r.task_id
         WHERE r.job_id = $1 AND t.name = $2",
    )
    .bind(job)
    .bind(task)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct TaskState {
    name: String,
    status: String,
    attempt: i32,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    payload: Value,
}

async fn task_states(pool: &PgPool, job: Uuid) -> Vec<TaskState> {
    sqlx::query_as(
        "SELECT name, status, attempt, finished_at, payload FROM job_tasks
         WHERE job_id = $1 ORDER BY name",
    )
    .bind(job)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// a → b → d and a → c → d: b fails for good after a and c completed, which fails the job
/// and cancels d. Recovering b's record runs exactly b and d again; a and c stay as they
/// were; of two concurrent recoveries one wins; the job completes.
#[sqlx::test]
async fn a_diamonds_failed_branch_is_rerun_with_its_downstream_and_nothing_else(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let worker = app.client_as(Role::Worker).await;
    let job = job_with(
        &app,
        json!([
            { "name": "a", "payload": { "n": 1 } },
            { "name": "b", "depends_on": ["a"], "payload": { "n": 2 } },
            { "name": "c", "depends_on": ["a"] },
            { "name": "d", "depends_on": ["b", "c"] },
        ]),
        3,
    )
    .await;
    let held = claim_in(&app, &worker, 2).await;
    assert_eq!(held.len(), 1, "only a is ready: {held:?}");
    finish(&app, &worker, named(&held, "a"), None).await;
    let held = claim_in(&app, &worker, 2).await;
    finish(&app, &worker, named(&held, "c"), None).await;
    // PARSE_ERROR is not in the job's list: failed for good at once, and the job with it.
    finish(&app, &worker, named(&held, "b"), Some("PARSE_ERROR")).await;
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(info["data"]["job"]["status"], "failed", "{info}");
    let record = record_of_task(&pool, job, "b").await;
    let before = task_states(&pool, job).await;
    let statuses: Vec<&str> = before.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(statuses, ["completed", "failed", "completed", "cancelled"]);

    // The dry run names the set and changes nothing.
    let options = |dry_run: bool| {
        json!({ "error_record_id": record,
                "recovery_options": { "dry_run": dry_run, "custom_params": { "mode": "safe" } } })
    };
    let (status, body) = error_op(&app, "manualRecover", options(true)).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["dry_run"], true);
    let rerun: Vec<(&str, &str)> = data["rerun"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(rerun, [("b", "failed"), ("d", "downstream")]);
    assert_eq!(data["kept"], json!(["a", "c"]));
    assert_eq!(task_states(&pool, job).await, before);

    // Two at once: one re-runs, the other is told a recovery is under way.
    let (first, second) = tokio::join!(
        error_op(&app, "manualRecover", options(false)),
        error_op(&app, "manualRecover", options(false)),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{first:?} {second:?}");
    let won = if first.0 == 200 { &first.1 } else { &second.1 };
    let lost = if first.0 == 409 { &first.1 } else { &second.1 };
    assert!(
        lost["error"].as_str().unwrap().contains("under way"),
        "{lost}"
    );
    assert_eq!(won["data"]["recovery_status"], "in_progress");
    assert_eq!(won["data"]["recovery_attempts"][0]["method"], "manual");

    let after = task_states(&pool, job).await;
    assert_eq!(after[0], before[0], "a untouched");
    assert_eq!(after[2], before[2], "c untouched");
    for i in [1, 3] {
        assert_eq!(after[i].status, "pending", "{:?}", after[i]);
        assert_eq!(after[i].finished_at, None);
        assert_eq!(after[i].attempt, before[i].attempt, "attempts are kept");
        assert_eq!(after[i].payload["mode"], "safe", "{:?}", after[i]);
    }
    assert_eq!(after[1].payload["n"], 2);
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(info["data"]["job"]["status"], "pending");

    // b then d run again, and the job completes; the record is recovered.
    let held = claim_in(&app, &worker, 2).await;
    assert_eq!(held.len(), 1, "{held:?}");
    finish(&app, &worker, named(&held, "b"), None).await;
    let held = claim_in(&app, &worker, 2).await;
    finish(&app, &worker, named(&held, "d"), None).await;
    let (_, info) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(info["data"]["job"]["status"], "completed", "{info}");
    let (status, attempts): (String, Value) = sqlx::query_as(
        "SELECT recovery_status, recovery_attempts FROM error_records WHERE id = $1",
    )
    .bind(record)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "recovered");
    assert_eq!(attempts.as_array().unwrap().len(), 1);
    // One row for the record (what ran again), one for its job's move back to pending.
    let audited: Vec<(String, Value)> = sqlx::query_as(
        "SELECT target, details FROM audit_events
         WHERE action = 'manualRecover' AND outcome = 'success' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert_eq!(audited[0].0, job.to_string());
    assert_eq!(audited[0].1["to"], "pending");
    assert_eq!(audited[1].0, record.to_string());
    assert_eq!(audited[1].1["rerun"], json!(["b", "d"]));

    assert_rollups_match_records(&pool).await;

    // A recovered record is not recovered again.
    let (status, body) = error_op(&app, "manualRecover", options(false)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("recovered"),
        "{body}"
    );
}

#[sqlx::test]
async fn spent_attempts_need_force_conditions_need_ignore_and_scripts_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let worker = app.client_as(Role::Worker).await;
    let (status, body) = error_op(
        &app,
        "configureRetry",
        json!({ "error_type": "TIMEOUT", "config": {
            "max_attempts": 1, "initial_delay": 0, "max_delay": 0, "backoff_factor": 1,
            "retry_conditions": [{ "field": "priority", "operator": "gte", "value": 9 }] } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let job = job_with(&app, json!([{ "name": "only" }]), 3).await;
    let held = claim_in(&app, &worker, 1).await;
    finish(&app, &worker, named(&held, "only"), Some("TIMEOUT")).await;
    let record = record_of_task(&pool, job, "only").await;
    let recover =
        |options: Value| json!({ "error_record_id": record, "recovery_options": options });

    let (status, body) = error_op(&app, "manualRecover", recover(json!({}))).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("force"), "{body}");
    let (status, body) = error_op(&app, "manualRecover", recover(json!({ "force": true }))).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ignore_conditions"),
        "{body}"
    );
    let (status, body) = error_op(
        &app,
        "manualRecover",
        recover(json!({ "force": true, "ignore_conditions": true, "dry_run": null })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Each refusal is in the audit log.
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'manualRecover' AND outcome = 'failure'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(refused, 2);

    // A script's record, an unknown one, and bodies the parser refuses.
    let key = format!("script-{}", unique());
    let response = app.report(&report(&key, "error", &now())).await;
    assert_eq!(response.status(), 200);
    let script_record: Uuid = sqlx::query_scalar(
        "SELECT r.id FROM error_records r JOIN job_status s ON s.id = r.job_status_id
         WHERE s.job_key = $1",
    )
    .bind(&key)
    .fetch_one(&pool)
    .await
    .unwrap();
    let (status, body) = error_op(
        &app,
        "manualRecover",
        json!({ "error_record_id": script_record }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = error_op(
        &app,
        "manualRecover",
        json!({ "error_record_id": Uuid::from_u128(0x5eed) }),
    )
    .await;
    assert_eq!(status, 404);
    for (data, field) in [
        (json!({}), "data"),
        (json!({ "error_record_id": "nope" }), "data.error_record_id"),
        (
            json!({ "error_record_id": record, "recovery_options": { "force": "yes" } }),
            "data.recovery_options.force",
        ),
        (
            json!({ "error_record_id": record, "recovery_options": { "custom_params": [1] } }),
            "data.recovery_options.custom_params",
        ),
        (
            json!({ "error_record_id": record, "recovery_options": { "retries": 3 } }),
            "data.recovery_options.retries",
        ),
    ] {
        let (status, body) = error_op(&app, "manualRecover", data.clone()).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{data}: {body}"
        );
    }
    // A viewer may not recover.
    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = call(
        &app,
        &viewer,
        "/error-operations",
        "manualRecover",
        json!({ "error_record_id": record }),
    )
    .await;
    assert_eq!(status, 403);
}

/// Three TIMEOUTs within the window open the breaker: the retries decided next wait out the
/// window instead of their (zero) interval, and say why; once the window has passed with no
/// new failures, a retry is immediate again.
#[sqlx::test]
async fn the_breaker_pauses_a_retry_storm_and_closes_after_its_window(pool: PgPool) {
    let mut config = test_config();
    config.breaker = jobdeck::server::recovery::RetryBreaker {
        failures: 3,
        window: Duration::from_secs(2),
    };
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let worker = app.client_as(Role::Worker).await;
    let names: Vec<String> = (1..=6).map(|i| format!("t{i}")).collect();
    let tasks: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    let (status, body) = job_op(
        &app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "driver": "dispatched", "queue": "rq",
                "max_parallel_tasks": 6, "tasks": tasks,
                "retry_config": { "max_attempts": 10, "retry_interval": 0,
                                  "retry_on_errors": ["TIMEOUT"] } }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let job: Uuid = body["data"]["id"].as_str().unwrap().parse().unwrap();
    let held = claim_in(&app, &worker, 6).await;
    assert_eq!(held.len(), 6);
    let wait_of = |name: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (f64, String)>(
                "SELECT extract(epoch FROM not_before - now())::float8, message FROM job_tasks
                 WHERE job_id = $1 AND name = $2",
            )
            .bind(job)
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    for name in &names {
        finish(&app, &worker, named(&held, name), Some("TIMEOUT")).await;
    }
    for (i, name) in names.iter().enumerate() {
        let (wait, message) = wait_of(name.clone()).await;
        if i < 3 {
            assert!(wait <= 0.0, "{name} waits {wait} s");
            assert!(!message.contains("paused"), "{message}");
        } else {
            assert!(wait > 1.0, "{name} waits only {wait} s");
            assert!(message.contains("retries of TIMEOUT paused"), "{message}");
        }
    }
    // The window passes with no failure; the next one is retried at once again.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let held = claim_in(&app, &worker, 1).await;
    assert_eq!(held.len(), 1);
    let name = held[0]["name"].as_str().unwrap().to_string();
    finish(&app, &worker, &held[0], Some("TIMEOUT")).await;
    let (wait, message) = wait_of(name).await;
    assert!(wait <= 0.0, "waits {wait} s: {message}");
}

/// The rollups and their deltas agree with the records they sum, hour by hour, whatever
/// changed the records since; and again once the deltas are folded.
async fn assert_rollups_match_records(pool: &PgPool) {
    type Row = (
        chrono::DateTime<chrono::Utc>,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
    );
    let query = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let rows: Vec<Row> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            rows
        }
    };
    const RECORDS: &str = "
        SELECT date_trunc('hour', at), error_type, fingerprint, count(*),
               count(*) FILTER (WHERE recovery_status = 'recovered'),
               count(*) FILTER (WHERE recovery_status = 'failed'),
               count(recovered_attempt) FILTER (WHERE recovery_status = 'recovered'),
               coalesce(sum(recovered_attempt) FILTER (WHERE recovery_status = 'recovered'), 0)
        FROM error_records GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
    const ROLLUPS: &str = "
        SELECT hour, error_type, fingerprint, sum(errors)::int8, sum(recovered)::int8,
               sum(failed)::int8, sum(attempted)::int8, sum(recovered_attempts)::int8
        FROM (SELECT * FROM error_rollups
              UNION ALL
              SELECT hour, error_type, fingerprint, pattern, errors, recovered, failed, attempted,
                     recovered_attempts, first_at, last_at FROM error_rollup_deltas) r
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
    let records = query(RECORDS).await;
    assert_eq!(query(ROLLUPS).await, records, "rollups and deltas");
    jobdeck::server::recovery::rollups::fold(pool)
        .await
        .unwrap();
    assert_eq!(query(ROLLUPS).await, records, "once folded");
    assert_eq!(count(pool, "error_rollup_deltas").await, 0);
}

struct Seeded {
    job: usize,
    error_type: &'static str,
    message: String,
    at: chrono::DateTime<chrono::Utc>,
    status: &'static str,
    attempt: Option<i32>,
    worker: Option<&'static str>,
}

/// A week of errors (and the week before, and one record outside both) written into
/// `error_records`, then moved to their final statuses; every figure of `analyzeErrors` is
/// computed here from the same list.
#[sqlx::test]
async fn analyze_errors_figures_equal_the_records_counted_here(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let (status, body) = job_op(
            &app,
            "createJob",
            json!({ "product_id": "p", "sending_group_id": "g" }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        jobs.push(
            body["data"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let start: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let hour = chrono::Duration::hours(1);
    let mut seeded = Vec::new();
    // This week: 60 TIMEOUTs (48 recovered at attempt 2 or 3, 6 failed, 6 pending), 25
    // PARSE_ERRORs all failed, mostly on w-3; the week before: 20 TIMEOUTs, 30 PARSE_ERRORs.
    for i in 0..60 {
        seeded.push(Seeded {
            job: i % 2,
            error_type: "TIMEOUT",
            message: format!("feed {i} timed out after {} s", 10 + i),
            at: start + hour * (i as i32 * 2),
            status: if i < 48 {
                "recovered"
            } else if i < 54 {
                "failed"
            } else {
                "pending"
            },
            attempt: (i < 48).then_some(2 + (i % 2) as i32),
            worker: Some(if i % 3 == 0 { "w-1" } else { "w-2" }),
        });
    }
    for i in 0..25 {
        seeded.push(Seeded {
            job: 0,
            error_type: "PARSE_ERROR",
            message: format!("bad row {i} in /in/file-{i}.csv"),
            at: start + hour * (i * 5 + 1),
            status: "failed",
            attempt: None,
            worker: Some("w-3"),
        });
    }
    for i in 0..20 {
        seeded.push(Seeded {
            job: 1,
            error_type: "TIMEOUT",
            message: format!("feed {i} timed out after 5 s"),
            at: start - hour * (i + 1),
            status: "recovered",
            attempt: Some(2),
            worker: None,
        });
    }
    for i in 0..30 {
        seeded.push(Seeded {
            job: 1,
            error_type: "PARSE_ERROR",
            message: format!("bad row {i} in /in/old.csv"),
            at: start - hour * (i + 1),
            status: "failed",
            attempt: None,
            worker: None,
        });
    }
    seeded.push(Seeded {
        job: 0,
        error_type: "TIMEOUT",
        message: "long ago".into(),
        at: start - chrono::Duration::days(30),
        status: "pending",
        attempt: None,
        worker: None,
    });
    let mut ids = Vec::new();
    for s in &seeded {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO error_records (job_id, error_type, error_class, error_message, fingerprint,
                                        at, worker_id)
             VALUES ($1, $2, 'unknown', $3, error_fingerprint($2, $3), $4, $5) RETURNING id",
        )
        .bind(jobs[s.job])
        .bind(s.error_type)
        .bind(&s.message)
        .bind(s.at)
        .bind(s.worker)
        .fetch_one(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    // Their ends, in one statement, as the triggers of a finishing call would write them.
    let statuses: Vec<&str> = seeded.iter().map(|s| s.status).collect();
    let attempts: Vec<Option<i32>> = seeded.iter().map(|s| s.attempt).collect();
    sqlx::query(
        "UPDATE error_records e SET recovery_status = u.status, recovered_attempt = u.attempt,
                recovered_at = CASE WHEN u.status = 'recovered' THEN now() END
         FROM unnest($1::uuid[], $2::text[], $3::int4[]) AS u(id, status, attempt)
         WHERE e.id = u.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&attempts)
    .execute(&pool)
    .await
    .unwrap();
    assert_rollups_match_records(&pool).await;

    let end = start + chrono::Duration::days(7);
    let period = json!({ "start": start, "end": end });
    let (status, body) = error_op(&app, "analyzeErrors", json!({ "period": period })).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let in_period = |s: &&Seeded| s.at >= start && s.at < end;
    let before = |s: &&Seeded| s.at >= start - chrono::Duration::days(7) && s.at < start;
    assert_eq!(
        data["total_errors"],
        seeded.iter().filter(in_period).count()
    );
    assert_eq!(
        data["previous_total_errors"],
        seeded.iter().filter(before).count()
    );
    for t in ["TIMEOUT", "PARSE_ERROR"] {
        let now: Vec<&Seeded> = seeded
            .iter()
            .filter(in_period)
            .filter(|s| s.error_type == t)
            .collect();
        let figures = data["by_type"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["error_type"] == t)
            .unwrap();
        let recovered = now.iter().filter(|s| s.status == "recovered").count() as f64;
        let failed = now.iter().filter(|s| s.status == "failed").count() as f64;
        assert_eq!(figures["count"], now.len(), "{t}");
        assert_eq!(figures["recovered"], recovered as i64, "{t}");
        assert_eq!(figures["failed"], failed as i64, "{t}");
        assert_eq!(
            figures["previous"],
            seeded
                .iter()
                .filter(before)
                .filter(|s| s.error_type == t)
                .count()
        );
        let rate = figures["recovery_rate"].as_f64().unwrap();
        assert!(
            (rate - recovered / (recovered + failed)).abs() < 1e-9,
            "{t}: {rate}"
        );
        if t == "TIMEOUT" {
            let attempts: Vec<i32> = now.iter().filter_map(|s| s.attempt).collect();
            let mean = attempts.iter().sum::<i32>() as f64 / attempts.len() as f64;
            let got = figures["mean_attempts_to_recover"].as_f64().unwrap();
            assert!((got - mean).abs() < 1e-9, "{got} vs {mean}");
            assert_eq!(figures["trend"], "rising", "60 against 20");
        } else {
            assert_eq!(figures["mean_attempts_to_recover"], Value::Null);
            assert_eq!(figures["trend"], "steady", "25 against 30");
        }
    }
    // Patterns: the numbers and paths differ, so each type is one pattern here.
    let patterns = data["patterns"].as_array().unwrap();
    assert_eq!(patterns.len(), 2, "{patterns:?}");
    assert_eq!(patterns[0]["error_type"], "TIMEOUT");
    assert_eq!(patterns[0]["pattern"], "feed <n> timed out after <n> s");
    assert_eq!(patterns[0]["count"], 60);
    assert_eq!(patterns[0]["first_at"], json!(start));
    assert_eq!(patterns[1]["pattern"], "bad row <n> in <path>");
    // The jobs each touched, the latest first (TIMEOUT's last record is job 1's).
    assert_eq!(patterns[0]["affected_jobs"], json!([jobs[1], jobs[0]]));
    assert_eq!(patterns[1]["affected_jobs"], json!([jobs[0]]));
    assert_eq!(patterns[0]["affected_scripts"], json!([]));
    let share = patterns[1]["share"].as_f64().unwrap();
    assert!((share - 25.0 / 85.0).abs() < 1e-9);
    // Workers: w-3 failed 25 of 85, w-2 40, w-1 20 (no completions here, so a rate of 1).
    let workers = data["by_worker"].as_array().unwrap();
    let failed_of =
        |w: &str| workers.iter().find(|f| f["worker_id"] == w).unwrap()["failed"].clone();
    assert_eq!(failed_of("w-1"), 20);
    assert_eq!(failed_of("w-2"), 40);
    assert_eq!(failed_of("w-3"), 25);
    // Suggestions, each with its figures.
    let texts: Vec<&str> = data["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
    assert!(
        has("TIMEOUT recovered in 89 % of 54 cases, after 2.5 attempts"),
        "{texts:?}"
    );
    assert!(has("PARSE_ERROR never recovered in 25 cases"), "{texts:?}");
    assert!(has("TIMEOUT rose from 20 to 60 errors"), "{texts:?}");
    let proposed = data["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "retry_with_backoff")
        .unwrap()["proposed_config"]
        .clone();
    // The proposed config is one configureRetry takes as it is.
    let (status, body) = error_op(
        &app,
        "configureRetry",
        json!({ "error_type": "TIMEOUT", "config": proposed }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // One job's records, and one type.
    let (status, body) = error_op(
        &app,
        "analyzeErrors",
        json!({ "period": period, "job_ids": [jobs[0]], "error_types": ["PARSE_ERROR"] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["total_errors"], 25);
    assert_eq!(body["data"]["previous_total_errors"], 0);
    assert_eq!(body["data"]["by_job_kind"], json!([]));
    let (status, body) = error_op(
        &app,
        "analyzeErrors",
        json!({ "period": period, "job_ids": [jobs[1]] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["total_errors"], 30,
        "job 1 has half the TIMEOUTs of this week"
    );
    // Without a period: the last 30 days (none of the above).
    let (status, body) = error_op(&app, "analyzeErrors", json!({})).await;
    assert_eq!(status, 200, "{body}");

    for (data, field) in [
        (
            json!({ "period": { "start": end, "end": start } }),
            "data.period",
        ),
        (
            json!({ "period": { "start": start - chrono::Duration::days(401), "end": start } }),
            "data.period",
        ),
        (json!({ "error_types": vec!["X"; 51] }), "data.error_types"),
        (json!({ "period": { "start": start } }), "data.period"),
        (json!({ "job_ids": ["x"] }), "data.job_ids[0]"),
        (json!({ "group_by": "type" }), "data.group_by"),
    ] {
        let (status, body) = error_op(&app, "analyzeErrors", data.clone()).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{data}: {body}"
        );
    }
}

/// `createJob` warns (and creates the job anyway) when its product failed three times in the
/// last day, and when its limits are below what the product's last finished jobs peaked at.
#[sqlx::test]
async fn create_job_warns_of_repeated_failures_and_limits_below_recent_peaks(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let create = |product: &str, limits: Value| {
        json!({ "product_id": product, "sending_group_id": format!("g-{product}"),
                "resource_limits": limits, "tasks": [{ "name": "t" }] })
    };
    let new_job = |data: Value| {
        let app = &app;
        async move {
            let (status, body) = job_op(app, "createJob", data).await;
            assert_eq!(status, 201, "{body}");
            body["data"].clone()
        }
    };
    let no_limits = json!({ "max_memory": 0, "max_cpu": 0 });
    let first = new_job(create("p1", no_limits.clone())).await;
    assert_eq!(first["warnings"], json!([]));
    // One run that peaked at 900 MB and 2.5 cores, completed.
    let id = first["id"].clone();
    let (status, body) = call(
        &app,
        &app.client,
        "/task-operations",
        "reportMetrics",
        json!({ "job_id": id, "samples": [{ "task_name": "t", "cpu_percent": 250.0, "memory_mb": 900.0 }] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for status in ["running", "completed"] {
        let (code, body) = job_op(
            &app,
            "updateBatchJob",
            json!({ "job_id": id, "status": status }),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    // Three failures of p1 in the last day (two is not yet "repeatedly").
    for i in 0..3 {
        if i == 2 {
            let data = new_job(create("p1", no_limits.clone())).await;
            assert_eq!(data["warnings"], json!([]), "two failures: {data}");
        }
        let failing = new_job(create("p1", no_limits.clone())).await;
        for status in ["running", "failed"] {
            let (code, body) = job_op(
                &app,
                "updateBatchJob",
                json!({ "job_id": failing["id"], "status": status }),
            )
            .await;
            assert_eq!(code, 200, "{body}");
        }
    }
    let warned = new_job(create("p1", json!({ "max_memory": 512, "max_cpu": 1.5 }))).await;
    let kinds: Vec<&str> = warned["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "repeated_failures",
            "repeated_failures",
            "memory_below_peak",
            "cpu_below_peak"
        ],
        "{warned}"
    );
    let warnings = warned["warnings"].as_array().unwrap();
    assert_eq!(warnings[0]["figures"]["failed"], 3);
    assert_eq!(warnings[1]["figures"]["field"], "sending_group_id");
    assert!(
        warnings[2]["message"]
            .as_str()
            .unwrap()
            .contains("512 MB is below the 900 MB"),
        "{warned}"
    );
    assert_eq!(warnings[3]["figures"]["peak"], 2.5);
    assert_eq!(warned["status"], "pending", "created all the same");
    // Limits at or above the peaks, and another product, draw none of those.
    let fine = new_job(create("p1", json!({ "max_memory": 1024, "max_cpu": 4 }))).await;
    assert_eq!(fine["warnings"].as_array().unwrap().len(), 2, "{fine}");
    let other = new_job(create("p2", json!({ "max_memory": 1, "max_cpu": 0.1 }))).await;
    assert_eq!(other["warnings"], json!([]));
}

async fn get_page(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The `<tr>` of the table `testid` that holds `needle`.
fn row_with<'a>(html: &'a str, testid: &str, needle: &str) -> Option<&'a str> {
    let start = html.find(&format!("data-testid=\"{testid}\""))?;
    let table = &html[start..start + html[start..].find("</table>")?];
    table.split("<tr").find(|row| row.contains(needle))
}

#[sqlx::test]
async fn the_recovery_pages_group_filter_draw_the_dry_run_and_recover(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let worker = app.client_as(Role::Worker).await;
    let job = job_with(
        &app,
        json!([
            { "name": "a" },
            { "name": "b", "depends_on": ["a"] },
            { "name": "c", "depends_on": ["a"] },
            { "name": "d", "depends_on": ["b", "c"] },
        ]),
        3,
    )
    .await;
    let held = claim_in(&app, &worker, 2).await;
    finish(&app, &worker, named(&held, "a"), None).await;
    let held = claim_in(&app, &worker, 2).await;
    finish(&app, &worker, named(&held, "c"), None).await;
    finish(&app, &worker, named(&held, "b"), Some("PARSE_ERROR")).await;
    let record = record_of_task(&pool, job, "b").await;
    let fingerprint: String =
        sqlx::query_scalar("SELECT fingerprint FROM error_records WHERE id = $1")
            .bind(record)
            .fetch_one(&pool)
            .await
            .unwrap();
    // Let the rollups take the record's delta in; the page reads both anyway.
    jobdeck::server::recovery::rollups::fold(&pool)
        .await
        .unwrap();

    let viewer = app.session_client(Role::Viewer).await;
    let (status, html) = get_page(&viewer, &app, "/recovery?period=24h").await;
    assert_eq!(status, 200);
    let pattern = row_with(&html, "patterns", &fingerprint).expect("the pattern's row");
    assert!(pattern.contains("PARSE_ERROR"), "{pattern}");
    assert!(
        pattern.contains(&format!("/jobs/{job}")),
        "the job it touched: {pattern}"
    );
    assert!(
        pattern.contains("in task &lt;value&gt;"),
        "the message with what varies replaced: {pattern}"
    );
    let line = row_with(&html, "records", &record.to_string()).expect("the record's row");
    assert!(line.contains("data-status=\"failed\""), "{line}");
    assert!(line.contains("p / g · b"), "its job and task: {line}");
    assert!(row_with(&html, "types", "PARSE_ERROR").is_some());
    let chart = html.split("data-testid=\"chart-errors\"").nth(1).unwrap();
    assert!(
        chart[..chart.find("</div>").unwrap()].contains("<svg"),
        "a drawn chart"
    );

    // Filters from the URL: a status, a type, a job and a pattern select it or not.
    for (path, listed) in [
        ("/recovery?status=recovered".to_string(), false),
        ("/recovery?type=TIMEOUT".to_string(), false),
        ("/recovery?type=PARSE_ERROR&status=failed".to_string(), true),
        (format!("/recovery?job={job}"), true),
        (format!("/recovery?job={}", Uuid::from_u128(42)), false),
        (format!("/recovery?fingerprint={fingerprint}"), true),
    ] {
        let (status, html) = get_page(&viewer, &app, &path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            row_with(&html, "records", &record.to_string()).is_some(),
            listed,
            "{path}"
        );
    }
    for (path, says) in [
        ("/recovery?period=1y", "period"),
        ("/recovery?status=lost", "status"),
        ("/recovery?job=nope", "not a job id"),
        ("/recovery?fingerprint=zz", "fingerprint"),
        ("/recovery?cursor=00", "position"),
    ] {
        let (status, html) = get_page(&viewer, &app, path).await;
        assert_eq!(status, 400, "{path}");
        let error = html.split("data-testid=\"recovery-error\"").nth(1);
        assert!(
            error.is_some_and(|e| e[..e.find("</p>").unwrap()].contains(says)),
            "{path}: {says} in {:?}",
            error.map(|e| &e[..200.min(e.len())])
        );
    }

    // The record's page: the dry run on the task graph, no button for a viewer.
    let (status, html) = get_page(&viewer, &app, &format!("/recovery/{record}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"data-task="b" data-status="failed" data-rerun="failed""#));
    assert!(html.contains(r#"data-task="d" data-status="cancelled" data-rerun="downstream""#));
    assert!(html.contains(r#"data-task="a" data-status="completed">"#));
    assert!(html.contains(r#"data-task="c" data-status="completed">"#));
    assert!(!html.contains("data-testid=\"recover-form\""));
    assert!(!html.contains("data-testid=\"plan-refused\""));
    let (status, html) =
        get_page(&viewer, &app, &format!("/recovery/{}", Uuid::from_u128(42))).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"record-not-found\""));

    // A viewer's post is refused and changes nothing; an operator's recovers.
    let recover = |client: reqwest::Client| {
        let url = app.url("/api/recovery/recover");
        async move {
            client
                .post(url)
                .form(&[("error_record_id", record.to_string())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(recover(viewer.clone()).await, 403);
    let states = task_states(&pool, job).await;
    assert_eq!(states[1].status, "failed");
    let operator = app.session_client(Role::Operator).await;
    let (_, html) = get_page(&operator, &app, &format!("/recovery/{record}")).await;
    assert!(html.contains("data-testid=\"recover-form\""));
    assert_eq!(recover(operator.clone()).await, 200);
    let states: Vec<String> = task_states(&pool, job)
        .await
        .into_iter()
        .map(|t| t.status)
        .collect();
    assert_eq!(states, ["completed", "pending", "completed", "pending"]);
    let (_, html) = get_page(&operator, &app, &format!("/recovery/{record}")).await;
    assert!(
        html.contains("data-status=\"in_progress\""),
        "the record is being recovered"
    );
    assert!(
        html.contains("data-testid=\"plan-refused\""),
        "and not recovered twice"
    );
    assert!(html.contains("data-testid=\"attempts\""));
    assert!(html.contains("re-running b, d"), "its attempt is listed");
    assert!(
        !html.contains("data-testid=\"recover-form\""),
        "nothing left to recover"
    );
    // An upper-case fingerprint is the same one.
    let (_, html) = get_page(
        &viewer,
        &app,
        &format!(
            "/recovery?status=all&fingerprint={}",
            fingerprint.to_uppercase()
        ),
    )
    .await;
    assert!(row_with(&html, "records", &record.to_string()).is_some());
}

#[sqlx::test]
async fn applying_a_suggestion_stores_its_config_through_configure_retry(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let form = [
        ("error_type", "TIMEOUT"),
        ("max_attempts", "4"),
        ("initial_delay", "2"),
        ("max_delay", "300"),
        ("backoff_factor", "2"),
    ];
    let apply = |client: reqwest::Client, form: Vec<(&'static str, &'static str)>| {
        let url = app.url("/api/recovery/apply");
        async move {
            client
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let viewer = app.session_client(Role::Viewer).await;
    assert_eq!(apply(viewer, form.to_vec()).await, 403);
    assert_eq!(stored(&pool, "TIMEOUT").await, None);
    let operator = app.session_client(Role::Operator).await;
    let mut bad = form.to_vec();
    bad[3] = ("max_delay", "1");
    assert_eq!(
        apply(operator.clone(), bad).await,
        400,
        "max_delay below initial_delay"
    );
    assert_eq!(stored(&pool, "TIMEOUT").await, None);
    assert_eq!(apply(operator, form.to_vec()).await, 200);
    let config = stored(&pool, "TIMEOUT").await.expect("stored");
    assert_eq!(
        (
            config.max_attempts,
            config.initial_delay,
            config.max_delay,
            config.backoff_factor
        ),
        (4, 2.0, 300.0, 2.0)
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events
         WHERE action = 'configureRetry' AND target = 'TIMEOUT' AND outcome = 'success'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[sqlx::test]
async fn the_record_list_pages_by_key_without_gaps_or_repeats(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // 120 script errors at distinct times, some at the same instant (the id breaks ties).
    sqlx::query(
        "INSERT INTO job_status (job_key, title, last_status, last_finished_at)
         VALUES ('paged', 'paged', 'error', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO error_records (job_status_id, error_type, error_class, error_message,
                                    fingerprint, at)
         SELECT s.id, 'SCRIPT_ERROR', 'unknown', 'failed ' || i, 'x', now() - (i / 2) * interval '1 minute'
         FROM job_status s, generate_series(1, 120) i WHERE s.job_key = 'paged'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut path = "/recovery".to_string();
    loop {
        let (status, html) = get_page(&app.client, &app, &path).await;
        assert_eq!(status, 200, "{path}");
        seen.extend(
            html.split("data-record=\"")
                .skip(1)
                .map(|rest| rest[..36].to_string()),
        );
        let Some(end) = html.find("\" rel=\"next\" data-testid=\"records-next\"") else {
            break;
        };
        let start = html[..end].rfind("href=\"").unwrap() + "href=\"".len();
        let next = html[start..end].replace("&amp;", "&");
        path = next;
    }
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM error_records ORDER BY at DESC, id DESC")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(seen, ids, "three pages, every record once, newest first");
}

#[sqlx::test]
async fn memory_failures_above_their_limit_suggest_raising_it_from_the_peaks(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // Six jobs limited to 1024 MB that peaked between 1500 and 2000 MB, 24 failures on it.
    let peaks = [1500.0, 1600.0, 1700.0, 1800.0, 1900.0, 2000.0];
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    for (i, peak) in peaks.iter().enumerate() {
        let (status, body) = job_op(
            &app,
            "createJob",
            json!({ "product_id": "mem", "sending_group_id": "g",
                    "resource_limits": { "max_memory": 1024, "max_cpu": 1 } }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let job: Uuid = body["data"]["id"].as_str().unwrap().parse().unwrap();
        sqlx::query(
            "INSERT INTO metric_rollups (job_id, metric, grain, bucket, count, sum, min, max, hist)
             VALUES ($1, 'memory', 'hour', date_trunc('hour', now()), 1, $2, $2, $2, '{}')",
        )
        .bind(job)
        .bind(peak)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO error_records (job_id, error_type, error_class, error_message, fingerprint, at)
             SELECT $1, 'RESOURCE_LIMIT_EXCEEDED', 'resource', 'used ' || $2 || ' MB',
                    error_fingerprint('RESOURCE_LIMIT_EXCEEDED', 'used 1 MB'), $3 + n * interval '1 minute'
             FROM generate_series(1, 4) n",
        )
        .bind(job)
        .bind(*peak as i64)
        .bind(start + chrono::Duration::minutes(i as i64 * 5))
        .execute(&pool)
        .await
        .unwrap();
    }
    let (status, body) = error_op(&app, "analyzeErrors", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let suggestion = body["data"]["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "raise_memory_limit")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    // The p95 of the six peaks is 1975 MB (rank 4.75, between 1900 and 2000); a fifth more
    // is 2370.
    assert_eq!(suggestion["proposed_max_memory"], 2370);
    let text = suggestion["text"].as_str().unwrap();
    assert!(text.contains("24 errors"), "{text}");
    assert!(text.contains("peak memory p95 is 1.9 GB"), "{text}");
    assert!(text.contains("raise max_memory to 2.3 GB"), "{text}");
    assert!(
        text.contains("over 6 of the failed jobs against a limit of 1.0 GB"),
        "{text}"
    );

    // Applied from the page: the failed jobs get the limit (a viewer may not; a pending job,
    // which runs with what its creator gave it, is left alone).
    let proposed = suggestion["proposed_max_memory"].as_i64().unwrap();
    sqlx::query(
        "UPDATE jobs SET status = 'failed', finished_at = now()
         WHERE id IN (SELECT id FROM jobs ORDER BY created_at OFFSET 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let raise = |client: reqwest::Client, period: &'static str| {
        let url = app.url("/api/recovery/raise-limit");
        async move {
            client
                .post(url)
                .form(&[
                    ("max_memory", proposed.to_string()),
                    ("period", period.into()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let limits = || async {
        sqlx::query_scalar::<_, i64>("SELECT max_memory FROM jobs ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    assert_eq!(
        raise(app.session_client(Role::Viewer).await, "24h").await,
        403
    );
    let operator = app.session_client(Role::Operator).await;
    assert_eq!(raise(operator.clone(), "1y").await, 400);
    assert_eq!(limits().await, [1024; 6]);
    assert_eq!(raise(operator, "24h").await, 200);
    assert_eq!(
        limits().await,
        [1024, proposed, proposed, proposed, proposed, proposed]
    );
    let jobs: Value = sqlx::query_scalar(
        "SELECT details->'jobs' FROM audit_events WHERE action = 'raiseMemoryLimit'
         AND outcome = 'success'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 5, "{jobs}");

    // Peaks under the limit propose nothing.
    sqlx::query("UPDATE jobs SET max_memory = 4096")
        .execute(&pool)
        .await
        .unwrap();
    let (_, body) = error_op(&app, "analyzeErrors", json!({})).await;
    assert!(
        !body["data"]["suggestions"]
            .to_string()
            .contains("raise_memory_limit"),
        "{body}"
    );
}
