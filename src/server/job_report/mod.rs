//! Seed 003's webhook service: parse a report, store it durably, say what happened.

mod batcher;
mod input;
mod store;

pub use batcher::{BatchOptions, JobReportBatcher, SubmitError};
pub use input::{InvalidReport, NewReport};
