//! The worker protocol (seed 001, dispatched) over real HTTP on real PostgreSQL: the per-job
//! limit under many claimers, priority, capacity, dependencies, fenced leases, retries,
//! pause and cancel, long polling and its LISTEN connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobdeck::model::Role;
use jobdeck::server::dispatch::leases::sweep_expired;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

async fn task_op(
    app: &TestApp,
    client: &reqwest::Client,
    action: &str,
    data: Value,
) -> (u16, Value) {
    call(app, client, "/task-operations", action, data).await
}

fn tasks(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({ "name": n, "payload": { "n": n } }))
        .collect()
}

/// A dispatched job in `queue` with `fields` over the defaults.
async fn dispatched(app: &TestApp, queue: &str, fields: Value) -> Uuid {
    let mut data = json!({
        "product_id": "prod-1", "sending_group_id": "group-1",
        "driver": "dispatched", "queue": queue,
    });
    for (key, value) in fields.as_object().unwrap() {
        data[key] = value.clone();
    }
    let (status, body) = job_op(app, "createJob", data).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["driver"], "dispatched");
    body["data"]["id"].as_str().unwrap().parse().unwrap()
}

async fn claim(app: &TestApp, client: &reqwest::Client, worker: &str, data: Value) -> Vec<Value> {
    let mut body = json!({ "worker_id": worker, "queues": ["q"] });
    for (key, value) in data.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, answer) = task_op(app, client, "claimTasks", body).await;
    assert_eq!(status, 200, "{answer}");
    answer["data"]["tasks"].as_array().unwrap().clone()
}

async fn complete(app: &TestApp, client: &reqwest::Client, held: &[Value]) -> (u16, Value) {
    let tasks: Vec<Value> = held
        .iter()
        .map(|t| json!({ "task_id": t["task_id"], "lease_token": t["lease_token"] }))
        .collect();
    task_op(
        app,
        client,
        "completeTasks",
        json!({ "worker_id": "w", "tasks": tasks }),
    )
    .await
}

async fn fail(
    app: &TestApp,
    client: &reqwest::Client,
    task: &Value,
    code: &str,
    retryable: Option<bool>,
) -> (u16, Value) {
    let mut entry = json!({
        "task_id": task["task_id"], "lease_token": task["lease_token"],
        "code": code, "message": format!("{code} happened"),
    });
    if let Some(retryable) = retryable {
        entry["retryable"] = json!(retryable);
    }
    task_op(
        app,
        client,
        "failTasks",
        json!({ "worker_id": "w", "tasks": [entry] }),
    )
    .await
}

