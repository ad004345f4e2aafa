//! Server-rendered pages, fetched as a browser without JavaScript would see them.

use sqlx::PgPool;

use crate::helpers::*;

async fn page(app: &TestApp, path: &str, language: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(format!("{}{path}", app.base_url));
    if let Some(language) = language {
        request = request.header("Accept-Language", language);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[sqlx::test]
async fn incidents_render_failing_jobs_first_with_the_badge_in_japanese(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, empty) = page(&app, "/incidents", None).await;
    assert!(empty.contains("まだ報告はありません"), "empty state");
    assert!(
        !empty.contains("data-testid=\"error-badge\""),
        "no badge at zero"
    );

    // The failing job is neither the newest nor the last one sent: only "failing first"
    // puts it at the top.
    let ago = |minutes| (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339();
    for (key, status, at) in [
        ("healthy-new", "success", ago(0)),
        ("broken", "error", ago(60)),
        ("healthy-old", "success", ago(120)),
    ] {
        assert_eq!(app.report(&report(key, status, &at)).await.status(), 200);
    }
    let (status, html) = page(&app, "/incidents", None).await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"ja\""), "Japanese by default");
    assert!(
        html.contains("class=\"badge\">1<"),
        "the server renders the badge count"
    );
    let broken = html.find("data-job-key=\"broken\"").expect("failing card");
    let healthy = html
        .find("data-job-key=\"healthy-new\"")
        .expect("healthy card");
    let oldest = html
        .find("data-job-key=\"healthy-old\"")
        .expect("older healthy card");
    assert!(broken < healthy, "failing jobs come first");
    assert!(healthy < oldest, "then the rest, newest first");
    assert!(html.contains("たった今"));
}

#[sqlx::test]
async fn accept_language_picks_english(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (_, html) = page(&app, "/incidents", Some("en-US,en;q=0.9,ja;q=0.5")).await;
    assert!(html.contains("<html lang=\"en\""));
    assert!(html.contains("No job has reported yet"));
}

#[sqlx::test]
async fn a_job_page_shows_runs_and_an_svg_chart(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let key = "バックアップ/nightly #1";
    let run = with(report(key, "error", &now()), "duration_ms", 90_500.into());
    assert_eq!(app.report(&run).await.status(), 200);
    let (status, html) = page(&app, &jobdeck::model::incident_path(key), None).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<svg viewBox=\"0 0 720 260\""),
        "inline chart"
    );
    assert!(html.contains("1m 30s"), "the run's duration");
    assert!(html.contains(&format!("{key} のタイトル")));

    // Links from before the rename redirect, keys percent-encoded the same way.
    let old = jobdeck::model::incident_path(key).replace("/incidents/", "/jobs/");
    let followed = app
        .client
        .get(format!("{}{old}", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 308);
    assert_eq!(
        followed.headers()["location"],
        jobdeck::model::incident_path(key).as_str()
    );

    let (_, missing) = page(&app, "/incidents/no-such-job", None).await;
    assert!(missing.contains("このキーのジョブはありません"));
    let (status, _) = page(&app, "/no/such/page", None).await;
    assert_eq!(status, 404);
}
