use futures_like::join_all;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::*;

mod futures_like {
    /// Runs futures concurrently on the test's runtime and collects their outputs in order.
    pub async fn join_all<F>(futures: Vec<F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut outputs = Vec::with_capacity(handles.len());
        for handle in handles {
            outputs.push(handle.await.expect("task"));
        }
        outputs
    }
}

#[sqlx::test]
async fn accepts_a_report_and_answers_with_the_job_id(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let response = app
        .report(&report(
            "nightly-backup",
            "success",
            "2026-11-20T03:00:00+09:00",
        ))
        .await;
    assert_eq!(response.status(), 200);
    let body = body_json(response).await;
    let (id, status, finished): (uuid::Uuid, String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT id, last_status, last_finished_at FROM job_status WHERE job_key = 'nightly-backup'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        body,
        json!({"success": true, "id": id, "job_key": "nightly-backup"})
    );
    assert_eq!(status, "success");
    assert_eq!(finished.to_rfc3339(), "2026-11-19T18:00:00+00:00");
    assert_eq!(count(&pool, "job_reports").await, 1);
}

#[sqlx::test]
async fn answers_500_when_no_secret_is_configured(pool: PgPool) {
    let mut config = test_config();
    config.webhook_secret = None;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let response = app.report(&report("k", "success", &now())).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        body_json(response).await,
        json!({"error": "Server configuration error"})
    );
    assert_eq!(count(&pool, "job_status").await, 0);
}

#[sqlx::test]
async fn answers_401_for_a_missing_or_wrong_secret(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let body = report("k", "success", &now()).to_string();
    for secret in [
        None,
        Some(""),
        Some("wrong"),
        Some("test-secret-4f9c2b"),
        Some("test-secret-4f9c2"),
        Some("test-secret-4f9c2a0"),
    ] {
        let mut request = app.client.post(app.webhook_url()).body(body.clone());
        if let Some(secret) = secret {
            request = request.header(SECRET_HEADER, secret);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "secret {secret:?}");
        assert_eq!(
            body_json(response).await,
            json!({"error": "Invalid or missing webhook secret"})
        );
    }
    assert_eq!(count(&pool, "job_status").await, 0);
}

#[sqlx::test]
async fn upserts_the_status_and_appends_every_report_to_the_history(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let first = body_json(
        app.report(&report("etl", "success", "2026-11-20T01:00:00Z"))
            .await,
    )
    .await;
    let failing = with(
        report("etl", "error", "2026-11-20T02:00:00Z"),
        "message",
        json!("接続タイムアウト"),
    );
    let second = body_json(app.report(&failing).await).await;
    assert_eq!(first["id"], second["id"], "one job keeps one id");

    let (status, message): (String, Option<String>) =
        sqlx::query_as("SELECT last_status, last_message FROM job_status WHERE job_key = 'etl'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), message.as_deref()),
        ("error", Some("接続タイムアウト"))
    );
    assert_eq!(count(&pool, "job_status").await, 1);
    let history: Vec<(String,)> =
        sqlx::query_as("SELECT status FROM job_reports ORDER BY finished_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        history,
        vec![("success".to_string(),), ("error".to_string(),)]
    );
}

#[sqlx::test]
async fn a_late_report_joins_the_history_but_keeps_the_newer_status(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    assert_eq!(
        app.report(&report("sync", "error", "2026-11-20T10:00:00Z"))
            .await
            .status(),
        200
    );
    let late = with(
        report("sync", "success", "2026-11-20T09:00:00Z"),
        "title",
        json!("old title"),
    );
    assert_eq!(app.report(&late).await.status(), 200);

    let (status, finished, title): (String, chrono::DateTime<chrono::Utc>, String) =
        sqlx::query_as(
            "SELECT last_status, last_finished_at, title FROM job_status WHERE job_key = 'sync'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "error");
    assert_eq!(finished.to_rfc3339(), "2026-11-20T10:00:00+00:00");
    assert_eq!(title, "sync のタイトル");
    assert_eq!(count(&pool, "job_reports").await, 2);
}

#[sqlx::test]
async fn fifty_concurrent_reports_for_one_job_leave_one_status_and_fifty_runs(pool: PgPool) {
    let app = std::sync::Arc::new(TestApp::spawn(pool.clone()).await);
    let requests = (0..50)
        .map(|i| {
            let app = app.clone();
            async move {
                // The newest report is the first one sent, so arrival order cannot pass this.
                let at = if i == 0 {
                    "2026-11-20T10:01:00Z".to_string()
                } else {
                    format!("2026-11-20T10:00:{i:02}Z")
                };
                let status = if i == 0 { "error" } else { "success" };
                let response = app.report(&report("burst", status, &at)).await;
                (
                    response.status().as_u16(),
                    body_json(response).await["id"].clone(),
                )
            }
        })
        .collect();
    let answers = join_all(requests).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert!(
        answers.windows(2).all(|w| w[0].1 == w[1].1),
        "every answer names the same job"
    );
    assert_eq!(count(&pool, "job_status").await, 1);
    assert_eq!(count(&pool, "job_reports").await, 50);
    let status: String = sqlx::query_scalar("SELECT last_status FROM job_status")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        status, "error",
        "the newest finished_at wins whatever the arrival order"
    );
}

