use sqlx::PgPool;

use crate::helpers::*;

/// Runs seed 003's stdlib-only Python reporter against the running server.
async fn run_reporter(app: &TestApp, fail: bool) -> std::process::Output {
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/seed003_reporter.py"
        ))
        .env("TC_PORTAL_MONITOR_URL", app.webhook_url())
        .env("TC_PORTAL_WEBHOOK_SECRET", SECRET)
        .env("TC_PORTAL_JOB_KEY", "minpaku-in-report")
        .env("TC_PORTAL_JOB_TITLE", "minpaku-IN レポート作成")
        .env("PYTHONIOENCODING", "utf-8")
        .env("NO_PROXY", "*")
        .env_remove("JOBDECK_TEST_FAIL");
    if fail {
        command.env("JOBDECK_TEST_FAIL", "1");
    }
    command.output().await.expect("python3 must be installed")
}

#[sqlx::test]
async fn the_seed_python_reporter_reports_success_and_error(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;

    let ok = run_reporter(&app, false).await;
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "[TC Portal] 報告成功: success"
    );
    let (status, message): (String, String) = sqlx::query_as(
        "SELECT last_status, last_message FROM job_status WHERE job_key = 'minpaku-in-report'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), message.as_str()), ("success", "処理完了"));

    let failed = run_reporter(&app, true).await;
    assert!(!failed.status.success(), "the script re-raises its error");
    assert_eq!(
        String::from_utf8_lossy(&failed.stdout).trim(),
        "[TC Portal] 報告成功: error"
    );
    let (status, message, title): (String, String, String) = sqlx::query_as(
        "SELECT last_status, last_message, title FROM job_status WHERE job_key = 'minpaku-in-report'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), message.as_str()),
        ("error", "在庫CSVが見つかりません")
    );
    assert_eq!(title, "minpaku-IN レポート作成");
    assert_eq!(count(&pool, "job_reports").await, 2);
}
