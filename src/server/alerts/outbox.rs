//! Sends what `alert_deliveries` owes. A delivery is claimed by a conditional update that
//! moves its `next_attempt_at` past the send's timeout (the claim), so a process that dies
//! mid-way leaves it to be claimed again once the claim lapses; several processes never
//! claim one delivery at once (`SKIP LOCKED`). Success and failure are recorded only by the
//! claim that made them (`attempts` unchanged), each attempt logged. The message id is the
//! delivery's own, the same on every retry, so a receiver that dedupes on `webhook-id` sees
//! each notification once.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::channels::{self, Channel, Outgoing, Senders};
use super::message::{self, NoticeFacts};
use super::AlertError;
use crate::model::{incident_path, AlertKind, AlertState, MessageLanguage};
use crate::server::audit::{self, Actor, Event, Outcome};

/// Attempts before a delivery is given up (about 4 h of backoff in all).
pub const MAX_ATTEMPTS: i32 = 10;

#[derive(Clone, Debug, FromRow)]
struct Claimed {
    id: i64,
    attempts: i32,
    channel_id: Uuid,
    event_id: i64,
    rule_name: String,
    kind: AlertKind,
    severity: String,
    subject: String,
    job_key: Option<String>,
    job_kind: Option<String>,
    label: String,
    to_state: AlertState,
    reminder: bool,
    facts: Value,
    at: DateTime<Utc>,
}

const CLAIM_SQL: &str = "
    WITH due AS (
        SELECT id FROM alert_deliveries
        WHERE status IN ('queued', 'sending') AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE alert_deliveries d
        SET status = 'sending', attempts = d.attempts + 1,
            next_attempt_at = now() + make_interval(secs => $2)
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.attempts, d.channel_id, d.event_id
    )
    SELECT c.id, c.attempts, c.channel_id, c.event_id, e.rule_name, e.kind, e.severity,
           e.subject, e.job_key, e.job_kind, e.label, e.to_state, e.reminder, e.facts, e.at
    FROM claimed c JOIN alert_events e ON e.id = c.event_id";

/// Seconds before the `attempt`-th retry: 15 s doubling, at most an hour.
pub fn backoff(attempt: i32) -> f64 {
    (15.0 * 2f64.powi(attempt.clamp(1, 20) - 1)).min(3600.0)
}

/// The page an alert's subject is shown on.
pub fn link_path(subject: &str, job_key: Option<&str>, job_kind: Option<&str>) -> Option<String> {
    match (job_kind, job_key) {
        (Some("script"), Some(key)) => Some(incident_path(key)),
        (Some(_), Some(id)) => Some(format!("/jobs/{id}")),
        _ => subject
            .strip_prefix("fingerprint:")
            .map(|fp| format!("/recovery?fingerprint={fp}&status=all")),
    }
}

/// Claims up to `limit` due deliveries and sends them, at most `limit` at once. Returns how
/// many it claimed. `claim` must outlast a send (the senders' timeout).
pub async fn deliver_due(
    pool: &PgPool,
    senders: &Senders,
    limit: i64,
    claim: Duration,
) -> Result<usize, sqlx::Error> {
    let claimed: Vec<Claimed> = sqlx::query_as(CLAIM_SQL)
        .bind(limit)
        .bind(claim.as_secs_f64())
        .fetch_all(pool)
        .await?;
    let count = claimed.len();
    let mut sends = tokio::task::JoinSet::new();
    for delivery in claimed {
        let (pool, senders) = (pool.clone(), senders.clone());
        sends.spawn(async move { deliver(&pool, &senders, delivery).await });
    }
    while let Some(done) = sends.join_next().await {
        if let Ok(Err(error)) = done {
            tracing::warn!(%error, "could not record an alert delivery");
        }
    }
    Ok(count)
}

