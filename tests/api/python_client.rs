//! The job-control Python client (`clients/python/`) against the running server.

use jobdeck::model::{Role, RECAP_STAGES};
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn the_python_client_drives_a_recap_job_to_completion(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let output = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/clients/python/recap_example.py"
        ))
        .env("JOBDECK_URL", &app.base_url)
        .env("JOBDECK_TOKEN", app.token(Role::Operator).await)
        .env("NO_PROXY", "*")
        .output()
        .await
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let mut lines = stdout.lines();
    let job: uuid::Uuid = lines.next().unwrap().parse().unwrap();
    assert_eq!(lines.next(), Some("completed"));

    let phases: Vec<String> =
        sqlx::query_scalar("SELECT name FROM job_phases WHERE job_id = $1 ORDER BY id")
            .bind(job)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(phases, RECAP_STAGES);
    let (articles, completed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM recap_job_articles WHERE job_id = $1),
                (SELECT count(*) FROM job_tasks WHERE job_id = $1 AND status = 'completed')",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((articles, completed), (30, 3));
    let trail: Vec<String> =
        sqlx::query_scalar("SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id")
            .bind(job)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(trail, ["pending", "running", "completed"]);
}
