//! One module per route.

pub mod account;
pub mod admin;
pub mod alerts;
pub mod error_record;
pub mod incident;
pub mod incidents;
pub mod job;
pub mod jobs;
pub mod login;
pub mod not_found;
pub mod recap;
pub mod recovery;
pub mod workers;
