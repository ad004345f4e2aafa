//! The audit log: who did what, from where, to what, and whether it worked. Every change is
//! recorded by [`record`] inside the transaction that makes it, so a change and its row
//! commit or vanish together. Secrets never go in: callers pass only names and ids.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{AuditEventView, AuditPage};

/// Who acted, as the audit log names them.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub token_id: Option<Uuid>,
    /// An email, a token's name, `cli` or `system`.
    pub label: String,
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn cli() -> Self {
        Self::named("cli")
    }

    pub fn system() -> Self {
        Self::named("system")
    }

    fn named(label: &str) -> Self {
        Self {
            user_id: None,
            token_id: None,
            label: label.to_string(),
            client_addr: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One thing that happened. `action` is the wire name of what was asked (`createUser`).
pub struct Event<'a> {
    pub action: &'static str,
    pub target: Option<&'a str>,
    pub details: Value,
    pub outcome: Outcome,
}

const RECORD_SQL: &str = "
    INSERT INTO audit_events (actor_user_id, actor_token_id, actor, client_addr, action, target, details, outcome)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    event: Event<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(RECORD_SQL)
        .bind(actor.user_id)
        .bind(actor.token_id)
        .bind(&actor.label)
        .bind(&actor.client_addr)
        .bind(event.action)
        .bind(event.target)
        .bind(&event.details)
        .bind(event.outcome.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows per page of the audit log.
pub const PAGE_SIZE: i64 = 100;

/// Filters of the audit page; each is an exact match, so each is one index range.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Continue with events older than this id.
    pub before: Option<i64>,
}

const LIST_AUDIT_SQL: &str = "
    SELECT id, at, actor, client_addr, action, target, details, outcome
    FROM audit_events
    WHERE ($1::text IS NULL OR actor = $1)
      AND ($2::text IS NULL OR action = $2)
      AND id < $3
    ORDER BY id DESC
    LIMIT $4";

/// Newest first, by key.
pub async fn list_audit(pool: &PgPool, filter: &AuditFilter) -> Result<AuditPage, sqlx::Error> {
    let mut events: Vec<AuditEventView> = sqlx::query_as(LIST_AUDIT_SQL)
        .bind(filter.actor.as_deref().filter(|s| !s.is_empty()))
        .bind(filter.action.as_deref().filter(|s| !s.is_empty()))
        .bind(filter.before.unwrap_or(i64::MAX))
        .bind(PAGE_SIZE + 1)
        .fetch_all(pool)
        .await?;
    let next = (events.len() as i64 > PAGE_SIZE).then(|| {
        events.truncate(PAGE_SIZE as usize);
        events[events.len() - 1].id
    });
    Ok(AuditPage { events, next })
}
