//! Seed 002's dashboard endpoints over a database seeded with known recap jobs: every
//! figure against a count made here, the 24-hour window at its edges, the user filter,
//! identities and malformed parameters.

use chrono::{DateTime, Duration, TimeZone, Utc};
use jobdeck::model::{DashboardFilter, JobStatus, Role, StageState, RECAP_STAGES};
use jobdeck::server::dashboard::{job_progress_at, job_stats_at};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

/// A recap job as the seed's pipeline leaves it.
struct Seed {
    status: JobStatus,
    user_id: Option<&'static str>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

async fn insert_job(pool: &PgPool, seed: &Seed) -> Uuid {
    insert_kind(pool, "recap", seed).await
}

async fn insert_kind(pool: &PgPool, kind: &str, seed: &Seed) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, status, product_id, sending_group_id, user_id, trigger_source,
                           priority, max_parallel_tasks, max_attempts, retry_interval,
                           stages, created_by, created_at, started_at, finished_at)
         VALUES ($1, $2, 'p', 'g', $3, CASE WHEN $3 IS NULL THEN 'system' ELSE 'user' END,
                 5, 1, 1, 0, $4, 'test', $5, $5, $6)
         RETURNING id",
    )
    .bind(kind)
    .bind(seed.status.as_str())
    .bind(seed.user_id)
    .bind(RECAP_STAGES.map(String::from).to_vec())
    .bind(seed.started_at)
    .bind(seed.finished_at)
    .fetch_one(pool)
    .await
    .expect("insert job")
}

