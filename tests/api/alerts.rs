//! Alerts (issue 25): each kind fires and resolves at the right moment on the test's clock,
//! pending_for / min_runs / repeat / acknowledge / snooze / silence, the start signal, the
//! signed webhook checked by Python's `hmac`, email to a real SMTP conversation, and the
//! outbox across a SIGKILL and across two portal processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use jobdeck::server::alerts::actions::{self, AlertRef};
use jobdeck::server::alerts::channels::{self, ChannelRequest};
use jobdeck::server::alerts::rules::{self, RuleRequest};
use jobdeck::server::alerts::schedule::{self, ScheduleRequest};
use jobdeck::server::alerts::{evaluate_due, AlertError, SmtpSettings, SmtpTls};
use jobdeck::server::audit::Actor;
use jobdeck::server::job_report::NewReport;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use crate::helpers::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A report as the webhook takes it, dated on the test's clock.
async fn report_at(app: &TestApp, key: &str, status: &str, finished: DateTime<Utc>, ms: i64) {
    let body = json!({
        "job_key": key, "title": format!("Job {key}"), "status": status,
        "finished_at": finished.to_rfc3339(), "duration_ms": ms,
        "message": (status == "error").then_some("disk full on /var"),
    });
    let report = NewReport::from_json(body.to_string().as_bytes(), finished).expect("valid report");
    app.state.job_reports.submit(report).await.expect("stored");
}

async fn rule(pool: &PgPool, body: Value) -> Uuid {
    let request: RuleRequest = serde_json::from_value(body).expect("a rule request");
    rules::save_rule(pool, &Actor::cli(), None, &request)
        .await
        .expect("saved")
        .id
}

async fn judge(pool: &PgPool, now: DateTime<Utc>) {
    evaluate_due(pool, now, StdDuration::from_secs(5))
        .await
        .expect("evaluated");
}

async fn state(pool: &PgPool, rule: Uuid, subject: &str) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM alert_states WHERE rule_id = $1 AND subject = $2")
        .bind(rule)
        .bind(subject)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// The rule's history: (from, to, reminder, silenced).
async fn history(pool: &PgPool, rule: Uuid) -> Vec<(String, String, bool, bool)> {
    sqlx::query_as(
        "SELECT from_state, to_state, reminder, silenced FROM alert_events WHERE rule_id = $1 ORDER BY id",
    )
    .bind(rule)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn changes(rows: &[(String, String, bool, bool)]) -> Vec<String> {
    rows.iter()
        .map(|(from, to, reminder, _)| format!("{from}>{to}{}", if *reminder { "!" } else { "" }))
        .collect()
}

async fn stored_deadline(pool: &PgPool, key: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT deadline_at FROM job_schedules WHERE job_key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn by_key(key: &str) -> Value {
    json!({ "kind": "job_key", "value": key })
}

#[sqlx::test]
async fn a_missed_run_fires_at_its_cron_deadline_across_daylight_saving_and_resolves_on_report(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = "berlin-nightly";
    // 09:00 in Berlin: 08:00 UTC before 2026-03-29's change to summer time, 07:00 after.
    let request = ScheduleRequest {
        job_key: key.into(),
        cron: Some("0 9 * * *".into()),
        timezone: Some("Europe/Berlin".into()),
        period_seconds: None,
        grace_seconds: Some(600),
    };
    schedule::set_schedule(&pool, &Actor::cli(), &request, at("2026-03-27T12:00:00Z"))
        .await
        .unwrap();
    report_at(&app, key, "success", at("2026-03-28T08:01:00Z"), 1000).await;
    let missed = rule(
        &pool,
        json!({"name": "missed", "scope": by_key(key), "kind": "missed_run"}),
    )
    .await;
    let subject = format!("script:{key}");

    judge(&pool, at("2026-03-29T07:09:00Z")).await;
    assert_eq!(
        state(&pool, missed, &subject).await,
        None,
        "before the deadline"
    );
    assert_eq!(
        stored_deadline(&pool, key).await,
        Some(at("2026-03-29T07:10:00Z")),
        "the deadline counted is kept, so later cycles skip the schedule until then"
    );
    // A clock that ignored the change would wait until 08:10 UTC.
    judge(&pool, at("2026-03-29T07:10:30Z")).await;
    assert_eq!(
        state(&pool, missed, &subject).await.as_deref(),
        Some("firing")
    );
    // The built-in missed-run rule covers every scheduled script too.
    let built_in: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_states a JOIN alert_rules r ON r.id = a.rule_id
         WHERE r.built_in AND r.kind = 'missed_run' AND a.subject = $1 AND a.state = 'firing'",
    )
    .bind(&subject)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(built_in, 1);

    report_at(&app, key, "success", at("2026-03-29T07:12:00Z"), 1000).await;
    judge(&pool, at("2026-03-29T07:13:00Z")).await;
    assert_eq!(state(&pool, missed, &subject).await, None);
    assert_eq!(
        changes(&history(&pool, missed).await),
        ["ok>firing", "firing>resolved"]
    );
    assert_eq!(
        stored_deadline(&pool, key).await,
        Some(at("2026-03-30T07:10:00Z"))
    );

    // An hourly schedule set at 07:20 is due at 08:10, long before the deadline kept for
    // the daily one: changing a schedule forgets what was counted for the old one.
    let hourly = ScheduleRequest {
        cron: Some("0 * * * *".into()),
        ..request.clone()
    };
    schedule::set_schedule(&pool, &Actor::cli(), &hourly, at("2026-03-29T07:20:00Z"))
        .await
        .unwrap();
    judge(&pool, at("2026-03-29T08:09:00Z")).await;
    assert_eq!(state(&pool, missed, &subject).await, None);
    judge(&pool, at("2026-03-29T08:10:30Z")).await;
    assert_eq!(
        state(&pool, missed, &subject).await.as_deref(),
        Some("firing")
    );
    schedule::set_schedule(&pool, &Actor::cli(), &request, at("2026-03-29T08:11:00Z"))
        .await
        .unwrap();

    // The page says when the next run is due: 2026-03-30 09:00 CEST.
    let page = app
        .client
        .get(app.url(&format!("/incidents/{key}")))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("2026-03-30 07:00:00 UTC"),
        "next expected run on the page"
    );
    assert!(
        html.contains("firing → resolved"),
        "alert history on the page"
    );
}

