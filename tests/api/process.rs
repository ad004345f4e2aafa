//! The server as a separate process, killed under load: nothing acknowledged may be lost.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::*;

struct Server {
    child: Child,
    url: String,
}

/// Starts the real `jobdeck` binary on a free port against the test's database.
async fn start_server(db: &PgConnectOptions) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL"))
        .expect("DATABASE_URL is a URL");
    let mut database_url = base.clone();
    database_url.set_path(db.get_database().expect("test database name"));
    let child = Command::new(env!("CARGO_BIN_EXE_jobdeck"))
        .env("DATABASE_URL", database_url.as_str())
        .env("TC_PORTAL_WEBHOOK_SECRET", SECRET)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start jobdeck");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "jobdeck did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, url }
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
    let mut server = start_server(&db).await;
    let load = load(&server.url, 32);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    let (acked, _) = load.finish().await;

    assert_all_stored(db, &acked).await;
}

#[sqlx::test]
async fn sigterm_lets_requests_in_flight_finish(_: PgPoolOptions, db: PgConnectOptions) {
    let mut server = start_server(&db).await;
    let load = load(&server.url, 32);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "jobdeck did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "jobdeck exited with {exit}");
    let (acked, refused) = load.finish().await;

    assert_all_stored(db, &acked).await;
    assert_eq!(
        refused,
        Vec::<u16>::new(),
        "requests answered with an error during shutdown"
    );
}
