//! Signing in and out. Wrong email and wrong password get the same answer in the same time;
//! failures are limited per account and per client address, counted from the audit log so
//! every portal process sharing the database counts the same ones.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::password;
use super::sessions::{end_session, start_session};
use super::users::Email;
use super::Principal;
use crate::model::{CurrentUser, Role};
use crate::server::audit::{self, Actor, Event, Outcome};

/// Failed logins allowed per account and per client address within [`WINDOW`]; the next
/// one is refused with 429 until the oldest failure leaves the window. A success resets
/// the count.
pub const MAX_FAILURES: i64 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most of an entered email that is kept in the audit log.
const TARGET_MAX: usize = 254;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong email or password")]
    Invalid,
    #[error("this account is disabled")]
    Disabled,
    #[error("too many failed logins; try again in {retry_after} s")]
    Limited { retry_after: u64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub struct LoggedIn {
    /// The new session id, for the cookie.
    pub session: String,
    pub user: CurrentUser,
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    #[sqlx(try_from = "String")]
    role: Role,
    disabled: bool,
    must_change_password: bool,
}

/// Recent failures for one key (`target` or `client_addr`) since its last success, and
/// seconds until the oldest of them leaves the window.
const RECENT_FAILURES_SQL: &str = "
    SELECT count(*), coalesce(ceil(extract(epoch FROM min(at) + make_interval(secs => $2) - now()))::bigint, 0)
    FROM audit_events
    WHERE action = 'login' AND outcome = 'failure' AND {key} = $1
      AND at > now() - make_interval(secs => $2)
      AND at > coalesce((SELECT max(at) FROM audit_events
                         WHERE action = 'login' AND outcome = 'success' AND {key} = $1), '-infinity')";

async fn retry_after(pool: &PgPool, key: &str, value: &str) -> Result<Option<u64>, sqlx::Error> {
    let (failures, wait): (i64, i64) = sqlx::query_as(&RECENT_FAILURES_SQL.replace("{key}", key))
        .bind(value)
        .bind(WINDOW.as_secs_f64())
        .fetch_one(pool)
        .await?;
    Ok((failures >= MAX_FAILURES).then_some(wait.max(1) as u64))
}

/// Checks the password and starts a new session; `old_session` (a cookie sent with the
/// login) is ended, so the session id always changes at login.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: String,
    client_addr: Option<String>,
    idle: Duration,
    old_session: Option<[u8; 32]>,
) -> Result<LoggedIn, LoginError> {
    let target: String = match Email::parse(email) {
        Ok(email) => email.as_str().to_string(),
        Err(_) => email.trim().chars().take(TARGET_MAX).collect(),
    };
    let mut limited = retry_after(pool, "target", &target).await?;
    if let Some(addr) = &client_addr {
        limited = limited.max(retry_after(pool, "client_addr", addr).await?);
    }
    if let Some(retry_after) = limited {
        tracing::warn!(target = %target, client = ?client_addr, "login refused: too many failures");
        return Err(LoginError::Limited { retry_after });
    }
    let candidate: Option<Candidate> = sqlx::query_as(
        "SELECT id, email, display_name, password_hash, role, disabled, must_change_password
         FROM users WHERE email = $1",
    )
    .bind(&target)
    .fetch_optional(pool)
    .await?;
    let stored = candidate.as_ref().map(|c| c.password_hash.clone());
    let matches = password::verify(password, stored).await;
    let actor = Actor {
        user_id: candidate.as_ref().map(|c| c.id),
        token_id: None,
        label: target.clone(),
        client_addr: client_addr.clone(),
    };
    let mut tx = pool.begin().await?;
    let outcome = match candidate {
        Some(user) if matches && !user.disabled => Ok(user),
        Some(_) if matches => Err(LoginError::Disabled),
        _ => Err(LoginError::Invalid),
    };
    let reason = match &outcome {
        Ok(_) => None,
        Err(LoginError::Disabled) => Some("disabled"),
        Err(_) => Some("wrong email or password"),
    };
    audit::record(
        &mut tx,
        &actor,
        Event {
            action: "login",
            target: Some(&target),
            details: match reason {
                Some(reason) => serde_json::json!({ "reason": reason }),
                None => serde_json::json!({}),
            },
            outcome: if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        },
    )
    .await?;
    let user = match outcome {
        Ok(user) => user,
        Err(error) => {
            tx.commit().await?;
            return Err(error);
        }
    };
    if let Some(old) = old_session {
        end_session(&mut tx, &old).await?;
    }
    let session = start_session(&mut tx, user.id, client_addr.as_deref(), idle).await?;
    tx.commit().await?;
    Ok(LoggedIn {
        session,
        user: CurrentUser {
            id: Some(user.id),
            name: user.display_name,
            email: Some(user.email),
            role: user.role,
            must_change_password: user.must_change_password,
        },
    })
}

/// Ends the principal's session on the server, so its cookie opens nothing any more.
pub async fn logout(pool: &PgPool, principal: &Principal) -> Result<(), sqlx::Error> {
    let Some(session) = principal.session else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    end_session(&mut tx, &session).await?;
    audit::record(
        &mut tx,
        &principal.actor(),
        Event {
            action: "logout",
            target: principal.email.as_deref(),
            details: serde_json::json!({}),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await
}
