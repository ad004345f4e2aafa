//! Jobdeck: watch and control batch jobs and scheduled scripts on one PostgreSQL database.
//!
//! Built twice by cargo-leptos: `ssr` (the axum server, `server/`) and `hydrate` (WASM).
//! Leptos islands: pages render on the server only, and the WASM holds just the few
//! `#[island]` components that run in the browser (`ui::live`, `ui::secret_form`).

pub mod api;
pub mod app;
pub mod model;
pub mod pages;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

include!(concat!(env!("OUT_DIR"), "/i18n/mod.rs"));

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
