//! Server only: configuration, state, database, one folder per domain, and the HTTP routes.

pub mod accounts;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod http;
pub mod job_report;
pub mod job_status;
pub mod jobs;
pub mod sim;
pub mod startup;
mod state;
mod svg_chart;
pub mod tasks;

pub use state::AppState;
