//! The audit log: who did what, from where, to what, and whether it worked. Every change is
//! recorded by [`record`] inside the transaction that makes it, so a change and its row
//! commit or vanish together. Secrets never go in: callers pass only names and ids.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{parse_number, AuditEventView, AuditPage, BadCursor, Cursor, Permission, Role};
use crate::server::failure::{DomainError, Failure};

/// Who acted, as the audit log names them, and the role they acted with (which the
/// services check where a decision depends on the data, such as a job's status).
#[derive(Clone, Debug)]
pub struct Actor {
    /// The user, or a token's owner.
    pub user_id: Option<Uuid>,
    pub token_id: Option<Uuid>,
    /// An email, `token:<name> (<owner's email>)`, `cli` or `system`.
    pub label: String,
    pub client_addr: Option<String>,
    pub role: Role,
}

impl Actor {
    /// The command line and the portal itself act with every permission.
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
            role: Role::Admin,
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.role.may(permission)
    }
}

pub use crate::model::AuditOutcome as Outcome;

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
        .bind(event.outcome)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a refused or conflicting action (403, 409) on its own, after the refused
/// change rolled back. A failure to record it is logged, never turned into the answer.
pub async fn record_refusal(
    pool: &PgPool,
    actor: &Actor,
    action: &'static str,
    target: Option<&str>,
    why: &str,
) {
    let event = Event {
        action,
        target,
        details: serde_json::json!({ "refused": why }),
        outcome: Outcome::Failure,
    };
    let recorded = async {
        let mut conn = pool.acquire().await?;
        record(&mut conn, actor, event).await
    };
    if let Err(error) = recorded.await {
        tracing::warn!(%error, action, "could not audit a refused action");
    }
}

/// Rows per page of the audit log.
pub const PAGE_SIZE: i64 = 100;

/// Filters of the audit page; each is an exact match, so each is one index range.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Continue just after the last event of the previous page.
    pub after: Option<Cursor>,
}

const LIST_AUDIT_SQL: &str = "
    SELECT id, at, actor, client_addr, action, target, details, outcome
    FROM audit_events
    WHERE ($1::text IS NULL OR actor = $1)
      AND ($2::text IS NULL OR action = $2)
      AND id < $3
    ORDER BY id DESC
    LIMIT $4";

/// What reading the audit log can refuse.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DomainError for AuditError {
    fn failure(self) -> Failure {
        match self {
            AuditError::BadCursor(bad) => bad.failure(),
            AuditError::Database(error) => Failure::Database(error),
        }
    }
}

/// Newest first, by key.
pub async fn list_audit(pool: &PgPool, filter: &AuditFilter) -> Result<AuditPage, AuditError> {
    let before = match &filter.after {
        Some(after) => {
            let [id] = after.parts()?;
            parse_number(&id)?
        }
        None => i64::MAX,
    };
    let mut events: Vec<AuditEventView> = sqlx::query_as(LIST_AUDIT_SQL)
        .bind(filter.actor.as_deref().filter(|s| !s.is_empty()))
        .bind(filter.action.as_deref().filter(|s| !s.is_empty()))
        .bind(before)
        .bind(PAGE_SIZE + 1)
        .fetch_all(pool)
        .await?;
    let next = (events.len() as i64 > PAGE_SIZE).then(|| {
        events.truncate(PAGE_SIZE as usize);
        Cursor::new(&[&events[events.len() - 1].id.to_string()])
    });
    Ok(AuditPage { events, next })
}
