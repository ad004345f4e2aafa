//! `POST /alert-operations`: the alerts' JSON door over real HTTP. A schedule set through it
//! for a script that never reported makes the built-in rule fire; the alert is listed,
//! acknowledged, snoozed and noted; rules, channels and silences are made and removed; bad
//! input names its field under `data` and changes nothing; a viewer reads but is refused
//! (and the refusal audited).

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use jobdeck::model::Role;
use jobdeck::server::alerts::evaluate_due;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::*;

const ROUTE: &str = "/alert-operations";

async fn op(app: &TestApp, client: &reqwest::Client, action: &str, data: Value) -> (u16, Value) {
    call(app, client, ROUTE, action, data).await
}

async fn audited(pool: &PgPool, action: &str, outcome: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1 AND outcome = $2")
        .bind(action)
        .bind(outcome)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn refused_field(body: &Value) -> &str {
    body["field"].as_str().unwrap_or_default()
}

#[sqlx::test]
async fn a_schedule_set_through_the_api_fires_and_the_alert_is_worked_through_it(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let key = "never-reported-export";
    // Neither cron nor period: a run a day, as Healthchecks.io does; no report needed first.
    let (status, body) = op(
        &app,
        &app.client,
        "setSchedule",
        json!({ "job_key": key, "grace_seconds": 60 }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "setSchedule");
    assert_eq!(body["data"]["period_seconds"], 86_400);
    assert_eq!(body["data"]["grace_seconds"], 60);
    assert_eq!(audited(&pool, "setSchedule", "success").await, 1);

    // Bad schedules name their field and store nothing.
    for (data, field) in [
        (json!({ "job_key": key, "cron": "61 * * * *" }), "data.cron"),
        (
            json!({ "job_key": key, "cron": "@daily", "timezone": "Mars/Base" }),
            "data.timezone",
        ),
        (
            json!({ "job_key": key, "period_seconds": 10 }),
            "data.period_seconds",
        ),
        (
            json!({ "job_key": key, "cron": "@daily", "period_seconds": 3600 }),
            "data.cron",
        ),
        (json!({ "job_key": key, "every": 3600 }), "data"),
    ] {
        let (status, body) = op(&app, &app.client, "setSchedule", data.clone()).await;
        assert_eq!(status, 400, "{data}: {body}");
        assert!(refused_field(&body).starts_with(field), "{data}: {body}");
    }
    let period: i32 =
        sqlx::query_scalar("SELECT period_seconds FROM job_schedules WHERE job_key = $1")
            .bind(key)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(period, 86_400, "the refused schedules changed nothing");

    // A day and a minute later with no report, the built-in missed-run rule fires.
    let later = Utc::now() + Duration::days(1) + Duration::seconds(90);
    evaluate_due(&pool, later, StdDuration::from_secs(5))
        .await
        .unwrap();
    let (status, body) = op(
        &app,
        &app.client,
        "listAlerts",
        json!({ "job_key": key, "language": "en" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["total"], 1, "{body}");
    let alert = &body["data"]["alerts"][0];
    assert_eq!(alert["kind"], "missed_run");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["subject"], format!("script:{key}"));
    assert!(
        alert["summary"].as_str().unwrap().contains("no report"),
        "{alert}"
    );
    let target = json!({ "rule_id": alert["rule_id"], "subject": alert["subject"] });

    // A viewer reads, but may not act; the refusal is audited and nothing changes.
    let viewer = app.client_as(Role::Viewer).await;
    let (status, _) = op(&app, &viewer, "listAlerts", json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = op(&app, &viewer, "acknowledgeAlert", target.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(audited(&pool, "acknowledgeAlert", "failure").await, 1);

    let (status, body) = op(&app, &app.client, "acknowledgeAlert", target.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["acknowledged_at"].is_string());
    let (status, body) = op(&app, &app.client, "listAlerts", json!({ "job_key": key })).await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["alerts"][0]["acknowledged_by"].is_string(),
        "{body}"
    );

    let mut snooze = target.clone();
    snooze["duration_seconds"] = json!(0);
    let (status, body) = op(&app, &app.client, "snoozeAlert", snooze.clone()).await;
    assert_eq!(
        (status, refused_field(&body)),
        (400, "data.duration_seconds")
    );
    snooze["duration_seconds"] = json!(3600);
    let (status, body) = op(&app, &app.client, "snoozeAlert", snooze).await;
    assert_eq!(status, 200, "{body}");
    let mut note = target.clone();
    note["body"] = json!("   ");
    let (status, body) = op(&app, &app.client, "noteAlert", note.clone()).await;
    assert_eq!((status, refused_field(&body)), (400, "data.body"));
    note["body"] = json!("vendor SFTP down, retried by hand");
    let (status, body) = op(&app, &app.client, "noteAlert", note).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = op(&app, &app.client, "listAlerts", json!({ "job_key": key })).await;
    assert_eq!(
        body["data"]["alerts"][0]["notes"][0]["body"],
        "vendor SFTP down, retried by hand"
    );
    // An alert that is not there is a conflict, not a success.
    let missing = json!({ "rule_id": alert["rule_id"], "subject": "script:no-such-script" });
    let (status, _) = op(&app, &app.client, "acknowledgeAlert", missing).await;
    assert_eq!(status, 409);

    let (status, body) = op(
        &app,
        &app.client,
        "removeSchedule",
        json!({ "job_key": key }),
    )
    .await;
    assert_eq!(
        (status, body["data"]["removed"].clone()),
        (200, json!(true))
    );
    let (_, body) = op(
        &app,
        &app.client,
        "removeSchedule",
        json!({ "job_key": key }),
    )
    .await;
    assert_eq!(body["data"]["removed"], false);
}

#[sqlx::test]
async fn rules_channels_and_silences_are_managed_through_the_api(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let rule = json!({
        "name": "exports slow", "scope": { "kind": "job_key", "value": "export" },
        "kind": "duration_anomaly", "params": { "max_seconds": 600 },
        "severity": "critical", "repeat_interval": 3600,
    });
    let (status, body) = op(&app, &app.client, "createAlertRule", rule.clone()).await;
    assert_eq!(status, 201, "{body}");
    let created = &body["data"];
    let rule_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["severity"], "critical");
    assert_eq!(created["params"]["max_seconds"].as_f64(), Some(600.0));
    assert!(
        created["params"]["factor"].is_number(),
        "defaults written back: {created}"
    );

    // A parameter the kind does not take, and a rule that could never fire, are refused by
    // name; an update of a rule that is not there is a 404 and creates nothing.
    let mut bad = rule.clone();
    bad["params"] = json!({ "max_seconds": 600, "threshold": 3 });
    let (status, body) = op(&app, &app.client, "createAlertRule", bad).await;
    assert_eq!(
        (status, refused_field(&body)),
        (400, "data.params.threshold"),
        "{body}"
    );
    let mut never = rule.clone();
    never["kind"] = json!("missed_run");
    never["scope"] = json!({ "kind": "job_kind", "value": "batch" });
    never["params"] = json!({});
    let (status, body) = op(&app, &app.client, "createAlertRule", never).await;
    assert_eq!(
        (status, refused_field(&body)),
        (400, "data.scope"),
        "{body}"
    );
    let mut renamed = rule.clone();
    renamed["name"] = json!("exports very slow");
    let stranger = "00000000-0000-4000-8000-000000000001";
    let (status, _) = op(
        &app,
        &app.client,
        "updateAlertRule",
        json!({ "rule_id": stranger, "rule": renamed.clone() }),
    )
    .await;
    assert_eq!(status, 404);
    let mut blank = renamed.clone();
    blank["name"] = json!("");
    let (status, body) = op(
        &app,
        &app.client,
        "updateAlertRule",
        json!({ "rule_id": rule_id, "rule": blank }),
    )
    .await;
    assert_eq!((status, refused_field(&body)), (400, "data.rule.name"));
    let (status, body) = op(
        &app,
        &app.client,
        "updateAlertRule",
        json!({ "rule_id": rule_id, "rule": renamed }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["name"], "exports very slow");
    assert_eq!(
        count(&pool, "alert_rules").await,
        3,
        "two built-in and ours"
    );

    // A webhook channel's secret is answered once; a viewer sees the host only.
    let channel = json!({
        "name": "ops", "kind": "webhook",
        "target": "https://hooks.example.com/jobdeck/T0123/secret-path", "language": "en",
    });
    let (status, body) = op(&app, &app.client, "createAlertChannel", channel.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["data"]["secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let channel_id = body["data"]["id"].clone();
    let (status, _) = op(&app, &app.client, "createAlertChannel", channel).await;
    assert_eq!(status, 409, "the name is taken");
    let viewer = app.client_as(Role::Viewer).await;
    let (status, body) = op(&app, &viewer, "listAlertSettings", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let settings = body["data"].to_string();
    assert!(settings.contains("hooks.example.com"), "{settings}");
    assert!(!settings.contains("secret-path"), "{settings}");
    assert_eq!(body["data"]["may_edit"], false);
    let (status, _) = op(
        &app,
        &viewer,
        "deleteAlertChannel",
        json!({ "channel_id": channel_id }),
    )
    .await;
    assert_eq!(status, 403);

    // Send test to a receiver that is not there: 422 saying why, audited once as a failure.
    let closed =
        json!({ "name": "closed", "kind": "webhook", "target": "http://127.0.0.1:9/hook" });
    let (status, body) = op(&app, &app.client, "createAlertChannel", closed).await;
    assert_eq!(status, 201, "{body}");
    let closed_id = body["data"]["id"].clone();
    let (status, body) = op(
        &app,
        &app.client,
        "testAlertChannel",
        json!({ "channel_id": closed_id }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not delivered"),
        "{body}"
    );
    assert_eq!(audited(&pool, "testAlertChannel", "failure").await, 1);

    // A silence by kind, then ended; too long a silence is refused.
    let (status, body) = op(
        &app,
        &app.client,
        "createSilence",
        json!({ "scope": { "kind": "job_kind", "value": "script" }, "duration_seconds": 91 * 86_400 }),
    )
    .await;
    assert_eq!(
        (status, refused_field(&body)),
        (400, "data.duration_seconds")
    );
    let (status, body) = op(
        &app,
        &app.client,
        "createSilence",
        json!({ "scope": { "kind": "job_kind", "value": "script" }, "duration_seconds": 7200, "reason": "maintenance" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let silence_id = body["data"]["silence_id"].clone();
    let (_, body) = op(&app, &app.client, "listAlertSettings", json!({})).await;
    assert_eq!(body["data"]["silences"][0]["reason"], "maintenance");
    let (status, _) = op(
        &app,
        &app.client,
        "endSilence",
        json!({ "silence_id": silence_id }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = op(
        &app,
        &app.client,
        "endSilence",
        json!({ "silence_id": silence_id }),
    )
    .await;
    assert_eq!(status, 404, "ended already");

    let (status, _) = op(
        &app,
        &app.client,
        "deleteAlertChannel",
        json!({ "channel_id": channel_id }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = op(
        &app,
        &app.client,
        "deleteAlertRule",
        json!({ "rule_id": rule_id }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = op(
        &app,
        &app.client,
        "deleteAlertRule",
        json!({ "rule_id": rule_id }),
    )
    .await;
    assert_eq!(status, 404);
    for action in [
        "createAlertRule",
        "updateAlertRule",
        "deleteAlertRule",
        "createAlertChannel",
        "deleteAlertChannel",
        "createSilence",
        "endSilence",
    ] {
        assert!(
            audited(&pool, action, "success").await >= 1,
            "{action} audited"
        );
    }
    assert_eq!(
        audited(&pool, "deleteAlertChannel", "failure").await,
        1,
        "the viewer's refusal"
    );
}

/// The rule form on `/alerts` ticks channels as `channel_ids[]`: several, or none.
#[sqlx::test]
async fn the_rule_form_takes_several_channels_or_none(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let mut ids = Vec::new();
    for name in ["ops", "oncall"] {
        let channel =
            json!({ "name": name, "kind": "slack", "target": "https://hooks.example.com/x" });
        let (status, body) = op(&app, &app.client, "createAlertChannel", channel).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["data"]["id"].as_str().unwrap().to_string());
    }
    let operator = app.session_client(Role::Operator).await;
    let post = |name: &'static str, channels: Vec<String>| {
        let mut form: Vec<(&str, String)> = vec![
            ("name", name.into()),
            ("scope_kind", "job_kind".into()),
            ("scope_value", "script".into()),
            ("kind", "failure_rate".into()),
            ("params", r#"{"consecutive": 2}"#.into()),
            ("pending_for", "0".into()),
            ("min_runs", "0".into()),
            ("severity", "warning".into()),
            ("repeat_minutes", "".into()),
        ];
        form.extend(channels.into_iter().map(|id| ("channel_ids[]", id)));
        operator
            .post(app.url("/api/alerts/rule"))
            .form(&form)
            .send()
    };
    assert_eq!(post("both", ids.clone()).await.unwrap().status(), 200);
    assert_eq!(post("neither", vec![]).await.unwrap().status(), 200);
    let channels = |name: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM alert_rule_channels c JOIN alert_rules r ON r.id = c.rule_id
                 WHERE r.name = $1",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(channels("both").await, 2);
    assert_eq!(channels("neither").await, 0);
}