async fn deliver(pool: &PgPool, senders: &Senders, delivery: Claimed) -> Result<(), sqlx::Error> {
    let channel: Option<Channel> = sqlx::query_as(
        "SELECT id, name, kind, target, secret, language FROM alert_channels WHERE id = $1",
    )
    .bind(delivery.channel_id)
    .fetch_optional(pool)
    .await?;
    // The channel was deleted after the claim: its deliveries went with it.
    let Some(channel) = channel else {
        return Ok(());
    };
    let message_id = format!("alert_{}", delivery.id);
    let started = Instant::now();
    let result = send_one(senders, &channel, &delivery, &message_id).await;
    let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let (ok, status, error) = match &result {
        Ok(status) => (true, *status, None),
        Err(error) => (false, error.status, Some(error.message.as_str())),
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO alert_delivery_attempts (delivery_id, attempt, ok, status_code, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(delivery.id)
    .bind(delivery.attempts)
    .bind(ok)
    .bind(status.map(i32::from))
    .bind(error)
    .bind(duration_ms)
    .execute(&mut *tx)
    .await?;
    if ok {
        sqlx::query(
            "UPDATE alert_deliveries SET status = 'sent', sent_at = now(), last_error = NULL
             WHERE id = $1 AND status = 'sending' AND attempts = $2",
        )
        .bind(delivery.id)
        .bind(delivery.attempts)
        .execute(&mut *tx)
        .await?;
    } else {
        let give_up = delivery.attempts >= MAX_ATTEMPTS;
        sqlx::query(
            "UPDATE alert_deliveries SET status = CASE WHEN $3 THEN 'failed' ELSE 'queued' END,
                 next_attempt_at = now() + make_interval(secs => $4), last_error = $5
             WHERE id = $1 AND status = 'sending' AND attempts = $2",
        )
        .bind(delivery.id)
        .bind(delivery.attempts)
        .bind(give_up)
        .bind(backoff(delivery.attempts))
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tracing::warn!(
            channel = %channel.name, attempt = delivery.attempts, give_up,
            error = error.unwrap_or_default(), "an alert notification was not delivered"
        );
    }
    tx.commit().await
}

async fn send_one(
    senders: &Senders,
    channel: &Channel,
    delivery: &Claimed,
    message_id: &str,
) -> Result<Option<u16>, channels::SendError> {
    let path = link_path(
        &delivery.subject,
        delivery.job_key.as_deref(),
        delivery.job_kind.as_deref(),
    );
    let link = path.map(|p| match &senders.public_origin {
        Some(origin) => format!("{}{p}", origin.trim_end_matches('/')),
        None => p,
    });
    let facts = NoticeFacts {
        rule_name: &delivery.rule_name,
        kind: delivery.kind,
        severity: &delivery.severity,
        label: &delivery.label,
        to: delivery.to_state,
        reminder: delivery.reminder,
        facts: &delivery.facts,
        at: delivery.at,
        link: link.clone(),
    };
    let notice = message::notice(&facts, channel.language);
    let event_type = match (delivery.reminder, delivery.to_state) {
        (true, _) => "alert.reminder",
        (_, AlertState::Resolved) => "alert.resolved",
        _ => "alert.firing",
    };
    let payload = json!({
        "type": event_type,
        "timestamp": delivery.at,
        "data": {
            "event_id": delivery.event_id,
            "rule": delivery.rule_name,
            "kind": delivery.kind,
            "severity": delivery.severity,
            "subject": delivery.subject,
            "job_key": delivery.job_key,
            "job_kind": delivery.job_kind,
            "label": delivery.label,
            "state": delivery.to_state,
            "reminder": delivery.reminder,
            "facts": delivery.facts,
            "summary": message::summary(delivery.kind, &delivery.facts, channel.language),
            "link": link,
            "title": notice.subject,
        },
    });
    let outgoing = Outgoing {
        message_id,
        notice: &notice,
        payload: &payload,
    };
    channels::send(senders, channel, &outgoing, Utc::now()).await
}

/// Sends a test message to one channel now, outside the outbox; the result is the answer.
pub async fn send_test(
    senders: &Senders,
    channel: &Channel,
) -> Result<Option<u16>, channels::SendError> {
    let now = Utc::now();
    let language = channel.language;
    let (subject, body) = match language {
        MessageLanguage::Ja => (
            "[Jobdeck] テスト通知".to_string(),
            format!("チャンネル「{}」へのテスト通知です。\n", channel.name),
        ),
        MessageLanguage::En => (
            "[Jobdeck] Test notification".to_string(),
            format!("A test notification to the channel \"{}\".\n", channel.name),
        ),
    };
    let notice = message::Notice { subject, body };
    let payload = json!({
        "type": "alert.test",
        "timestamp": now,
        "data": { "title": notice.subject, "summary": notice.body },
    });
    let id = format!("test_{:032x}", rand::random::<u128>());
    let outgoing = Outgoing {
        message_id: &id,
        notice: &notice,
        payload: &payload,
    };
    channels::send(senders, channel, &outgoing, now).await
}

/// "Send test" for an operator: one message now, audited with its outcome; a failure is
/// the answer (422, saying why).
pub async fn test_channel(
    pool: &PgPool,
    senders: &Senders,
    actor: &Actor,
    channel_id: Uuid,
) -> Result<Option<u16>, AlertError> {
    super::actions::may_act(actor)?;
    let channel = channels::load_channel(pool, channel_id).await?;
    let result = send_test(senders, &channel).await;
    let target = channel_id.to_string();
    let event = Event {
        action: "testAlertChannel",
        target: Some(&target),
        details: json!({ "error": result.as_ref().err().map(|e| e.message.clone()) }),
        outcome: match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        },
    };
    let mut conn = pool.acquire().await?;
    audit::record(&mut conn, actor, event).await?;
    result.map_err(|error| AlertError::NotDelivered(error.message))
}
