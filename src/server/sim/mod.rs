//! `jobdeck sim`: live recap jobs and scripts through the HTTP APIs (`live`), or a large
//! history written straight into the database for benchmarks (`bulk`).

pub mod bulk;
pub mod live;