#[sqlx::test]
async fn a_start_signal_without_a_report_is_stuck_after_its_grace(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = "export-orders";
    report_at(&app, key, "success", at("2026-05-01T00:10:00Z"), 1000).await;
    let stuck = rule(&pool, json!({"name": "stuck", "scope": by_key(key), "kind": "stuck", "params": {"grace_seconds": 600}})).await;
    let subject = format!("script:{key}");

    // Through the HTTP route, with the webhook's secret.
    let started = app
        .anonymous
        .post(app.url("/api/monitor/job-start"))
        .header(SECRET_HEADER, SECRET)
        .json(&json!({"job_key": key, "started_at": "2026-05-01T01:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let refused = app
        .anonymous
        .post(app.url("/api/monitor/job-start"))
        .json(&json!({"job_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let bad = app
        .anonymous
        .post(app.url("/api/monitor/job-start"))
        .header(SECRET_HEADER, SECRET)
        .json(&json!({"job_key": key, "started_at": "yesterday"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(body_json(bad).await["field"], "started_at");

    judge(&pool, at("2026-05-01T01:09:50Z")).await;
    assert_eq!(state(&pool, stuck, &subject).await, None);
    judge(&pool, at("2026-05-01T01:10:01Z")).await;
    assert_eq!(
        state(&pool, stuck, &subject).await.as_deref(),
        Some("firing")
    );
    report_at(&app, key, "success", at("2026-05-01T01:11:00Z"), 660_000).await;
    judge(&pool, at("2026-05-01T01:11:30Z")).await;
    assert_eq!(state(&pool, stuck, &subject).await, None);
    assert_eq!(
        changes(&history(&pool, stuck).await),
        ["ok>firing", "firing>resolved"]
    );
}

#[sqlx::test]
async fn a_failure_rate_waits_for_min_runs_and_resolves_when_the_window_empties(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = "sync-stock";
    let rate = rule(
        &pool,
        json!({"name": "rate", "scope": by_key(key), "kind": "failure_rate", "min_runs": 3,
               "params": {"threshold_percent": 50, "window_seconds": 3600}}),
    )
    .await;
    let subject = format!("script:{key}");
    let t = at("2026-06-01T12:00:00Z");
    report_at(&app, key, "error", t - Duration::minutes(50), 1000).await;
    judge(&pool, t).await;
    assert_eq!(
        state(&pool, rate, &subject).await,
        None,
        "one run is fewer than min_runs"
    );
    report_at(&app, key, "success", t - Duration::minutes(40), 1000).await;
    report_at(&app, key, "error", t - Duration::minutes(30), 1000).await;
    judge(&pool, t + Duration::seconds(10)).await;
    assert_eq!(
        state(&pool, rate, &subject).await.as_deref(),
        Some("firing"),
        "2 of 3 failed"
    );
    judge(&pool, t + Duration::hours(2)).await;
    assert_eq!(
        state(&pool, rate, &subject).await,
        None,
        "no run left in the window"
    );
    assert_eq!(
        changes(&history(&pool, rate).await),
        ["ok>firing", "firing>resolved"]
    );
}

#[sqlx::test]
async fn a_run_far_slower_than_its_usual_p95_is_a_duration_anomaly(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = "build-report";
    let slow = rule(
        &pool,
        json!({"name": "slow", "scope": by_key(key), "kind": "duration_anomaly", "min_runs": 3,
               "params": {"factor": 3, "last_runs": 5}}),
    )
    .await;
    let subject = format!("script:{key}");
    let t = at("2026-06-02T00:00:00Z");
    for minute in 0..4 {
        report_at(&app, key, "success", t + Duration::minutes(minute), 10_000).await;
    }
    judge(&pool, t + Duration::minutes(5)).await;
    assert_eq!(state(&pool, slow, &subject).await, None);
    // 3 × 10 s is the limit: 29 s is fine, 100 s is not.
    report_at(&app, key, "success", t + Duration::minutes(6), 29_000).await;
    judge(&pool, t + Duration::minutes(7)).await;
    assert_eq!(state(&pool, slow, &subject).await, None);
    report_at(&app, key, "success", t + Duration::minutes(8), 100_000).await;
    judge(&pool, t + Duration::minutes(9)).await;
    assert_eq!(
        state(&pool, slow, &subject).await.as_deref(),
        Some("firing")
    );
    report_at(&app, key, "success", t + Duration::minutes(10), 10_000).await;
    judge(&pool, t + Duration::minutes(11)).await;
    assert_eq!(state(&pool, slow, &subject).await, None);
}

#[sqlx::test]
async fn one_error_fingerprint_over_its_count_in_the_window_is_a_spike(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = "mail-digest";
    let spike = rule(
        &pool,
        json!({"name": "spike", "scope": by_key(key), "kind": "error_spike",
               "params": {"count": 2, "window_seconds": 3600}}),
    )
    .await;
    let t = at("2026-06-03T00:00:00Z");
    for minute in [1, 2] {
        report_at(&app, key, "error", t + Duration::minutes(minute), 1000).await;
    }
    judge(&pool, t + Duration::minutes(5)).await;
    assert!(
        history(&pool, spike).await.is_empty(),
        "2 is not more than 2"
    );
    report_at(&app, key, "error", t + Duration::minutes(3), 1000).await;
    judge(&pool, t + Duration::minutes(6)).await;
    let fingerprint: String = sqlx::query_scalar("SELECT DISTINCT fingerprint FROM error_records")
        .fetch_one(&pool)
        .await
        .unwrap();
    let subject = format!("fingerprint:{fingerprint}");
    assert_eq!(
        state(&pool, spike, &subject).await.as_deref(),
        Some("firing")
    );
    judge(&pool, t + Duration::hours(2)).await;
    assert_eq!(state(&pool, spike, &subject).await, None);
}

#[sqlx::test]
async fn pending_for_delays_firing_and_reminders_repeat_until_acknowledged_or_snoozed(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let t = at("2026-07-01T00:00:00Z");
    let noisy = rule(
        &pool,
        json!({"name": "noisy", "scope": {"kind": "job_kind", "value": "script"}, "kind": "failure_rate",
               "pending_for": 60, "repeat_interval": 600, "params": {"consecutive": 1}}),
    )
    .await;
    report_at(&app, "a", "error", t, 1000).await;
    report_at(&app, "b", "error", t, 1000).await;
    judge(&pool, t + Duration::seconds(1)).await;
    assert_eq!(
        state(&pool, noisy, "script:a").await.as_deref(),
        Some("pending")
    );
    judge(&pool, t + Duration::seconds(31)).await;
    assert_eq!(
        state(&pool, noisy, "script:a").await.as_deref(),
        Some("pending")
    );
    judge(&pool, t + Duration::seconds(62)).await;
    assert_eq!(
        state(&pool, noisy, "script:a").await.as_deref(),
        Some("firing")
    );
    judge(&pool, t + Duration::seconds(62 + 300)).await;
    judge(&pool, t + Duration::seconds(62 + 601)).await;

    let actor = Actor::cli();
    let a = AlertRef {
        rule_id: noisy,
        subject: "script:a".into(),
    };
    let b = AlertRef {
        rule_id: noisy,
        subject: "script:b".into(),
    };
    actions::acknowledge(&pool, &actor, &a, t + Duration::seconds(700))
        .await
        .unwrap();
    let later = t + Duration::seconds(800);
    actions::snooze(&pool, &actor, &b, Duration::hours(1), later)
        .await
        .unwrap();
    // Neither repeats while acknowledged / snoozed …
    judge(&pool, t + Duration::seconds(62 + 1300)).await;
    judge(&pool, t + Duration::seconds(62 + 2000)).await;
    // … and the snoozed one does again once its snooze is over.
    judge(&pool, later + Duration::hours(1) + Duration::seconds(10)).await;

    let events: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT subject, to_state, reminder FROM alert_events WHERE rule_id = $1 ORDER BY id",
    )
    .bind(noisy)
    .fetch_all(&pool)
    .await
    .unwrap();
    let of = |subject: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.0 == subject)
            .map(|e| format!("{}{}", e.1, if e.2 { "!" } else { "" }))
            .collect()
    };
    assert_eq!(of("script:a"), ["pending", "firing", "firing!"]);
    assert_eq!(of("script:b"), ["pending", "firing", "firing!", "firing!"]);
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE action IN ('acknowledgeAlert', 'snoozeAlert') ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ["acknowledgeAlert", "snoozeAlert"]);
    // A viewer may not acknowledge; acknowledging an alert that is not firing is a conflict.
    let viewer = Actor {
        role: jobdeck::model::Role::Viewer,
        ..Actor::cli()
    };
    let refused = actions::acknowledge(&pool, &viewer, &b, later).await;
    assert!(
        matches!(refused, Err(AlertError::Forbidden(_))),
        "{refused:?}"
    );
    let nothing = AlertRef {
        rule_id: noisy,
        subject: "script:none".into(),
    };
    let conflict = actions::acknowledge(&pool, &actor, &nothing, later).await;
    assert!(
        matches!(conflict, Err(AlertError::Conflict(_))),
        "{conflict:?}"
    );
    // Replacing a rule that does not exist is a 404, not a new rule.
    let request: RuleRequest = serde_json::from_value(
        json!({"name": "x", "scope": {"kind": "all"}, "kind": "missed_run"}),
    )
    .unwrap();
    let missing = rules::save_rule(&pool, &actor, Some(Uuid::nil()), &request).await;
    assert!(
        matches!(missing, Err(AlertError::NotFound(..))),
        "{missing:?}"
    );
}

/// Requests a receiver got: (webhook-id, timestamp, signature, body).
type Received = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// An HTTP receiver on a free port; the first `hang` requests are never answered.
async fn receiver(hang: usize) -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = received.clone();
    let handler = move |headers: axum::http::HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let count = {
                let mut seen = seen.lock().unwrap();
                seen.push((
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                    body,
                ));
                seen.len()
            };
            if count <= hang {
                std::future::pending::<()>().await;
            }
            "ok"
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn channel(
    pool: &PgPool,
    kind: &str,
    target: &str,
    language: &str,
) -> (Uuid, Option<String>) {
    let request: ChannelRequest = serde_json::from_value(
        json!({"name": format!("{kind}-{}", unique()), "kind": kind, "target": target, "language": language}),
    )
    .unwrap();
    let created = channels::create_channel(pool, &Actor::cli(), &request)
        .await
        .unwrap();
    (created.channel.id, created.secret)
}

async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

fn python_verifies(secret: &str, id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let script = r#"
import base64, hashlib, hmac, sys
secret, msg_id, timestamp, body, signature = sys.argv[1:6]
key = base64.b64decode(secret.removeprefix("whsec_"))
mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
expected = "v1," + base64.b64encode(mac).decode()
sys.exit(0 if hmac.compare_digest(expected, signature) else 1)
"#;
    std::process::Command::new("python3")
        .args(["-c", script, secret, id, timestamp, body, signature])
        .status()
        .expect("python3")
        .success()
}

#[sqlx::test]
async fn the_webhook_is_signed_as_standard_webhooks_says_and_python_verifies_it(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (url, received) = receiver(0).await;
    let (id, secret) = channel(&pool, "webhook", &url, "en").await;
    let secret = secret.expect("a webhook has a secret");
    rule(
        &pool,
        json!({"name": "first failure", "scope": by_key("signed"), "kind": "failure_rate",
               "params": {"consecutive": 1}, "channel_ids": [id], "severity": "critical"}),
    )
    .await;
    report_at(&app, "signed", "error", at("2026-08-01T00:00:00Z"), 1000).await;
    judge(&pool, at("2026-08-01T00:00:05Z")).await;
    wait_for(|| received.lock().unwrap().len() == 1, "the webhook").await;
    let (msg_id, timestamp, signature, body) = received.lock().unwrap()[0].clone();
    assert!(python_verifies(
        &secret, &msg_id, &timestamp, &body, &signature
    ));
    let other = channels::new_secret();
    assert!(
        !python_verifies(&other, &msg_id, &timestamp, &body, &signature),
        "a wrong secret"
    );
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["type"], "alert.firing");
    assert_eq!(payload["data"]["rule"], "first failure");
    assert_eq!(payload["data"]["summary"], "the latest run failed");
    assert_eq!(payload["data"]["link"], "/incidents/signed");
    // Sent once, its attempt logged (written just after the receiver answered).
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    let attempts = loop {
        let attempts: Vec<(bool, Option<i32>)> =
            sqlx::query_as("SELECT ok, status_code FROM alert_delivery_attempts")
                .fetch_all(&pool)
                .await
                .unwrap();
        if !attempts.is_empty() || std::time::Instant::now() > deadline {
            break attempts;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    assert_eq!(attempts, [(true, Some(200))]);
}

/// A CA and a certificate for `localhost` signed by it, made by openssl in a new folder (as
/// an internal relay has): the folder holds `ca.pem`, `cert.pem` and `key.pem`.
fn certificates() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jobdeck-smtp-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let made = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl runs");
        assert!(
            made.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    };
    let new_key = ["-newkey", "rsa:2048", "-nodes"];
    openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", "/CN=Jobdeck test CA"][..],
            &new_key,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=localhost"][..],
            &new_key,
            &["-keyout", "key.pem", "-out", "leaf.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.cnf",
        "-out",
        "cert.pem",
    ]);
    dir
}

/// aiosmtpd (`smtp_sink.py`) on a free port, requiring STARTTLS with the certificates of
/// `tls` (or offering no STARTTLS when `None`); each message it accepts lands in the list.
/// Returns the port, the messages and the process (killed on drop).
async fn smtp_server(
    tls: Option<&std::path::Path>,
) -> (u16, Arc<Mutex<Vec<Value>>>, tokio::process::Child) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/smtp_sink.py");
    let mut command = tokio::process::Command::new("python3");
    command.arg(script).arg(port.to_string());
    match tls {
        Some(dir) => command.arg(dir.join("cert.pem")).arg(dir.join("key.pem")),
        None => command.arg("plain"),
    };
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(StdDuration::from_secs(20), lines.next_line())
        .await
        .expect("the SMTP server starts in time")
        .unwrap();
    assert_eq!(
        ready.as_deref(),
        Some("ready"),
        "aiosmtpd did not start (scripts/test installs it into target/python, on PYTHONPATH)"
    );
    let mails: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = mails.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            store
                .lock()
                .unwrap()
                .push(serde_json::from_str(&line).unwrap());
        }
    });
    (port, mails, child)
}

