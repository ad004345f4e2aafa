//! Seed 002's dashboard components, each a server-rendered Leptos component fed by
//! `model::RecapDashboard`; the page (`pages::recap`) puts them in live regions.

pub mod active_job_card;
pub mod genre_progress_list;
pub mod job_history_table;
pub mod metric_card;
pub mod pipeline_progress;
