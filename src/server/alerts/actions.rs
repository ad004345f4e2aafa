//! What people do with alerts, each audited in its own transaction: acknowledge (no more
//! reminders until it resolves), snooze until a time, add a note, silence a scope until a
//! time (no notifications at all while it lasts).

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::rules::ScopeRequest;
use super::AlertError;
use crate::model::Permission;
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::input::InvalidInput;

/// The longest snooze and silence.
pub const MAX_SNOOZE_DAYS: i64 = 14;
pub const MAX_SILENCE_DAYS: i64 = 90;
pub const NOTE_CHARS: usize = 2000;
pub const REASON_CHARS: usize = 500;

/// One alert: a rule and the subject it judged.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRef {
    pub rule_id: Uuid,
    pub subject: String,
}

impl AlertRef {
    /// How the audit log names it.
    pub fn target(&self) -> String {
        format!("{}/{}", self.rule_id, self.subject)
    }
}

/// Every change to alerts, rules, channels and schedules is an operator's.
pub fn may_act(actor: &Actor) -> Result<(), AlertError> {
    if actor.may(Permission::ActOnJobs) {
        Ok(())
    } else {
        Err(AlertError::Forbidden(actor.role))
    }
}

async fn audited(
    pool: &PgPool,
    actor: &Actor,
    action: &'static str,
    alert: &AlertRef,
    sql: &str,
    value: DateTime<Utc>,
    details: serde_json::Value,
) -> Result<(), AlertError> {
    may_act(actor)?;
    let mut tx = pool.begin().await?;
    let changed = sqlx::query(sql)
        .bind(alert.rule_id)
        .bind(&alert.subject)
        .bind(&actor.label)
        .bind(value)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(AlertError::Conflict(format!(
            "no firing alert of rule {} for {}",
            alert.rule_id, alert.subject
        )));
    }
    let target = alert.target();
    let event = Event {
        action,
        target: Some(&target),
        details,
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn acknowledge(
    pool: &PgPool,
    actor: &Actor,
    alert: &AlertRef,
    now: DateTime<Utc>,
) -> Result<(), AlertError> {
    audited(
        pool,
        actor,
        "acknowledgeAlert",
        alert,
        "UPDATE alert_states SET acknowledged_at = $4, acknowledged_by = $3
         WHERE rule_id = $1 AND subject = $2 AND state = 'firing'",
        now,
        json!({}),
    )
    .await
}

/// No reminders for `lasting` from `now`; answers until when.
pub async fn snooze(
    pool: &PgPool,
    actor: &Actor,
    alert: &AlertRef,
    lasting: Duration,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, AlertError> {
    let until = now + within(lasting, MAX_SNOOZE_DAYS)?;
    audited(
        pool,
        actor,
        "snoozeAlert",
        alert,
        "UPDATE alert_states SET snoozed_until = $4, snoozed_by = $3
         WHERE rule_id = $1 AND subject = $2 AND state = 'firing'",
        until,
        json!({ "until": until }),
    )
    .await?;
    Ok(until)
}

/// 1 s to `max_days`: past that, an alert nobody looks at should speak again.
fn within(lasting: Duration, max_days: i64) -> Result<Duration, InvalidInput> {
    if lasting >= Duration::seconds(1) && lasting <= Duration::days(max_days) {
        Ok(lasting)
    } else {
        Err(InvalidInput::new(
            "duration_seconds",
            format!(
                "must be 1 to {} seconds ({max_days} days)",
                max_days * 86_400
            ),
        ))
    }
}

pub async fn add_note(
    pool: &PgPool,
    actor: &Actor,
    alert: &AlertRef,
    body: &str,
) -> Result<(), AlertError> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > NOTE_CHARS {
        return Err(
            InvalidInput::new("body", format!("a note is 1 to {NOTE_CHARS} characters")).into(),
        );
    }
    may_act(actor)?;
    let mut tx = pool.begin().await?;
    let added = sqlx::query(
        "INSERT INTO alert_notes (rule_id, subject, body, created_by)
         SELECT rule_id, subject, $3, $4 FROM alert_states WHERE rule_id = $1 AND subject = $2",
    )
    .bind(alert.rule_id)
    .bind(&alert.subject)
    .bind(body)
    .bind(&actor.label)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 0 {
        return Err(AlertError::Conflict(format!(
            "no open alert of rule {} for {}",
            alert.rule_id, alert.subject
        )));
    }
    let target = alert.target();
    let event = Event {
        action: "noteAlert",
        target: Some(&target),
        details: json!({ "body": body }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Silences `scope` for `lasting` from `now`; answers the silence and when it ends.
pub async fn create_silence(
    pool: &PgPool,
    actor: &Actor,
    scope: &ScopeRequest,
    lasting: Duration,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(Uuid, DateTime<Utc>), AlertError> {
    may_act(actor)?;
    let value = scope.check("scope")?;
    let ends_at = now + within(lasting, MAX_SILENCE_DAYS)?;
    if reason.chars().count() > REASON_CHARS {
        return Err(
            InvalidInput::new("reason", format!("at most {REASON_CHARS} characters")).into(),
        );
    }
    let mut tx = pool.begin().await?;
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO alert_silences (scope_kind, scope_value, ends_at, reason, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(scope.kind)
    .bind(&value)
    .bind(ends_at)
    .bind(reason.trim())
    .bind(&actor.label)
    .fetch_one(&mut *tx)
    .await?;
    let target = id.to_string();
    let event = Event {
        action: "createSilence",
        target: Some(&target),
        details: json!({ "scope_kind": scope.kind, "scope_value": value, "ends_at": ends_at, "reason": reason.trim() }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok((id, ends_at))
}

/// Ends a silence now.
pub async fn end_silence(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AlertError> {
    may_act(actor)?;
    let mut tx = pool.begin().await?;
    let ended =
        sqlx::query("UPDATE alert_silences SET ends_at = now() WHERE id = $1 AND ends_at > now()")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if ended == 0 {
        return Err(AlertError::NotFound("active silence", id));
    }
    let target = id.to_string();
    let event = Event {
        action: "endSilence",
        target: Some(&target),
        details: json!({}),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes one rule or channel by id (`sql` returns its name) and audits it; 404 when there
/// is none.
pub(super) async fn delete_named(
    pool: &PgPool,
    actor: &Actor,
    sql: &str,
    action: &'static str,
    what: &'static str,
    id: Uuid,
) -> Result<(), AlertError> {
    may_act(actor)?;
    let mut tx = pool.begin().await?;
    let name: Option<String> = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let name = name.ok_or(AlertError::NotFound(what, id))?;
    let target = id.to_string();
    let event = Event {
        action,
        target: Some(&target),
        details: json!({ "name": name }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(())
}
