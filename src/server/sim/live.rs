//! `jobdeck sim`: live data through the HTTP APIs only, as real pipelines and scripts would
//! send it. Recap jobs go through seed 002's eight stages with genre tasks, article and
//! cluster counts, articles with feeds and users, and now and then a failure with a
//! realistic code; a few scripts report to the webhook. A job an operator pauses waits,
//! one cancelled or deleted is dropped.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{GENRES, STAGE_SECS};
use crate::model::{Call, JobCall, TaskCall, RECAP_STAGES};
use crate::server::client::{CallError, OpsClient};

pub struct LiveOptions {
    pub url: String,
    pub token: String,
    /// The webhook secret, for the scripts; without it no script reports.
    pub webhook_secret: Option<String>,
    /// Recap jobs running at once.
    pub concurrency: usize,
    /// 1.0 runs stages at their realistic pace (a job takes about a minute); 10.0 is ten
    /// times faster.
    pub speed: f64,
    /// Stop after this many jobs (forever when `None`).
    pub jobs: Option<usize>,
    /// One job in this many fails at a random stage; 0: none fails.
    pub fail_every: u32,
    /// `jobdeck worker` processes to start for dispatched demo jobs; 0: no dispatched work.
    pub workers: usize,
}

const FAILURES: [(&str, &str); 3] = [
    ("TIMEOUT", "feed fetch timed out after 30s"),
    ("RATE_LIMITED", "summariser answered 429; retry after 60s"),
    ("PARSE_ERROR", "unexpected token in feed XML at line 212"),
];
const SCRIPTS: [(&str, &str); 3] = [
    ("nightly-backup", "Nightly database backup"),
    ("minpaku-in-report", "minpaku-IN レポート作成"),
    ("feed-crawler", "Feed crawler"),
];

pub type SimError = CallError;

struct Api {
    client: reqwest::Client,
    ops: OpsClient,
    options: LiveOptions,
}

impl Api {
    async fn call(&self, call: impl Into<Call>, data: Value) -> Result<Value, SimError> {
        self.ops.call(call, data).await
    }

    async fn report_script(&self, rng: &mut StdRng) {
        let Some(secret) = &self.options.webhook_secret else {
            return;
        };
        let (key, title) = SCRIPTS[rng.random_range(0..SCRIPTS.len())];
        let failed = rng.random_ratio(1, 6);
        let report = json!({
            "job_key": key,
            "title": title,
            "status": if failed { "error" } else { "success" },
            "finished_at": chrono::Utc::now().to_rfc3339(),
            "duration_ms": rng.random_range(800..90_000),
            "message": if failed { "exit status 1: disk quota exceeded" } else { "ok" },
        });
        let sent = self
            .client
            .post(format!("{}/api/monitor/job-report", self.options.url))
            .header("X-TC-Portal-Webhook-Secret", secret)
            .json(&report)
            .send()
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "script report failed");
        }
    }
}

pub async fn run(options: LiveOptions) -> Result<(), SimError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let api = std::sync::Arc::new(Api {
        ops: OpsClient::new(client.clone(), &options.url, &options.token),
        client,
        options,
    });
    // Kept until the simulator ends: dropping them stops the workers.
    let _workers = if api.options.workers > 0 {
        let workers = super::dispatched::spawn_workers(
            &api.options.url,
            &api.options.token,
            api.options.workers,
        )
        .map_err(|e| std::io::Error::other(format!("cannot start workers: {e}")));
        match workers {
            Ok(workers) => {
                tokio::spawn(super::dispatched::create_jobs(
                    api.ops.clone(),
                    20.0,
                    api.options.speed,
                    api.options.fail_every,
                ));
                Some(workers)
            }
            Err(error) => {
                tracing::warn!(%error, "no dispatched demo jobs");
                None
            }
        }
    } else {
        None
    };
    let mut started = 0usize;
    let mut running = tokio::task::JoinSet::new();
    let mut rng = StdRng::from_os_rng();
    loop {
        while running.len() < api.options.concurrency
            && api.options.jobs.is_none_or(|n| started < n)
        {
            let job_api = api.clone();
            let seed = rng.random();
            running.spawn(async move { recap_job(&job_api, StdRng::seed_from_u64(seed)).await });
            started += 1;
            pause(&api, 1.5).await;
        }
        match running.join_next().await {
            None => return Ok(()),
            Some(Ok(Err(error))) => tracing::warn!(%error, "a simulated job stopped"),
            Some(_) => {}
        }
        api.report_script(&mut rng).await;
    }
}

async fn pause(api: &Api, secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs / api.options.speed.max(0.01))).await;
}

/// A refusal that means "an operator stopped this job": cancelled (409) or deleted (410).
fn stopped(error: &SimError) -> bool {
    matches!(error.status(), Some(409 | 410))
}

