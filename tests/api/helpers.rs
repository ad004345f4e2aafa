//! The real app on a random port, over its own `#[sqlx::test]` database.

use std::time::Duration;

use jobdeck::model::Role;
use jobdeck::server::accounts::password::Password;
use jobdeck::server::accounts::tokens::{self, Granter, NewToken};
use jobdeck::server::accounts::users::{self, NewUser};
use jobdeck::server::audit::Actor;
use jobdeck::server::config::Config;
use jobdeck::server::http::{router, serve, with_limits};
use jobdeck::server::startup::start_services;
use jobdeck::server::AppState;
use leptos::config::LeptosOptions;
use serde_json::{json, Value};
use sqlx::PgPool;

pub const SECRET: &str = "test-secret-4f9c2a";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";
pub const SECRET_HEADER: &str = "X-TC-Portal-Webhook-Secret";

pub struct TestApp {
    pub base_url: String,
    /// Signed in: sends an admin's bearer token (once the database is up).
    pub client: reqwest::Client,
    /// No identity at all.
    pub anonymous: reqwest::Client,
    pub state: AppState,
}

fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// The configuration a deployment would read, with the test's secret.
/// Finished jobs, reports and rollups are kept for good, so the app's own maintenance pass
/// never deletes a test's fixed-date history while it runs (the retention tests pass their
/// own settings to `maintain`).
pub fn test_config() -> Config {
    let mut config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some("postgres://given-by-the-test".into()),
        "TC_PORTAL_WEBHOOK_SECRET" => Some(SECRET.into()),
        _ => None,
    })
    .expect("test configuration");
    let forever = jobdeck::server::monitoring::Retention::MAX_DAYS;
    config.retention.succeeded_job_days = forever;
    config.retention.failed_job_days = forever;
    config.retention.report_days = forever;
    config.retention.rollup_days = forever;
    // The alert tests judge rules on a clock of their own (`alerts::evaluate_due`).
    config.alerts.evaluate_every = Duration::ZERO;
    config
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, test_config()).await
    }

    /// The app as `startup` builds it (same state, services, limits and accept loop), once
    /// its database is migrated.
    pub async fn spawn_with(pool: PgPool, config: Config) -> Self {
        let mut app = Self::spawn_unready(pool, config).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !app.state.readiness.is_ready() {
            assert!(std::time::Instant::now() < deadline, "never became ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let token = app.token(Role::Admin).await;
        app.client = client_with(Some(&token));
        app
    }

    /// A new live token of `role`, as `jobdeck token create` makes one.
    pub async fn token(&self, role: Role) -> String {
        let name = format!("test-{}-{}", role, unique());
        let new = NewToken::new(&name, role, None).expect("token");
        tokens::create_token(&self.state.pool, &Granter::cli(), new)
            .await
            .expect("create token")
            .token
    }

    /// A client that sends a new token of `role`.
    pub async fn client_as(&self, role: Role) -> reqwest::Client {
        client_with(Some(&self.token(role).await))
    }

    /// A new user of `role` with a known password; returns its email.
    pub async fn user(&self, role: Role) -> String {
        let email = format!("{}-{}@example.com", role, unique());
        let new = NewUser::new(
            &email,
            Some("Test User"),
            role,
            Password::new(PASSWORD.into()).unwrap(),
        )
        .expect("user");
        users::create_user(&self.state.pool, &Actor::cli(), new)
            .await
            .expect("create user");
        email
    }

    /// Signs in with the form as a browser would; returns the session cookie (`name=value`).
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.anonymous
            .post(format!("{}/login", self.base_url))
            .form(&[
                ("email", email),
                ("password", password),
                ("next", "/incidents"),
            ])
            .send()
            .await
            .expect("login")
    }

    pub async fn session(&self, email: &str) -> String {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 303, "login of {email}");
        session_cookie(&response).expect("a session cookie")
    }

    /// A browser-like client signed in as a new user of `role` (cookie and Origin).
    pub async fn session_client(&self, role: Role) -> reqwest::Client {
        let email = self.user(role).await;
        let cookie = self.session(&email).await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        headers.insert("origin", self.base_url.parse().unwrap());
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The same, without waiting for the database.
    pub async fn spawn_unready(pool: PgPool, config: Config) -> Self {
        let options = LeptosOptions::builder().output_name("jobdeck").build();
        Self::spawn_unready_with(pool, config, options).await
    }

    /// Serving the site folder and settings of `options`.
    pub async fn spawn_site(pool: PgPool, options: LeptosOptions) -> Self {
        Self::spawn_unready_with(pool, test_config(), options).await
    }

    async fn spawn_unready_with(pool: PgPool, config: Config, options: LeptosOptions) -> Self {
        let state = AppState::build(pool, options, &config);
        start_services(&state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = with_limits(router(state.clone()), &config.http);
        tokio::spawn(serve(listener, app, config.http, std::future::pending()));
        Self {
            base_url: format!("http://{addr}"),
            client: client_with(None),
            anonymous: client_with(None),
            state,
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/api/monitor/job-report", self.base_url)
    }

    /// Posts a raw body with the right secret.
    pub async fn post_body(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.webhook_url())
            .header(SECRET_HEADER, SECRET)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn report(&self, report: &Value) -> reqwest::Response {
        self.post_body(report.to_string()).await
    }
}

/// A valid report; tests override fields with [`with`].
pub fn report(job_key: &str, status: &str, finished_at: &str) -> Value {
    json!({
        "job_key": job_key,
        "title": format!("{job_key} のタイトル"),
        "status": status,
        "finished_at": finished_at,
        "message": null,
    })
}

pub fn with(mut report: Value, field: &str, value: Value) -> Value {
    report[field] = value;
    report
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// `{action, data}` on `route` (`/job-operations`, `/task-operations`) as `client`: the
/// status and the JSON body.
pub async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    route: &str,
    action: &str,
    data: Value,
) -> (u16, Value) {
    let response = client
        .post(app.url(route))
        .json(&json!({ "action": action, "data": data }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, body_json(response).await)
}

pub async fn job_op(app: &TestApp, action: &str, data: Value) -> (u16, Value) {
    call(app, &app.client, "/job-operations", action, data).await
}

pub async fn body_json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Takes an exclusive lock on `job_status` until the transaction ends: every report written
/// meanwhile waits, provably in flight.
pub async fn lock_job_status(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE job_status IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock job_status");
    lock
}

/// Waits until a statement is blocked on a lock in this database.
pub async fn wait_for_lock_waiter(pool: &PgPool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no statement ever waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `jobdeck_session=...` from a response's Set-Cookie, if it sets a live one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with("jobdeck_session=") && pair.len() > "jobdeck_session=".len())
        .map(str::to_string)
}

/// A short value no other call in this process returns.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