async fn insert_phase(
    pool: &PgPool,
    job: Uuid,
    name: &str,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
) {
    sqlx::query(
        "INSERT INTO job_phases (job_id, name, started_at, finished_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(job)
    .bind(name)
    .bind(started_at)
    .bind(finished_at)
    .execute(pool)
    .await
    .expect("insert phase");
}

async fn insert_articles(pool: &PgPool, job: Uuid, original_user_id: &str, genre: &str) {
    sqlx::query(
        "INSERT INTO recap_job_articles (job_id, feed_id, original_user_id, genre)
         VALUES ($1, 'feed-1', $2, $3)",
    )
    .bind(job)
    .bind(original_user_id)
    .bind(genre)
    .execute(pool)
    .await
    .expect("insert article");
}

/// A fixed "now", on a whole second so the edges can be hit exactly.
fn pinned_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[sqlx::test]
async fn job_stats_equal_an_independent_count_with_exact_window_edges(pool: PgPool) {
    let now = pinned_now();
    let hour = Duration::hours(1);
    let mut rng = Lcg(7);
    let finished = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];
    // (status, started, finished) of every finished recap job, and its stages' (name, ms, end).
    let mut jobs = Vec::new();
    let mut phases = Vec::new();
    let at = |seconds_ago: i64, millis: i64| {
        now - Duration::seconds(seconds_ago) + Duration::milliseconds(millis)
    };
    let mut ends: Vec<DateTime<Utc>> = (0..120)
        .map(|_| at(rng.below(50 * 3600) as i64, rng.below(1000) as i64))
        .collect();
    // The edges: exactly now (in), exactly 24 h ago (out, but in the previous window), a
    // moment after (in, the oldest hour), exactly one hour ago (the second hour, not the
    // first), exactly 48 h ago (in neither).
    ends.extend([
        now,
        now - Duration::hours(24),
        now - Duration::hours(24) + Duration::microseconds(1),
        now - hour,
        now - Duration::hours(48),
    ]);
    for (i, end) in ends.iter().enumerate() {
        let status = finished[rng.below(3) as usize];
        let duration = Duration::milliseconds(60_000 + rng.below(3_600_000) as i64);
        let started = *end - duration;
        let id = insert_job(
            &pool,
            &Seed {
                status,
                user_id: None,
                started_at: started,
                finished_at: Some(*end),
            },
        )
        .await;
        // Each job ran its stages back to back; the last one ends when the job does.
        let stages = 1 + i % RECAP_STAGES.len();
        let slice = duration / stages as i32;
        for (s, name) in RECAP_STAGES.iter().take(stages).enumerate() {
            let from = started + slice * s as i32;
            let to = if s + 1 == stages { *end } else { from + slice };
            insert_phase(&pool, id, name, from, Some(to)).await;
            phases.push((
                name.to_string(),
                (to - from).num_microseconds().unwrap(),
                to,
            ));
        }
        jobs.push((status, started, *end));
    }
    // Not counted: live jobs, an open phase, and a batch job that finished in the window.
    let live = insert_job(
        &pool,
        &Seed {
            status: JobStatus::Running,
            user_id: None,
            started_at: now - hour,
            finished_at: None,
        },
    )
    .await;
    insert_phase(&pool, live, "Fetch", now - hour, None).await;
    insert_kind(
        &pool,
        "batch",
        &Seed {
            status: JobStatus::Failed,
            user_id: None,
            started_at: now - hour * 2,
            finished_at: Some(now - hour),
        },
    )
    .await;
    // A job finished after `now` (the clock moved on while computing) is not in it either.
    insert_job(
        &pool,
        &Seed {
            status: JobStatus::Completed,
            user_id: None,
            started_at: now - hour,
            finished_at: Some(now + Duration::microseconds(1)),
        },
    )
    .await;

    let stats = job_stats_at(&pool, &DashboardFilter::default(), now)
        .await
        .unwrap();

    let in_window = |end: DateTime<Utc>, days_ago: i32| {
        end > now - Duration::hours(24 * (days_ago as i64 + 1))
            && end <= now - Duration::hours(24 * days_ago as i64)
    };
    for (window, days_ago) in [(&stats.last_24h, 0), (&stats.previous_24h, 1)] {
        let mine: Vec<_> = jobs.iter().filter(|j| in_window(j.2, days_ago)).collect();
        let count = |s: JobStatus| mine.iter().filter(|j| j.0 == s).count() as i64;
        assert_eq!(window.jobs, mine.len() as i64, "window {days_ago}");
        assert_eq!(window.completed, count(JobStatus::Completed));
        assert_eq!(window.failed, count(JobStatus::Failed));
        assert_eq!(window.cancelled, count(JobStatus::Cancelled));
        let (ok, bad) = (count(JobStatus::Completed), count(JobStatus::Failed));
        let rate = ok as f64 * 100.0 / (ok + bad) as f64;
        assert!(
            close(window.success_rate.unwrap(), rate),
            "{window:?} vs {rate}"
        );
        let durations: Vec<f64> = mine
            .iter()
            .filter(|j| j.0 == JobStatus::Completed)
            .map(|j| (j.2 - j.1).num_microseconds().unwrap() as f64 / 1000.0)
            .collect();
        let avg = durations.iter().sum::<f64>() / durations.len() as f64;
        assert!(
            close(window.avg_duration_ms.unwrap(), avg),
            "{window:?} vs {avg}"
        );
    }

    assert_eq!(stats.per_hour.len(), 24);
    for (i, hour_stats) in stats.per_hour.iter().enumerate() {
        let ago = 23 - i as i64;
        let (from, to) = (now - hour * (ago as i32 + 1), now - hour * ago as i32);
        assert_eq!(hour_stats.start, from, "hour {i}");
        let these: Vec<_> = jobs.iter().filter(|j| j.2 > from && j.2 <= to).collect();
        assert_eq!(hour_stats.jobs, these.len() as i64, "hour {i}");
        let failures = these.iter().filter(|j| j.0 == JobStatus::Failed).count() as i64;
        assert_eq!(hour_stats.failures, failures, "hour {i}");
    }
    assert_eq!(
        stats.per_hour.iter().map(|h| h.jobs).sum::<i64>(),
        stats.last_24h.jobs
    );

    let expected_stages: Vec<&str> = RECAP_STAGES
        .iter()
        .copied()
        .filter(|name| phases.iter().any(|p| p.0 == *name && in_window(p.2, 0)))
        .collect();
    let got: Vec<&str> = stats.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        got, expected_stages,
        "seed 002's order, only stages that ran"
    );
    for stage in &stats.stages {
        let runs: Vec<f64> = phases
            .iter()
            .filter(|p| p.0 == stage.name && in_window(p.2, 0))
            .map(|p| p.1 as f64 / 1000.0)
            .collect();
        assert_eq!(stage.runs, runs.len() as i64, "{}", stage.name);
        let avg = runs.iter().sum::<f64>() / runs.len() as f64;
        assert!(
            close(stage.avg_ms, avg),
            "{}: {} vs {avg}",
            stage.name,
            stage.avg_ms
        );
    }
}