fn smtp_settings(port: u16, ca_pem: Option<Vec<u8>>) -> SmtpSettings {
    SmtpSettings {
        host: "localhost".into(),
        port,
        username: None,
        password: None,
        from: "jobdeck@example.com".into(),
        tls: SmtpTls::StartTls,
        ca_pem,
    }
}

#[sqlx::test]
async fn email_reaches_an_smtp_server_over_starttls_in_the_channels_language(pool: PgPool) {
    let dir = certificates();
    let (port, mails, _server) = smtp_server(Some(&dir)).await;
    // As JOBDECK_SMTP_CA_FILE is read.
    let ca = channels::read_ca(dir.join("ca.pem").to_str().unwrap()).expect("a CA file");
    let mut config = test_config();
    config.smtp = Some(smtp_settings(port, Some(ca.clone())));
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let (ja, _) = channel(&pool, "email", "ops@example.com", "ja").await;
    let (en, _) = channel(&pool, "email", "oncall@example.com", "en").await;
    rule(
        &pool,
        json!({"name": "夜間バッチ", "scope": by_key("nightly"), "kind": "failure_rate",
               "params": {"consecutive": 1}, "channel_ids": [ja, en]}),
    )
    .await;
    report_at(&app, "nightly", "error", at("2026-08-02T00:00:00Z"), 1000).await;
    judge(&pool, at("2026-08-02T00:00:05Z")).await;
    wait_for(|| mails.lock().unwrap().len() == 2, "two emails").await;
    let received = mails.lock().unwrap().clone();
    for mail in &received {
        assert_eq!(mail["tls"], true, "sent after STARTTLS");
        assert_eq!(mail["from"], "jobdeck@example.com");
    }
    let decoded: Vec<String> = received
        .iter()
        .map(|m| decode_mail(&m["data"].as_str().unwrap().replace("\r\n", "\n")))
        .collect();
    let japanese = decoded
        .iter()
        .find(|m| m.contains("To: ops@example.com"))
        .expect("ja mail");
    let english = decoded
        .iter()
        .find(|m| m.contains("To: oncall@example.com"))
        .expect("en mail");
    assert!(
        japanese.contains("[Jobdeck] 発生: 夜間バッチ — Job nightly"),
        "{japanese}"
    );
    assert!(japanese.contains("1 回連続で失敗しました"), "{japanese}");
    assert!(japanese.contains("詳細: /incidents/nightly"), "{japanese}");
    assert!(
        english.contains("[Jobdeck] FIRING: 夜間バッチ — Job nightly"),
        "{english}"
    );
    assert!(english.contains("the latest run failed"), "{english}");

    // Without its CA among the trusted ones, nothing is sent.
    let untrusting = jobdeck::server::alerts::Senders::new(
        Some(smtp_settings(port, None)),
        None,
        StdDuration::from_secs(10),
    );
    let channel = channels::load_channel(&pool, en).await.unwrap();
    let refused = jobdeck::server::alerts::outbox::send_test(&untrusting, &channel)
        .await
        .expect_err("an untrusted certificate");
    assert!(
        refused.message.to_ascii_lowercase().contains("certificate"),
        "{}",
        refused.message
    );
    assert_eq!(mails.lock().unwrap().len(), 2);

    // A server that offers no STARTTLS gets no mail in plain text instead.
    let (plain_port, plain_mails, _plain) = smtp_server(None).await;
    let downgraded = jobdeck::server::alerts::Senders::new(
        Some(smtp_settings(plain_port, Some(ca))),
        None,
        StdDuration::from_secs(10),
    );
    jobdeck::server::alerts::outbox::send_test(&downgraded, &channel)
        .await
        .expect_err("no STARTTLS, no mail");
    assert!(plain_mails.lock().unwrap().is_empty());
}

