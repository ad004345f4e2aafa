//! The database cut, stalled, or absent at start, through a proxy the test controls.

use std::time::{Duration, Instant};

use jobdeck::server::config::Config;
use jobdeck::server::db;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::helpers::*;
use crate::proxy::PgProxy;

/// The app's pool through `proxy`, as `startup` builds it from `config`.
fn pool_through(proxy: &PgProxy, db: &PgConnectOptions, config: &Config) -> PgPool {
    let options = db.clone().host("127.0.0.1").port(proxy.addr.port());
    db::connect_lazy(options, 4, config.db_timeout)
}

/// Short timeouts, so that an outage shows within seconds.
fn outage_config() -> Config {
    let mut config = test_config();
    config.db_timeout = Duration::from_secs(2);
    config.batch.deadline = Duration::from_secs(2);
    config.batch.stall_timeout = Duration::from_secs(4);
    config
}

async fn stored_messages(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT message FROM job_reports WHERE message IS NOT NULL")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The database goes away and comes back: 503s with a JSON error while it is gone (each
/// within a few seconds), 200s again afterwards from the same process.
#[sqlx::test]
async fn answers_503_while_the_database_is_gone_and_recovers_by_itself(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let proxy = PgProxy::start(format!("{}:{}", db.get_host(), db.get_port())).await;
    let config = outage_config();
    let app = TestApp::spawn_with(pool_through(&proxy, &db, &config), config).await;

    assert_eq!(
        app.report(&report("outage", "success", &now()))
            .await
            .status(),
        200
    );

    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let response = app.report(&report("outage", "error", &now())).await;
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(response.headers()["retry-after"], "1");
        let body = body_json(response).await;
        assert_eq!(body["error"], "the database is unavailable; retry later");
    }
    assert_eq!(health(&app).await.0, 503);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app
            .report(&report("outage", "error", &now()))
            .await
            .status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "still failing 15 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status: String =
        sqlx::query_scalar("SELECT last_status FROM job_status WHERE job_key = 'outage'")
            .fetch_one(&direct)
            .await
            .unwrap();
    assert_eq!(status, "error");
    // Every 200 is in the history and no 503 is.
    assert_eq!(count(&direct, "job_reports").await, 2);
    assert_eq!(
        health(&app).await,
        (200, serde_json::json!({"status": "ok", "database": "ok"}))
    );
}

/// A network path that goes silent: a report whose statement was already sent gets 504 (its
/// outcome is unknown: it may commit behind the silence, or not), reports that could not reach the database get
/// 503 and are never stored, every answer comes within the documented bound, and the same
/// process recovers when the path does.
#[sqlx::test]
async fn a_stalled_database_gives_the_documented_answers(_: PgPoolOptions, db: PgConnectOptions) {
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let proxy = PgProxy::start(format!("{}:{}", db.get_host(), db.get_port())).await;
    let config = outage_config();
    // Longest a caller can wait: the queue deadline, a connection, then a silent database.
    let bound = config.batch.deadline + config.db_timeout + config.batch.stall_timeout;
    let pool = pool_through(&proxy, &db, &config);
    let app = std::sync::Arc::new(TestApp::spawn_with(pool, config).await);
    assert_eq!(
        app.report(&report("warm", "success", &now()))
            .await
            .status(),
        200
    );

    // Hold the table so the next statement is provably in flight, then silence the path
    // and let it commit behind the silence.
    let lock = lock_job_status(&direct).await;
    let in_flight = {
        let app = app.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let body = with(
                report("in-flight", "error", &now()),
                "message",
                "in flight".into(),
            );
            let response = app.report(&body).await;
            (response.status().as_u16(), started.elapsed())
        })
    };
    wait_for_lock_waiter(&direct).await;
    proxy.stall();
    lock.commit().await.unwrap();

    let mut refused = Vec::new();
    for n in 0..3 {
        let message = format!("during the stall {n}");
        let started = Instant::now();
        let body = with(
            report(&format!("stalled-{n}"), "success", &now()),
            "message",
            message.clone().into(),
        );
        let response = app.report(&body).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 503, "report {n}");
        assert!(
            elapsed <= bound + Duration::from_secs(1),
            "answered after {elapsed:?}"
        );
        refused.push(message);
    }
    let (status, elapsed) = in_flight.await.unwrap();
    assert_eq!(
        status, 504,
        "a statement sent before the stall has an unknown outcome"
    );
    assert!(
        elapsed <= bound + Duration::from_secs(1),
        "answered after {elapsed:?}"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while app
        .report(&report("after", "success", &now()))
        .await
        .status()
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "no recovery 15 s after the path came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored = stored_messages(&direct).await;
    assert!(
        refused.iter().all(|m| !stored.contains(m)),
        "a report answered 503 was stored: {stored:?}"
    );
    let in_flight_copies = stored.iter().filter(|m| *m == "in flight").count();
    assert!(
        in_flight_copies <= 1,
        "a 504 may be stored, but once at most"
    );
}

/// The portal starts while its database is unreachable: it serves, `/healthz` and the
/// webhook answer 503, and the schema is migrated as soon as the database can be reached.
#[sqlx::test(migrations = false)]
async fn starts_without_its_database_and_migrates_when_it_arrives(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let proxy = PgProxy::start(format!("{}:{}", db.get_host(), db.get_port())).await;
    proxy.cut();
    let config = outage_config();
    let app = TestApp::spawn_unready(pool_through(&proxy, &db, &config), config).await;

    assert_eq!(
        health(&app).await,
        (
            503,
            serde_json::json!({"status": "unavailable", "database": "unreachable"})
        )
    );
    let response = app.report(&report("early", "error", &now())).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        body_json(response).await["error"],
        "the database is unavailable; retry later"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(&app).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not healthy 15 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.report(&report("early", "error", &now())).await.status(),
        200
    );
    let direct = PgPoolOptions::new().connect_with(db).await.unwrap();
    assert_eq!(count(&direct, "job_reports").await, 1);
}
