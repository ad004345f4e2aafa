//! The limits every route gets at the HTTP layer, seen from a raw client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn limited_config() -> jobdeck::server::config::Config {
    let mut config = test_config();
    config.http.max_in_flight = 2;
    config.http.header_timeout = Duration::from_millis(500);
    config.http.body_timeout = Duration::from_millis(500);
    config
}

/// Sends raw bytes and reads whatever comes back until the server closes the connection.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> (String, Duration) {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[sqlx::test]
async fn past_the_in_flight_limit_requests_are_shed_at_once_with_503(pool: PgPool) {
    let app = Arc::new(TestApp::spawn_with(pool.clone(), limited_config()).await);
    let lock = lock_job_status(&pool).await;
    let held: Vec<_> = (0..2)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                app.report(&report(&format!("held-{n}"), "success", &now()))
                    .await
                    .status()
            })
        })
        .collect();
    wait_for_lock_waiter(&pool).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    for path in ["/healthz", "/incidents"] {
        let started = Instant::now();
        let response = app
            .client
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} waited instead of being shed"
        );
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(
            body_json(response).await["error"],
            "the portal is serving as many requests as it can; retry later"
        );
    }
    lock.commit().await.unwrap();
    for request in held {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[sqlx::test]
async fn a_body_that_stops_arriving_gets_408_and_writes_nothing(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), limited_config()).await;
    let head = format!(
        "POST /api/monitor/job-report HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\nConnection: close\r\n\r\n{{\"job_key\":"
    );
    let (answer, _) = raw_exchange(&app, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request body did not arrive in time"),
        "{answer}"
    );
    assert_eq!(count(&pool, "job_reports").await, 0);
}

#[sqlx::test]
async fn headers_that_stop_arriving_close_the_connection(pool: PgPool) {
    let app = TestApp::spawn_with(pool, limited_config()).await;
    let (answer, elapsed) = raw_exchange(
        &app,
        b"POST /api/monitor/job-report HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
}

#[sqlx::test]
async fn the_secret_is_checked_before_the_body_is_read(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // A wrong secret and a 60 KiB body that never comes: answered at once, not after a read.
    let head = format!(
        "POST /api/monitor/job-report HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: wrong\r\n\
         Content-Length: 61440\r\nConnection: close\r\n\r\n"
    );
    let (answer, elapsed) = raw_exchange(&app, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
}
