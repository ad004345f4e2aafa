//! Accounts: every route behind an identity, the role matrix, tokens, sessions, the login
//! limit, cross-site protection, the first admin and the audit log.

use jobdeck::model::{Permission, Role};
use jobdeck::server::http::json_routes;
use jobdeck::server::http::routes::Access;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

/// A concrete path for a route pattern: `{job_key}` and `{*rest}` become `x`.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|part| {
            if part.starts_with('{') || part.starts_with(':') {
                "x"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[sqlx::test]
async fn every_route_needs_an_identity_except_the_public_ones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut checked = 0;

    // Pages, from the router's own list: a redirect to the login page with `next`.
    let pages = leptos_axum::generate_route_list(jobdeck::app::App);
    for listing in pages {
        let path = concrete(listing.path());
        let response = app.anonymous.get(app.url(&path)).send().await.unwrap();
        if path == "/login" {
            assert_eq!(response.status(), 200, "{path}");
        } else {
            assert_eq!(response.status(), 303, "{path}");
            let location = response.headers()["location"].to_str().unwrap().to_string();
            assert!(location.starts_with("/login?next="), "{path} -> {location}");
        }
        checked += 1;
    }

    // Server functions, from the registry: 401 JSON.
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        let response = app
            .anonymous
            .request(method.as_str().parse().unwrap(), app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert!(body_json(response).await["error"].is_string(), "{path}");
        checked += 1;
    }

    // JSON routes, from the table the router is built from.
    for route in json_routes().table() {
        let response = app
            .anonymous
            .request(
                route.method.as_str().parse().unwrap(),
                app.url(&concrete(route.path)),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        match route.access {
            Access::Identified => assert_eq!(status, 401, "{} {}", route.method, route.path),
            // Public routes answer for themselves (the webhook wants its secret).
            Access::Public => assert_ne!(status, 303, "{}", route.path),
        }
        checked += 1;
    }
    assert!(checked > 15, "walked only {checked} routes");

    // Static assets need nothing.
    let favicon = app
        .anonymous
        .get(app.url("/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_ne!(favicon.status(), 401);
    assert_ne!(favicon.status(), 303);
}

/// A request that needs `permission`, through the route a page or script would use;
/// `job` is a running job to report on.
async fn attempt(
    app: &TestApp,
    client: &reqwest::Client,
    permission: Permission,
    job: Uuid,
) -> u16 {
    let form = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", jobdeck::model::encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let operation = |action: &str, data: Value| {
        client
            .post(app.url("/job-operations"))
            .json(&json!({ "action": action, "data": data }))
    };
    let request = match permission {
        Permission::ReadJobs => client.post(app.url("/api/incidents/count")),
        Permission::ManageOwnAccount => client
            .post(app.url("/api/tokens/list"))
            .body(form(&[("all", "false")])),
        Permission::Administer => client.post(app.url("/api/admin/users/list")),
        Permission::ReadAudit => client.post(app.url("/api/admin/audit")),
        Permission::ActOnJobs => operation(
            "createJob",
            json!({ "product_id": "p", "sending_group_id": "g" }),
        ),
        // Reporting the status the job has: a progress report.
        Permission::ReportOnJobs => operation(
            "updateBatchJob",
            json!({ "job_id": job, "status": "running" }),
        ),
    };
    let request = match permission {
        Permission::ActOnJobs | Permission::ReportOnJobs => request,
        _ => request.header("content-type", "application/x-www-form-urlencoded"),
    };
    request.send().await.unwrap().status().as_u16()
}

/// The README's table of roles, written out: what each may do, and nothing more.
const ROLE_MATRIX: [(Role, &[Permission]); 4] = {
    use Permission::*;
    [
        (Role::Worker, &[ReportOnJobs]),
        (Role::Viewer, &[ReadJobs, ManageOwnAccount]),
        (
            Role::Operator,
            &[ReadJobs, ActOnJobs, ReportOnJobs, ManageOwnAccount],
        ),
        (Role::Admin, &Permission::ALL),
    ]
};

#[sqlx::test]
async fn the_role_matrix_follows_the_one_definition(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let created = app
        .client
        .post(app.url("/job-operations"))
        .json(&json!({ "action": "createJob", "data": { "product_id": "p", "sending_group_id": "g" } }))
        .send()
        .await
        .unwrap();
    let job: Uuid = body_json(created).await["data"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let started = app
        .client
        .post(app.url("/job-operations"))
        .json(
            &json!({ "action": "updateBatchJob", "data": { "job_id": job, "status": "running" } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    for (role, granted) in ROLE_MATRIX {
        let client = app.client_as(role).await;
        for permission in Permission::ALL {
            let may = granted.contains(&permission);
            assert_eq!(role.may(permission), may, "{role} {permission:?}");
            let status = attempt(&app, &client, permission, job).await;
            if may {
                assert!(
                    (200..300).contains(&status),
                    "{role} {permission:?}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{role} {permission:?}");
            }
        }
    }
}

#[sqlx::test]
async fn tokens_are_stored_hashed_and_refused_when_bad(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let token = app.token(Role::Viewer).await;
    let me = |token: String| {
        let app = &app;
        async move {
            app.anonymous
                .get(app.url("/api/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let ok = me(token.clone()).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(body_json(ok).await["role"], "viewer");

    // The database never holds the raw token.
    let dump: String = sqlx::query_scalar("SELECT string_agg(t::text, '|') FROM api_tokens t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!dump.contains(&token[3..]), "the table holds the token");
    let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !dump.contains(&hex[6..]),
        "the table holds the token's bytes"
    );

    // Malformed and mistyped tokens: 401 without a lookup.
    let mut typo = token.clone().into_bytes();
    typo[5] = if typo[5] == b'a' { b'b' } else { b'a' };
    for bad in [
        "nope".to_string(),
        "jd_short".into(),
        String::from_utf8(typo).unwrap(),
    ] {
        let response = me(bad.clone()).await;
        assert_eq!(response.status(), 401, "{bad}");
    }
    let checksum = body_json(
        me(String::from_utf8({
            let mut t = token.clone().into_bytes();
            t[5] = if t[5] == b'a' { b'b' } else { b'a' };
            t
        })
        .unwrap())
        .await,
    )
    .await;
    assert!(
        checksum["error"].as_str().unwrap().contains("checksum"),
        "{checksum}"
    );

    // Expired: pushed into the past in the database.
    let expiring = app.token(Role::Viewer).await;
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE prefix = $1 AND expires_at IS NULL AND name LIKE 'test-viewer-%' AND id = (SELECT id FROM api_tokens ORDER BY created_at DESC LIMIT 1)")
        .bind(jobdeck::server::accounts::secret::display_prefix(&expiring))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(me(expiring).await.status(), 401);

    // Revoked, through the page's server function: refused at once on this portal.
    let viewer = app.session_client(Role::Viewer).await;
    let created: Value = viewer
        .post(app.url("/api/tokens/create"))
        .form(&[("name", "ci"), ("role", "viewer")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ci = created["token"].as_str().unwrap().to_string();
    assert_eq!(me(ci.clone()).await.status(), 200);
    let revoked = viewer
        .post(app.url("/api/tokens/revoke"))
        .form(&[("id", created["view"]["id"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(me(ci).await.status(), 401);

    // A token never above its creator's role.
    let above = viewer
        .post(app.url("/api/tokens/create"))
        .form(&[("name", "sneaky"), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_ne!(above.status(), 200);
    let body = body_json(above).await;
    assert!(body.to_string().contains("may not create"), "{body}");
    let sneaky: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE name = 'sneaky'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sneaky, 0);
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.anonymous
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn sessions_change_at_login_and_end_on_logout_password_change_and_disable(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let email = app.user(Role::Operator).await;

    // A fresh id at each login, and the cookie is HttpOnly and SameSite=Lax.
    let response = app.login(&email, PASSWORD).await;
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "not https here");
    let first = session_cookie(&response).unwrap();
    let second = app
        .anonymous
        .post(app.url("/login"))
        .header("cookie", &first)
        .header("origin", &app.base_url)
        .form(&[("email", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let second = session_cookie(&second).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        get_with_cookie(&app, "/incidents", &first).await.status(),
        303,
        "the old id is gone"
    );
    assert_eq!(
        get_with_cookie(&app, "/incidents", &second).await.status(),
        200
    );

    // Logout ends it on the server.
    let logout = app
        .anonymous
        .post(app.url("/logout"))
        .header("cookie", &second)
        .header("origin", &app.base_url)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    assert_eq!(
        get_with_cookie(&app, "/api/me", &second).await.status(),
        401
    );

    // A password change ends every session of the user.
    let a = app.session(&email).await;
    let b = app.session(&email).await;
    let changed = app
        .anonymous
        .post(app.url("/api/account/password"))
        .header("cookie", &a)
        .header("origin", &app.base_url)
        .form(&[("current", PASSWORD), ("new", "a brand new password")])
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "{:?}", changed.text().await);
    for old in [&a, &b] {
        assert_eq!(get_with_cookie(&app, "/api/me", old).await.status(), 401);
    }
    let relogin = app.login(&email, "a brand new password").await;
    assert_eq!(relogin.status(), 303);
    let live = session_cookie(&relogin).unwrap();

    // Disabling a user ends their sessions and refuses their logins.
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&pool)
        .await
        .unwrap();
    let disabled = app
        .client
        .post(app.url("/api/admin/users/update"))
        .form(&[("id", id.to_string().as_str()), ("disabled", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    assert_eq!(get_with_cookie(&app, "/api/me", &live).await.status(), 401);
    let refused = app.login(&email, "a brand new password").await;
    assert_eq!(
        refused.headers()["location"],
        "/login?error=disabled&next=%2Fincidents"
    );
}

#[sqlx::test]
async fn next_only_ever_points_at_this_site(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let email = app.user(Role::Viewer).await;
    for (next, expected) in [
        ("/incidents/abc?x=1", "/incidents/abc?x=1"),
        ("//evil.example", "/incidents"),
        ("https://evil.example/", "/incidents"),
        ("/\\evil.example", "/incidents"),
        ("javascript:alert(1)", "/incidents"),
    ] {
        let response = app
            .anonymous
            .post(app.url("/login"))
            .form(&[
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["location"], expected, "{next}");
    }
    // The login page never puts a foreign `next` in its form either.
    let page = app
        .anonymous
        .get(app.url("/login?next=%2F%2Fevil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("evil.example"),
        "the page echoes a foreign next"
    );
}

#[sqlx::test]
async fn a_cross_site_post_with_a_valid_session_is_refused_and_changes_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let email = app.user(Role::Viewer).await;
    let cookie = app.session(&email).await;
    let create = |origin: Option<&'static str>, fetch_site: Option<&'static str>| {
        let mut request = app
            .anonymous
            .post(app.url("/api/tokens/create"))
            .header("cookie", &cookie)
            .form(&[("name", "csrf"), ("role", "viewer")]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (None, Some("cross-site")),
        (None, None),
    ] {
        let response = create(origin, site).await.unwrap();
        assert_eq!(response.status(), 403, "{origin:?} {site:?}");
        assert!(body_json(response).await["error"]
            .as_str()
            .unwrap()
            .contains("cross-site"));
    }
    let made: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE name = 'csrf'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(made, 0, "a refused request changed nothing");

    // The same request from the site itself works.
    let own_origin = Box::leak(app.base_url.clone().into_boxed_str());
    assert_eq!(create(Some(own_origin), None).await.unwrap().status(), 200);
    assert_eq!(
        create(None, Some("same-origin")).await.unwrap().status(),
        409,
        "same-origin passes (and the name is now taken)"
    );
}

#[sqlx::test]
async fn security_headers_are_on_every_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let page = app.client.get(app.url("/incidents")).send().await.unwrap();
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
    assert!(
        !csp.contains("unsafe-eval'") || csp.contains("wasm-unsafe-eval"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    // The page's inline loader carries the nonce of its policy.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts carry the nonce"
    );
    let login = app.anonymous.get(app.url("/login")).send().await.unwrap();
    assert!(login.headers().contains_key("content-security-policy"));
}

#[sqlx::test]
async fn the_eleventh_failed_login_gets_429_and_a_success_resets_the_count(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let email = app.user(Role::Viewer).await;
    let json_login = |password: &'static str| {
        app.anonymous
            .post(app.url("/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
    };
    // An unknown email gets the same answer as a wrong password (and counts for the address).
    let unknown = app
        .anonymous
        .post(app.url("/login"))
        .json(&json!({ "email": "nobody@example.com", "password": "whatever it is" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(body_json(unknown).await["error"], "wrong email or password");
    // Eight more failures, then a success, forgives the eight of its own (account, address)
    // pair, not the unknown email's: nine more failures are allowed, the tenth is refused.
    for _ in 0..8 {
        assert_eq!(json_login("wrong password!").await.unwrap().status(), 401);
    }
    assert_eq!(json_login(PASSWORD).await.unwrap().status(), 200);
    for attempt in 1..=9 {
        let response = json_login("wrong password!").await.unwrap();
        assert_eq!(response.status(), 401, "failure {attempt}");
        assert_eq!(
            body_json(response).await["error"],
            "wrong email or password",
            "the same words for a wrong email or password"
        );
    }
    let limited = json_login("wrong password!").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    // Even the right password waits out the window.
    assert_eq!(json_login(PASSWORD).await.unwrap().status(), 429);
    // The form gets the page's message instead.
    let form = app.login(&email, PASSWORD).await;
    assert_eq!(
        form.headers()["location"],
        "/login?error=limited&next=%2Fincidents"
    );
}

#[sqlx::test]
async fn the_first_admin_is_created_once(pool: PgPool) {
    let config = |email: &str, password: &str| {
        let (email, password) = (email.to_string(), password.to_string());
        jobdeck::server::config::Config::from_lookup(move |name| match name {
            "DATABASE_URL" => Some("postgres://given-by-the-test".into()),
            "JOBDECK_ADMIN_EMAIL" => Some(email.clone()),
            "JOBDECK_ADMIN_PASSWORD" => Some(password.clone()),
            _ => None,
        })
        .unwrap()
    };
    let first =
        TestApp::spawn_with(pool.clone(), config("Root@Example.com", "first password 1")).await;
    let login = first.login("root@example.com", "first password 1").await;
    assert_eq!(login.status(), 303);
    assert!(session_cookie(&login).is_some());
    // A restart with other values changes nothing.
    let second = TestApp::spawn_with(
        pool.clone(),
        config("other@example.com", "second password 2"),
    )
    .await;
    let users: Vec<(String, String)> =
        sqlx::query_as("SELECT email, role FROM users ORDER BY email")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        users,
        [("root@example.com".to_string(), "admin".to_string())]
    );
    assert_eq!(
        second
            .login("root@example.com", "second password 2")
            .await
            .headers()["location"],
        "/login?error=invalid&next=%2Fincidents"
    );
    assert_eq!(
        second
            .login("root@example.com", "first password 1")
            .await
            .status(),
        303
    );
}

#[sqlx::test]
async fn every_account_action_is_audited_without_secrets(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = app.user(Role::Admin).await;
    let cookie = app.session(&admin).await;
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        app.anonymous
            .post(app.url(path))
            .header("cookie", &cookie)
            .header("origin", &app.base_url)
            .form(&form)
            .send()
    };
    let _ = app.login(&admin, "wrong password!").await;
    let created = post(
        "/api/admin/users/create",
        vec![
            ("email", "new@example.com".into()),
            ("name", "New".into()),
            ("role", "viewer".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 200);
    let generated: String = created.json().await.unwrap();
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'new@example.com'")
        .fetch_one(&pool)
        .await
        .unwrap();
    post(
        "/api/admin/users/update",
        vec![("id", id.to_string()), ("role", "operator".into())],
    )
    .await
    .unwrap();
    let reset: String = post(
        "/api/admin/users/reset-password",
        vec![("id", id.to_string())],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token: Value = post(
        "/api/tokens/create",
        vec![("name", "deploy".into()), ("role", "operator".into())],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    post(
        "/api/tokens/revoke",
        vec![("id", token["view"]["id"].as_str().unwrap().to_string())],
    )
    .await
    .unwrap();
    post("/logout", vec![]).await.unwrap();

    type Row = (String, String, Option<String>, String, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT action, actor, target, outcome, client_addr FROM audit_events WHERE actor <> 'cli' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let actions: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.3.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("login", "success"),
            ("login", "failure"),
            ("createUser", "success"),
            ("updateUser", "success"),
            ("resetPassword", "success"),
            ("createToken", "success"),
            ("revokeToken", "success"),
            ("logout", "success"),
        ]
    );
    assert!(rows.iter().all(|r| r.1 == admin), "the actor is the admin");
    assert!(
        rows.iter().all(|r| r.4.as_deref() == Some("127.0.0.1")),
        "the client address"
    );
    assert_eq!(rows[2].2.as_deref(), Some("new@example.com"));

    // The audit page lists them newest first, filtered by action.
    let page: Value = app
        .client
        .post(app.url("/api/admin/audit"))
        .form(&[("action", "createToken"), ("actor", admin.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);

    let everything: String =
        sqlx::query_scalar("SELECT string_agg(a::text, '|') FROM audit_events a")
            .fetch_one(&pool)
            .await
            .unwrap();
    for secret in [
        PASSWORD,
        "wrong password!",
        &generated,
        &reset,
        token["token"].as_str().unwrap(),
        &cookie[16..],
    ] {
        assert!(!everything.contains(secret), "the audit log holds a secret");
    }
}
