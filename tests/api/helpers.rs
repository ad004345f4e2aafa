//! The real app on a random port, over its own `#[sqlx::test]` database.

use std::time::Duration;

use jobdeck::server::config::WebhookSecret;
use jobdeck::server::job_report::BatchOptions;
use jobdeck::server::{app_state, http::router};
use leptos::config::LeptosOptions;
use serde_json::{json, Value};
use sqlx::PgPool;

pub const SECRET: &str = "test-secret-4f9c2a";
pub const SECRET_HEADER: &str = "X-TC-Portal-Webhook-Secret";

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, Some(SECRET), BatchOptions::default()).await
    }

    pub async fn spawn_with(pool: PgPool, secret: Option<&str>, batch: BatchOptions) -> Self {
        let options = LeptosOptions::builder().output_name("jobdeck").build();
        let state = app_state(pool, options, secret.and_then(WebhookSecret::new), batch);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            base_url: format!("http://{addr}"),
            client,
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

pub async fn body_json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}