#[sqlx::test]
async fn the_window_is_exact_at_its_edges(pool: PgPool) {
    let now = pinned_now();
    let hours = Duration::hours;
    for end in [
        now,                                         // in: the last hour
        now - hours(1),                              // in: the hour before, not the last
        now - hours(24) + Duration::microseconds(1), // in: the oldest hour
        now - hours(24),                             // out: the previous window
        now - hours(48),                             // in neither
        now + Duration::microseconds(1),             // after now: in neither
    ] {
        let seed = Seed {
            status: JobStatus::Completed,
            user_id: None,
            started_at: end - Duration::minutes(5),
            finished_at: Some(end),
        };
        insert_job(&pool, &seed).await;
    }
    let stats = job_stats_at(&pool, &DashboardFilter::default(), now)
        .await
        .unwrap();
    assert_eq!(stats.last_24h.jobs, 3);
    assert_eq!(stats.previous_24h.jobs, 1);
    let per_hour: Vec<i64> = stats.per_hour.iter().map(|h| h.jobs).collect();
    let mut expected = vec![0; 24];
    (expected[0], expected[22], expected[23]) = (1, 1, 1);
    assert_eq!(per_hour, expected);
    assert_eq!(stats.per_hour[0].start, now - hours(24));
    assert_eq!(stats.per_hour[23].start, now - hours(1));
    assert_eq!(stats.last_24h.avg_duration_ms, Some(300_000.0));
    assert_eq!(stats.last_24h.success_rate, Some(100.0));
}

#[sqlx::test]
async fn at_most_ten_live_jobs_are_listed_and_it_says_there_are_more(pool: PgPool) {
    let now = pinned_now();
    let mut ids = Vec::new();
    for minutes in 0..11 {
        let seed = Seed {
            status: JobStatus::Running,
            user_id: None,
            started_at: now - Duration::minutes(30 - minutes),
            finished_at: None,
        };
        ids.push(insert_job(&pool, &seed).await);
    }
    let filter = DashboardFilter::default();
    let stats = job_stats_at(&pool, &filter, now).await.unwrap();
    let progress = job_progress_at(&pool, &filter, now, &stats).await.unwrap();
    let listed: Vec<Uuid> = progress.active.iter().map(|j| j.id).collect();
    ids.reverse();
    assert_eq!(listed, ids[..10], "the newest ten");
    assert!(progress.more_active);
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(ids[10])
        .execute(&pool)
        .await
        .unwrap();
    let progress = job_progress_at(&pool, &filter, now, &stats).await.unwrap();
    assert_eq!(progress.active.len(), 10);
    assert!(!progress.more_active, "exactly ten");
}

#[sqlx::test]
async fn with_no_jobs_the_figures_are_empty_not_zero(pool: PgPool) {
    let now = pinned_now();
    let stats = job_stats_at(&pool, &DashboardFilter::default(), now)
        .await
        .unwrap();
    assert_eq!(stats.last_24h.jobs, 0);
    assert_eq!(
        stats.last_24h.success_rate, None,
        "no run: no rate, not 0 %"
    );
    assert_eq!(stats.last_24h.avg_duration_ms, None);
    assert_eq!(stats.per_hour.len(), 24);
    assert!(stats.stages.is_empty());
    let progress = job_progress_at(&pool, &DashboardFilter::default(), now, &stats)
        .await
        .unwrap();
    assert!(progress.active.is_empty() && progress.recent.is_empty());
    assert!(progress.last_finished.is_none());
}

