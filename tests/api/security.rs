//! The holes a security read found, each shown closed over real HTTP: a login flood, a
//! demoted owner's token, a password that must change first, addresses from proxies, the
//! cookie and headers under https, and bodies that are not JSON.

use std::collections::HashMap;

use jobdeck::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::*;

async fn wrong_password(app: &TestApp, email: &str) -> reqwest::Response {
    app.anonymous
        .post(app.url("/login"))
        .json(&json!({ "email": email, "password": "not the password" }))
        .send()
        .await
        .expect("login")
}

async fn failures_recorded(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'login' AND outcome = 'failure'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// 500 wrong passwords at once: the gate (one Argon2 per core) answers most with 503 and
/// `Retry-After` before hashing, and the ones it lets through are counted one after the
/// other, so no more than the limit's ten are ever checked.
#[sqlx::test]
async fn a_login_flood_gets_at_most_the_limits_guesses(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let email = app.user(Role::Admin).await;
    let answers = futures::future::join_all((0..500).map(|_| wrong_password(&app, &email))).await;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for answer in &answers {
        *statuses.entry(answer.status().as_u16()).or_default() += 1;
        if answer.status() == 503 {
            assert_eq!(answer.headers()["retry-after"], "1");
        }
    }
    assert!(
        statuses.keys().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&503).copied().unwrap_or(0) > 0,
        "the gate was never full: {statuses:?}"
    );
    let guesses = statuses.get(&401).copied().unwrap_or(0);
    assert!((1..=10).contains(&guesses), "{statuses:?}");
    assert_eq!(failures_recorded(&pool).await, guesses as i64);
}

