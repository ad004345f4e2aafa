//! `GET /metrics` over real HTTP: refused without a token, and in Prometheus's text format
//! the figures of what the test did (reports stored, tasks claimed and finished, the queue,
//! the routes' latencies, the pools), each line checked against the format here.

use std::collections::HashMap;

use jobdeck::model::Role;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

/// The samples of an exposition, keyed `name{labels}`, after checking that every line is a
/// comment or a sample, and that every sample's family was declared with `# TYPE` first.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut typed = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line:?}");
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| typed.iter().any(|t| t == base))
            .unwrap_or(name);
        assert!(
            typed.iter().any(|t| t == family),
            "{name} has no # TYPE before it"
        );
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

#[sqlx::test]
async fn metrics_need_an_identity(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(body_json(response).await["error"].is_string());
    let viewer = app.client_as(Role::Viewer).await;
    let response = viewer.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[sqlx::test]
async fn metrics_count_what_this_process_did(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    for key in ["a", "b"] {
        assert_eq!(
            app.report(&report(key, "success", &now())).await.status(),
            200
        );
    }
    let (status, body) = job_op(
        &app,
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "driver": "dispatched",
                "queue": "mail.eu", "tasks": [{ "name": "one" }, { "name": "two" }, { "name": "three" }] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, claimed) = call(
        &app,
        &app.client,
        "/task-operations",
        "claimTasks",
        json!({ "worker_id": "w", "queues": ["mail.eu"], "max_tasks": 2 }),
    )
    .await;
    assert_eq!(status, 200, "{claimed}");
    let held = claimed["data"]["tasks"].as_array().unwrap().clone();
    assert_eq!(held.len(), 2);
    let (status, body) = call(
        &app,
        &app.client,
        "/task-operations",
        "completeTasks",
        json!({ "worker_id": "w", "tasks": [{ "task_id": held[0]["task_id"], "lease_token": held[0]["lease_token"] }] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let samples = parse(&response.text().await.unwrap());
    let get = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
    };
    assert_eq!(get("jobdeck_job_reports_stored_total"), 2.0);
    assert_eq!(get("jobdeck_tasks_claimed_total"), 2.0);
    assert_eq!(
        get("jobdeck_tasks_finished_total{result=\"completed\"}"),
        1.0
    );
    assert_eq!(get("jobdeck_tasks_finished_total{result=\"failed\"}"), 0.0);
    assert_eq!(
        get("jobdeck_queue_tasks{queue=\"mail.eu\",status=\"pending\"}"),
        1.0
    );
    assert_eq!(
        get("jobdeck_queue_tasks{queue=\"mail.eu\",status=\"running\"}"),
        1.0
    );
    let webhook = "method=\"POST\",route=\"/api/monitor/job-report\",status=\"2xx\"";
    assert_eq!(
        get(&format!(
            "jobdeck_http_request_duration_seconds_count{{{webhook}}}"
        )),
        2.0
    );
    assert_eq!(
        get(&format!(
            "jobdeck_http_request_duration_seconds_bucket{{{webhook},le=\"+Inf\"}}"
        )),
        2.0
    );
    // Buckets are cumulative.
    let mut last = 0.0;
    for bound in jobdeck::server::telemetry::LATENCY_BUCKETS {
        let count = get(&format!(
            "jobdeck_http_request_duration_seconds_bucket{{{webhook},le=\"{bound}\"}}"
        ));
        assert!(count >= last);
        last = count;
    }
    assert!(
        get(&format!(
            "jobdeck_http_request_duration_seconds_sum{{{webhook}}}"
        )) > 0.0
    );
    assert!(get("jobdeck_db_connections_max{pool=\"portal\"}") >= 1.0);
    assert!(samples.contains_key("jobdeck_db_connections{pool=\"portal\",state=\"in_use\"}"));
}
