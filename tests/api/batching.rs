//! The batcher's promises, forced with locks and faults injected in the real database:
//! reports that share one batch, a claimed report outliving its deadline, the deadlock retry
//! and the report-by-report fallback.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobdeck::server::db;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// One writer, so that reports sent while it is held all land in its next batch.
async fn one_writer_app(pool: PgPool) -> Arc<TestApp> {
    let mut config = test_config();
    config.batch.writers = 1;
    Arc::new(TestApp::spawn_with(pool, config).await)
}

fn send(app: &Arc<TestApp>, body: Value) -> JoinHandle<(u16, Value)> {
    let app = app.clone();
    tokio::spawn(async move {
        let response = app.report(&body).await;
        (response.status().as_u16(), body_json(response).await)
    })
}

/// Locks `job_status` and sends a filler report that the only writer takes and blocks on;
/// whatever is sent next queues behind it and forms the next batch.
async fn hold_the_writer(
    app: &Arc<TestApp>,
    pool: &PgPool,
) -> (Transaction<'static, Postgres>, JoinHandle<(u16, Value)>) {
    let lock = lock_job_status(pool).await;
    let filler = send(app, report("filler", "success", &now()));
    wait_for_lock_waiter(pool).await;
    (lock, filler)
}

/// Sends the reports in this order, each queued before the next is sent.
async fn queue_in_order(app: &Arc<TestApp>, bodies: Vec<Value>) -> Vec<JoinHandle<(u16, Value)>> {
    let mut sent = Vec::new();
    for body in bodies {
        sent.push(send(app, body));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sent
}

/// Batches the app has sent to the database so far.
fn batches(app: &TestApp) -> u64 {
    app.state
        .job_reports
        .stats()
        .batches
        .load(Ordering::Relaxed)
}

async fn answers(sent: Vec<JoinHandle<(u16, Value)>>) -> Vec<u16> {
    let mut statuses = Vec::new();
    for handle in sent {
        statuses.push(handle.await.unwrap().0);
    }
    statuses
}

async fn last(pool: &PgPool, job_key: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT last_status, last_message FROM job_status WHERE job_key = $1")
        .bind(job_key)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn inside_one_batch_the_newest_wins_and_a_tie_goes_to_the_later_arrival(pool: PgPool) {
    let app = one_writer_app(pool.clone()).await;
    let (lock, filler) = hold_the_writer(&app, &pool).await;
    let batches_before = batches(&app);
    let msg = |body: Value, m: &str| with(body, "message", m.into());
    let sent = queue_in_order(
        &app,
        vec![
            // A late report arrives after the newer one, in the same batch.
            msg(report("late", "error", "2026-11-20T10:05:00Z"), "newer"),
            msg(
                report("late", "success", "2026-11-20T10:00:00Z"),
                "older, sent last",
            ),
            // Equal finished_at: the later arrival wins.
            msg(report("tie", "success", "2026-11-20T10:00:00Z"), "first"),
            msg(report("tie", "error", "2026-11-20T10:00:00Z"), "second"),
        ],
    )
    .await;
    lock.commit().await.unwrap();

    assert_eq!(filler.await.unwrap().0, 200);
    assert_eq!(answers(sent).await, vec![200; 4]);
    let batches = batches(&app) - batches_before;
    assert_eq!(batches, 1, "the four reports shared one batch");
    assert_eq!(
        last(&pool, "late").await,
        ("error".into(), Some("newer".into()))
    );
    assert_eq!(
        last(&pool, "tie").await,
        ("error".into(), Some("second".into()))
    );
    assert_eq!(count(&pool, "job_reports").await, 5);
}

#[sqlx::test]
async fn across_batches_a_tie_goes_to_the_later_arrival(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let at = "2026-11-20T10:00:00Z";
    for (status, message) in [("error", "first"), ("success", "second")] {
        let body = with(report("tie", status, at), "message", message.into());
        assert_eq!(app.report(&body).await.status(), 200);
    }
    assert_eq!(
        last(&pool, "tie").await,
        ("success".into(), Some("second".into()))
    );
}

/// A report that a writer took before its deadline ran out is not abandoned: its caller
/// waits for the commit and gets the true answer (200), while the report ahead of it, whose
/// statement PostgreSQL cancelled after the database timeout, gets 503 and is not stored.
#[sqlx::test]
async fn a_claimed_report_outlives_its_deadline_and_gets_the_true_answer(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let mut config = test_config();
    // Each step has two seconds to spare either way, for a machine busy with other tests.
    config.db_timeout = Duration::from_secs(6);
    config.batch.deadline = Duration::from_secs(6);
    config.batch.writers = 1;
    let pool = db::connect_lazy(db, 4, config.db_timeout);
    let app = Arc::new(TestApp::spawn_with(pool, config).await);

    let (lock, filler) = hold_the_writer(&app, &direct).await;
    let held = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let claimed = {
        let app = app.clone();
        tokio::spawn(async move {
            let response = app.report(&report("claimed", "success", &now())).await;
            (response.status().as_u16(), Instant::now())
        })
    };
    // From the moment the filler waits (0 s): at 6 s its statement is cancelled and the
    // writer takes "claimed", whose own deadline runs out at 8 s; the lock goes at 10 s and
    // "claimed" commits, 4 s into its 6 s statement timeout.
    tokio::time::sleep((held + Duration::from_secs(10)).saturating_duration_since(Instant::now()))
        .await;
    let released = Instant::now();
    lock.commit().await.unwrap();

    let (status, body) = filler.await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("the database is unavailable; retry later"))
    );
    let (status, answered) = claimed.await.unwrap();
    assert_eq!(status, 200);
    // Its answer came after the commit it waited for, past its own deadline, and the
    // batcher never gave up on it.
    assert!(
        answered >= released,
        "answered before the lock was released"
    );
    assert!(
        answered - started > Duration::from_secs(6),
        "answered before its deadline"
    );
    assert_eq!(
        app.state
            .job_reports
            .stats()
            .skipped
            .load(Ordering::Relaxed),
        0,
        "claimed, not abandoned"
    );
    let keys: Vec<String> = sqlx::query_scalar("SELECT job_key FROM job_status")
        .fetch_all(&direct)
        .await
        .unwrap();
    assert_eq!(
        keys,
        vec!["claimed".to_string()],
        "the cancelled filler wrote nothing"
    );
}

