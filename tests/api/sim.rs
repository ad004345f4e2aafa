//! `jobdeck sim`: the bulk history's counts and distributions, and live jobs through HTTP.

use jobdeck::model::Role;
use jobdeck::server::sim::{bulk, live};
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn bulk_history_has_the_documented_counts_and_distributions(pool: PgPool) {
    let counts = bulk::bulk(&pool, 20_000, 7).await.unwrap();
    assert_eq!(counts.jobs, 20_000);
    assert_eq!(count(&pool, "jobs").await, 20_000);
    assert_eq!(count(&pool, "job_events").await as u64, counts.events);
    assert_eq!(count(&pool, "job_errors").await as u64, counts.errors);
    assert_eq!(count(&pool, "job_phases").await as u64, counts.phases);
    assert_eq!(
        count(&pool, "recap_job_articles").await as u64,
        counts.articles
    );
    // A completed recap job ran all eight stages back to back, ending when it did.
    let (broken_runs,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM jobs j
         WHERE j.kind = 'recap' AND j.status = 'completed' AND j.created_at > now() - interval '29 days'
           AND ((SELECT count(*) FROM job_phases p WHERE p.job_id = j.id) <> 8
                OR (SELECT max(finished_at) FROM job_phases p WHERE p.job_id = j.id) <> j.finished_at)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(broken_runs, 0);

    let share = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            n as f64 / 20_000.0
        }
    };
    let near = |got: f64, want: f64| (got - want).abs() < 0.015;
    assert!(near(
        share("SELECT count(*) FROM jobs WHERE kind = 'recap'").await,
        0.70
    ));
    assert!(near(
        share("SELECT count(*) FROM jobs WHERE status = 'completed'").await,
        0.85
    ));
    assert!(near(
        share("SELECT count(*) FROM jobs WHERE status = 'failed'").await,
        0.08
    ));
    assert!(near(
        share("SELECT count(*) FROM job_errors WHERE code = 'TIMEOUT'").await,
        0.08 * 0.4
    ));
    // Every job's trail is a legal chain: it starts at creation, each step leaves from where
    // the last one arrived along an edge of the documented state machine, and the last one
    // arrives at the job's status. Every job has one.
    let broken: i64 = sqlx::query_scalar(
        "WITH e AS (
             SELECT job_id, from_status, to_status,
                    lag(to_status) OVER w AS prev, row_number() OVER w AS n,
                    row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS from_end
             FROM job_events WINDOW w AS (PARTITION BY job_id ORDER BY id))
         SELECT (SELECT count(*) FROM e WHERE
                    (n = 1 AND (from_status IS NOT NULL OR to_status <> 'pending'))
                 OR (n > 1 AND (from_status IS DISTINCT FROM prev
                     OR (from_status, to_status) NOT IN (VALUES
                         ('pending', 'running'), ('pending', 'cancelled'), ('running', 'completed'),
                         ('running', 'failed'), ('running', 'cancelled'), ('running', 'paused'),
                         ('paused', 'running'), ('paused', 'cancelled'), ('failed', 'pending')))))
              + (SELECT count(*) FROM jobs j
                 WHERE NOT EXISTS (SELECT 1 FROM e WHERE e.job_id = j.id AND e.from_end = 1
                                                     AND e.to_status = j.status))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(broken, 0);
    // A year of history, and the schema's own checks held for every row.
    let (oldest_days, newest_days): (f64, f64) = sqlx::query_as(
        "SELECT (extract(epoch FROM now() - min(created_at)) / 86400)::float8,
                (extract(epoch FROM now() - max(created_at)) / 86400)::float8 FROM jobs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        oldest_days > 360.0 && newest_days < 2.0,
        "{oldest_days} {newest_days}"
    );

    // The jobs page over this history: newest first, 50 per page, by key.
    let app = TestApp::spawn(pool.clone()).await;
    let body = app
        .client
        // The whole year, not the last week the page shows without a day.
        .get(app.url(&format!(
            "/jobs?status=failed&kind=recap&from={}",
            (chrono::Utc::now() - chrono::Duration::days(400)).format("%Y-%m-%d")
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.matches("data-job-id=").count(), 50);
    assert!(body.contains("rel=\"next\""));
    assert!(body.len() < 200_000, "{} bytes", body.len());
}

#[sqlx::test]
async fn the_live_simulator_runs_recap_jobs_through_the_apis(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    live::run(live::LiveOptions {
        url: app.base_url.clone(),
        token: app.token(Role::Operator).await,
        webhook_secret: Some(SECRET.into()),
        concurrency: 2,
        speed: 2_000.0,
        jobs: Some(4),
        fail_every: 8,
        workers: 0,
    })
    .await
    .unwrap();
    let finished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'recap' AND status IN ('completed', 'failed')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(finished, 4);
    assert!(count(&pool, "recap_job_articles").await >= 4 * 50);
    assert!(count(&pool, "job_phases").await >= 4);
    assert!(count(&pool, "job_status").await >= 1, "a script reported");
    // It used the APIs: every change is in the audit log under its token.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'createJob' AND actor LIKE 'token:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 4);
}

#[sqlx::test]
async fn a_failing_simulated_job_fails_with_its_error_and_closes_its_genres(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    live::run(live::LiveOptions {
        url: app.base_url.clone(),
        token: app.token(Role::Operator).await,
        webhook_secret: None,
        concurrency: 3,
        speed: 2_000.0,
        jobs: Some(6),
        fail_every: 1,
        workers: 0,
    })
    .await
    .unwrap();
    let (failed, with_error, open_tasks): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'failed'),
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM job_errors e WHERE e.job_id = j.id)),
                (SELECT count(*) FROM job_tasks WHERE status IN ('pending', 'running'))
         FROM jobs j WHERE kind = 'recap'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (failed, with_error),
        (6, 6),
        "--fail-every 1: every job fails, saying why"
    );
    assert_eq!(
        open_tasks, 0,
        "no genre of a failed job is left pending or running"
    );
}
