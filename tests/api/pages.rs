//! Server-rendered pages, fetched as a browser without JavaScript would see them.

use jobdeck::model::Role;
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
    // (the jobs page owns `/jobs/<uuid>` now; any other `/jobs/<key>` is redirected)
    let followed = app
        .client
        .get(format!("{}{old}", app.base_url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 302);
    assert_eq!(
        followed.headers()["location"],
        jobdeck::model::incident_path(key).as_str()
    );

    let (_, missing) = page(&app, "/incidents/no-such-job", None).await;
    assert!(missing.contains("このキーのジョブはありません"));
    let (status, _) = page(&app, "/no/such/page", None).await;
    assert_eq!(status, 404);
}

/// 50,000 job keys, as after a load test: every page is one small page of 50, failing jobs
/// first, paged by key with nothing skipped or repeated, and search and filter in the URL.
#[sqlx::test]
async fn incidents_page_by_key_over_fifty_thousand_jobs(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    // 120 failing jobs among 50,000, spread over the last 50,000 minutes.
    sqlx::query(
        "INSERT INTO job_status (job_key, title, last_status, last_finished_at, last_message)
         SELECT 'load-' || i, 'Load job ' || i, CASE WHEN i % 417 = 0 THEN 'error' ELSE 'success' END,
                now() - make_interval(mins => i), NULL
         FROM generate_series(1, 50000) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let failing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_status WHERE last_status = 'error'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(failing, 119);

    let (status, html) = page(&app, "/incidents", None).await;
    assert_eq!(status, 200);
    assert!(
        html.len() < 200 * 1024,
        "first page is {} bytes",
        html.len()
    );
    assert_eq!(html.matches("data-job-key=").count(), 50);
    assert!(
        html.contains("class=\"count\">119<"),
        "the failing count of every page"
    );

    // Walk pages through the `next` links: failing jobs (newest first), then the rest.
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::new();
    let mut href = "/incidents".to_string();
    for _ in 0..4 {
        let (status, html) = page(&app, &href, None).await;
        assert_eq!(status, 200, "{href}: {html}");
        assert!(html.len() < 200 * 1024);
        for key in html
            .split("data-job-key=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
        {
            assert!(seen.insert(key.clone()), "{key} appeared twice");
            order.push(key);
        }
        let next = html.split("rel=\"next\"").next().unwrap();
        let start = next.rfind("href=\"").expect("a next link") + 6;
        href = next[start..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
    }
    assert_eq!(order.len(), 200);
    let expected: Vec<String> = (1..=50000)
        .filter(|i| i % 417 == 0)
        .chain((1..=50000).filter(|i| i % 417 != 0))
        .take(200)
        .map(|i| format!("load-{i}"))
        .collect();
    assert_eq!(
        order, expected,
        "failing first, each newest first, nothing skipped"
    );

    // Search by key or title, and the status filter, live in the URL.
    let (_, found) = page(&app, "/incidents?q=load-4170", None).await;
    let keys: Vec<&str> = found
        .split("data-job-key=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let mut expected = vec!["load-4170".to_string(), "load-41700".to_string()];
    expected.extend((41701..=41709).map(|i| format!("load-{i}")));
    assert_eq!(keys, expected, "both failing ones (417 × 10, × 100) first");
    let (_, by_title) = page(&app, "/incidents?q=Load%20job%2049999", None).await;
    assert!(by_title.contains("data-job-key=\"load-49999\""));
    let (_, literal) = page(&app, "/incidents?q=%25", None).await;
    assert!(
        literal.contains("data-testid=\"no-matches\""),
        "% is not a wildcard"
    );
    let (_, healthy) = page(&app, "/incidents?status=healthy", None).await;
    assert!(!healthy.contains("job-card failing"), "only healthy jobs");
    assert!(healthy.contains("data-job-key=\"load-1\""));
    let (_, only_failing) = page(&app, "/incidents?status=failing&q=load-8", None).await;
    let keys: Vec<&str> = only_failing
        .split("data-job-key=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(
        keys.iter().all(|k| k.starts_with("load-8")) && !keys.is_empty(),
        "{keys:?}"
    );

    // A made-up position is refused by the server function with 400.
    let bad = app
        .client
        .post(app.url("/api/incidents"))
        .form(&[
            ("query[q]", ""),
            ("query[status]", "all"),
            ("query[after]", "zzz"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// The language switch is a plain form: the choice goes in leptos_i18n's cookie and the
/// browser goes back to the page it came from (only ever on this site).
#[sqlx::test]
async fn the_language_switch_keeps_the_choice_and_goes_back(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let switch = |referer: &'static str, to: &'static str| {
        app.anonymous
            .post(format!("{}/lang", app.base_url))
            .header("Referer", referer)
            .form(&[("to", to)])
            .send()
    };
    let response = switch("http://127.0.0.1/jobs?kind=recap", "en")
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/jobs?kind=recap");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("i18n_pref_locale=en;"), "{cookie}");

    // Back only to this site.
    let response = switch("https://evil.example//evil.example/x", "ja")
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/incidents");

    let response = switch("http://127.0.0.1/jobs", "fr").await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "to");

    // The cookie wins over the browser's languages.
    let html = app
        .client
        .get(format!("{}/incidents", app.base_url))
        .header("Accept-Language", "ja")
        .header("Cookie", "i18n_pref_locale=en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"en\""));
}

#[sqlx::test]
async fn assets_are_served_precompressed_and_cached_by_their_hashed_names(pool: PgPool) {
    // A site folder as `cargo leptos build --release --precompress` leaves it.
    let root = std::env::temp_dir().join(format!("jobdeck-site-{}", unique()));
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("jobdeck.abc123.js"), "plain").unwrap();
    std::fs::write(pkg.join("jobdeck.abc123.js.br"), "brotli").unwrap();
    std::fs::write(pkg.join("jobdeck.abc123.js.gz"), "gzip").unwrap();
    let options = leptos::config::LeptosOptions::builder()
        .output_name("jobdeck")
        .site_root(root.to_string_lossy().to_string())
        .hash_files(true)
        .build();
    let app = TestApp::spawn_site(pool, options).await;
    let get = |encoding: &'static str| {
        app.anonymous
            .get(app.url("/pkg/jobdeck.abc123.js"))
            .header("Accept-Encoding", encoding)
            .send()
    };
    for (accept, encoding, body) in [
        ("br, gzip", Some("br"), "brotli"),
        ("gzip", Some("gzip"), "gzip"),
        ("identity", None, "plain"),
    ] {
        let response = get(accept).await.unwrap();
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let got = response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(got.as_deref(), encoding, "{accept}");
        assert_eq!(response.text().await.unwrap(), body, "{accept}");
    }
    // A file that is not there is not cached, and needs no identity to be missing.
    let missing = app
        .anonymous
        .get(app.url("/pkg/jobdeck.old.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("cache-control").is_none());
    std::fs::remove_dir_all(root).unwrap();
}

/// The `data-job-id`s of a page, in order.
fn job_rows(html: &str) -> Vec<String> {
    html.split("<tr data-job-id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The text of the aggregate card `name`.
fn card(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("data-testid=\"aggregate-{name}\""))
        .unwrap_or_else(|| panic!("no {name} card"));
    let dd = &html[at..];
    let start = dd.find("<dd>").unwrap() + 4;
    // Without the hydration markers (`<!>`).
    dd[start..start + dd[start..].find("</dd>").unwrap()].replace("<!>", "")
}

#[sqlx::test]
async fn the_jobs_list_filters_sorts_and_counts_from_its_url(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let mut ids = Vec::new();
    for (n, (status, days_ago, user)) in [
        ("failed", 1, "ann"),
        ("completed", 1, "ann"),
        ("failed", 3, "bob"),
        ("completed", 10, "ann"),
        ("pending", 0, "ann"),
    ]
    .into_iter()
    .enumerate()
    {
        let (code, body) = job_op(
            &app,
            "createJob",
            serde_json::json!({ "kind": "recap", "user_id": user, "priority": n + 1 }),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        let id: uuid::Uuid = body["data"]["id"].as_str().unwrap().parse().unwrap();
        let created = chrono::Utc::now() - chrono::Duration::days(days_ago);
        let finished = status != "pending";
        sqlx::query(
            "UPDATE jobs SET status = $2, created_at = $3,
                    started_at = CASE WHEN $4 THEN $3 END,
                    finished_at = CASE WHEN $4 THEN $3 + make_interval(secs => $5) END
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(created)
        .bind(finished)
        .bind((n + 1) as f64 * 10.0)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id.to_string());
    }
    let day = |days_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days_ago))
            .format("%Y-%m-%d")
            .to_string()
    };

    // Failed and completed jobs of the last five days by ann and bob: three of them.
    let path = format!(
        "/jobs?status=failed&status=completed&from={}&to={}",
        day(5),
        day(0)
    );
    let (status, html) = page(&app, &path, Some("en")).await;
    assert_eq!(status, 200);
    assert_eq!(
        job_rows(&html),
        vec![ids[1].clone(), ids[0].clone(), ids[2].clone()],
        "newest first"
    );
    assert_eq!(card(&html, "total"), "3");
    assert_eq!(card(&html, "success"), "33.3 %");
    assert_eq!(card(&html, "errors"), "66.7 %");
    assert_eq!(card(&html, "duration"), "20.0s", "10, 20 and 30 s");
    // The form shows the filters it was opened with, to change or share.
    assert!(html.contains("name=\"status\" value=\"failed\" checked"));
    assert!(html.contains(&format!("name=\"from\" value=\"{}\"", day(5))));

    // Without a day, the last week: the job of ten days ago is left out.
    let (_, html) = page(&app, "/jobs?user=ann", Some("en")).await;
    assert_eq!(card(&html, "total"), "3");
    assert!(html.contains(&format!("name=\"from\" value=\"{}\"", day(6))));

    // By user over the month, sorted by duration, longest first; the headers sort.
    let path = format!("/jobs?user=ann&from={}&sort=duration&order=desc", day(30));
    let (_, html) = page(&app, &path, Some("en")).await;
    assert_eq!(
        job_rows(&html),
        vec![
            ids[4].clone(),
            ids[3].clone(),
            ids[1].clone(),
            ids[0].clone()
        ],
        "the unfinished job sorts as the longest"
    );
    assert!(html.contains("aria-sort=\"descending\""));
    assert!(html.contains(&format!(
        "href=\"/jobs?from={}&amp;user=ann&amp;sort=duration&amp;order=asc\"",
        day(30)
    )));

    // A bad value gets the API's message under the URL's name, and a 400.
    for (path, name) in [
        ("/jobs?status=lost", "status: "),
        ("/jobs?sort=name%3B%20DROP%20TABLE%20jobs", "sort: "),
        ("/jobs?from=yesterday", "from: "),
        ("/jobs?cursor=forged", "cursor: "),
    ] {
        let (status, html) = page(&app, path, Some("en")).await;
        assert_eq!(status, 400, "{path}");
        assert!(html.contains("data-testid=\"jobs-error\""), "{path}");
        assert!(html.contains(name), "{path}");
    }
    assert_eq!(count(&pool, "jobs").await, 5);
}

#[sqlx::test]
async fn a_job_page_pages_its_log_by_cursor_and_charts_its_samples(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (code, body) = job_op(
        &app,
        "createJob",
        serde_json::json!({ "product_id": "p", "sending_group_id": "g", "tasks": [{ "name": "a" }] }),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    sqlx::query(
        "INSERT INTO job_logs (job_id, level, message)
         SELECT $1::uuid, 'info', 'line ' || lpad(i::text, 3, '0') FROM generate_series(1, 150) i",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    let samples: Vec<_> = [10.0, 30.0, 20.0]
        .iter()
        .map(|cpu| serde_json::json!({ "task_name": "a", "cpu_percent": cpu, "memory_mb": cpu * 4.0 }))
        .collect();
    let (code, body) = call(
        &app,
        &app.client,
        "/task-operations",
        "reportMetrics",
        serde_json::json!({ "job_id": id, "samples": samples }),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let (status, html) = page(&app, &format!("/jobs/{id}"), Some("en")).await;
    assert_eq!(status, 200);
    // The newest 100 lines, newest first, and a link to the older ones.
    assert!(html.contains("line 150") && html.contains("line 051"));
    assert!(!html.contains("line 050"));
    assert!(html.find("line 150").unwrap() < html.find("line 051").unwrap());
    let older = html
        .split("data-testid=\"older-log\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|href| href.split('"').next())
        .expect("a link to the older lines")
        .replace("&amp;", "&");
    assert!(older.starts_with(&format!("/jobs/{id}?log=")), "{older}");
    let (status, html) = page(&app, &older, Some("en")).await;
    assert_eq!(status, 200);
    assert!(html.contains("line 050") && html.contains("line 001"));
    assert!(!html.contains("line 051"));
    assert!(
        !html.contains("data-testid=\"older-log\""),
        "the oldest page is the last"
    );
    // A cursor the page did not give out is a 400, not another page.
    let (status, _) = page(&app, &format!("/jobs/{id}?log=forged"), Some("en")).await;
    assert_eq!(status, 400);

    // The charts hold the samples, drawn.
    let (_, html) = page(&app, &format!("/jobs/{id}"), Some("en")).await;
    for chart in ["cpu", "memory"] {
        let figure = html
            .split(&format!("data-testid=\"chart-{chart}\""))
            .nth(1)
            .expect("the chart");
        assert!(
            figure.starts_with(" data-points=\"1\" data-samples=\"3\""),
            "{chart}: {}",
            &figure[..80]
        );
        assert!(
            figure.split("</figure>").next().unwrap().contains("<svg"),
            "{chart} drawn"
        );
    }
}

/// A plain form whose server function fails sends the browser back to its page with the
/// error in the URL, which the page shows; a caller that does not ask for HTML gets the
/// status.
#[sqlx::test]
async fn a_failed_form_post_goes_back_to_its_page_with_the_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let operator = app.session_client(Role::Operator).await;
    let missing = [("channel_id", "00000000-0000-4000-8000-000000000009")];
    let posted = operator
        .post(app.url("/api/alerts/channel/test"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", app.url("/alerts"))
        .form(&missing)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 302);
    let location = posted.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&app.url("/alerts?")) && location.contains("__err="),
        "{location}"
    );
    let page = operator.get(&location).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-testid=\"form-error\""),
        "the page shows the error"
    );

    // A page rendering on the server asks for HTML too: its own server functions' refusals
    // are still its status.
    let refused_page = operator
        .get(app.url("/incidents?after=zzz"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(refused_page.status(), 400);

    let called = operator
        .post(app.url("/api/alerts/channel/test"))
        .form(&missing)
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 404);
}
