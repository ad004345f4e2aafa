//! The HTTP surface: the JSON routes for scripts, then the Leptos pages and server functions,
//! behind the load limits every route shares, served by `serve`.

pub mod error;
mod health;
mod incidents;
pub mod job_report;
mod limits;
mod serve;

use axum::Router;
use leptos_axum::{generate_route_list, LeptosRoutes};

pub use limits::with_limits;
pub use serve::serve;

use super::AppState;
use crate::app::{shell, App};

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .merge(job_report::routes())
        .merge(health::routes())
        .merge(incidents::routes())
        .leptos_routes(&state, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
}