#[sqlx::test]
async fn the_user_filter_takes_triggered_jobs_and_jobs_from_the_users_feeds(pool: PgPool) {
    let now = pinned_now();
    let job = |user_id, ago: i64| Seed {
        status: JobStatus::Completed,
        user_id,
        started_at: now - Duration::minutes(ago + 10),
        finished_at: Some(now - Duration::minutes(ago)),
    };
    // Triggered by alice; triggered by bob with articles from alice's feeds; triggered by
    // bob with carol's articles; run by the system with nobody's.
    let triggered = insert_job(&pool, &job(Some("alice"), 10)).await;
    let via_feeds = insert_job(&pool, &job(Some("bob"), 20)).await;
    insert_articles(&pool, via_feeds, "alice", "tech").await;
    insert_articles(&pool, via_feeds, "alice", "sports").await;
    let other = insert_job(&pool, &job(Some("bob"), 30)).await;
    insert_articles(&pool, other, "carol", "tech").await;
    let system = insert_job(&pool, &job(None, 40)).await;
    // A live job of alice's shows as active for her only.
    let live = insert_job(
        &pool,
        &Seed {
            status: JobStatus::Running,
            user_id: Some("alice"),
            started_at: now - Duration::minutes(5),
            finished_at: None,
        },
    )
    .await;

    for (user, expected, active) in [
        (None, vec![triggered, via_feeds, other, system], vec![live]),
        (Some("alice"), vec![triggered, via_feeds], vec![live]),
        (Some("bob"), vec![via_feeds, other], vec![]),
        (Some("carol"), vec![other], vec![]),
        (Some("nobody"), vec![], vec![]),
    ] {
        let filter = DashboardFilter::parse(user).unwrap();
        let stats = job_stats_at(&pool, &filter, now).await.unwrap();
        assert_eq!(stats.last_24h.jobs, expected.len() as i64, "{user:?}");
        assert_eq!(stats.user_id.as_deref(), user);
        let progress = job_progress_at(&pool, &filter, now, &stats).await.unwrap();
        let recent: Vec<Uuid> = progress.recent.iter().map(|j| j.id).collect();
        assert_eq!(recent, expected, "{user:?}: newest finished first");
        let live_ids: Vec<Uuid> = progress.active.iter().map(|j| j.id).collect();
        assert_eq!(live_ids, active, "{user:?}");
    }
}

#[sqlx::test]
async fn job_progress_shows_stages_genres_and_the_last_error(pool: PgPool) {
    let now = pinned_now();
    let minutes = Duration::minutes;
    // Yesterday's runs give each stage its usual duration.
    let done = insert_job(
        &pool,
        &Seed {
            status: JobStatus::Completed,
            user_id: None,
            started_at: now - minutes(120),
            finished_at: Some(now - minutes(100)),
        },
    )
    .await;
    insert_phase(
        &pool,
        done,
        "Fetch",
        now - minutes(120),
        Some(now - minutes(118)),
    )
    .await;
    insert_phase(
        &pool,
        done,
        "Preprocess",
        now - minutes(118),
        Some(now - minutes(110)),
    )
    .await;

    // A live job: Fetch done, Preprocess running for 3 minutes, 32 genres.
    let live = insert_job(
        &pool,
        &Seed {
            status: JobStatus::Running,
            user_id: Some("alice"),
            started_at: now - minutes(10),
            finished_at: None,
        },
    )
    .await;
    sqlx::query(
        "UPDATE jobs SET current_phase = 'Preprocess', progress_percentage = 12.5 WHERE id = $1",
    )
    .bind(live)
    .execute(&pool)
    .await
    .unwrap();
    insert_phase(
        &pool,
        live,
        "Fetch",
        now - minutes(10),
        Some(now - minutes(3)),
    )
    .await;
    insert_phase(&pool, live, "Preprocess", now - minutes(3), None).await;
    for g in 0..32 {
        sqlx::query(
            "INSERT INTO job_tasks (job_id, name, status, articles, clusters, started_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(live)
        .bind(format!("genre-{g:02}"))
        .bind(if g < 10 { "completed" } else { "running" })
        .bind(g as i64 * 10)
        .bind(g as i64)
        .bind(now - minutes(9))
        .bind((g < 10).then(|| now - minutes(4)))
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO job_errors (job_id, code, class, message, at)
         VALUES ($1, 'RATE_LIMITED', 'transient', 'first', $2),
                ($1, 'TIMEOUT', 'transient', 'upstream timed out', $3)",
    )
    .bind(live)
    .bind(now - minutes(6))
    .bind(now - minutes(2))
    .execute(&pool)
    .await
    .unwrap();

    let filter = DashboardFilter::default();
    let stats = job_stats_at(&pool, &filter, now).await.unwrap();
    let progress = job_progress_at(&pool, &filter, now, &stats).await.unwrap();
    assert!(progress.last_finished.is_none(), "a job is live");
    let [job] = progress.active.as_slice() else {
        panic!("one active job: {:?}", progress.active)
    };
    assert_eq!(job.id, live);
    assert_eq!(job.current_stage.as_deref(), Some("Preprocess"));
    assert_eq!(job.elapsed_ms, 10 * 60_000);
    let states: Vec<StageState> = job.stages.iter().map(|s| s.state).collect();
    assert_eq!(
        states[..3],
        [StageState::Done, StageState::Running, StageState::Pending]
    );
    assert_eq!(job.stages.len(), 8);
    assert_eq!(job.stages[1].elapsed_ms, Some(3 * 60_000));
    assert_eq!(
        job.stages[1].usual_ms,
        Some(8 * 60_000),
        "yesterday's Preprocess"
    );
    assert_eq!(job.stages[0].usual_ms, Some((2 * 60_000 + 7 * 60_000) / 2));
    assert_eq!(job.genres.len(), 32, "every genre, in name order");
    assert_eq!(job.genres[31].genre, "genre-31");
    assert_eq!(job.genres[31].articles, 310);
    let error = job.last_error.as_ref().expect("the last error");
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        ("TIMEOUT", "upstream timed out")
    );

    // The job fails in Preprocess: no live job, so the pipeline shows where it stopped.
    sqlx::query(
        "UPDATE job_phases SET finished_at = $2 WHERE job_id = $1 AND finished_at IS NULL;",
    )
    .bind(live)
    .bind(now - minutes(1))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET status = 'failed', finished_at = $2 WHERE id = $1")
        .bind(live)
        .bind(now - minutes(1))
        .execute(&pool)
        .await
        .unwrap();
    let stats = job_stats_at(&pool, &filter, now).await.unwrap();
    let progress = job_progress_at(&pool, &filter, now, &stats).await.unwrap();
    assert!(progress.active.is_empty());
    let last = progress.last_finished.expect("the last run");
    assert_eq!(last.id, live);
    assert_eq!(
        last.elapsed_ms,
        9 * 60_000,
        "how long it ran, not until now"
    );
    let states: Vec<StageState> = last.stages.iter().map(|s| s.state).collect();
    assert_eq!(
        states[..3],
        [StageState::Done, StageState::Failed, StageState::Pending]
    );
    let recent = &progress.recent[0];
    assert_eq!((recent.id, recent.status), (live, JobStatus::Failed));
    assert_eq!(recent.genres, 32);
    assert_eq!(recent.articles, (0..32).map(|g| g * 10).sum::<i64>());
    assert_eq!(recent.duration_ms, Some(9 * 60_000));
    assert_eq!(recent.last_error.as_ref().unwrap().code, "TIMEOUT");
    assert_eq!(progress.recent[1].id, done);
}

