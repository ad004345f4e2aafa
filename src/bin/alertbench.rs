//! Alert evaluation at a large user's volume (issue 25, scripts/bench-alerts): 100,000
//! scripts with ten runs each, half of them scheduled, 10,000 rules on single scripts (2,000
//! of each kind) plus the two built-in rules over every script; then the time of a cycle
//! that judges every rule, and how long after its deadline a missed run is noticed by the
//! evaluator's own loop (a 1 s tick, each rule every 5 s).

use std::time::{Duration, Instant};

use chrono::Utc;
use jobdeck::server::alerts::evaluate_due;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

const SCRIPTS: i64 = 100_000;
const RULES_PER_KIND: i64 = 2_000;

async fn seed(pool: &PgPool) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    // Ten runs per script over the last ten hours; one in ten scripts fails its latest run.
    sqlx::query(
        "INSERT INTO job_status (job_key, title, last_status, last_finished_at)
         SELECT 'bench-' || n, 'Bench ' || n, CASE WHEN n % 10 = 0 THEN 'error' ELSE 'success' END,
                now() - interval '5 minutes'
         FROM generate_series(1, $1) n",
    )
    .bind(SCRIPTS)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO job_reports (job_status_id, title, status, finished_at, duration_ms, message)
         SELECT s.id, s.title,
                CASE WHEN r = 0 THEN s.last_status WHEN random() < 0.05 THEN 'error' ELSE 'success' END,
                now() - interval '5 minutes' - make_interval(hours => r),
                (10000 + random() * 2000)::int8,
                CASE WHEN r = 0 AND s.last_status = 'error' THEN 'disk full on /var' END
         FROM job_status s, generate_series(0, 9) r",
    )
    .execute(pool)
    .await?;
    // Half the scripts expect a run every hour, with 10 minutes' grace.
    sqlx::query(
        "INSERT INTO job_schedules (job_key, period_seconds, grace_seconds, updated_by, updated_at)
         SELECT job_key, 3600, 600, 'bench', now() - interval '1 day'
         FROM job_status WHERE (substr(job_key, 7))::int % 2 = 0",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO job_starts (job_key, started_at)
         SELECT job_key, now() - interval '2 minutes' FROM job_status
         WHERE (substr(job_key, 7))::int % 7 = 0",
    )
    .execute(pool)
    .await?;
    // 2,000 rules of each kind, each on one script.
    for (i, (kind, params)) in [
        ("missed_run", "{}"),
        ("stuck", r#"{"grace_seconds": 600}"#),
        (
            "failure_rate",
            r#"{"window_seconds": 86400, "threshold_percent": 20, "consecutive": null}"#,
        ),
        (
            "duration_anomaly",
            r#"{"max_seconds": null, "factor": 3, "last_runs": 20}"#,
        ),
        (
            "error_spike",
            r#"{"count": 2, "window_seconds": 86400, "fingerprint": null}"#,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO alert_rules (name, scope_kind, scope_value, kind, params, min_runs, created_by)
             SELECT $1 || ' ' || n, 'job_key', 'bench-' || (n * 5 + $4), $1, $2::jsonb, 3, 'bench'
             FROM generate_series(1, $3) n",
        )
        .bind(kind)
        .bind(params)
        .bind(RULES_PER_KIND)
        .bind(i as i64)
        .execute(pool)
        .await?;
    }
    sqlx::query("ANALYZE").execute(pool).await?;
    println!(
        "seeded {SCRIPTS} scripts, {} reports, {} schedules, {} rules in {:.1} s",
        SCRIPTS * 10,
        SCRIPTS / 2,
        RULES_PER_KIND * 5 + 2,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The moment a deadline passes, and how long after it the evaluator's loop fires.
async fn missed_run_latency(pool: &PgPool) -> Result<Duration, sqlx::Error> {
    let key = format!("bench-deadline-{}", Utc::now().timestamp());
    // Last seen 50 s ago, every 60 s with no grace: due in 10 s.
    sqlx::query(
        "INSERT INTO job_status (job_key, title, last_status, last_finished_at)
         VALUES ($1, $1, 'success', now() - interval '50 seconds')",
    )
    .bind(&key)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO job_schedules (job_key, period_seconds, grace_seconds, updated_by, updated_at)
         VALUES ($1, 60, 0, 'bench', now() - interval '1 day')",
    )
    .bind(&key)
    .execute(pool)
    .await?;
    let deadline: chrono::DateTime<Utc> = sqlx::query_scalar(
        "SELECT last_finished_at + interval '60 seconds' FROM job_status WHERE job_key = $1",
    )
    .bind(&key)
    .fetch_one(pool)
    .await?;
    let subject = format!("script:{key}");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        evaluate_due(pool, Utc::now(), Duration::from_secs(5)).await?;
        let firing: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM alert_states WHERE subject = $1 AND state = 'firing')",
        )
        .bind(&subject)
        .fetch_one(pool)
        .await?;
        if firing {
            let late = Utc::now() - deadline;
            return Ok(late.to_std().unwrap_or_default());
        }
        assert!(
            Utc::now() - deadline < chrono::Duration::seconds(60),
            "never fired"
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), sqlx::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    sqlx::migrate!().run(&pool).await.expect("migrations");
    let scripts: i64 = sqlx::query_scalar("SELECT count(*) FROM job_status")
        .fetch_one(&pool)
        .await?;
    if scripts < SCRIPTS {
        seed(&pool).await?;
    }
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_rules WHERE enabled")
        .fetch_one(&pool)
        .await?;
    // JOBDECK_BENCH_AHEAD_SECS judges as if that much time had passed since seeding: more
    // scripts late, more alerts firing.
    let ahead = chrono::Duration::seconds(
        std::env::var("JOBDECK_BENCH_AHEAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    let mut times = Vec::new();
    for cycle in 0..6 {
        sqlx::query("UPDATE alert_rules SET next_evaluation_at = '-infinity'")
            .execute(&pool)
            .await?;
        let started = Instant::now();
        let done = evaluate_due(&pool, Utc::now() + ahead, Duration::from_secs(5)).await?;
        let took = started.elapsed();
        println!(
            "cycle {cycle}: {} rules judged, {} state changes, {} notifications owed, {:.0} ms",
            done.rules,
            done.events,
            done.deliveries,
            took.as_secs_f64() * 1000.0
        );
        assert_eq!(done.rules as i64, rules);
        if cycle > 0 {
            times.push(took);
        }
    }
    times.sort();
    let firing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alert_states WHERE state = 'firing'")
            .fetch_one(&pool)
            .await?;
    println!(
        "every rule ({rules}) over {scripts} scripts: median {:.0} ms, slowest {:.0} ms per cycle (after the first, which wrote {firing} firing alerts)",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        scripts = scripts.max(SCRIPTS),
    );
    if !ahead.is_zero() {
        // The rules are now due only that far ahead: the latency below needs the real clock.
        return Ok(());
    }
    let late = missed_run_latency(&pool).await?;
    println!(
        "a missed run was noticed {:.1} s after its deadline (1 s tick, each rule every 5 s)",
        late.as_secs_f64()
    );
    Ok(())
}
