//! The server as a separate process, killed under load: nothing acknowledged may be lost.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::*;

/// The real `jobdeck` binary; killed when the test ends, whether it passes or not.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        // A panic anywhere in the server fails the test that ran it (unless already failing),
        // except one known upstream race: leptos_i18n 0.6.2's cookie effect
        // (`Effect::new_isomorphic` in context.rs) can run after the route-listing render at
        // start-up has been disposed, and panics in its own task, harmlessly. Seen about once
        // in ten process tests under load.
        let known = "leptos_i18n-0.6.2/src/context.rs:213";
        let panics = log.matches("panicked").count();
        let known_panics = log.matches(known).count();
        if panics > known_panics && !std::thread::panicking() {
            panic!("the server panicked:\n{log}");
        }
    }
}

impl Server {
    /// Peak resident memory of the server process so far, in MiB.
    fn peak_memory_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024
    }

    fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits for the process to exit, failing after `within`.
    async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "jobdeck did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real `jobdeck` binary on a free port against the test's database, with extra
/// settings, and waits until it is healthy.
pub(crate) async fn start_server(db: &PgConnectOptions, settings: &[(&str, &str)]) -> Server {
    let port = free_port();
    let base = url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL"))
        .expect("DATABASE_URL is a URL");
    let mut database_url = base.clone();
    database_url.set_path(db.get_database().expect("test database name"));
    let log = std::env::temp_dir().join(format!("jobdeck-test-{port}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_jobdeck"))
        .env("DATABASE_URL", database_url.as_str())
        .env("TC_PORTAL_WEBHOOK_SECRET", SECRET)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied())
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .expect("log file"),
        ))
        .spawn()
        .expect("start jobdeck");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = reqwest::get(format!("{}/healthz", server.url)).await;
        if health.is_ok_and(|r| r.status() == 200) {
            return server;
        }
        assert!(Instant::now() < deadline, "jobdeck did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reports answered 200 (by their unique message), other statuses seen, and the clients.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<Vec<u16>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

/// Posts reports with unique messages from `clients` connections until the server stops
/// answering.
fn load(url: &str, clients: usize) -> Load {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let clients = (0..clients)
        .map(|c| {
            let (acked, refused) = (acked.clone(), refused.clone());
            let endpoint = format!("{url}/api/monitor/job-report");
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0.. {
                    let message = format!("client {c} report {n}");
                    let job_key = format!("kill-{}", n % 7);
                    let body = with(
                        report(&job_key, "success", &now()),
                        "message",
                        message.clone().into(),
                    );
                    let sent = client
                        .post(&endpoint)
                        .header(SECRET_HEADER, SECRET)
                        .body(body.to_string())
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            acked.lock().unwrap().push(message)
                        }
                        Ok(response) => refused.lock().unwrap().push(response.status().as_u16()),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    Load {
        acked,
        refused,
        clients,
    }
}

impl Load {
    async fn finish(self) -> (Vec<String>, Vec<u16>) {
        for client in self.clients {
            client.await.unwrap();
        }
        let acked = std::mem::take(&mut *self.acked.lock().unwrap());
        let refused = std::mem::take(&mut *self.refused.lock().unwrap());
        (acked, refused)
    }
}

/// Every report answered 200 is in the history, and there were enough of them to matter.
async fn assert_all_stored(db: PgConnectOptions, acked: &[String]) {
    let pool = PgPoolOptions::new().connect_with(db).await.unwrap();
    let stored: HashSet<String> = sqlx::query_scalar("SELECT message FROM job_reports")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        acked.len() > 100,
        "the load was too light to mean anything: {}",
        acked.len()
    );
    let lost: Vec<_> = acked.iter().filter(|m| !stored.contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged reports lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

#[sqlx::test]
async fn every_acknowledged_report_survives_sigkill_under_load(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let mut server = start_server(&db, &[]).await;
    let load = load(&server.url, 32);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    let (acked, _) = load.finish().await;

    assert_all_stored(db, &acked).await;
}

/// Requests provably in flight (their statement waits on a lock the test holds) when SIGTERM
/// arrives: the server stops accepting, keeps running until each has its answer, every one
/// is 200 and stored, and then it exits cleanly. A server that exits at once fails this.
#[sqlx::test]
async fn sigterm_answers_every_request_in_flight_before_exiting(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let mut server = start_server(&db, &[("JOBDECK_DB_TIMEOUT_MS", "5000")]).await;
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let lock = lock_job_status(&direct).await;
    let client = reqwest::Client::new();
    let in_flight: Vec<_> = (0..16)
        .map(|n| {
            let request = client
                .post(format!("{}/api/monitor/job-report", server.url))
                .header(SECRET_HEADER, SECRET)
                .body(report(&format!("in-flight-{n}"), "success", &now()).to_string());
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    wait_for_lock_waiter(&direct).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "jobdeck exited with requests in flight"
    );
    assert!(
        reqwest::get(format!("{}/healthz", server.url))
            .await
            .is_err(),
        "still accepting connections after SIGTERM"
    );
    lock.commit().await.unwrap();

    for request in in_flight {
        let answer = request.await.unwrap();
        assert!(
            matches!(answer, Ok(200)),
            "a request in flight got {answer:?}"
        );
    }
    let exit = server.exit_status(Duration::from_secs(10)).await;
    assert!(exit.success(), "jobdeck exited with {exit}");
    assert_eq!(count(&direct, "job_reports").await, 16);
}

/// What a client sees when the database is slower than the load: 64 connections post
/// reports with distinct keys while the status table is locked for longer than the deadline.
/// Every 200 is stored exactly once, no 503 is stored at all, 503s for a full queue come at
/// once rather than after the deadline, and the portal's memory stays bounded.
#[sqlx::test]
async fn under_overload_a_200_is_stored_once_and_a_503_never(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let server = start_server(
        &db,
        &[
            ("JOBDECK_DB_TIMEOUT_MS", "1000"),
            ("JOBDECK_INGEST_DEADLINE_MS", "2000"),
            ("JOBDECK_INGEST_QUEUE", "32"),
            ("JOBDECK_INGEST_WRITERS", "2"),
        ],
    )
    .await;
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let lock = lock_job_status(&direct).await;
    let stop = Instant::now() + Duration::from_secs(5);
    let clients: Vec<_> = (0..64)
        .map(|c| {
            let endpoint = format!("{}/api/monitor/job-report", server.url);
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut answers = Vec::new();
                for n in 0.. {
                    if Instant::now() > stop {
                        break;
                    }
                    let key = format!("overload-{c}-{n}");
                    let started = Instant::now();
                    let response = client
                        .post(&endpoint)
                        .header(SECRET_HEADER, SECRET)
                        .body(report(&key, "success", &now()).to_string())
                        .send()
                        .await
                        .expect("the server answers every request");
                    let status = response.status().as_u16();
                    let error = if status == 200 {
                        String::new()
                    } else {
                        body_json(response).await["error"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    };
                    answers.push((key, status, error, started.elapsed()));
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    lock.commit().await.unwrap();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }

    let stored: HashMap<String, i64> = sqlx::query_as(
        "SELECT s.job_key, count(r.id) FROM job_status s JOIN job_reports r ON r.job_status_id = s.id GROUP BY s.job_key",
    )
    .fetch_all(&direct)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut queue_full = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    for (key, status, error, elapsed) in &answers {
        match status {
            200 => {
                ok += 1;
                assert_eq!(
                    stored.get(key),
                    Some(&1),
                    "{key} answered 200 is stored once"
                );
            }
            503 => {
                refused += 1;
                assert!(!stored.contains_key(key), "{key} answered 503 was stored");
                if error == "too many reports are waiting; retry later" {
                    queue_full.push(*elapsed);
                }
            }
            other => panic!("{key} got {other} {error}"),
        }
    }
    assert!(
        ok > 100 && refused > 100,
        "not enough of each to mean anything: {ok} / {refused}"
    );
    assert_eq!(stored.len(), ok, "nothing but the 200s is stored");
    queue_full.sort();
    assert!(
        queue_full.len() > 50,
        "the queue never filled: {}",
        queue_full.len()
    );
    let median = queue_full[queue_full.len() / 2];
    let slowest = *queue_full.last().unwrap();
    assert!(
        median < Duration::from_millis(100) && slowest < Duration::from_secs(1),
        "a full queue must refuse at once, not after the 2 s deadline: median {median:?}, slowest {slowest:?}"
    );
    let peak = server.peak_memory_mib();
    assert!(peak < 256, "the portal peaked at {peak} MiB");
}

/// A request that cannot finish (its statement waits on a lock held past the drain bound)
/// does not keep a stopping server alive: it exits when `JOBDECK_SHUTDOWN_DRAIN_MS` runs
/// out, says so in its log, and the request's connection is closed without a 200.
#[sqlx::test]
async fn the_shutdown_drain_is_bounded_and_logged(_: PgPoolOptions, db: PgConnectOptions) {
    let mut server = start_server(
        &db,
        &[
            ("JOBDECK_DB_TIMEOUT_MS", "10000"),
            ("JOBDECK_INGEST_DEADLINE_MS", "10000"),
            ("JOBDECK_SHUTDOWN_DRAIN_MS", "1000"),
        ],
    )
    .await;
    let direct = PgPoolOptions::new().connect_with(db.clone()).await.unwrap();
    let lock = lock_job_status(&direct).await;
    let request = reqwest::Client::new()
        .post(format!("{}/api/monitor/job-report", server.url))
        .header(SECRET_HEADER, SECRET)
        .body(report("stuck", "success", &now()).to_string());
    let stuck = tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    wait_for_lock_waiter(&direct).await;

    let stopping = Instant::now();
    server.terminate();
    let exit = server.exit_status(Duration::from_secs(5)).await;
    let took = stopping.elapsed();
    assert!(exit.success(), "jobdeck exited with {exit}");
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the drain ran out"
    );
    let answer = stuck.await.unwrap();
    assert!(answer.is_err(), "the stuck request got {answer:?}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("shutdown drain of 1s ran out"), "log: {log}");
    lock.rollback().await.unwrap();
}

/// The real binary comes up with no database at its address: it serves, `/healthz` says the
/// database is unreachable and the webhook answers 503, instead of exiting.
#[tokio::test]
async fn the_binary_starts_and_serves_without_its_database() {
    let (port, nothing_there) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_jobdeck"))
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{nothing_there}/jobdeck"),
        )
        .env("TC_PORTAL_WEBHOOK_SECRET", SECRET)
        .env("JOBDECK_DB_TIMEOUT_MS", "500")
        .env("JOBDECK_INGEST_DEADLINE_MS", "1000")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start jobdeck");
    let log = std::env::temp_dir().join(format!("jobdeck-test-{port}.log"));
    std::fs::write(&log, "").unwrap();
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Ok(response) = reqwest::get(format!("{}/healthz", server.url)).await {
            break response;
        }
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "jobdeck exited without its database"
        );
        assert!(Instant::now() < deadline, "jobdeck never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health.status(), 503);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "unavailable", "database": "unreachable"})
    );
    let response = reqwest::Client::new()
        .post(format!("{}/api/monitor/job-report", server.url))
        .header(SECRET_HEADER, SECRET)
        .body(report("no-database", "error", &now()).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
}

/// 2,000 page loads, 20 at a time, over every kind of page, signed in as a browser is, on
/// the real binary (its multi-thread runtime, as deployed): each answer is whole (read to
/// its end, the document closed) and comes well inside the render bound. A render that
/// stalled (leptos-rs/leptos#4851: one resource read in two `<Suspense>`) would leave a
/// response open, or be cut off by the bound, and fail this.
#[sqlx::test]
async fn two_thousand_pages_all_finish_within_the_render_bound(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    use futures::StreamExt;
    let password = "pages-admin-password";
    let server = start_server(
        &db,
        &[
            ("JOBDECK_ADMIN_EMAIL", "pages@example.com"),
            ("JOBDECK_ADMIN_PASSWORD", password),
        ],
    )
    .await;
    let bound = Duration::from_secs(10);
    let url = |path: &str| format!("{}{path}", server.url);
    let plain = reqwest::Client::new();
    for (key, status) in [("nightly", "error"), ("hourly", "success")] {
        let sent = plain
            .post(url("/api/monitor/job-report"))
            .header(SECRET_HEADER, SECRET)
            .json(&report(key, status, &now()))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 200);
    }
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(url("/login"))
        .form(&[
            ("email", "pages@example.com"),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = session_cookie(&login).expect("a session");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    headers.insert("origin", server.url.parse().unwrap());
    let browser = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let created = browser
        .post(url("/job-operations"))
        .json(&serde_json::json!({ "action": "createJob", "data": { "kind": "recap" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let job = body_json(created).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pages = [
        "/incidents".to_string(),
        "/incidents?status=failing".into(),
        "/incidents/nightly".into(),
        "/jobs".into(),
        format!("/jobs/{job}"),
        "/desktop/recap/job-status".into(),
        "/account".into(),
        "/admin/users".into(),
        "/admin/tokens".into(),
        "/admin/audit".into(),
    ];
    let loads = futures::stream::iter(0..2000)
        .map(|n| {
            let (browser, path) = (&browser, pages[n % pages.len()].clone());
            let target = url(&path);
            async move {
                let started = Instant::now();
                let response = browser.get(target).send().await.unwrap();
                let status = response.status().as_u16();
                // Whole: the body was read to its end and holds the closed document.
                let body = response.text().await;
                let whole = body
                    .as_ref()
                    .is_ok_and(|body| body.contains("</body>") && body.contains("</html>"));
                (path, status, whole, started.elapsed())
            }
        })
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(loads.len(), 2000);
    let mut times: Vec<Duration> = loads.iter().map(|load| load.3).collect();
    times.sort();
    let spread = format!(
        "median {:?}, p99 {:?}, slowest {:?}",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
    let failed: Vec<String> = loads
        .iter()
        .filter(|(_, status, whole, took)| *status != 200 || !whole || *took >= bound)
        .map(|(path, status, _, took)| format!("{path} {status} after {took:?}"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {failed:?}; {spread}",
        failed.len()
    );
    println!("2,000 pages: {spread} (bound {bound:?})");
}
