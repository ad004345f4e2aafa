//! The `jobdeck` command line against a real database: users and tokens made on the server.

use std::io::Write;
use std::process::{Command, Stdio};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::helpers::*;

fn database_url(db: &PgConnectOptions) -> String {
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL")).unwrap();
    url.set_path(db.get_database().expect("test database name"));
    url.to_string()
}

/// Runs `jobdeck args...` with `stdin`; returns (success, stdout, stderr).
fn jobdeck(db: &PgConnectOptions, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jobdeck"))
        .args(args)
        .env("DATABASE_URL", database_url(db))
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jobdeck");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[sqlx::test]
async fn users_and_tokens_are_made_and_revoked_on_the_command_line(
    _: PgPoolOptions,
    db: PgConnectOptions,
) {
    let pool = PgPool::connect_with(db.clone()).await.unwrap();

    // A password from stdin...
    let (ok, out, err) = jobdeck(
        &db,
        &[
            "user",
            "add",
            "--email",
            "Ops@Example.com",
            "--role",
            "operator",
            "--name",
            "Ops",
        ],
        Some("from stdin password\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(
        !out.contains("from stdin password"),
        "a given password is not echoed"
    );
    // ...or generated and printed once.
    let (ok, out, _) = jobdeck(
        &db,
        &[
            "user",
            "add",
            "--email",
            "viewer@example.com",
            "--role",
            "viewer",
        ],
        Some(""),
    );
    assert!(ok);
    let generated = out
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 20, "{out}");
    let (ok, _, err) = jobdeck(
        &db,
        &[
            "user",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
        ],
        Some("another password\n"),
    );
    assert!(
        !ok && err.contains("exists"),
        "a second user with the same email: {err}"
    );
    let (ok, _, err) = jobdeck(
        &db,
        &["user", "add", "--email", "x@example.com", "--role", "boss"],
        None,
    );
    assert!(!ok && err.contains("viewer, operator, admin"), "{err}");

    // A token, alone on the last line, that works.
    let (ok, out, _) = jobdeck(
        &db,
        &[
            "token",
            "create",
            "--name",
            "deploy",
            "--role",
            "operator",
            "--expires-in-days",
            "30",
        ],
        None,
    );
    assert!(ok, "{out}");
    let token = out.lines().last().unwrap().to_string();
    assert!(token.starts_with("jd_") && token.len() == 41, "{out}");
    let app = TestApp::spawn(pool.clone()).await;
    let me = app
        .anonymous
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(body_json(me).await["role"], "operator");

    // The signed-up users can sign in with their passwords.
    assert_eq!(
        app.login("ops@example.com", "from stdin password")
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login("viewer@example.com", &generated).await.status(),
        303
    );

    // Reset: a new password, the old one refused.
    let (ok, out, _) = jobdeck(
        &db,
        &["user", "reset-password", "--email", "viewer@example.com"],
        Some("a reset password!\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(
        app.login("viewer@example.com", &generated).await.headers()["location"],
        "/login?error=invalid&next=%2Fincidents"
    );
    let reset = app.login("viewer@example.com", "a reset password!").await;
    assert_eq!(reset.status(), 303);
    // ...which must be changed before any other page opens.
    let cookie = session_cookie(&reset).unwrap();
    let page = app
        .anonymous
        .get(app.url("/incidents"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["location"], "/account");
    let account = app
        .anonymous
        .get(app.url("/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);

    // Revoked by name: refused within the cache lifetime (5 s) on a portal that had it cached.
    let (ok, _, _) = jobdeck(&db, &["token", "revoke", "--name", "deploy"], None);
    assert!(ok);
    tokio::time::sleep(jobdeck::server::accounts::tokens::CACHE_TTL).await;
    let me = app
        .anonymous
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    let (ok, _, err) = jobdeck(&db, &["token", "revoke", "--name", "deploy"], None);
    assert!(!ok && err.contains("not found"), "{err}");

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE actor = 'cli' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    // TestApp's own admin token is made through the same service, as `cli`, after the user's.
    assert_eq!(
        actions,
        [
            "createUser",
            "createUser",
            "createToken",
            "createToken",
            "resetPassword",
            "revokeToken"
        ]
    );
}
