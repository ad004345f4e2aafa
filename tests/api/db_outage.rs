use std::time::{Duration, Instant};

use jobdeck::server::job_report::BatchOptions;
use jobdeck::server::pool_options;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::*;
use crate::proxy::PgProxy;

/// The database goes away and comes back: 503s with a JSON error while it is gone (each
/// within a few seconds), 200s again afterwards from the same process.
#[sqlx::test]
async fn answers_503_while_the_database_is_gone_and_recovers_by_itself(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let proxy = PgProxy::start(format!("{}:{}", db.get_host(), db.get_port())).await;
    let through_proxy = pool_options(4, Duration::from_secs(1))
        .connect_lazy_with(db.clone().host("127.0.0.1").port(proxy.addr.port()));
    let batch = BatchOptions {
        deadline: Duration::from_secs(3),
        ..Default::default()
    };
    let app = TestApp::spawn_with(through_proxy, Some(SECRET), batch).await;

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
    // Every 200 is in the history; 503s wrote nothing (a commit can't hide behind a 503 here,
    // since the proxy refused the connection before any statement ran).
    assert_eq!(count(&direct, "job_reports").await, 2);
}
