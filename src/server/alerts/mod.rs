//! Alerts (issue 25): schedules and start signals of reported scripts, rules, the evaluator
//! that moves alerts through ok → pending → firing → resolved, the outbox that notifies the
//! channels, and what people do with alerts (acknowledge, snooze, note, silence).
//!
//! Both background tasks run in every portal process (`startup::start_services`): the
//! evaluator claims due rules with row locks, the outbox claims deliveries with a
//! conditional update, so several processes on one database judge each rule and send each
//! notification once.

pub mod actions;
pub mod channels;
pub mod evaluate;
mod judge;
pub mod message;
pub mod operations;
pub mod outbox;
pub mod page;
pub mod rules;
pub mod schedule;

use std::time::Duration;

use axum::http::StatusCode;
use sqlx::PgPool;
use uuid::Uuid;

pub use self::channels::{Senders, SmtpSettings, SmtpTls};
pub use self::evaluate::{evaluate_due, Cycle};

use crate::server::failure::{DomainError, Failure, Refusal};
use crate::server::input::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("the {0} role may not do this")]
    Forbidden(crate::model::Role),
    #[error("{0} {1} not found")]
    NotFound(&'static str, Uuid),
    #[error("{0}")]
    Conflict(String),
    #[error("the test message was not delivered: {0}")]
    NotDelivered(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DomainError for AlertError {
    fn failure(self) -> Failure {
        let message = self.to_string();
        match self {
            AlertError::Invalid(error) => {
                Refusal::new(StatusCode::BAD_REQUEST, message).field(error.field)
            }
            AlertError::Forbidden(_) => Refusal::new(StatusCode::FORBIDDEN, message),
            AlertError::NotFound(..) => Refusal::new(StatusCode::NOT_FOUND, message),
            AlertError::Conflict(_) => Refusal::new(StatusCode::CONFLICT, message),
            AlertError::NotDelivered(_) => Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, message),
            AlertError::Database(error) => return Failure::Database(error),
        }
        .into()
    }
}

/// How often rules are judged and how long a delivery's claim lasts.
#[derive(Clone, Copy, Debug)]
pub struct AlertTiming {
    /// Each rule is judged this often; zero turns the evaluator off in this process.
    pub evaluate_every: Duration,
    /// Longer than a send may take (the senders' timeout is under it).
    pub delivery_claim: Duration,
}

impl Default for AlertTiming {
    fn default() -> Self {
        AlertTiming {
            evaluate_every: Duration::from_secs(5),
            delivery_claim: Duration::from_secs(60),
        }
    }
}

/// Judges the due rules on a one-second tick, so a rule is judged within a second of
/// becoming due (and a missed run noticed within `evaluate_every` + 1 s of its deadline).
pub async fn run_evaluator(pool: PgPool, timing: AlertTiming) {
    if timing.evaluate_every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = evaluate_due(&pool, chrono::Utc::now(), timing.evaluate_every).await {
            tracing::warn!(%error, "alert evaluation failed; trying again");
        }
    }
}

/// Sends due notifications, looking every half second (an index probe when none is due).
pub async fn run_outbox(pool: PgPool, senders: Senders, timing: AlertTiming) {
    loop {
        match outbox::deliver_due(&pool, &senders, 20, timing.delivery_claim).await {
            Ok(20) => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "alert delivery failed; trying again"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
