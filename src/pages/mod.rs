//! One module per route.

pub mod incidents;
pub mod job;
pub mod not_found;
