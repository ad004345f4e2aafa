//! Job monitoring (seed 000) over real HTTP: `fetchJobHistory`'s filters, sorts, cursor and
//! aggregates, each checked against an answer computed here from the rows themselves;
//! `getJobMetrics`' buckets at their edges and with gaps; `reportMetrics`; and bad input,
//! injection attempts included, refused with 400 and nothing changed.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use jobdeck::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use jobdeck::server::monitoring::job_rollups;

use crate::helpers::*;

async fn history(app: &TestApp, data: Value) -> Value {
    let (status, body) = call(
        app,
        &app.client,
        "/job-operations",
        "fetchJobHistory",
        data.clone(),
    )
    .await;
    assert_eq!(status, 200, "{data}: {body}");
    body["data"].clone()
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// A job as the test knows it, read straight from its row.
#[derive(Clone, Debug, sqlx::FromRow)]
struct Row {
    id: Uuid,
    kind: String,
    status: String,
    user_id: Option<String>,
    priority: i16,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    errors: Vec<String>,
}

impl Row {
    fn finished(&self) -> bool {
        ["completed", "failed", "cancelled"].contains(&self.status.as_str())
    }

    /// The sort key as the README documents it: unstarted or unfinished sorts as latest.
    fn key(&self, field: &str) -> i64 {
        let micros = |t: Option<DateTime<Utc>>| t.map_or(i64::MAX, |t| t.timestamp_micros());
        match field {
            "created_at" => self.created_at.timestamp_micros(),
            "started_at" => micros(self.started_at),
            "finished_at" => micros(self.finished_at),
            "priority" => self.priority as i64,
            "duration" => match (self.started_at, self.finished_at) {
                (Some(s), Some(f)) => (f - s).num_microseconds().unwrap(),
                _ => i64::MAX,
            },
            other => panic!("no sort {other}"),
        }
    }
}

/// 240 jobs of two kinds over six statuses, three users, ten priorities, pairs created at the same
/// minute (ties the id breaks), durations to the microsecond, some finished jobs that never
/// started, with errors of two codes on some.
async fn seed_history(pool: &PgPool) -> Vec<Row> {
    sqlx::query(
        "INSERT INTO jobs (kind, status, product_id, sending_group_id, user_id, priority,
                           max_parallel_tasks, max_attempts, retry_interval, created_by,
                           created_at, started_at, finished_at)
         SELECT CASE WHEN i % 5 = 0 THEN 'recap' ELSE 'batch' END, (ARRAY['pending','running','paused','completed','failed','cancelled'])[1 + i % 6],
                'p', 'g', CASE WHEN i % 4 = 0 THEN NULL ELSE 'user-' || (i % 3) END, 1 + i % 10,
                1, 1, 0, 'test',
                timestamptz '2026-11-01 00:00:00+00' + make_interval(mins => (i / 2) * 7),
                -- Pending jobs, and some cancelled before they started, have no start.
                CASE WHEN i % 6 = 0 OR i % 12 = 5 THEN NULL
                     ELSE timestamptz '2026-11-01 00:00:00+00' + make_interval(mins => (i / 2) * 7, secs => 5) END,
                -- Durations to the microsecond.
                CASE WHEN i % 6 IN (3, 4, 5)
                     THEN timestamptz '2026-11-01 00:00:00+00'
                          + make_interval(mins => (i / 2) * 7, secs => 5 + (i * 37) % 600 + (i % 7) * 0.000123) END
         FROM generate_series(1, 240) AS i",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO job_errors (job_id, code, class, message)
         SELECT id, 'TIMEOUT', 'transient', 'slow' FROM jobs WHERE priority IN (2, 5)
         UNION ALL
         SELECT id, 'OUT_OF_MEMORY', 'resource', 'big' FROM jobs WHERE priority = 7 AND status = 'failed'",
    )
    .execute(pool)
    .await
    .unwrap();
    rows(pool).await
}

