//! `jobdeck sim`: live recap jobs and scripts through the HTTP APIs (`live`), dispatched
//! batch jobs run by real workers (`dispatched`), or a large
//! history written straight into the database for benchmarks (`bulk`).

pub mod bulk;
pub mod dispatched;
pub mod live;

/// The genres a simulated recap job clusters its articles into.
const GENRES: [&str; 6] = [
    "tech",
    "business",
    "sports",
    "entertainment",
    "science",
    "world",
];

/// Typical seconds of each of seed 002's stages at speed 1: the live pace, and how the bulk
/// history splits a run between its stages.
const STAGE_SECS: [u32; 8] = [8, 5, 3, 14, 4, 9, 3, 2];