#[sqlx::test]
async fn a_deadlock_is_retried_until_the_batch_commits(pool: PgPool) {
    // Fault injection in the database itself: the first two inserts into the history fail
    // as a deadlock would. A sequence is not rolled back, so it counts the attempts.
    for statement in [
        "CREATE SEQUENCE fault_attempts",
        "CREATE FUNCTION inject_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('fault_attempts') <= 2 THEN
             RAISE EXCEPTION 'injected deadlock' USING ERRCODE = 'deadlock_detected';
           END IF;
           RETURN NEW;
         END $$",
        "CREATE TRIGGER inject_deadlock BEFORE INSERT ON job_reports
         FOR EACH ROW EXECUTE FUNCTION inject_deadlock()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let app = TestApp::spawn(pool.clone()).await;
    assert_eq!(
        app.report(&report("retried", "error", &now()))
            .await
            .status(),
        200
    );
    let attempts: i64 = sqlx::query_scalar("SELECT last_value FROM fault_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 3, "two injected deadlocks, then the commit");
    assert_eq!(count(&pool, "job_reports").await, 1);
}

#[sqlx::test]
async fn one_poisoned_report_fails_alone_when_its_batch_is_written_report_by_report(pool: PgPool) {
    sqlx::query(
        "CREATE FUNCTION inject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.message = 'poison' THEN
             RAISE EXCEPTION 'injected fault' USING ERRCODE = 'check_violation';
           END IF;
           RETURN NEW;
         END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER inject_poison BEFORE INSERT ON job_reports
         FOR EACH ROW EXECUTE FUNCTION inject_poison()",
    )
    .execute(&pool)
    .await
    .unwrap();
    let app = one_writer_app(pool.clone()).await;
    let (lock, filler) = hold_the_writer(&app, &pool).await;
    let batches_before = batches(&app);
    let sent = queue_in_order(
        &app,
        vec![
            with(
                report("healthy-a", "success", &now()),
                "message",
                "fine".into(),
            ),
            with(
                report("poisoned", "error", &now()),
                "message",
                "poison".into(),
            ),
            with(
                report("healthy-b", "success", &now()),
                "message",
                "fine".into(),
            ),
        ],
    )
    .await;
    lock.commit().await.unwrap();

    assert_eq!(filler.await.unwrap().0, 200);
    assert_eq!(answers(sent).await, vec![200, 500, 200]);
    let batches = batches(&app) - batches_before;
    assert_eq!(batches, 1, "the three reports were sent as one batch first");
    let keys: Vec<String> = sqlx::query_scalar("SELECT job_key FROM job_status ORDER BY job_key")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(keys, vec!["filler", "healthy-a", "healthy-b"]);
}
