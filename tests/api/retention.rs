//! Monitoring data that lasts (issue 23, item 6): rollups agree with the raw samples they
//! came from; maintenance makes daily partitions, drops old ones whole and keeps the
//! rollups, so a range that spans dropped and kept days reads the same before and after.

use chrono::{DateTime, Days, Duration, DurationRound, Utc};
use jobdeck::server::monitoring::retention::{maintain, Maintained, Retention};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

async fn create_job(app: &TestApp) -> Uuid {
    let (status, body) = call(
        app,
        &app.client,
        "/job-operations",
        "createJob",
        json!({ "product_id": "p", "sending_group_id": "g", "tasks": [{ "name": "a" }, { "name": "b" }] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().parse().unwrap()
}

async fn report(app: &TestApp, job: Uuid, samples: Vec<Value>) {
    for chunk in samples.chunks(1_000) {
        let (status, body) = call(
            app,
            &app.client,
            "/task-operations",
            "reportMetrics",
            json!({ "job_id": job, "samples": chunk }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["stored"], chunk.len());
    }
}

async fn series(
    app: &TestApp,
    job: Uuid,
    metric: &str,
    interval: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<Value> {
    let (status, body) = call(
        app,
        &app.client,
        "/job-operations",
        "getJobMetrics",
        json!({ "job_ids": [job], "metrics": [metric], "interval": interval,
                "start_time": start, "end_time": end }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["jobs"][0]["metrics"][metric]["buckets"]
        .as_array()
        .unwrap()
        .clone()
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The nearest-rank 95th percentile, as `percentile_disc(0.95)`.
fn nearest_rank_p95(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.95 * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn assert_agrees(bucket: &Value, values: &[f64], what: &str) {
    assert_eq!(bucket["count"], values.len(), "{what}: {bucket}");
    if values.is_empty() {
        assert!(bucket["avg"].is_null(), "{what}: {bucket}");
        return;
    }
    let exact = |field: &str, want: f64| {
        let got = bucket[field].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{what}: {field} {got} vs {want}"
        );
    };
    exact("min", values.iter().copied().fold(f64::INFINITY, f64::min));
    exact(
        "max",
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    exact("avg", values.iter().sum::<f64>() / values.len() as f64);
    let want = nearest_rank_p95(values);
    let got = bucket["p95"].as_f64().unwrap();
    assert!(
        (got - want).abs() <= 0.022 * want,
        "{what}: p95 {got} is not within 2.2 % of {want}"
    );
}

#[sqlx::test]
async fn rollups_give_the_raw_count_min_max_and_average_and_p95_within_its_error(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let job = create_job(&app).await;
    // Three hours of samples from two tasks, every 7 s, with values spread over four orders
    // of magnitude, some zero, and a silent quarter of an hour.
    let start = (Utc::now() - Duration::hours(5))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let mut random = Lcg(23);
    let mut samples = Vec::new();
    let mut raw: Vec<(DateTime<Utc>, f64, f64)> = Vec::new();
    for step in 0..(3 * 3600 / 7) {
        let at = start + Duration::seconds(step * 7) + Duration::milliseconds(step % 1000);
        if at >= start + Duration::minutes(70) && at < start + Duration::minutes(85) {
            continue;
        }
        for task in ["a", "b"] {
            let cpu = if random.next() < 0.05 {
                0.0
            } else {
                10f64.powf(random.next() * 4.0 - 1.0)
            };
            let memory = 50.0 + random.next() * 4_000.0;
            samples.push(
                json!({ "task_name": task, "at": at, "cpu_percent": cpu, "memory_mb": memory }),
            );
            raw.push((at, cpu, memory));
        }
    }
    report(&app, job, samples).await;

    let end = start + Duration::hours(3);
    for (interval, step) in [("1m", 60), ("15m", 900), ("1h", 3600), ("1d", 86_400)] {
        for (metric, pick) in [("cpu", 1), ("memory", 2)] {
            let buckets = series(&app, job, metric, interval, start, end).await;
            for bucket in &buckets {
                let from: DateTime<Utc> = bucket["start"].as_str().unwrap().parse().unwrap();
                let to = (from + Duration::seconds(step)).min(end);
                let values: Vec<f64> = raw
                    .iter()
                    .filter(|(at, _, _)| *at >= from.max(start) && *at < to)
                    .map(|&(_, cpu, memory)| if pick == 1 { cpu } else { memory })
                    .collect();
                assert_agrees(bucket, &values, &format!("{metric} {interval} at {from}"));
            }
            let counted: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
            assert_eq!(counted as usize, raw.len(), "{metric} {interval}");
        }
    }
    // The silent quarter is there, empty.
    let minutes = series(&app, job, "cpu", "1m", start, end).await;
    assert_eq!(minutes.len(), 180);
    assert!(minutes[71..85].iter().all(|b| b["count"] == 0));
}

/// The app's own first maintenance pass (it starts one as it starts; the next is ten
/// minutes on), over, so the test's passes are the only ones.
async fn spawn_settled(pool: PgPool) -> TestApp {
    let app = TestApp::spawn(pool).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app
        .state
        .maintenance_passes
        .load(std::sync::atomic::Ordering::Acquire)
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "no maintenance pass");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app
}

/// A maintenance pass at `now`.
async fn maintain_at(pool: &PgPool, retention: Retention, now: DateTime<Utc>) -> Maintained {
    loop {
        let done = maintain(pool, retention, now).await.unwrap();
        if !done.other_process {
            return done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn midnight(day: chrono::NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

async fn partitions(pool: &PgPool) -> Vec<String> {
    partitions_of(pool, "task_metrics").await
}

async fn partitions_of(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass ORDER BY 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn where_samples_are(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT tableoid::regclass::text, count(*) FROM task_metrics GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn name(day: chrono::NaiveDate) -> String {
    format!("task_metrics_p{}", day.format("%Y%m%d"))
}

#[sqlx::test]
async fn retention_drops_old_days_whole_and_keeps_their_rollups(pool: PgPool) {
    let app = spawn_settled(pool.clone()).await;
    let job = create_job(&app).await;
    let now = Utc::now();
    let today = now.date_naive();
    let retention = Retention {
        raw_days: 7,
        ..Retention::default()
    };
    // The migration made the week behind, today and three days ahead.
    maintain_at(&pool, retention, now).await;
    let made = partitions(&pool).await;
    for offset in -7i64..=3 {
        let day = today.checked_add_signed(Duration::days(offset)).unwrap();
        assert!(
            made.contains(&name(day)),
            "{} missing from {made:?}",
            name(day)
        );
    }
    assert!(made.contains(&"task_metrics_default".to_string()));
    assert_eq!(
        maintain(&pool, retention, now).await.unwrap(),
        Maintained::default()
    );

    // Samples three days back, ten days back (older than any partition: the default one)
    // and now.
    let three_back = midnight(today - Days::new(3)) + Duration::hours(12);
    let ten_back = midnight(today - Days::new(10)) + Duration::hours(12);
    let mut samples = Vec::new();
    for (at, cpu) in [
        (three_back, 10.0),
        (three_back, 30.0),
        (ten_back, 50.0),
        (now, 70.0),
    ] {
        samples.push(json!({ "task_name": "a", "at": at, "cpu_percent": cpu }));
    }
    report(&app, job, samples).await;
    assert_eq!(
        where_samples_are(&pool).await,
        vec![
            ("task_metrics_default".to_string(), 1),
            (name(today - Days::new(3)), 2),
            (name(today), 1),
        ]
    );
    let range = (
        midnight(today - Days::new(12)),
        midnight(today + Days::new(1)),
    );
    let before = series(&app, job, "cpu", "1d", range.0, range.1).await;

    // Five days on, the day three back is older than the week kept: its partition goes whole,
    // the stray in the default partition is deleted, the rollups stay.
    let later = maintain(&pool, retention, now + Duration::days(5))
        .await
        .unwrap();
    assert_eq!(later.partitions_dropped, 5, "{later:?}");
    assert_eq!(later.strays_deleted, 1, "{later:?}");
    assert_eq!(later.rollups_deleted, 0);
    assert!(!partitions(&pool)
        .await
        .contains(&name(today - Days::new(3))));
    assert_eq!(where_samples_are(&pool).await, vec![(name(today), 1)]);
    let rollups: i64 = sqlx::query_scalar("SELECT count(*) FROM metric_rollups")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        rollups, 6,
        "minute and hour rows of three hours with samples"
    );
    let after = series(&app, job, "cpu", "1d", range.0, range.1).await;
    assert_eq!(before, after, "the same figures from rollups alone");
    let three_back_bucket = after
        .iter()
        .find(|b| {
            b["start"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap()
                == midnight(today - Days::new(3))
        })
        .unwrap();
    assert_eq!(three_back_bucket["count"], 2);
    assert_eq!(three_back_bucket["avg"], 20.0);
}

#[sqlx::test]
async fn rollups_older_than_their_retention_are_deleted(pool: PgPool) {
    let app = spawn_settled(pool.clone()).await;
    let job = create_job(&app).await;
    let now = Utc::now();
    let old = now - Duration::days(401);
    report(
        &app,
        job,
        vec![
            json!({ "at": old, "cpu_percent": 5.0 }),
            json!({ "at": now, "cpu_percent": 6.0 }),
        ],
    )
    .await;
    let done = maintain_at(&pool, Retention::default(), now).await;
    assert_eq!(done.rollups_deleted, 2, "the old sample's minute and hour");
    assert_eq!(done.strays_deleted, 1);
    assert_eq!(count(&pool, "task_metrics").await, 1, "the old sample went");
    let left: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT DISTINCT date_trunc('day', bucket, 'UTC') FROM metric_rollups")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, vec![now.duration_trunc(Duration::days(1)).unwrap()]);
}

#[sqlx::test]
async fn a_day_that_reached_the_default_partition_moves_into_its_own(pool: PgPool) {
    let app = spawn_settled(pool.clone()).await;
    let job = create_job(&app).await;
    let today = Utc::now().date_naive();
    let ahead = midnight(today + Days::new(5)) + Duration::hours(1);
    // A sample for a day no partition holds yet (written as a worker's clock far ahead would).
    sqlx::query("INSERT INTO task_metrics (job_id, at, cpu_percent) VALUES ($1, $2, 1)")
        .bind(job)
        .bind(ahead)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        where_samples_are(&pool).await,
        vec![("task_metrics_default".to_string(), 1)]
    );
    let done = maintain_at(&pool, Retention::default(), Utc::now() + Duration::days(3)).await;
    assert!(done.partitions_created >= 3, "{done:?}");
    assert_eq!(
        where_samples_are(&pool).await,
        vec![(name(today + Days::new(5)), 1)]
    );
}

#[sqlx::test]
async fn portals_maintaining_at_once_make_each_partition_once(pool: PgPool) {
    let now = Utc::now();
    let retention = Retention {
        raw_days: 30,
        ..Retention::default()
    };
    let (a, b) = tokio::join!(
        maintain(&pool, retention, now),
        maintain(&pool, retention, now)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // One ran its pass; the other found it running, or came after and found nothing to do.
    // The migration made the last week's; the 23 days before it are made once.
    assert_eq!(
        a.partitions_created + b.partitions_created,
        23,
        "{a:?} {b:?}"
    );
    assert_eq!(a.skipped + b.skipped, 0);
    assert_eq!(partitions(&pool).await.len(), 30 + 1 + 3 + 1);
}

/// The migrations before the one that partitions `task_metrics`, in a directory of their own.
fn migrations_before(version: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jobdeck-migrations-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if file.as_str() < version {
            std::fs::copy(&path, dir.join(file)).unwrap();
        }
    }
    dir
}

#[sqlx::test(migrations = false)]
async fn the_partitioning_migration_keeps_every_sample_and_rolls_them_up(pool: PgPool) {
    let dir = migrations_before("20261203000001");
    sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    let job: Uuid = sqlx::query_scalar(
        "INSERT INTO jobs (kind, priority, max_parallel_tasks, max_attempts, retry_interval, created_by)
         VALUES ('recap', 5, 1, 1, 0, 'test') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let now = Utc::now();
    // Twenty days back (older than any partition the migration would make on its own),
    // three days back and now; one sample with neither cpu nor memory.
    // Ten minutes into an hour, so the two old samples share their hour and day.
    let old = (now - Duration::days(20))
        .duration_trunc(Duration::hours(1))
        .unwrap()
        + Duration::minutes(10);
    let rows = [
        (old, Some(10.0), Some(100.0)),
        (old + Duration::seconds(30), Some(30.0), None),
        (now - Duration::days(3), Some(50.0), Some(300.0)),
        (now, None, None),
    ];
    for (at, cpu, memory) in rows {
        sqlx::query(
            "INSERT INTO task_metrics (job_id, at, cpu_percent, memory_mb) VALUES ($1, $2, $3, $4)",
        )
        .bind(job)
        .bind(at)
        .bind(cpu)
        .bind(memory)
        .execute(&pool)
        .await
        .unwrap();
    }
    let ids_before: Vec<i64> = sqlx::query_scalar("SELECT id FROM task_metrics ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();

    jobdeck::server::db::migrate(&pool).await.unwrap();

    let ids_after: Vec<i64> = sqlx::query_scalar("SELECT id FROM task_metrics ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids_before, ids_after, "every sample, under its id");
    let old_day = old.date_naive();
    let homes = where_samples_are(&pool).await;
    assert!(
        homes.contains(&(name(old_day), 2)),
        "the oldest day got its own partition: {homes:?}"
    );
    assert!(!homes
        .iter()
        .any(|(table, _)| table == "task_metrics_default"));
    // A new sample's id follows the old ones.
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO task_metrics (job_id, cpu_percent) VALUES ($1, 1) RETURNING id",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(next > *ids_before.last().unwrap());
    // The old samples' rollups, exactly.
    let hour: (i64, f64, f64, f64) = sqlx::query_as(
        "SELECT count, sum, min, max FROM metric_rollups
         WHERE job_id = $1 AND metric = 'cpu' AND grain = 'hour' AND bucket = $2",
    )
    .bind(job)
    .bind(old.duration_trunc(Duration::hours(1)).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    let same_hour = old.duration_trunc(Duration::hours(1)).unwrap()
        == (old + Duration::seconds(30))
            .duration_trunc(Duration::hours(1))
            .unwrap();
    if same_hour {
        assert_eq!(hour, (2, 40.0, 10.0, 30.0));
    } else {
        assert_eq!(hour, (1, 10.0, 10.0, 10.0));
    }
    let memory: Vec<(String, i64)> = sqlx::query_as(
        "SELECT grain, sum(count)::int8 FROM metric_rollups WHERE metric = 'memory' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        memory,
        vec![("hour".to_string(), 2), ("minute".to_string(), 2)]
    );
}

fn report_partition(day: chrono::NaiveDate) -> String {
    format!("job_reports_p{}", day.format("%Y%m%d"))
}

#[sqlx::test]
async fn script_reports_live_in_daily_partitions_dropped_past_their_retention(pool: PgPool) {
    let app = spawn_settled(pool.clone()).await;
    let today = Utc::now().date_naive();
    let made = partitions_of(&pool, "job_reports").await;
    for ahead in 0..=3 {
        assert!(
            made.contains(&report_partition(today + Days::new(ahead))),
            "{made:?}"
        );
    }
    for status in ["success", "error"] {
        let response = app
            .report(&crate::helpers::report("nightly-backup", status, &now()))
            .await;
        assert_eq!(response.status(), 200);
    }
    // A report that arrived before its day had a partition (a portal's clock far behind).
    sqlx::query(
        "INSERT INTO job_reports (job_status_id, title, status, finished_at, received_at)
         SELECT id, title, 'success', now(), now() - interval '100 days' FROM job_status",
    )
    .execute(&pool)
    .await
    .unwrap();
    let where_reports_are: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tableoid::regclass::text, count(*) FROM job_reports GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        where_reports_are,
        vec![
            ("job_reports_default".to_string(), 1),
            (report_partition(today), 2)
        ]
    );

    // A day inside the report retention keeps its partition; past it, the day goes whole
    // and the stray is deleted; the script and its last result stay.
    let retention = Retention::default();
    let kept = maintain_at(&pool, retention, Utc::now() + Duration::days(89)).await;
    assert_eq!(kept.strays_deleted, 1, "{kept:?}");
    assert!(partitions_of(&pool, "job_reports")
        .await
        .contains(&report_partition(today)));
    let done = maintain_at(&pool, retention, Utc::now() + Duration::days(91)).await;
    assert!(done.partitions_dropped >= 1, "{done:?}");
    assert!(!partitions_of(&pool, "job_reports")
        .await
        .contains(&report_partition(today)));
    assert_eq!(count(&pool, "job_reports").await, 0);
    let last: String = sqlx::query_scalar("SELECT last_status FROM job_status")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(last, "error");
    // New reports still land (in the default partition: maintenance ran 91 days ahead).
    let response = app
        .report(&crate::helpers::report("nightly-backup", "success", &now()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(count(&pool, "job_reports").await, 1);
}

/// Ends `job` as `status`, `days` ago (created an hour before that).
async fn ended_days_ago(pool: &PgPool, job: Uuid, status: &str, days: i64) {
    sqlx::query(
        "UPDATE jobs SET status = $2, created_at = now() - make_interval(days => $3, hours => 1),
                started_at = now() - make_interval(days => $3, hours => 1),
                finished_at = now() - make_interval(days => $3)
         WHERE id = $1",
    )
    .bind(job)
    .bind(status)
    .bind(days as i32)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test]
async fn finished_jobs_are_kept_by_how_they_ended(pool: PgPool) {
    let app = spawn_settled(pool.clone()).await;
    let mut jobs = Vec::new();
    // (how it ended, days ago, whether the default retention keeps it)
    for (status, days, kept) in [
        ("completed", 89, true),
        ("completed", 91, false),
        ("cancelled", 91, false),
        ("failed", 91, true),
        ("failed", 399, true),
        ("failed", 401, false),
        ("running", 1_000, true),
    ] {
        let job = create_job(&app).await;
        report(
            &app,
            job,
            vec![json!({ "task_name": "a", "cpu_percent": 5.0 })],
        )
        .await;
        if status == "running" {
            sqlx::query(
                "UPDATE jobs SET status = 'running', started_at = now(),
                        created_at = now() - interval '1000 days' WHERE id = $1",
            )
            .bind(job)
            .execute(&pool)
            .await
            .unwrap();
        } else {
            ended_days_ago(&pool, job, status, days).await;
        }
        jobs.push((job, status, kept));
    }
    // More than a batch of old successes.
    let mut many = Vec::new();
    for _ in 0..205 {
        let job: Uuid = sqlx::query_scalar(
            "INSERT INTO jobs (kind, product_id, sending_group_id, priority, max_parallel_tasks,
                               max_attempts, retry_interval, created_by)
             SELECT kind, product_id, sending_group_id, priority, max_parallel_tasks,
                    max_attempts, retry_interval, created_by
             FROM jobs LIMIT 1 RETURNING id",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        ended_days_ago(&pool, job, "completed", 200).await;
        many.push(job);
    }
    let done = maintain_at(&pool, Retention::default(), Utc::now()).await;
    assert_eq!(done.jobs_deleted, 3 + 205, "{done:?}");
    for (job, status, kept) in &jobs {
        let (code, body) = job_op(&app, "getJobInfo", json!({ "job_id": job })).await;
        assert_eq!(code, if *kept { 200 } else { 404 }, "{status}: {body}");
        let rollups: i64 =
            sqlx::query_scalar("SELECT count(*) FROM metric_rollups WHERE job_id = $1")
                .bind(job)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(rollups > 0, *kept, "{status}: the job's rollups go with it");
    }
    let gone: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = ANY($1)")
        .bind(&many)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(gone, 0);
    let entries: Vec<Value> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE actor = 'system' AND action = 'deleteJob'
         ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let audited: i64 = entries.iter().map(|e| e["jobs"].as_i64().unwrap()).sum();
    assert_eq!(audited, 208, "{entries:?}");
    assert!(entries.iter().all(|e| e["why"] == "retention"));
    assert!(
        entries.len() >= 4,
        "a batch of 200 and the rest, per status: {entries:?}"
    );

    // Shorter settings reach further; nothing running is ever deleted.
    let strict = Retention {
        succeeded_job_days: 1,
        failed_job_days: 1,
        ..Retention::default()
    };
    let done = maintain_at(&pool, strict, Utc::now()).await;
    assert_eq!(done.jobs_deleted, 3, "{done:?}");
    let left: Vec<String> = sqlx::query_scalar("SELECT status FROM jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec!["running".to_string()]);
}

/// Alert history past its retention goes, except what is still owed or still open.
#[sqlx::test]
async fn old_alert_history_goes_but_not_an_owed_notification_or_an_open_alert(pool: PgPool) {
    let _app = spawn_settled(pool.clone()).await;
    let now = Utc::now();
    let old = now - Duration::days(401);
    let rule: Uuid = sqlx::query_scalar("SELECT id FROM alert_rules WHERE built_in LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let channel: Uuid = sqlx::query_scalar(
        "INSERT INTO alert_channels (name, kind, target, created_by) VALUES ('ops', 'slack', 'https://hooks.example.com/x', 'ops')
         RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let event = |at: DateTime<Utc>, subject: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO alert_events (rule_id, rule_name, kind, severity, subject, label, from_state, to_state, facts, at)
                 VALUES ($1, 'r', 'failure_rate', 'warning', $2, 'l', 'ok', 'firing', '{}', $3) RETURNING id",
            )
            .bind(rule)
            .bind(subject)
            .bind(at)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let sent = event(old, "script:a").await;
    let owed = event(old, "script:b").await;
    event(now, "script:c").await;
    for (event, status) in [(sent, "sent"), (owed, "queued")] {
        let delivery: i64 = sqlx::query_scalar(
            "INSERT INTO alert_deliveries (event_id, channel_id, status, next_attempt_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(event)
        .bind(channel)
        .bind(status)
        .bind(old)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO alert_delivery_attempts (delivery_id, attempt, at, ok, duration_ms)
             VALUES ($1, 1, $2, $3, 5)",
        )
        .bind(delivery)
        .bind(old)
        .bind(status == "sent")
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO alert_states (rule_id, subject, label, state, pending_since, facts)
         VALUES ($1, 'script:open', 'l', 'firing', $2, '{}')",
    )
    .bind(rule)
    .bind(old)
    .execute(&pool)
    .await
    .unwrap();
    for subject in ["script:open", "script:closed"] {
        sqlx::query(
            "INSERT INTO alert_notes (rule_id, subject, body, created_by, created_at)
             VALUES ($1, $2, 'n', 'ops', $3)",
        )
        .bind(rule)
        .bind(subject)
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
    }
    for ends in [old, now + Duration::hours(1)] {
        sqlx::query("INSERT INTO alert_silences (scope_kind, ends_at, created_by) VALUES ('all', $1, 'ops')")
            .bind(ends)
            .execute(&pool)
            .await
            .unwrap();
    }

    let done = maintain_at(&pool, Retention::default(), now).await;
    assert_eq!(
        done.alert_rows_deleted, 3,
        "one event, one note, one silence"
    );
    let events: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM alert_events ORDER BY subject")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        events,
        ["script:b", "script:c"],
        "the owed one and the new one stay"
    );
    assert_eq!(count(&pool, "alert_deliveries").await, 1);
    assert_eq!(
        count(&pool, "alert_delivery_attempts").await,
        1,
        "the sent one's went with it"
    );
    let notes: Vec<String> = sqlx::query_scalar("SELECT subject FROM alert_notes")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(notes, ["script:open"], "an open alert keeps its notes");
    assert_eq!(count(&pool, "alert_silences").await, 1);
}