#[sqlx::test]
async fn the_endpoints_need_a_viewer_and_refuse_malformed_parameters(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let now = Utc::now();
    let id = insert_job(
        &pool,
        &Seed {
            status: JobStatus::Failed,
            user_id: Some("alice"),
            started_at: now - Duration::minutes(30),
            finished_at: Some(now - Duration::minutes(20)),
        },
    )
    .await;
    let viewer = app.client_as(Role::Viewer).await;
    for path in ["/v1/dashboard/job-progress", "/v1/dashboard/job-stats"] {
        let response = app.anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert!(body_json(response).await["error"].is_string());

        for query in [
            "?user=alice",
            "?user_id=alice&user_id=bob",
            &format!("?user_id={}", "x".repeat(201)),
            "?user_id=a%00b",
        ] {
            let response = viewer
                .get(app.url(&format!("{path}{query}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{path}{query}");
            let body = body_json(response).await;
            assert!(
                body["error"].as_str().unwrap().contains("user_id"),
                "{body}"
            );
        }

        for (query, jobs) in [
            ("", 1),
            ("?user_id=alice", 1),
            ("?user_id=bob", 0),
            ("?user_id=", 1),
        ] {
            let response = viewer
                .get(app.url(&format!("{path}{query}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}{query}");
            let body: Value = body_json(response).await;
            let counted = if path.ends_with("stats") {
                body["last_24h"]["jobs"].as_i64().unwrap()
            } else {
                body["recent"].as_array().unwrap().len() as i64
            };
            assert_eq!(counted, jobs, "{path}{query}: {body}");
        }
    }
    let get = |path: &str| viewer.get(app.url(path)).send();
    let body = body_json(get("/v1/dashboard/job-stats").await.unwrap()).await;
    assert_eq!(body["last_24h"]["failed"], 1);
    assert_eq!(
        body["last_24h"]["success_rate"], 0.0,
        "one failed, none completed"
    );
    assert_eq!(body["per_hour"].as_array().unwrap().len(), 24);
    let body = body_json(get("/v1/dashboard/job-progress").await.unwrap()).await;
    assert_eq!(body["recent"][0]["id"], id.to_string());
    assert_eq!(body["recent"][0]["status"], "failed");
    assert_eq!(body["last_finished"]["id"], id.to_string());
}
