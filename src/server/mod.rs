//! Server only: configuration, state, database, one folder per domain, and the HTTP routes.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod dispatch;
pub mod failure;
pub mod http;
pub mod incidents;
pub mod input;
pub mod job_report;
pub mod jobs;
pub mod monitoring;
pub mod recovery;
pub mod sim;
pub mod startup;
mod state;
mod svg_chart;
pub mod tasks;
pub mod telemetry;
pub mod worker;

pub use state::AppState;