async fn rows(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT j.id, j.kind, j.status, j.user_id, j.priority, j.created_at, j.started_at, j.finished_at,
                coalesce((SELECT array_agg(code || ' ' || class) FROM job_errors e WHERE e.job_id = j.id),
                         '{}') AS errors
         FROM jobs j",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Every page of a query through `next_cursor`, as ids.
async fn walk(app: &TestApp, mut data: Value, per_page: i64) -> Vec<Uuid> {
    data["pagination"] = json!({ "per_page": per_page });
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let page = history(app, data.clone()).await;
        let jobs = page["jobs"].as_array().unwrap();
        assert!(jobs.len() as i64 <= per_page);
        ids.extend(
            jobs.iter()
                .map(|j| j["id"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
        match page["pagination"]["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page["pagination"]["has_more"], true);
                data["pagination"] = json!({ "per_page": per_page, "cursor": cursor });
            }
            None => return ids,
        }
    }
    panic!("the cursor never ended");
}

fn expected(rows: &[Row], keep: impl Fn(&Row) -> bool, field: &str, order: &str) -> Vec<Uuid> {
    let mut kept: Vec<&Row> = rows.iter().filter(|r| keep(r)).collect();
    kept.sort_by_key(|r| (r.key(field), r.id));
    if order == "desc" {
        kept.reverse();
    }
    kept.into_iter().map(|r| r.id).collect()
}

#[sqlx::test]
async fn every_sort_pages_by_cursor_through_every_job_once_in_order(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let all = seed_history(&pool).await;
    for field in [
        "created_at",
        "started_at",
        "finished_at",
        "priority",
        "duration",
    ] {
        for order in ["asc", "desc"] {
            let got = walk(
                &app,
                json!({ "sort": { "field": field, "order": order } }),
                17,
            )
            .await;
            assert_eq!(
                got,
                expected(&all, |_| true, field, order),
                "{field} {order}"
            );
        }
    }
    // The seed's page numbers give the same order, page by page.
    let sorted = expected(&all, |_| true, "priority", "desc");
    let third = history(
        &app,
        json!({ "sort": { "field": "priority", "order": "desc" }, "pagination": { "page": 3, "per_page": 20 } }),
    )
    .await;
    let ids: Vec<Uuid> = third["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, sorted[40..60]);
    assert_eq!(third["pagination"]["page"], 3);
}

#[sqlx::test]
async fn filters_alone_and_combined_select_what_the_rows_say(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let all = seed_history(&pool).await;
    let (from, to) = (at(200), at(500));
    type Keep = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(Value, Keep)> = vec![
        (json!({}), Box::new(|_| true)),
        (
            json!({ "status": ["failed", "cancelled"] }),
            Box::new(|r| r.status == "failed" || r.status == "cancelled"),
        ),
        (
            json!({ "date_range": { "start": from, "end": to } }),
            Box::new(move |r| r.created_at >= from && r.created_at < to),
        ),
        (
            json!({ "date_range": { "start": from } }),
            Box::new(move |r| r.created_at >= from),
        ),
        (
            json!({ "user_id": "user-1" }),
            Box::new(|r| r.user_id.as_deref() == Some("user-1")),
        ),
        (
            json!({ "error_types": ["TIMEOUT"] }),
            Box::new(|r| r.errors.iter().any(|e| e.starts_with("TIMEOUT "))),
        ),
        (
            json!({ "error_types": ["resource"] }),
            Box::new(|r| r.errors.iter().any(|e| e.ends_with(" resource"))),
        ),
        (
            json!({ "status": ["failed"], "user_id": "user-2", "error_types": ["TIMEOUT", "OUT_OF_MEMORY"],
                    "date_range": { "start": at(0), "end": to } }),
            Box::new(move |r| {
                r.status == "failed"
                    && r.user_id.as_deref() == Some("user-2")
                    && !r.errors.is_empty()
                    && r.created_at < to
            }),
        ),
        (json!({ "kind": "recap" }), Box::new(|r| r.kind == "recap")),
        (
            json!({ "kind": "batch", "status": ["failed"] }),
            Box::new(|r| r.kind == "batch" && r.status == "failed"),
        ),
        // A value is data, never SQL.
        (json!({ "user_id": "' OR 1=1 --" }), Box::new(|_| false)),
        (
            json!({ "error_types": ["x') OR true --"] }),
            Box::new(|_| false),
        ),
    ];
    for (filters, keep) in &cases {
        let want = expected(&all, keep, "created_at", "desc");
        let got = walk(&app, json!({ "filters": filters }), 50).await;
        assert_eq!(got, want, "{filters}");
        // Filters and a sort on another index together.
        let sort = json!({ "field": "duration", "order": "asc" });
        let got = walk(&app, json!({ "filters": filters, "sort": sort }), 50).await;
        assert_eq!(
            got,
            expected(&all, keep, "duration", "asc"),
            "{filters} by duration"
        );
        assert_aggregates(&app, &all, filters, keep).await;
    }
    // Only the aggregates asked for are answered.
    let page = history(&app, json!({ "aggregations": { "error_rate": true } })).await;
    assert!(page["aggregations"].get("success_rate").is_none());
    assert!(page["aggregations"]["error_rate"].is_number());
    assert!(history(&app, json!({})).await.get("aggregations").is_none());
}

#[sqlx::test]
async fn a_cursor_walk_sees_every_job_once_while_new_jobs_arrive(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let before: HashSet<Uuid> = seed_history(&pool).await.iter().map(|r| r.id).collect();
    for order in ["asc", "desc"] {
        let mut data = json!({ "sort": { "field": "created_at", "order": order }, "pagination": { "per_page": 25 } });
        let mut seen = Vec::new();
        loop {
            let page = history(&app, data.clone()).await;
            for job in page["jobs"].as_array().unwrap() {
                seen.push(job["id"].as_str().unwrap().parse::<Uuid>().unwrap());
            }
            // New jobs arrive between pages, through the API (created now: the newest).
            let (status, body) = call(
                &app,
                &app.client,
                "/job-operations",
                "createJob",
                json!({ "product_id": "p", "sending_group_id": "g" }),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            match page["pagination"]["next_cursor"].as_str() {
                Some(cursor) => data["pagination"]["cursor"] = json!(cursor),
                None => break,
            }
        }
        let unique: HashSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{order}: a job came twice");
        assert!(before.is_subset(&unique), "{order}: a job was skipped");
    }
}

#[sqlx::test]
async fn bad_history_requests_are_400s_naming_the_field(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    seed_history(&pool).await;
    let first = history(
        &app,
        json!({ "sort": { "field": "priority" }, "pagination": { "per_page": 5 } }),
    )
    .await;
    let priority_cursor = first["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let cases = [
        (
            json!({ "sort": { "field": "id; DROP TABLE jobs" } }),
            "data.sort.field",
        ),
        (
            json!({ "sort": { "field": "created_at", "order": "sideways" } }),
            "data.sort.order",
        ),
        (json!({ "sort": { "field": "status" } }), "data.sort.field"),
        (
            json!({ "filters": { "status": ["running", "bogus"] } }),
            "data.filters.status[1]",
        ),
        (
            json!({ "filters": { "date_range": { "start": at(10), "end": at(5) } } }),
            "data.filters.date_range",
        ),
        (
            json!({ "filters": { "date_range": { "start": "yesterday" } } }),
            "data.filters.date_range.start",
        ),
        (
            json!({ "filters": { "error_types": vec!["E"; 51] } }),
            "data.filters.error_types",
        ),
        (
            json!({ "filters": { "kind": "cron" } }),
            "data.filters.kind",
        ),
        (
            json!({ "filters": { "colour": "red" } }),
            "data.filters.colour",
        ),
        (
            json!({ "pagination": { "per_page": 0 } }),
            "data.pagination.per_page",
        ),
        (
            json!({ "pagination": { "per_page": 201 } }),
            "data.pagination.per_page",
        ),
        (
            json!({ "pagination": { "page": 0 } }),
            "data.pagination.page",
        ),
        (
            json!({ "pagination": { "page": 202, "per_page": 50 } }),
            "data.pagination.page",
        ),
        (
            json!({ "pagination": { "page": 2, "cursor": priority_cursor } }),
            "data.pagination",
        ),
        (
            json!({ "pagination": { "cursor": "zz" } }),
            "data.pagination.cursor",
        ),
        // A cursor of one sort is refused by another.
        (
            json!({ "pagination": { "cursor": priority_cursor } }),
            "data.pagination.cursor",
        ),
        (
            json!({ "aggregations": { "median": true } }),
            "data.aggregations.median",
        ),
    ];
    let jobs_before = count(&pool, "jobs").await;
    for (data, field) in cases {
        let (status, body) = call(
            &app,
            &app.client,
            "/job-operations",
            "fetchJobHistory",
            data.clone(),
        )
        .await;
        assert_eq!(status, 400, "{data}: {body}");
        assert_eq!(body["field"], field, "{data}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    assert_eq!(count(&pool, "jobs").await, jobs_before);
    // Viewers read history; a request without a token does not.
    let viewer = app.client_as(Role::Viewer).await;
    let response = viewer
        .post(app.url("/job-operations"))
        .json(&json!({ "action": "fetchJobHistory", "data": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .anonymous
        .post(app.url("/job-operations"))
        .json(&json!({ "action": "fetchJobHistory", "data": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// `fetchJobHistory`'s aggregates for `filters` against the same figures computed here from
/// the rows `keep` selects.
async fn assert_aggregates(
    app: &TestApp,
    all: &[Row],
    filters: &Value,
    keep: impl Fn(&Row) -> bool,
) {
    let aggregations = json!({ "success_rate": true, "avg_duration": true, "error_rate": true });
    let kept: Vec<&Row> = all.iter().filter(|r| keep(r)).collect();
    let finished: Vec<&&Row> = kept.iter().filter(|r| r.finished()).collect();
    let rate = |status: &str| {
        (!finished.is_empty()).then(|| {
            finished.iter().filter(|r| r.status == status).count() as f64 / finished.len() as f64
        })
    };
    // Over the finished jobs that started.
    let ran: Vec<f64> = finished
        .iter()
        .filter_map(|r| Some((r.finished_at? - r.started_at?).num_microseconds()? as f64 / 1000.0))
        .collect();
    let avg = (!ran.is_empty()).then(|| ran.iter().sum::<f64>() / ran.len() as f64);
    let page = history(
        app,
        json!({ "filters": filters, "aggregations": aggregations, "pagination": { "per_page": 5 } }),
    )
    .await;
    let got = &page["aggregations"];
    assert_eq!(got["total"], kept.len(), "{filters}: {got}");
    assert_eq!(got["finished"], finished.len(), "{filters}: {got}");
    for (name, want) in [
        ("success_rate", rate("completed")),
        ("error_rate", rate("failed")),
        ("avg_duration_ms", avg),
    ] {
        match want {
            None => assert!(got[name].is_null(), "{filters}: {name} {got}"),
            Some(want) => {
                let value = got[name]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name}: {got}"));
                assert!(
                    (value - want).abs() < 1e-6,
                    "{filters}: {name} {value} vs {want}"
                );
            }
        }
    }
}

fn day(d: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, hour, 0, 0).unwrap()
}

/// The wide filters read `job_rollups` for whole days, their deltas not yet folded, and the
/// jobs of a range's partial first and last days: the figures are the rows' own before any
/// fold, after jobs change and go, and after folding (two folds at once).
#[sqlx::test]
async fn aggregates_from_the_day_rollups_equal_the_rows_at_every_step(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // 300 jobs every 37 minutes from Nov 1 (a week and more), of both kinds and all statuses.
    sqlx::query(
        "INSERT INTO jobs (kind, status, product_id, sending_group_id, priority, max_parallel_tasks,
                           max_attempts, retry_interval, created_by, created_at, started_at, finished_at)
         SELECT CASE WHEN i % 3 = 0 THEN 'recap' ELSE 'batch' END,
                (ARRAY['pending','running','paused','completed','failed','cancelled'])[1 + i % 6],
                'p', 'g', 5, 1, 1, 0, 'test',
                timestamptz '2026-11-01 00:00:00+00' + make_interval(mins => i * 37),
                CASE WHEN i % 6 = 0 OR i % 12 = 5 THEN NULL
                     ELSE timestamptz '2026-11-01 00:00:00+00' + make_interval(mins => i * 37, secs => 3) END,
                CASE WHEN i % 6 IN (3, 4, 5)
                     THEN timestamptz '2026-11-01 00:00:00+00'
                          + make_interval(mins => i * 37, secs => 3 + (i * 53) % 900 + (i % 9) * 0.000317) END
         FROM generate_series(1, 300) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Errors on some: one type, two types on one job, one type twice.
    sqlx::query(
        "INSERT INTO job_errors (job_id, code, class, message)
         SELECT id, 'TIMEOUT', 'transient', 'slow' FROM jobs
         WHERE extract(epoch FROM created_at)::int8 / 60 % 4 = 0
         UNION ALL
         SELECT id, 'OUT_OF_MEMORY', 'resource', 'big' FROM jobs
         WHERE status = 'failed' AND extract(epoch FROM created_at)::int8 / 60 % 3 = 0
         UNION ALL
         SELECT id, 'TIMEOUT', 'transient', 'again' FROM jobs
         WHERE status = 'failed' AND extract(epoch FROM created_at)::int8 / 60 % 8 = 0",
    )
    .execute(&pool)
    .await
    .unwrap();
    type Keep = Box<dyn Fn(&Row) -> bool>;
    let had = |types: &'static [&'static str]| -> Keep {
        Box::new(move |r: &Row| {
            r.errors.iter().any(|e| {
                let (code, class) = e.split_once(' ').unwrap();
                types.contains(&code) || types.contains(&class)
            })
        })
    };
    let within = |from: DateTime<Utc>, to: DateTime<Utc>| -> Keep {
        Box::new(move |r: &Row| r.created_at >= from && r.created_at < to)
    };
    let cases: Vec<(Value, Keep)> = vec![
        (json!({}), Box::new(|_| true)),
        (
            json!({ "status": ["completed", "failed"] }),
            Box::new(|r| r.status == "completed" || r.status == "failed"),
        ),
        (json!({ "kind": "recap" }), Box::new(|r| r.kind == "recap")),
        // Partial first and last days around whole ones.
        (
            json!({ "date_range": { "start": day(2, 5), "end": day(6, 17) } }),
            within(day(2, 5), day(6, 17)),
        ),
        // Whole days only.
        (
            json!({ "date_range": { "start": day(3, 0), "end": day(5, 0) } }),
            within(day(3, 0), day(5, 0)),
        ),
        // Across one midnight: no whole day, the jobs alone.
        (
            json!({ "date_range": { "start": day(2, 23), "end": day(3, 1) } }),
            within(day(2, 23), day(3, 1)),
        ),
        // Within a day: the jobs alone. One whole day between two partial ones.
        (
            json!({ "date_range": { "start": day(2, 23), "end": day(4, 1) } }),
            within(day(2, 23), day(4, 1)),
        ),
        (
            json!({ "date_range": { "start": day(4, 2), "end": day(4, 9) } }),
            within(day(4, 2), day(4, 9)),
        ),
        (
            json!({ "date_range": { "start": day(5, 13) } }),
            Box::new(|r| r.created_at >= day(5, 13)),
        ),
        (
            json!({ "date_range": { "end": day(3, 13) } }),
            Box::new(|r| r.created_at < day(3, 13)),
        ),
        (
            json!({ "kind": "batch", "status": ["failed", "cancelled"],
                    "date_range": { "start": day(1, 20), "end": day(7, 4) } }),
            Box::new(|r| {
                r.kind == "batch"
                    && (r.status == "failed" || r.status == "cancelled")
                    && r.created_at >= day(1, 20)
                    && r.created_at < day(7, 4)
            }),
        ),
        (json!({ "error_types": ["TIMEOUT"] }), had(&["TIMEOUT"])),
        // A job with both counts once.
        (
            json!({ "error_types": ["TIMEOUT", "resource"] }),
            had(&["TIMEOUT", "resource"]),
        ),
        (json!({ "error_types": ["input"] }), had(&["input"])),
        (
            json!({ "error_types": ["OUT_OF_MEMORY", "PARSE_ERROR"], "status": ["failed", "completed"],
                    "date_range": { "start": day(2, 5), "end": day(6, 17) } }),
            Box::new(move |r| {
                had(&["OUT_OF_MEMORY", "PARSE_ERROR"])(r)
                    && (r.status == "failed" || r.status == "completed")
                    && r.created_at >= day(2, 5)
                    && r.created_at < day(6, 17)
            }),
        ),
    ];
    let check = |all: Vec<Row>| {
        let (app, cases) = (&app, &cases);
        async move {
            for (filters, keep) in cases {
                assert_aggregates(app, &all, filters, keep).await;
            }
        }
    };
    // The inserts' deltas, folded or not (the app folds every second): the same figures.
    check(rows(&pool).await).await;
    // Jobs change and go: deltas out and in.
    sqlx::query(
        "UPDATE jobs SET status = 'completed', started_at = coalesce(started_at, created_at),
                finished_at = coalesce(started_at, created_at) + interval '90 seconds'
         WHERE status = 'running' AND priority = 5 AND created_at < '2026-11-04'",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM jobs WHERE status = 'paused' AND created_at > '2026-11-05'")
        .execute(&pool)
        .await
        .unwrap();
    // Errors added later move their jobs to another rollup key.
    sqlx::query(
        "INSERT INTO job_errors (job_id, code, class, message)
         SELECT id, 'PARSE_ERROR', 'input', 'bad' FROM jobs
         WHERE status IN ('completed', 'failed') AND extract(epoch FROM created_at)::int8 / 60 % 5 = 0",
    )
    .execute(&pool)
    .await
    .unwrap();
    check(rows(&pool).await).await;
    let (a, b) = tokio::join!(job_rollups::fold(&pool), job_rollups::fold(&pool));
    a.unwrap();
    b.unwrap();
    assert_eq!(count(&pool, "job_rollup_deltas").await, 0);
    check(rows(&pool).await).await;
}

/// Two folds at once move every delta once: the rollups equal the jobs counted directly.
/// (No app here, so no background fold takes a share.)
#[sqlx::test]
async fn two_folds_at_once_move_every_delta_once(pool: PgPool) {
    sqlx::query(
        "INSERT INTO jobs (kind, status, product_id, sending_group_id, priority, max_parallel_tasks,
                           max_attempts, retry_interval, created_by, created_at)
         SELECT 'batch', (ARRAY['pending','running','paused'])[1 + i % 3], 'p', 'g', 5, 1, 1, 0,
                'test', now() - make_interval(hours => i % 200)
         FROM generate_series(1, 25000) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deltas = count(&pool, "job_rollup_deltas").await;
    assert_eq!(deltas, 25_000);
    let (a, b) = tokio::join!(job_rollups::fold(&pool), job_rollups::fold(&pool));
    assert_eq!(a.unwrap() + b.unwrap(), deltas as u64);
    assert_eq!(count(&pool, "job_rollup_deltas").await, 0);
    let differing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_rollups r
         FULL JOIN (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, kind, status, count(*) AS n
                    FROM jobs GROUP BY 1, 2, 3) j USING (day, kind, status)
         WHERE r.jobs IS DISTINCT FROM j.n",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(differing, 0);
}

/// Two transactions adding different errors to one job at once: its `error_types` ends with
/// both (the second waits for the first's row and adds to what it wrote).
#[sqlx::test]
async fn concurrent_errors_on_one_job_all_reach_its_error_types(pool: PgPool) {
    let job: Uuid = sqlx::query_scalar(
        "INSERT INTO jobs (kind, status, product_id, sending_group_id, priority, max_parallel_tasks,
                           max_attempts, retry_interval, created_by)
         VALUES ('batch', 'running', 'p', 'g', 5, 1, 1, 0, 'test') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let insert = "INSERT INTO job_errors (job_id, code, class, message) VALUES ($1, $2, $3, 'x')";
    let mut first = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind(job)
        .bind("TIMEOUT")
        .bind("transient")
        .execute(&mut *first)
        .await
        .unwrap();
    let second = {
        let pool = pool.clone();
        tokio::spawn(async move {
            sqlx::query(insert)
                .bind(job)
                .bind("PARSE_ERROR")
                .bind("input")
                .execute(&pool)
                .await
                .unwrap();
        })
    };
    // The second is waiting on the job's row.
    let waiting = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                            WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO job_errors%')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    for _ in 0..100 {
        if waiting().await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(waiting().await, "the second insert never waited");
    first.commit().await.unwrap();
    second.await.unwrap();
    let types: Vec<String> = sqlx::query_scalar("SELECT error_types FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut want = vec!["PARSE_ERROR", "TIMEOUT", "input", "transient"];
    let mut got: Vec<&str> = types.iter().map(String::as_str).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // The rollups count the job once, under its whole set.
    job_rollups::fold(&pool).await.unwrap();
    let counted: Vec<(Vec<String>, i64)> =
        sqlx::query_as("SELECT error_types, jobs FROM job_rollups WHERE jobs <> 0")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].1, 1);
}