async fn info(app: &TestApp, job: Uuid) -> Value {
    let (status, body) = job_op(app, "getJobInfo", json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn task_statuses(pool: &PgPool, job: Uuid) -> HashMap<String, String> {
    sqlx::query_as::<_, (String, String)>("SELECT name, status FROM job_tasks WHERE job_id = $1")
        .bind(job)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[sqlx::test]
async fn sixteen_claimers_never_run_more_of_a_job_than_its_limit(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let worker = app.client_as(Role::Worker).await;
    let names: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut limits = HashMap::new();
    for limit in [1, 3, 7] {
        let job = dispatched(
            &app,
            "q",
            json!({ "max_parallel_tasks": limit, "tasks": tasks(&names) }),
        )
        .await;
        limits.insert(job, limit as i64);
    }
    // A sampler reads every job's running tasks from the tasks themselves, throughout.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pool, done, limits) = (pool.clone(), done.clone(), limits.clone());
        tokio::spawn(async move {
            let mut peak: HashMap<Uuid, i64> = HashMap::new();
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                let running: Vec<(Uuid, i64)> = sqlx::query_as(
                    "SELECT job_id, count(*) FROM job_tasks WHERE status = 'running' GROUP BY job_id",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for (job, n) in running {
                    assert!(
                        n <= limits[&job],
                        "job {job} ran {n} tasks, limit {}",
                        limits[&job]
                    );
                    let p = peak.entry(job).or_default();
                    *p = (*p).max(n);
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (peak, samples)
        })
    };
    let mut claimers = Vec::new();
    for c in 0..16 {
        let (base, worker) = (app.base_url.clone(), worker.clone());
        claimers.push(tokio::spawn(async move {
            let id = format!("claimer-{c}");
            let mut idle = 0;
            let mut finished = 0;
            while idle < 20 {
                let body = json!({ "action": "claimTasks", "data": {
                    "worker_id": id, "queues": ["q"], "max_tasks": 1 + c % 4 } });
                                let response = worker.post(format!("{base}/task-operations")).json(&body)
                    .send().await.unwrap();
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap();
                // A busy machine may answer 503 ("retry later"), as to any worker.
                if status == 503 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let held = answer["data"]["tasks"].as_array().unwrap_or_else(|| panic!("{status} {answer}")).clone();
                if held.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                idle = 0;
                tokio::time::sleep(Duration::from_millis(5 + (c as u64 % 3) * 5)).await;
                let done: Vec<Value> = held.iter()
                    .map(|t| json!({ "task_id": t["task_id"], "lease_token": t["lease_token"] }))
                    .collect();
                                // Retried with the same leases on a 503, as a worker does.
                let answer: Value = loop {
                    let response = worker.post(format!("{base}/task-operations"))
                        .json(&json!({ "action": "completeTasks", "data": { "worker_id": id, "tasks": done } }))
                        .send().await.unwrap();
                    if response.status() == 503 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    break response.json().await.unwrap();
                };
                for result in answer["data"]["results"].as_array().unwrap() {
                    assert_eq!(result["result"], "completed", "{answer}");
                    finished += 1;
                }
            }
            finished
        }));
    }
    let mut finished = 0;
    for claimer in claimers {
        finished += claimer.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (peak, samples) = sampler.await.unwrap();
    assert_eq!(finished, 90, "every task completed exactly once");
    assert!(
        samples > 20,
        "the sampler ran throughout ({samples} samples)"
    );
    for (job, limit) in &limits {
        let data = info(&app, *job).await;
        assert_eq!(data["job"]["status"], "completed", "{data}");
        assert_eq!(data["tasks"]["completed"], 30);
        assert_eq!(data["job"]["detailed_status"]["active_tasks"], 0);
        // The limit was reached, not only respected (a claim that never ran two at once
        // would pass the bound trivially).
        if *limit > 1 {
            assert!(
                peak.get(job).copied().unwrap_or(0) > 1,
                "job {job} never ran in parallel: {peak:?}"
            );
        }
    }
}

#[sqlx::test]
async fn the_higher_priority_job_is_claimed_first(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let low = dispatched(
        &app,
        "q",
        json!({ "priority": 2, "tasks": tasks(&["a", "b"]) }),
    )
    .await;
    let high = dispatched(
        &app,
        "q",
        json!({ "priority": 9, "tasks": tasks(&["a", "b"]) }),
    )
    .await;
    let waiting = info(&app, low).await["waiting"].clone();
    assert_eq!(
        waiting[0]["reasons"],
        json!([{ "reason": "no_worker", "queue": "q" }]),
        "{waiting}"
    );
    let first = claim(&app, &app.client, "w", json!({ "max_tasks": 2 })).await;
    assert_eq!(first.len(), 2);
    for task in &first {
        assert_eq!(task["job_id"], high.to_string());
        assert_eq!(task["priority"], 9);
        assert_eq!(task["attempt"], 1);
        assert!(task["payload"]["n"].is_string());
    }
    let next = claim(&app, &app.client, "w", json!({})).await;
    assert_eq!(next[0]["job_id"], low.to_string());
}

#[sqlx::test]
async fn a_job_that_needs_more_memory_than_a_worker_declared_waits_and_says_why(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let job = dispatched(
        &app,
        "q",
        json!({
        "resource_limits": { "max_memory": 2048, "max_cpu": 1 }, "tasks": tasks(&["big"]) }),
    )
    .await;
    let small = claim(
        &app,
        &app.client,
        "small",
        json!({ "capacity": { "memory_mb": 1024, "cpus": 4 } }),
    )
    .await;
    assert!(small.is_empty(), "{small:?}");
    let waiting = info(&app, job).await["waiting"].clone();
    assert_eq!(waiting[0]["name"], "big");
    let reason = &waiting[0]["reasons"][0];
    assert_eq!(reason["reason"], "no_capacity", "{waiting}");
    assert_eq!(reason["needs_memory_mb"], 2048);
    assert_eq!(reason["largest_memory_mb"], 1024);
    // What a worker already holds counts against what it declared.
    let few_cores = claim(
        &app,
        &app.client,
        "few-cores",
        json!({ "capacity": { "memory_mb": 8192, "cpus": 0.5 } }),
    )
    .await;
    assert!(few_cores.is_empty(), "the job needs a core: {few_cores:?}");
    let big = claim(
        &app,
        &app.client,
        "big",
        json!({ "capacity": { "memory_mb": 3000, "cpus": 4 } }),
    )
    .await;
    assert_eq!(big.len(), 1);
    assert_eq!(big[0]["resource_limits"]["max_memory"], 2048);
    dispatched(&app, "q", json!({ "resource_limits": { "max_memory": 2048, "max_cpu": 1 }, "tasks": tasks(&["more"]) })).await;
    let again = claim(
        &app,
        &app.client,
        "big",
        json!({ "capacity": { "memory_mb": 3000, "cpus": 4 } }),
    )
    .await;
    assert!(
        again.is_empty(),
        "3000 MB holds one 2048 MB task, not two: {again:?}"
    );
}

#[sqlx::test]
async fn a_task_waits_for_its_dependencies_and_reported_jobs_are_never_handed_out(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (status, _) = job_op(
        &app,
        "createJob",
        json!({
        "product_id": "p", "sending_group_id": "g", "tasks": tasks(&["reported"]) }),
    )
    .await;
    assert_eq!(status, 201);
    let job = dispatched(&app, "q", json!({ "max_parallel_tasks": 5, "tasks": [
        { "name": "a" }, { "name": "b", "depends_on": ["a"] }, { "name": "c", "depends_on": ["a", "b"] } ] })).await;
    let first = claim(&app, &app.client, "w", json!({ "max_tasks": 10 })).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["name"], "a");
    let waiting = info(&app, job).await["waiting"].clone();
    let c = waiting
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "c")
        .unwrap();
    assert_eq!(
        c["reasons"][0],
        json!({ "reason": "dependencies", "waiting_for": ["a", "b"] })
    );
    assert!(claim(&app, &app.client, "w", json!({ "max_tasks": 10 }))
        .await
        .is_empty());
    assert_eq!(complete(&app, &app.client, &first).await.0, 200);
    let second = claim(&app, &app.client, "w", json!({ "max_tasks": 10 })).await;
    // A batch with a current lease and a spent one: 200, each task answered for itself.
    let (status, body) = complete(&app, &app.client, &[second[0].clone(), first[0].clone()]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["results"][0]["result"], "completed", "{body}");
    assert_eq!(body["data"]["results"][1]["result"], "refused", "{body}");
    assert_eq!(body["data"]["results"][1]["status"], 409);
    assert_eq!(
        second.iter().map(|t| t["name"].clone()).collect::<Vec<_>>(),
        [json!("b")]
    );
    // A dispatched job's tasks are not a pipeline's to move.
    let (status, body) = task_op(
        &app,
        &app.client,
        "updateTasks",
        json!({
        "job_id": job, "tasks": [{ "name": "c", "status": "running" }] }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(task_statuses(&pool, job).await["c"], "pending");
}

#[sqlx::test]
async fn a_stale_lease_is_refused_and_an_expired_one_goes_to_the_next_worker(pool: PgPool) {
    let config = jobdeck::server::config::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://given-by-the-test".into()),
        "TC_PORTAL_WEBHOOK_SECRET" => Some(SECRET.into()),
        "JOBDECK_LEASE_SECS" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let retry = json!({ "max_attempts": 3, "retry_interval": 0, "retry_on_errors": ["TIMEOUT"] });
    let job = dispatched(
        &app,
        "q",
        json!({ "tasks": tasks(&["only"]), "retry_config": retry }),
    )
    .await;
    let first = claim(&app, &app.client, "first", json!({})).await;
    let mut forged = first[0].clone();
    forged["lease_token"] = json!(stranger());
    let (status, body) = complete(&app, &app.client, &[forged.clone()]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["data"]["results"][0]["result"], "refused");
    let (status, _) = fail(&app, &app.client, &forged, "TIMEOUT", None).await;
    assert_eq!(status, 409);
    let (_, body) = task_op(
        &app,
        &app.client,
        "heartbeat",
        json!({ "worker_id": "x", "leases": [
        { "task_id": forged["task_id"], "lease_token": forged["lease_token"] } ] }),
    )
    .await;
    assert_eq!(body["data"]["leases"][0]["answer"], "stop");
    assert_eq!(task_statuses(&pool, job).await["only"], "running");
    let attempt: i32 = sqlx::query_scalar("SELECT attempt FROM job_tasks WHERE job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempt, 1, "nothing changed");
    // Only the sweeper says a lease expired.
    let (status, body) = fail(&app, &app.client, &first[0], "LEASE_EXPIRED", None).await;
    assert_eq!(status, 400, "{body}");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    sweep_expired(&app.state.dispatch).await.unwrap();
    let second = claim(&app, &app.client, "second", json!({})).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["attempt"], 2, "the expired attempt counted");
    assert_ne!(second[0]["lease_token"], first[0]["lease_token"]);
    let (status, _) = complete(&app, &app.client, &first).await;
    assert_eq!(status, 409, "the first holder's late completion is refused");
    let (status, body) = complete(&app, &app.client, &second).await;
    assert_eq!(status, 200, "{body}");
    let data = info(&app, job).await;
    assert_eq!(data["job"]["status"], "completed");
    assert_eq!(data["job"]["last_error"]["code"], "LEASE_EXPIRED");
    let why: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_events WHERE job_id = $1 AND reason LIKE '%lease of first ran out%'",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(why, 1);
}

#[sqlx::test]
async fn retries_wait_their_interval_and_a_final_failure_fails_the_job(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let retry = json!({ "max_attempts": 3, "retry_interval": 2, "retry_on_errors": ["TIMEOUT"] });
    let job = dispatched(
        &app,
        "q",
        json!({ "retry_config": retry, "tasks": tasks(&["x", "y"]), "max_parallel_tasks": 1 }),
    )
    .await;
    let held = claim(&app, &app.client, "w", json!({})).await;
    let failed_at = Instant::now();
    let (status, body) = fail(&app, &app.client, &held[0], "TIMEOUT", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["results"][0]["result"], "retrying");
    // y is next by age; x comes back only after its interval, woken, not polled.
    let y = claim(&app, &app.client, "w", json!({})).await;
    assert_eq!(
        held[0]["name"], "x",
        "tasks are claimed in the order they were added"
    );
    assert_eq!(y[0]["name"], "y");
    let reasons = info(&app, job).await["waiting"][0]["reasons"].clone();
    assert_eq!(
        reasons[0],
        json!({ "reason": "limit_reached", "running": 1, "limit": 1 }),
        "{reasons}"
    );
    assert_eq!(reasons[1]["reason"], "retry_at", "{reasons}");
    assert_eq!(complete(&app, &app.client, &y).await.0, 200);
    let again = claim(&app, &app.client, "w", json!({ "wait_ms": 6000 })).await;
    assert_eq!(again[0]["name"], "x");
    assert_eq!(again[0]["attempt"], 2);
    let after = failed_at.elapsed();
    assert!(
        after >= Duration::from_secs(2),
        "handed out again after {after:?}"
    );
    // Woken when its time came (the periodic check is every 5 s).
    assert!(
        after < Duration::from_millis(3500),
        "handed out again after {after:?}"
    );
    // A code the job does not retry fails it at once.
    let (_, body) = fail(&app, &app.client, &again[0], "BAD_INPUT", None).await;
    assert_eq!(body["data"]["results"][0]["result"], "failed", "{body}");
    let data = info(&app, job).await;
    assert_eq!(data["job"]["status"], "failed");
    assert_eq!(data["job"]["detailed_status"]["error_count"], 2);
    let errors: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_errors WHERE job_id = $1 AND task_name = 'x'")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(errors, 2, "every failure is an error row with its task");

    // retryable: false fails at once, and the job's other tasks are ended.
    let job = dispatched(
        &app,
        "q",
        json!({ "tasks": tasks(&["p", "q", "r"]), "max_parallel_tasks": 2 }),
    )
    .await;
    let held = claim(&app, &app.client, "w", json!({ "max_tasks": 2 })).await;
    assert_eq!(held.len(), 2);
    let (_, body) = fail(&app, &app.client, &held[0], "TIMEOUT", Some(false)).await;
    assert_eq!(body["data"]["results"][0]["result"], "failed", "{body}");
    let statuses = task_statuses(&pool, job).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for status in statuses.values() {
        *counts.entry(status.as_str()).or_default() += 1;
    }
    assert_eq!(
        counts,
        HashMap::from([("failed", 1), ("cancelled", 2)]),
        "{statuses:?}"
    );
    // The other holder learns to stop, and cannot complete.
    let (_, body) = task_op(
        &app,
        &app.client,
        "heartbeat",
        json!({ "worker_id": "w", "leases": [
        { "task_id": held[1]["task_id"], "lease_token": held[1]["lease_token"] } ] }),
    )
    .await;
    assert_eq!(body["data"]["leases"][0]["answer"], "stop", "{body}");
    assert_eq!(complete(&app, &app.client, &held[1..]).await.0, 409);
}

#[sqlx::test]
async fn pause_and_cancel_reach_the_holder_through_its_heartbeat(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = dispatched(
        &app,
        "q",
        json!({ "tasks": tasks(&["a", "b"]), "max_parallel_tasks": 2 }),
    )
    .await;
    let held = claim(&app, &app.client, "w", json!({})).await;
    let beat = |progress: f64| {
        json!({ "worker_id": "w", "leases": [{
        "task_id": held[0]["task_id"], "lease_token": held[0]["lease_token"],
        "progress": progress, "phase": "Crunch", "metrics": { "cpu_percent": 50.0, "memory_mb": 12.5, "items": 7 },
        "log": ["line one", "line two"] }] })
    };
    let (status, body) = task_op(&app, &app.client, "heartbeat", beat(50.0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["leases"][0]["answer"], "continue");
    let data = info(&app, job).await;
    assert_eq!(
        data["job"]["detailed_status"]["progress_percentage"], 25.0,
        "{data}"
    );
    assert_eq!(data["job"]["detailed_status"]["current_phase"], "Crunch");
    assert_eq!(count(&pool, "task_metrics").await, 1);
    let lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_logs WHERE job_id = $1 AND message LIKE 'line %'",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(lines, 2);

    assert_eq!(
        job_op(&app, "pauseJob", json!({ "job_id": job })).await.0,
        200
    );
    let (_, body) = task_op(&app, &app.client, "heartbeat", beat(60.0)).await;
    assert_eq!(body["data"]["leases"][0]["answer"], "pause");
    assert!(
        claim(&app, &app.client, "w2", json!({})).await.is_empty(),
        "a paused job hands out nothing"
    );
    assert_eq!(
        info(&app, job).await["waiting"][0]["reasons"][0]["reason"],
        "job_paused"
    );
    assert_eq!(
        job_op(&app, "resumeJob", json!({ "job_id": job })).await.0,
        200
    );
    let (_, body) = task_op(&app, &app.client, "heartbeat", beat(70.0)).await;
    assert_eq!(body["data"]["leases"][0]["answer"], "continue");

    assert_eq!(
        job_op(&app, "cancelJob", json!({ "job_id": job })).await.0,
        200
    );
    let (_, body) = task_op(&app, &app.client, "heartbeat", beat(80.0)).await;
    assert_eq!(body["data"]["leases"][0]["answer"], "stop");
    let statuses = task_statuses(&pool, job).await;
    assert!(statuses.values().all(|s| s == "cancelled"), "{statuses:?}");
    let running: i32 = sqlx::query_scalar("SELECT running_tasks FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(running, 0);
}

#[sqlx::test]
async fn a_waiting_claim_is_woken_by_new_work_also_after_its_listen_connection_is_killed(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    for round in 0..2 {
        let job = dispatched(&app, "q", json!({})).await;
        if round == 1 {
            let connects = app
                .state
                .dispatch
                .wakeups
                .stats
                .connects
                .load(Ordering::Relaxed);
            let killed: i64 = sqlx::query_scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(killed, 1, "one listening connection per portal");
            let deadline = Instant::now() + Duration::from_secs(10);
            while app
                .state
                .dispatch
                .wakeups
                .stats
                .connects
                .load(Ordering::Relaxed)
                == connects
            {
                assert!(Instant::now() < deadline, "the listener never came back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let waiter = {
            let (url, client) = (app.url("/task-operations"), app.client.clone());
            tokio::spawn(async move {
                let body = json!({ "action": "claimTasks", "data": {
                    "worker_id": "waiter", "queues": ["q"], "wait_ms": 20000 } });
                let answer: Value = client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["data"].clone()
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let name = format!("late-{round}");
        let (status, body) = task_op(
            &app,
            &app.client,
            "addTasks",
            json!({ "job_id": job, "tasks": [{ "name": name }] }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let answer = waiter.await.unwrap();
        assert_eq!(answer["tasks"][0]["name"], name.as_str(), "{answer}");
        // 300 ms of waiting before the task was added; the periodic check is every 5 s.
        let waited = answer["waited_ms"].as_u64().unwrap();
        assert!(waited < 1300, "woken by the notification: {answer}");
        complete(&app, &app.client, answer["tasks"].as_array().unwrap()).await;
    }
}

#[sqlx::test]
async fn bad_protocol_calls_get_400s_and_viewers_cannot_claim(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let cases = [
        (
            "claimTasks",
            json!({ "worker_id": "w", "queues": [] }),
            "data.queues",
        ),
        (
            "claimTasks",
            json!({ "worker_id": "w", "queues": ["Bad Queue"] }),
            "data.queues[0]",
        ),
        (
            "claimTasks",
            json!({ "worker_id": "w", "queues": ["q"], "wait_ms": 30001 }),
            "data.wait_ms",
        ),
        (
            "claimTasks",
            json!({ "worker_id": "w", "queues": ["q"], "max_tasks": 0 }),
            "data.max_tasks",
        ),
        (
            "completeTasks",
            json!({ "worker_id": "w", "tasks": [] }),
            "data.tasks",
        ),
        (
            "failTasks",
            json!({ "worker_id": "w", "tasks": [{ "task_id": stranger(), "lease_token": stranger(), "message": "m" }] }),
            "data.tasks[0]",
        ),
    ];
    for (action, data, field) in cases {
        let (status, body) = task_op(&app, &app.client, action, data.clone()).await;
        assert_eq!(status, 400, "{action} {data}: {body}");
        assert!(
            body["field"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{action} {data}: {body}"
        );
    }
    let (status, body) = complete(
        &app,
        &app.client,
        &[json!({ "task_id": stranger(), "lease_token": stranger() })],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = task_op(
        &app,
        &viewer,
        "claimTasks",
        json!({ "worker_id": "w", "queues": ["q"] }),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = job_op(
        &app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "queue": "-x" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "data.queue");
    assert_eq!(
        count(&pool, "workers").await,
        0,
        "refused calls record no worker"
    );
}

/// An id no row has.
fn stranger() -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001)
}

#[sqlx::test]
async fn a_task_that_fails_while_its_job_is_paused_fails_the_job_on_resume(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let job = dispatched(&app, "q", json!({ "tasks": tasks(&["only"]) })).await;
    let held = claim(&app, &app.client, "w", json!({})).await;
    assert_eq!(
        job_op(&app, "pauseJob", json!({ "job_id": job })).await.0,
        200
    );
    let (_, body) = fail(&app, &app.client, &held[0], "BAD_INPUT", Some(false)).await;
    assert_eq!(body["data"]["results"][0]["result"], "failed", "{body}");
    assert_eq!(
        info(&app, job).await["job"]["status"],
        "paused",
        "paused stays paused"
    );
    let (status, body) = job_op(&app, "resumeJob", json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "failed", "{body}");
    let data = info(&app, job).await;
    assert_eq!(data["job"]["status"], "failed");
    // And a retry runs the failed task again, with all its attempts.
    assert_eq!(
        job_op(&app, "retryJob", json!({ "job_id": job })).await.0,
        200
    );
    let again = claim(&app, &app.client, "w", json!({})).await;
    assert_eq!(again[0]["attempt"], 1, "{again:?}");
    assert_eq!(complete(&app, &app.client, &again).await.0, 200);
    assert_eq!(info(&app, job).await["job"]["status"], "completed");
}

/// Two real portal processes on one database, claimers on both (each completing on the
/// other portal): every job's limit holds across them and every task finishes once.
#[sqlx::test]
async fn two_portals_on_one_database_keep_every_jobs_limit(
    _: sqlx::postgres::PgPoolOptions,
    db: sqlx::postgres::PgConnectOptions,
) {
    use jobdeck::server::accounts::tokens::{self, Granter, NewToken};
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(db.clone())
        .await
        .unwrap();
    let token = tokens::create_token(
        &pool,
        &Granter::cli(),
        NewToken::new("two-portals", Role::Operator, None).unwrap(),
    )
    .await
    .unwrap()
    .token;
    let portals = [
        crate::process::start_server(&db, &[]).await,
        crate::process::start_server(&db, &[]).await,
    ];
    let urls: Vec<String> = portals.iter().map(|p| p.url.clone()).collect();
    let http = reqwest::Client::new();
    let post = move |url: String, action: &'static str, data: Value| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let response = http
                .post(format!(
                    "{url}/{}",
                    if action == "createJob" {
                        "job-operations"
                    } else {
                        "task-operations"
                    }
                ))
                .bearer_auth(token)
                .json(&json!({ "action": action, "data": data }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let names: Vec<String> = (0..24).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut limits = HashMap::new();
    for limit in [2, 3] {
        let (status, body) = post(
            urls[0].clone(),
            "createJob",
            json!({
            "product_id": "p", "sending_group_id": "g", "driver": "dispatched", "queue": "q",
            "max_parallel_tasks": limit, "tasks": tasks(&names) }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        limits.insert(
            body["data"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
            limit as i64,
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pool, done, limits) = (pool.clone(), done.clone(), limits.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                let running: Vec<(Uuid, i64)> = sqlx::query_as(
                    "SELECT job_id, count(*) FROM job_tasks WHERE status = 'running' GROUP BY job_id",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for (job, n) in running {
                    assert!(
                        n <= limits[&job],
                        "job {job} ran {n} tasks, limit {}",
                        limits[&job]
                    );
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            samples
        })
    };
    let mut claimers = Vec::new();
    for c in 0..8usize {
        let (claim_at, finish_at) = (urls[c % 2].clone(), urls[(c + 1) % 2].clone());
        let post = post.clone();
        claimers.push(tokio::spawn(async move {
            let (mut finished, mut idle) = (0, 0);
            while idle < 15 {
                let (_, answer) = post(
                    claim_at.clone(),
                    "claimTasks",
                    json!({
                    "worker_id": format!("c{c}"), "queues": ["q"], "max_tasks": 2 }),
                )
                .await;
                let held = answer["data"]["tasks"]
                    .as_array()
                    .unwrap_or_else(|| panic!("claimTasks answered {answer}"))
                    .clone();
                if held.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                idle = 0;
                tokio::time::sleep(Duration::from_millis(5)).await;
                let done: Vec<Value> = held
                    .iter()
                    .map(|t| json!({ "task_id": t["task_id"], "lease_token": t["lease_token"] }))
                    .collect();
                let (status, answer) = post(
                    finish_at.clone(),
                    "completeTasks",
                    json!({ "worker_id": format!("c{c}"), "tasks": done }),
                )
                .await;
                assert_eq!(status, 200, "{answer}");
                finished += held.len();
            }
            finished
        }));
    }
    let mut finished = 0;
    for claimer in claimers {
        finished += claimer.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(sampler.await.unwrap() > 20);
    assert_eq!(finished, 48);
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["completed", "completed"]);
}

/// The counts a finishing call reads instead of recounting (`tasks_total`,
/// `tasks_completed`, kept by a trigger) against the tasks themselves, after every kind of
/// change: tasks added at creation and later, claims, completions, a final failure that
/// ends the job, a retry of the job, the reported driver's `updateTasks`, a completed task
/// deleted, and a statement that takes a task out of `completed`.
#[sqlx::test]
async fn a_jobs_task_counts_follow_its_tasks_through_every_change(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    async fn counts_agree(pool: &PgPool, job: Uuid, step: &str) -> (i32, i32) {
        let (kept_total, kept_completed, total, completed): (i32, i32, i64, i64) = sqlx::query_as(
            "SELECT j.tasks_total, j.tasks_completed,
                        (SELECT count(*) FROM job_tasks t WHERE t.job_id = j.id),
                        (SELECT count(*) FROM job_tasks t WHERE t.job_id = j.id
                                                            AND t.status = 'completed')
                 FROM jobs j WHERE j.id = $1",
        )
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            (kept_total as i64, kept_completed as i64),
            (total, completed),
            "{step}"
        );
        (kept_total, kept_completed)
    }
    let retry = json!({ "max_attempts": 1, "retry_interval": 0, "retry_on_errors": [] });
    let job = dispatched(
        &app,
        "q",
        json!({ "retry_config": retry, "tasks": tasks(&["a", "b", "c"]), "max_parallel_tasks": 2 }),
    )
    .await;
    assert_eq!(counts_agree(&pool, job, "created").await, (3, 0));
    let (status, body) = task_op(
        &app,
        &app.client,
        "addTasks",
        json!({ "job_id": job, "tasks": tasks(&["d", "e"]) }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(counts_agree(&pool, job, "added").await, (5, 0));

    let held = claim(&app, &app.client, "w", json!({ "max_tasks": 2 })).await;
    assert_eq!(held.len(), 2);
    assert_eq!(counts_agree(&pool, job, "claimed").await, (5, 0));
    let (status, body) = complete(&app, &app.client, &held[..1]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts_agree(&pool, job, "one completed").await, (5, 1));
    assert_eq!(
        info(&app, job).await["job"]["detailed_status"]["progress_percentage"],
        20.0
    );
    // No attempts left: the job fails and its other tasks end.
    let (status, body) = fail(&app, &app.client, &held[1], "BOOM", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(info(&app, job).await["job"]["status"], "failed");
    assert_eq!(counts_agree(&pool, job, "failed").await, (5, 1));

    let (status, body) = job_op(&app, "retryJob", json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts_agree(&pool, job, "retried").await, (5, 1));
    for _ in 0..2 {
        let held = claim(&app, &app.client, "w", json!({ "max_tasks": 2 })).await;
        let (status, body) = complete(&app, &app.client, &held).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(counts_agree(&pool, job, "all completed").await, (5, 5));
    let done = info(&app, job).await["job"].clone();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["detailed_status"]["progress_percentage"], 100.0);

    // The reported driver's own task updates keep the same counts.
    let (status, body) = job_op(
        &app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "tasks": tasks(&["x", "y"]) }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reported: Uuid = body["data"]["id"].as_str().unwrap().parse().unwrap();
    for (name, status) in [
        ("x", "running"),
        ("x", "completed"),
        ("y", "running"),
        ("y", "completed"),
    ] {
        let (code, body) = task_op(
            &app,
            &app.client,
            "updateTasks",
            json!({ "job_id": reported, "tasks": [{ "name": name, "status": status }] }),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    assert_eq!(counts_agree(&pool, reported, "reported").await, (2, 2));
    let on_reported = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .bind(reported)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // No call takes a task out of `completed` today; the trigger counts it down anyway.
    on_reported("UPDATE job_tasks SET status = 'pending', finished_at = NULL WHERE job_id = $1 AND name = 'y'").await;
    assert_eq!(counts_agree(&pool, reported, "uncompleted").await, (2, 1));
    on_reported("DELETE FROM job_tasks WHERE job_id = $1 AND name = 'x'").await;
    assert_eq!(
        counts_agree(&pool, reported, "a completed task deleted").await,
        (1, 0)
    );
}