/// With room for 32 password checks at once, 200 concurrent guesses still get ten: the
/// count and the record are atomic under the account's and the address's locks.
#[sqlx::test]
async fn concurrent_guesses_are_counted_one_after_the_other(pool: PgPool) {
    let mut config = test_config();
    config.accounts.login_concurrency = 32;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let email = app.user(Role::Viewer).await;
    let answers = futures::future::join_all((0..200).map(|_| wrong_password(&app, &email))).await;
    let wrong = answers.iter().filter(|a| a.status() == 401).count();
    let limited = answers.iter().filter(|a| a.status() == 429).count();
    assert_eq!(wrong, 10, "{limited} limited");
    assert_eq!(failures_recorded(&pool).await, 10);
    // The right password now waits out the window too.
    let right = app
        .anonymous
        .post(app.url("/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
}

/// What was typed into a failed login's email field is kept nowhere.
#[sqlx::test]
async fn a_failed_login_records_no_typed_email(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let typed = "someone-typed-their-password-here@example.com";
    assert_eq!(wrong_password(&app, typed).await.status(), 401);
    let rows: Vec<(String, Option<String>, Value)> =
        sqlx::query_as("SELECT actor, target, details FROM audit_events WHERE action = 'login'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (actor, target, details) = &rows[0];
    assert_eq!(
        (actor.as_str(), target.as_deref()),
        ("unknown account", None)
    );
    assert!(!details.to_string().contains("someone"), "{details}");
    assert_eq!(details["client_net"], "127.0.0.1");
}

/// A token does no more than its owner may now: demoting the owner stops an operator token
/// at once on this portal (the cache is cleared), not `CACHE_TTL` later. The token's
/// actions are audited with its owner.
#[sqlx::test]
async fn a_demoted_owners_token_is_refused_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let owner_email = app.user(Role::Operator).await;
    let cookie = app.session(&owner_email).await;
    let owner = reqwest::Client::builder()
        .default_headers(
            [
                ("cookie", cookie.parse().unwrap()),
                ("origin", app.base_url.parse().unwrap()),
            ]
            .into_iter()
            .map(|(k, v): (&str, reqwest::header::HeaderValue)| (k.parse().unwrap(), v))
            .collect(),
        )
        .build()
        .unwrap();
    let created = owner
        .post(app.url("/api/tokens/create"))
        .form(&[("name", "ci"), ("role", "operator")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let token = body_json(created).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let with_token = |action: &str, data: Value| {
        reqwest::Client::new()
            .post(app.url("/job-operations"))
            .bearer_auth(&token)
            .json(&json!({ "action": action, "data": data }))
            .send()
    };
    let job = json!({ "product_id": "p", "sending_group_id": "g" });
    assert_eq!(
        with_token("createJob", job.clone()).await.unwrap().status(),
        201
    );
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM audit_events WHERE action = 'createJob' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(actor, format!("token:ci ({owner_email})"));

    let owner_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&owner_email)
        .fetch_one(&pool)
        .await
        .unwrap();
    let admin = app.session_client(Role::Admin).await;
    let demoted = admin
        .post(app.url("/api/admin/users/update"))
        .form(&[("id", owner_id.to_string()), ("role", "viewer".into())])
        .send()
        .await
        .unwrap();
    assert!(
        demoted.status().is_success() || demoted.status().is_redirection(),
        "{}",
        demoted.status()
    );
    assert_eq!(with_token("createJob", job).await.unwrap().status(), 401);
}

/// A user whose password was set by someone else can read, change the password and sign
/// out; anything else that writes is refused.
#[sqlx::test]
async fn a_password_that_must_change_refuses_every_other_write(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let email = app.user(Role::Operator).await;
    sqlx::query("UPDATE users SET must_change_password = true WHERE email = $1")
        .bind(&email)
        .execute(&pool)
        .await
        .unwrap();
    let cookie = app.session(&email).await;
    let post = |path: &str| {
        app.anonymous
            .post(app.url(path))
            .header("cookie", &cookie)
            .header("origin", &app.base_url)
    };
    let create = post("/job-operations")
        .json(&json!({ "action": "createJob", "data": { "product_id": "p", "sending_group_id": "g" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 403);
    let tokens = post("/api/tokens/create")
        .form(&[("name", "x"), ("role", "viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), 403);
    let read = app
        .anonymous
        .get(app.url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let changed = post("/api/account/password")
        .form(&[("current", PASSWORD), ("new", "a brand new password")])
        .send()
        .await
        .unwrap();
    assert!(
        changed.status().is_success() || changed.status().is_redirection(),
        "{}",
        changed.status()
    );
    let must: bool = sqlx::query_scalar("SELECT must_change_password FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!must);
}

/// A session ends `JOBDECK_SESSION_MAX_DAYS` after its login however much it is used.
#[sqlx::test]
async fn a_session_ends_a_week_after_login(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let cookie = app.session(&app.user(Role::Viewer).await).await;
    let me = || {
        app.anonymous
            .get(app.url("/api/me"))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(me().await.unwrap().status(), 200);
    sqlx::query("UPDATE sessions SET created_at = now() - interval '7 days 1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(me().await.unwrap().status(), 401);
}

/// Behind `JOBDECK_PUBLIC_URL=https://...` the cookie is `__Host-` and `Secure`, and every
/// answer tells browsers to keep to https.
#[sqlx::test]
async fn under_https_the_cookie_is_host_only_and_hsts_is_sent(pool: PgPool) {
    let mut config = test_config();
    config.accounts.public_origin = Some("https://jobdeck.example".into());
    let app = TestApp::spawn_with(pool, config).await;
    let email = app.user(Role::Viewer).await;
    let login = app
        .anonymous
        .post(app.url("/login"))
        .header("origin", "https://jobdeck.example")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-jobdeck_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert_eq!(
        login.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let health = app.anonymous.get(app.url("/healthz")).send().await.unwrap();
    assert!(health.headers().contains_key("strict-transport-security"));
}

/// Without `JOBDECK_PUBLIC_URL` the site is the request's own scheme and Host: an https
/// origin does not match a plain-HTTP portal, and `/lang` is guarded like every form.
#[sqlx::test]
async fn the_origin_must_match_scheme_and_host_and_lang_is_guarded(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let host = app.base_url.trim_start_matches("http://").to_string();
    let lang = |origin: String| {
        app.anonymous
            .post(app.url("/lang"))
            .header("origin", origin)
            .form(&[("to", "en")])
            .send()
    };
    assert_eq!(lang(format!("https://{host}")).await.unwrap().status(), 403);
    assert_eq!(
        lang("http://evil.example".into()).await.unwrap().status(),
        403
    );
    assert_eq!(lang(format!("http://{host}")).await.unwrap().status(), 303);
}

/// `{action, data}` bodies are JSON or nothing: a form or text body is 415 and changes nothing.
#[sqlx::test]
async fn an_operation_body_must_be_json(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let body =
        json!({ "action": "createJob", "data": { "product_id": "p", "sending_group_id": "g" } });
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let response = app
            .client
            .post(app.url("/job-operations"))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        assert_eq!(body_json(response).await["field"], "Content-Type");
    }
    assert_eq!(count(&pool, "jobs").await, 0);
    let json = app
        .client
        .post(app.url("/job-operations"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 201);
}

/// `X-Forwarded-For` names the client only when the peer is a trusted proxy.
#[sqlx::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies(pool: PgPool) {
    for (trusted, expected) in [("", "127.0.0.1"), ("127.0.0.1", "198.51.100.7")] {
        let mut config = test_config();
        config.accounts.trusted_proxies =
            jobdeck::server::http::client_addr::TrustedProxies::parse(trusted).unwrap();
        let app = TestApp::spawn_with(pool.clone(), config).await;
        let response = app
            .anonymous
            .post(app.url("/login"))
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({ "email": "nobody@example.com", "password": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let addr: Option<String> = sqlx::query_scalar(
            "SELECT client_addr FROM audit_events WHERE action = 'login' ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(addr.as_deref(), Some(expected), "trusted {trusted:?}");
    }
}

/// A job has at most 10,000 tasks, however many calls add them.
#[sqlx::test]
async fn a_job_holds_at_most_ten_thousand_tasks(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let op = |route: &'static str, action: &'static str, data: Value| {
        app.client
            .post(app.url(route))
            .json(&json!({ "action": action, "data": data }))
            .send()
    };
    let created = op(
        "/job-operations",
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g" }),
    )
    .await
    .unwrap();
    let job = body_json(created).await["data"]["id"].clone();
    for call in 0..10 {
        let tasks: Vec<Value> = (0..1000)
            .map(|i| json!({ "name": format!("t{call}-{i}") }))
            .collect();
        let added = op(
            "/task-operations",
            "addTasks",
            json!({ "job_id": job, "tasks": tasks }),
        )
        .await
        .unwrap();
        assert_eq!(added.status(), 201, "call {call}");
    }
    let one_more = op(
        "/task-operations",
        "addTasks",
        json!({ "job_id": job, "tasks": [{ "name": "last" }] }),
    )
    .await
    .unwrap();
    assert_eq!(one_more.status(), 400);
    let body = body_json(one_more).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 10000 tasks"),
        "{body}"
    );
    assert_eq!(count(&pool, "job_tasks").await, 10_000);
}
