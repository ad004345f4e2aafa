//! Server only: configuration, state, database, services and the HTTP routes.

pub mod config;
pub mod db;
pub mod http;
pub mod job_report;
pub mod job_status;
pub mod startup;
mod state;

pub use state::AppState;
