//! Applying a `raise_memory_limit` suggestion: the failed jobs it was read from (those of
//! the latest `RESOURCE_LIMIT_EXCEEDED` records in its period that are still failed) get the
//! proposed `max_memory`, so their recovery runs with it. Jobs yet to come carry their
//! creators' limits; `createJob`'s warnings tell those creators about the peaks.

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::analyze::PEAK_SAMPLE;
use super::input::{AnalyzeErrors, Period};
use super::{store, RecoveryError};
use crate::model::dispatch::codes::RESOURCE_LIMIT_EXCEEDED;
use crate::model::{Permission, RecoveryPeriod};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::input::InvalidInput;
use crate::server::jobs::input::MaxMemory;

/// The audit log's name for it (not one of seed 004's actions: the page's button).
pub const RAISE_MEMORY_LIMIT: &str = "raiseMemoryLimit";

/// Megabytes, and the jobs that got them.
#[derive(Debug)]
pub struct RaisedLimit {
    pub max_memory: i64,
    pub jobs: Vec<Uuid>,
}

pub async fn raise_memory_limit(
    pool: &PgPool,
    actor: &Actor,
    max_memory: i64,
    period: RecoveryPeriod,
) -> Result<RaisedLimit, RecoveryError> {
    let needs = Permission::ActOnJobs;
    if !actor.may(needs) {
        let error = RecoveryError::Forbidden {
            role: actor.role,
            needs,
        };
        let why = error.to_string();
        audit::record_refusal(pool, actor, RAISE_MEMORY_LIMIT, None, &why).await;
        return Err(error);
    }
    let max_memory = MaxMemory::try_from(max_memory)
        .map_err(|message| InvalidInput::new("max_memory", message))?
        .get();
    if max_memory == 0 {
        return Err(InvalidInput::new("max_memory", "must be above 0 (0 is no limit)").into());
    }
    // The records the page's analysis read: its period in whole hours.
    let now = Utc::now();
    let request = AnalyzeErrors {
        period: Some(Period {
            start: now - Duration::hours(period.hours()),
            end: now,
        }),
        ..Default::default()
    };
    let since = request.spans(now).0.start;
    let mut tx = pool.begin().await?;
    let jobs: Vec<Uuid> = sqlx::query_scalar(store::RAISE_MEMORY_LIMIT_SQL)
        .bind(max_memory)
        .bind(RESOURCE_LIMIT_EXCEEDED)
        .bind(since)
        .bind(PEAK_SAMPLE)
        .fetch_all(&mut *tx)
        .await?;
    let event = Event {
        action: RAISE_MEMORY_LIMIT,
        target: Some(RESOURCE_LIMIT_EXCEEDED),
        details: json!({ "max_memory": max_memory, "since": since, "jobs": &jobs }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(RaisedLimit { max_memory, jobs })
}
