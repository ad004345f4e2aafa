//! One module per route.

pub mod incident;
pub mod incidents;
pub mod not_found;