#[sqlx::test]
async fn links_a_tool_and_ignores_unknown_fields(pool: PgPool) {
    let tool: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO tools (name) VALUES ('民泊レポート') RETURNING id")
            .fetch_one(&pool)
            .await
            .unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let body = with(
        report("tooled", "success", &now()),
        "tool_id",
        json!(tool.to_string()),
    );
    let body = with(body, "extra", json!({"nested": [1, 2, {"deep": true}]}));
    assert_eq!(app.report(&body).await.status(), 200);
    let linked: Option<uuid::Uuid> = sqlx::query_scalar("SELECT tool_id FROM job_status")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(linked, Some(tool));
}

#[sqlx::test]
async fn japanese_and_emoji_round_trip_byte_for_byte(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let title = "minpaku-IN レポート作成 🏠";
    let message = "処理完了 ✅ 𠮷野家 👨‍👩‍👧 e\u{301}";
    let body = with(
        with(
            report("民泊-レポート", "success", &now()),
            "title",
            json!(title),
        ),
        "message",
        json!(message),
    );
    let response = app.report(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(response).await["job_key"], "民泊-レポート");
    let stored: (String, String, String) =
        sqlx::query_as("SELECT job_key, title, last_message FROM job_status")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.0.as_bytes(), "民泊-レポート".as_bytes());
    assert_eq!(stored.1.as_bytes(), title.as_bytes());
    assert_eq!(stored.2.as_bytes(), message.as_bytes());
}

#[sqlx::test]
async fn records_durations_given_or_derived(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let given = with(
        report("timed", "success", "2026-11-20T10:00:00Z"),
        "duration_ms",
        json!(1234),
    );
    let derived = with(
        report("timed", "success", "2026-11-20T11:00:00Z"),
        "started_at",
        json!("2026-11-20T10:59:30Z"),
    );
    assert_eq!(app.report(&given).await.status(), 200);
    assert_eq!(app.report(&derived).await.status(), 200);
    let durations: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT duration_ms FROM job_reports ORDER BY finished_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(durations, vec![Some(1234), Some(30_000)]);
}

