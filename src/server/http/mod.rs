//! The HTTP surface: the JSON routes, then the Leptos pages and server functions, behind
//! identity gates, cross-site protection and the load limits every route shares, served by
//! `serve`.

pub mod accounts;
mod alerts;
pub mod assets;
pub mod auth;
pub mod client_addr;
mod dashboard;
pub mod envelope;
pub mod error;
mod events;
mod health;
pub mod job_report;
mod jobs;
mod lang;
mod limits;
pub mod openapi;
mod prometheus;
mod recovery;
mod render_bound;
pub mod routes;
pub mod security;
mod serve;
mod tasks;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

pub use limits::with_limits;
pub use serve::serve;

use self::routes::{Access, JsonRoutes};
use super::{telemetry, AppState};
use crate::app::{shell, App};
use crate::model::REPORT_LIMITS;

/// Every JSON route of the portal and who may reach it.
pub fn json_routes() -> JsonRoutes {
    use Access::*;
    JsonRoutes::new()
        .route(Public, Method::GET, "/healthz", get(health::healthz))
        .route(
            Public,
            Method::POST,
            "/api/monitor/job-report",
            post(job_report::job_report).layer(DefaultBodyLimit::max(REPORT_LIMITS.body_bytes)),
        )
        .route(
            Public,
            Method::POST,
            "/api/monitor/job-start",
            post(job_report::job_start).layer(DefaultBodyLimit::max(4096)),
        )
        .route(Public, Method::POST, "/login", post(accounts::login))
        .route(Public, Method::POST, "/lang", post(lang::switch_language))
        .route(Identified, Method::POST, "/logout", post(accounts::logout))
        .route(Identified, Method::GET, "/api/me", get(accounts::me))
        .route(
            Identified,
            Method::GET,
            "/v1/dashboard/job-progress",
            get(dashboard::job_progress),
        )
        .route(
            Identified,
            Method::GET,
            "/v1/dashboard/job-stats",
            get(dashboard::job_stats),
        )
        .route(
            Identified,
            Method::POST,
            "/job-operations",
            post(jobs::job_operations),
        )
        .route(
            Identified,
            Method::POST,
            "/task-operations",
            post(tasks::task_operations),
        )
        .route(
            Identified,
            Method::POST,
            "/error-operations",
            post(recovery::error_operations),
        )
        .route(
            Identified,
            Method::POST,
            "/alert-operations",
            post(alerts::alert_operations),
        )
        .route(
            Identified,
            Method::GET,
            "/v1/jobs/{job_id}/events",
            get(events::job_events),
        )
        .route(
            Identified,
            Method::GET,
            "/v1/events",
            get(events::portal_events),
        )
        .route(
            Identified,
            Method::GET,
            "/metrics",
            get(prometheus::metrics),
        )
        .route(Public, Method::GET, "/openapi.json", get(openapi_json))
}

/// `GET /openapi.json`: the document of the routes above, made once.
async fn openapi_json() -> axum::Json<&'static serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOCUMENT.get_or_init(|| openapi::document(json_routes().table())))
}

pub fn router(state: AppState) -> Router {
    let (public, identified) = json_routes().into_routers();
    let timed = |routes: Router<AppState>| {
        routes.route_layer(from_fn_with_state(
            state.telemetry.clone(),
            telemetry::time_routes,
        ))
    };
    let identified = identified
        .route_layer(from_fn_with_state(state.clone(), auth::api_gate))
        .route_layer(from_fn_with_state(state.clone(), security::same_origin));
    let (public, identified) = (timed(public), timed(identified));
    let options = state.leptos_options.clone();
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            provide_request_nonce,
            move || shell(options.clone()),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::page_gate))
        .route_layer(from_fn_with_state(state.clone(), security::same_origin))
        .route_layer(from_fn_with_state(
            state.render_timeout,
            render_bound::render_bound,
        ));
    Router::new()
        .merge(public)
        .merge(identified)
        .merge(pages)
        .merge(assets::pkg_router(&state.leptos_options))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(from_fn_with_state(
            state.accounts.secure_cookies(),
            security::security_headers,
        ))
        .with_state(state)
}

/// The page's inline scripts carry the nonce that `security::security_headers` puts in
/// its Content-Security-Policy.
fn provide_request_nonce() {
    let nonce = leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<security::CspNonce>().cloned());
    if let Some(security::CspNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}
