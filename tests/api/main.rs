//! Integration tests: the real app over real HTTP on a real Postgres database per test.
//! One binary (zero-to-production style) so the app and its helpers compile once.

mod accounts;
mod alert_operations;
mod alerts;
mod batching;
mod cli;
mod dashboard;
mod db_outage;
mod helpers;
mod http_limits;
mod job_report;
mod jobs;
mod live;
mod metrics;
mod monitoring;
mod openapi;
mod operations;
mod pages;
mod process;
mod proxy;
mod python_client;
mod python_reporter;
mod recovery;
mod retention;
mod schema;
mod security;
mod sim;
mod worker_cli;
mod workers;