/// Undoes the encodings lettre may use for non-ASCII headers and bodies (RFC 2047 base64
/// words, base64 or quoted-printable bodies), enough to read the text back.
fn decode_mail(raw: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    let mut body_base64 = false;
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    for line in head.lines() {
        if line
            .to_ascii_lowercase()
            .starts_with("content-transfer-encoding: base64")
        {
            body_base64 = true;
        }
        let mut decoded = line.to_string();
        while let Some(start) = decoded
            .find("=?utf-8?b?")
            .or_else(|| decoded.find("=?UTF-8?B?"))
        {
            let rest = &decoded[start + 10..];
            let Some(end) = rest.find("?=") else { break };
            let text = b64
                .decode(&rest[..end])
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            decoded = format!("{}{}{}", &decoded[..start], text, &rest[end + 2..]);
        }
        out.push_str(&decoded);
        out.push('\n');
    }
    let joined: String = body.lines().map(str::trim).collect();
    match b64.decode(&joined) {
        Ok(bytes) if body_base64 => out.push_str(&String::from_utf8_lossy(&bytes)),
        _ => out.push_str(body),
    }
    out.replace("\n ", " ").replace("?= ", "")
}

/// Silenced alerts owe nothing; others with a channel owe one delivery per change.
#[sqlx::test]
async fn a_silence_records_the_change_but_sends_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (id, _) = channel(&pool, "slack", "http://127.0.0.1:9/never", "ja").await;
    let failing = rule(
        &pool,
        json!({"name": "f", "scope": {"kind": "job_kind", "value": "script"}, "kind": "failure_rate",
               "params": {"consecutive": 1}, "channel_ids": [id]}),
    )
    .await;
    let scope: rules::ScopeRequest = serde_json::from_value(by_key("quiet")).unwrap();
    let now = at("2026-08-03T00:00:00Z");
    actions::create_silence(
        &pool,
        &Actor::cli(),
        &scope,
        Duration::hours(1),
        "maintenance",
        now,
    )
    .await
    .unwrap();
    report_at(&app, "quiet", "error", now, 1000).await;
    report_at(&app, "loud", "error", now, 1000).await;
    judge(&pool, now + Duration::seconds(5)).await;
    let owed: Vec<(String, bool, i64)> = sqlx::query_as(
        "SELECT e.subject, e.silenced, (SELECT count(*) FROM alert_deliveries d WHERE d.event_id = e.id)
         FROM alert_events e WHERE e.rule_id = $1 ORDER BY e.subject",
    )
    .bind(failing)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        owed,
        [
            ("script:loud".into(), false, 1),
            ("script:quiet".into(), true, 0)
        ]
    );
    // Once the silence is over, the alert it hid is announced (once); the other is not again.
    judge(&pool, now + Duration::hours(1) + Duration::seconds(10)).await;
    judge(&pool, now + Duration::hours(1) + Duration::seconds(20)).await;
    let announced: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "SELECT e.subject, e.reminder, e.silenced, (SELECT count(*) FROM alert_deliveries d WHERE d.event_id = e.id)
         FROM alert_events e WHERE e.rule_id = $1 ORDER BY e.id OFFSET 2",
    )
    .bind(failing)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(announced, [("script:quiet".into(), true, false, 1)]);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'createSilence'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);
}