async fn recap_job(api: &Api, mut rng: StdRng) -> Result<(), SimError> {
    let user = format!("user-{}", rng.random_range(1..500));
    let job = api
        .call(
            JobCall::CreateJob,
            json!({
                "kind": "recap",
                "user_id": user,
                "trigger_source": if rng.random_ratio(4, 5) { "system" } else { "user" },
                "priority": rng.random_range(3..=8),
                "max_parallel_tasks": 3,
            }),
        )
        .await?;
    let id = job["id"].clone();
    let genres: Vec<&str> = GENRES
        .iter()
        .copied()
        .filter(|_| rng.random_ratio(2, 3))
        .collect();
    let genres = if genres.is_empty() {
        vec!["tech"]
    } else {
        genres
    };
    let tasks: Vec<Value> = genres
        .iter()
        .map(|g| json!({ "name": g, "payload": { "genre": g } }))
        .collect();
    api.call(TaskCall::AddTasks, json!({ "job_id": id, "tasks": tasks }))
        .await?;
    let fails = api.options.fail_every > 0 && rng.random_ratio(1, api.options.fail_every);
    let fail_at = fails.then(|| rng.random_range(0..RECAP_STAGES.len()));
    let result = drive(api, &mut rng, &id, &genres, fail_at).await;
    match result {
        Err(error) if stopped(&error) => Ok(()),
        other => other,
    }
}

async fn drive(
    api: &Api,
    rng: &mut StdRng,
    id: &Value,
    genres: &[&str],
    fail_at: Option<usize>,
) -> Result<(), SimError> {
    let errors = 0;
    for (i, stage) in RECAP_STAGES.iter().enumerate() {
        // The first stage starts the run; later ones only report, so a report never resumes
        // a job an operator paused (this token may be an operator's).
        let mut report = json!({ "job_id": id, "detailed_status": {
            "current_phase": stage,
            "progress_percentage": (i * 100 / RECAP_STAGES.len()) as f64,
            "active_tasks": if *stage == "Genre" { genres.len() } else { 1 },
            "error_count": errors,
        }});
        if i == 0 {
            report["status"] = json!("running");
        }
        // Paused by an operator: report again until it is resumed (or cancelled, which ends
        // the job with a 409).
        loop {
            let answer = api.call(JobCall::UpdateBatchJob, report.clone()).await?;
            if answer["status"] != "paused" {
                break;
            }
            pause(api, 2.0).await;
        }
        if *stage == "Fetch" {
            let articles: Vec<Value> = (0..rng.random_range(50..200))
                .map(|_| {
                    json!({
                        "feed_id": format!("feed-{}", rng.random_range(1..40)),
                        "original_user_id": format!("user-{}", rng.random_range(1..500)),
                        "genre": genres[rng.random_range(0..genres.len())],
                    })
                })
                .collect();
            api.call(
                TaskCall::RecordArticles,
                json!({ "job_id": id, "articles": articles }),
            )
            .await?;
        }
        if *stage == "Genre" {
            let running: Vec<Value> = genres
                .iter()
                .map(|g| json!({ "name": g, "status": "running" }))
                .collect();
            api.call(
                TaskCall::UpdateTasks,
                json!({ "job_id": id, "tasks": running }),
            )
            .await?;
        }
        let secs = f64::from(STAGE_SECS[i]) * rng.random_range(0.6..1.4);
        pause(api, secs).await;
        if fail_at == Some(i) {
            let (code, message) = FAILURES[rng.random_range(0..FAILURES.len())];
            // A pipeline that gives up closes its genres: the one that broke fails, the
            // others are cancelled (after the Genre stage they are all completed already).
            let genre_stage = RECAP_STAGES.iter().position(|s| *s == "Genre").unwrap_or(0);
            if i <= genre_stage {
                let tasks: Vec<Value> = genres
                    .iter()
                    .enumerate()
                    .map(|(n, genre)| {
                        if n == 0 && i == genre_stage {
                            json!({ "name": genre, "status": "failed", "message": message,
                                    "error_details": { "code": code, "message": message } })
                        } else {
                            json!({ "name": genre, "status": "cancelled" })
                        }
                    })
                    .collect();
                api.call(
                    TaskCall::UpdateTasks,
                    json!({ "job_id": id, "tasks": tasks }),
                )
                .await?;
            }
            api.call(
                JobCall::UpdateBatchJob,
                json!({ "job_id": id, "status": "failed",
                        "error_details": { "code": code, "message": message, "stack": format!("at recap::{}::run", stage.to_lowercase()) } }),
            )
            .await?;
            return Ok(());
        }
        if *stage == "Genre" {
            let done: Vec<Value> = genres
                .iter()
                .map(|g| {
                    let articles = rng.random_range(20..400);
                    json!({ "name": g, "status": "completed", "articles": articles,
                            "clusters": articles / rng.random_range(5..15),
                            "message": format!("{g}: {articles} articles clustered") })
                })
                .collect();
            api.call(
                TaskCall::UpdateTasks,
                json!({ "job_id": id, "tasks": done }),
            )
            .await?;
        }
    }
    api.call(
        JobCall::UpdateBatchJob,
        json!({ "job_id": id, "status": "completed", "detailed_status": {
            "current_phase": "Persist", "progress_percentage": 100.0, "active_tasks": 0, "error_count": errors }}),
    )
    .await?;
    Ok(())
}