/// Each bad body is refused with its status and a JSON error naming the field; nothing is written.
#[sqlx::test]
async fn refuses_bad_input_and_writes_nothing(pool: PgPool) {
    let unknown_tool = "6f1c3f0e-3b1d-4c59-9a8e-2d7f6c1b5a90";
    let ok = || report("bad-input", "success", &now());
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_body = format!(
        r#"{{"job_key":"k","title":"t","status":"success","finished_at":"{}","x":{deep}}}"#,
        now()
    );
    let mut invalid_utf8 = br#"{"job_key":"k","title":"t"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(
        format!(r#"","status":"success","finished_at":"{}"}}"#, now()).as_bytes(),
    );

    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        ("not JSON", b"{job_key: nope".to_vec(), 400, None),
        ("empty body", Vec::new(), 400, None),
        ("JSON array", b"[1,2]".to_vec(), 400, None),
        ("JSON string", br#""hello""#.to_vec(), 400, None),
        ("missing job_key", without(ok(), "job_key"), 400, Some("job_key")),
        ("null job_key", json_bytes(with(ok(), "job_key", Value::Null)), 400, Some("job_key")),
        ("empty job_key", json_bytes(with(ok(), "job_key", json!(""))), 400, Some("job_key")),
        ("blank job_key", json_bytes(with(ok(), "job_key", json!("   "))), 400, Some("job_key")),
        ("numeric job_key", json_bytes(with(ok(), "job_key", json!(42))), 400, Some("job_key")),
        ("job_key with NUL", json_bytes(with(ok(), "job_key", json!("a\u{0}b"))), 400, Some("job_key")),
        ("job_key with newline", json_bytes(with(ok(), "job_key", json!("a\nb"))), 400, Some("job_key")),
        ("job_key too long", json_bytes(with(ok(), "job_key", json!("k".repeat(201)))), 400, Some("job_key")),
        ("missing title", without(ok(), "title"), 400, Some("title")),
        ("title as array", json_bytes(with(ok(), "title", json!(["t"]))), 400, Some("title")),
        ("title too long", json_bytes(with(ok(), "title", json!("題".repeat(201)))), 400, Some("title")),
        ("title with NUL", json_bytes(with(ok(), "title", json!("t\u{0}"))), 400, Some("title")),
        ("missing status", without(ok(), "status"), 400, Some("status")),
        ("unknown status", json_bytes(with(ok(), "status", json!("failed"))), 400, Some("status")),
        ("status in capitals", json_bytes(with(ok(), "status", json!("SUCCESS"))), 400, Some("status")),
        ("numeric status", json_bytes(with(ok(), "status", json!(1))), 400, Some("status")),
        ("missing finished_at", without(ok(), "finished_at"), 400, Some("finished_at")),
        ("finished_at not a date", json_bytes(with(ok(), "finished_at", json!("yesterday"))), 400, Some("finished_at")),
        ("finished_at as number", json_bytes(with(ok(), "finished_at", json!(1700000000))), 400, Some("finished_at")),
        ("finished_at without zone", json_bytes(with(ok(), "finished_at", json!("2026-11-20T10:00:00"))), 400, Some("finished_at")),
        ("finished_at impossible day", json_bytes(with(ok(), "finished_at", json!("2026-02-30T10:00:00Z"))), 400, Some("finished_at")),
        ("finished_at too old", json_bytes(with(ok(), "finished_at", json!("1899-12-31T00:00:00Z"))), 400, Some("finished_at")),
        ("finished_at far future", json_bytes(with(ok(), "finished_at", json!("9999-12-31T23:59:59Z"))), 400, Some("finished_at")),
        ("finished_at beyond Postgres", json_bytes(with(ok(), "finished_at", json!("+275760-09-13T00:00:00Z"))), 400, Some("finished_at")),
        ("started_at not a date", json_bytes(with(ok(), "started_at", json!("soon"))), 400, Some("started_at")),
        ("started_at after finished_at", json_bytes(with(with(ok(), "finished_at", json!("2026-11-20T10:00:00Z")), "started_at", json!("2026-11-20T11:00:00Z"))), 400, Some("started_at")),
        ("negative duration", json_bytes(with(ok(), "duration_ms", json!(-5))), 400, Some("duration_ms")),
        ("fractional duration", json_bytes(with(ok(), "duration_ms", json!(1.5))), 400, Some("duration_ms")),
        ("duration as string", json_bytes(with(ok(), "duration_ms", json!("100"))), 400, Some("duration_ms")),
        ("duration too long", json_bytes(with(ok(), "duration_ms", json!(i64::MAX))), 400, Some("duration_ms")),
        ("message as object", json_bytes(with(ok(), "message", json!({"a": 1}))), 400, Some("message")),
        ("message with NUL", json_bytes(with(ok(), "message", json!("bad\u{0}byte"))), 400, Some("message")),
        ("message too long", json_bytes(with(ok(), "message", json!("m".repeat(10_001)))), 400, Some("message")),
        ("tool_id not a UUID", json_bytes(with(ok(), "tool_id", json!("not-a-uuid"))), 400, Some("tool_id")),
        ("tool_id as number", json_bytes(with(ok(), "tool_id", json!(7))), 400, Some("tool_id")),
        ("tool_id names no tool", json_bytes(with(ok(), "tool_id", json!(unknown_tool))), 422, Some("tool_id")),
        ("deep nesting", deep_body.into_bytes(), 400, None),
        ("invalid UTF-8", invalid_utf8, 400, None),
        ("lone surrogate", br#"{"job_key":"\ud800","title":"t","status":"success","finished_at":"2026-11-20T10:00:00Z"}"#.to_vec(), 400, None),
        ("body over 64 KiB", json_bytes(with(ok(), "padding", json!("x".repeat(65 * 1024)))), 413, None),
    ];

    let app = TestApp::spawn(pool.clone()).await;
    for (name, body, status, field) in cases {
        let response = app.post_body(body).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        let error = body_json(response).await;
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}: {error}"
        );
        assert_eq!(
            error.get("field").and_then(Value::as_str),
            field,
            "{name}: {error}"
        );
        assert!(error.get("success").is_none(), "{name}");
    }
    assert_eq!(count(&pool, "job_status").await, 0);
    assert_eq!(count(&pool, "job_reports").await, 0);
}

fn json_bytes(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn without(mut value: Value, field: &str) -> Vec<u8> {
    value.as_object_mut().unwrap().remove(field);
    json_bytes(value)
}