/// Failing scripts written straight to `job_status`, as the webhook would leave them.
async fn failing_scripts(pool: &PgPool, keys: &[String]) {
    sqlx::query(
        "INSERT INTO job_status (job_key, title, last_status, last_finished_at)
         SELECT k, k, 'error', '2026-08-05T00:00:00Z' FROM unnest($1::text[]) AS k",
    )
    .bind(keys)
    .execute(pool)
    .await
    .unwrap();
}

async fn outbox_rule(pool: &PgPool, channel: Uuid) {
    rule(
        pool,
        json!({"name": "outbox", "scope": {"kind": "job_kind", "value": "script"}, "kind": "failure_rate",
               "params": {"consecutive": 1}, "channel_ids": [channel]}),
    )
    .await;
}

/// The portal processes deliver; this test process has no outbox of its own (no TestApp).
const PROCESS_SETTINGS: [(&str, &str); 2] = [
    ("JOBDECK_ALERT_EVALUATE_SECS", "0"),
    ("JOBDECK_ALERT_DELIVERY_CLAIM_SECS", "4"),
];

#[sqlx::test]
async fn a_portal_killed_mid_send_delivers_once_after_restart(pool: PgPool) {
    let db = pool.connect_options();
    let first = crate::process::start_server(&db, &PROCESS_SETTINGS).await;
    let (url, received) = receiver(1).await;
    let (id, _) = channel(&pool, "webhook", &url, "ja").await;
    outbox_rule(&pool, id).await;
    failing_scripts(&pool, &["killed".to_string()]).await;
    judge(&pool, at("2026-08-05T00:00:05Z")).await;
    // The first process claimed it and is sending: the receiver holds the request.
    wait_for(|| received.lock().unwrap().len() == 1, "the first send").await;
    drop(first); // SIGKILL
    let _second = crate::process::start_server(&db, &PROCESS_SETTINGS).await;
    wait_for(
        || received.lock().unwrap().len() == 2,
        "the retry once the claim lapsed",
    )
    .await;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM alert_deliveries")
            .fetch_one(&pool)
            .await
            .unwrap();
        if status == "sent" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never marked sent");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let received = received.lock().unwrap().clone();
    let ids: std::collections::HashSet<&str> = received.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "both sends carried one webhook-id: the receiver keeps one"
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM alert_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "claimed twice");
    // The killed process logged nothing: the second send came from its claim lapsing, not
    // from a failure it had recorded.
    let logged: Vec<(i32, bool)> =
        sqlx::query_as("SELECT attempt, ok FROM alert_delivery_attempts ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(logged, [(2, true)]);
}

#[sqlx::test]
async fn two_portals_on_one_database_send_each_notification_once(pool: PgPool) {
    let db = pool.connect_options();
    let _a = crate::process::start_server(&db, &PROCESS_SETTINGS).await;
    let _b = crate::process::start_server(&db, &PROCESS_SETTINGS).await;
    let (url, received) = receiver(0).await;
    let (id, _) = channel(&pool, "webhook", &url, "en").await;
    outbox_rule(&pool, id).await;
    let keys: Vec<String> = (0..40).map(|i| format!("pair-{i}")).collect();
    failing_scripts(&pool, &keys).await;
    judge(&pool, at("2026-08-05T00:00:05Z")).await;
    wait_for(|| received.lock().unwrap().len() >= 40, "40 notifications").await;
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let received = received.lock().unwrap().clone();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for r in &received {
        *per_id.entry(r.0.as_str()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 40);
    assert!(
        per_id.values().all(|n| *n == 1),
        "each sent once: {per_id:?}"
    );
}

/// A controlled job written as the job service leaves it.
async fn batch_job(
    pool: &PgPool,
    status: &str,
    started: DateTime<Utc>,
    finished: Option<DateTime<Utc>>,
) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, status, product_id, sending_group_id, priority, max_parallel_tasks,
                           max_attempts, retry_interval, created_by, created_at, started_at, finished_at, updated_at)
         VALUES ('batch', $1, 'p', 'g', 5, 1, 1, 0, 'test', $2, $2, $3, coalesce($3, $2))
         RETURNING id",
    )
    .bind(status)
    .bind(started)
    .bind(finished)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn controlled_jobs_are_judged_stuck_slow_and_failing_by_kind(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let t = at("2026-09-01T12:00:00Z");
    let batch = json!({"kind": "job_kind", "value": "batch"});
    let stuck = rule(
        &pool,
        json!({"name": "stuck", "scope": batch, "kind": "stuck", "params": {"grace_seconds": 600}}),
    )
    .await;
    let slow = rule(
        &pool,
        json!({"name": "slow", "scope": batch, "kind": "duration_anomaly", "min_runs": 3,
                                   "params": {"factor": 3, "last_runs": 5}}),
    )
    .await;
    let rate = rule(
        &pool,
        json!({"name": "rate", "scope": batch, "kind": "failure_rate",
                                   "params": {"threshold_percent": 50, "window_seconds": 3600}}),
    )
    .await;
    for minute in [50, 40, 30] {
        let started = t - Duration::minutes(minute);
        batch_job(
            &pool,
            "completed",
            started,
            Some(started + Duration::seconds(10)),
        )
        .await;
    }
    let quiet = batch_job(&pool, "running", t - Duration::seconds(700), None).await;
    judge(&pool, t).await;
    let subject = format!("job:{quiet}");
    assert_eq!(
        state(&pool, stuck, &subject).await.as_deref(),
        Some("firing"),
        "no sign for 700 s"
    );
    assert_eq!(
        state(&pool, slow, &subject).await.as_deref(),
        Some("firing"),
        "700 s against a 10 s p95"
    );
    assert_eq!(
        state(&pool, rate, "kind:batch").await,
        None,
        "nothing failed yet"
    );
    for minute in [20, 10, 5] {
        let started = t - Duration::minutes(minute);
        batch_job(
            &pool,
            "failed",
            started,
            Some(started + Duration::seconds(10)),
        )
        .await;
    }
    // The job shows life: it is no longer stuck, though still slow.
    sqlx::query("UPDATE jobs SET updated_at = $2 WHERE id = $1")
        .bind(quiet)
        .bind(t + Duration::seconds(5))
        .execute(&pool)
        .await
        .unwrap();
    judge(&pool, t + Duration::seconds(10)).await;
    assert_eq!(state(&pool, stuck, &subject).await, None);
    assert_eq!(
        state(&pool, slow, &subject).await.as_deref(),
        Some("firing")
    );
    assert_eq!(
        state(&pool, rate, "kind:batch").await.as_deref(),
        Some("firing"),
        "3 of 6 failed"
    );

    // The job's page lists its open alert and the history of its alerts.
    let page = app
        .client
        .get(app.url(&format!("/jobs/{quiet}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let history = &html[html
        .find("data-testid=\"alert-history\"")
        .expect("a history table")..];
    assert!(history.contains("firing → resolved"), "stuck, resolved");
    assert_eq!(
        history.matches("ok → firing").count(),
        2,
        "stuck and slow fired"
    );
    let open = &html[html
        .find("data-testid=\"open-alerts\"")
        .expect("open alerts")..];
    assert!(
        open[..open.find("</ul>").unwrap()].contains("slow"),
        "slow is open"
    );
}

#[sqlx::test]
async fn send_test_reaches_the_channel_or_says_why_not(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (url, received) = receiver(0).await;
    let (good, _) = channel(&pool, "webhook", &url, "ja").await;
    let (bad, _) = channel(&pool, "slack", "http://127.0.0.1:9/closed", "en").await;
    let good = channels::load_channel(&pool, good).await.unwrap();
    let bad = channels::load_channel(&pool, bad).await.unwrap();
    let senders = &app.state.senders;
    assert_eq!(
        jobdeck::server::alerts::outbox::send_test(senders, &good)
            .await
            .unwrap(),
        Some(200)
    );
    let body: Value = serde_json::from_str(&received.lock().unwrap()[0].3).unwrap();
    assert_eq!(body["type"], "alert.test");
    assert_eq!(body["data"]["title"], "[Jobdeck] テスト通知");
    let error = jobdeck::server::alerts::outbox::send_test(senders, &bad)
        .await
        .unwrap_err();
    assert!(
        !error.message.contains("127.0.0.1:9/closed"),
        "a Slack URL is a secret: {}",
        error.message
    );
}

/// Each rule is judged every `every`: not sooner, and at once when it falls due.
#[sqlx::test]
async fn a_rule_is_judged_again_exactly_when_its_interval_has_passed(pool: PgPool) {
    let t = at("2026-05-01T00:00:00Z");
    let every = StdDuration::from_secs(5);
    let judged = |now| {
        let pool = pool.clone();
        async move { evaluate_due(&pool, now, every).await.unwrap().rules }
    };
    assert_eq!(
        judged(t).await,
        2,
        "the two built-in rules, due from the start"
    );
    assert_eq!(judged(t + Duration::milliseconds(4_999)).await, 0);
    assert_eq!(judged(t + Duration::seconds(5)).await, 2);
}
