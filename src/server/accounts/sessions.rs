//! Browser sessions, stored in PostgreSQL so every portal process sees the same ones and a
//! user's sessions can all be ended at once. The cookie holds a random id; the table holds
//! its SHA-256, so a copy of the table opens no session.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::secret::{random_base62, sha256};
use super::Principal;
use crate::model::Role;
use crate::server::config::AccountSettings;

/// How often expired sessions are deleted. Each portal runs the sweep; the DELETE is
/// idempotent, so several at once only repeat each other's work.
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);

const START_SESSION_SQL: &str = "
    INSERT INTO sessions (id_hash, user_id, expires_at, client_addr)
    VALUES ($1, $2, now() + make_interval(secs => $3), $4)";

/// Starts a session for `user_id` and returns the id for the cookie. A new id at every
/// login, so an id planted before login is worth nothing after it.
pub async fn start_session(
    conn: &mut PgConnection,
    user_id: Uuid,
    client_addr: Option<&str>,
    idle: Duration,
) -> Result<String, sqlx::Error> {
    let id = random_base62(43);
    sqlx::query(START_SESSION_SQL)
        .bind(sha256(&id).as_slice())
        .bind(user_id)
        .bind(idle.as_secs_f64())
        .bind(client_addr)
        .execute(conn)
        .await?;
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    email: String,
    display_name: String,
    #[sqlx(try_from = "String")]
    role: Role,
    must_change_password: bool,
    stale: bool,
}

const FIND_SESSION_SQL: &str = "
    SELECT u.id, u.email, u.display_name, u.role, u.must_change_password,
           s.last_seen_at < now() - interval '1 minute' AS stale
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id_hash = $1 AND s.expires_at > now() AND NOT u.disabled
      AND s.created_at > now() - make_interval(secs => $2)";

/// Sliding expiry, written at most once a minute per session, never past the session's
/// absolute end (`$3` after its login).
const TOUCH_SESSION_SQL: &str = "
    UPDATE sessions SET last_seen_at = now(),
        expires_at = least(now() + make_interval(secs => $2), created_at + make_interval(secs => $3))
    WHERE id_hash = $1";

/// The user behind a session cookie, if the session is live (used within the idle time,
/// and younger than the session's longest life) and the user not disabled.
pub async fn find_session(
    pool: &PgPool,
    id: &str,
    settings: &AccountSettings,
) -> Result<Option<Principal>, sqlx::Error> {
    let hash = sha256(id);
    let Some(row) = sqlx::query_as::<_, SessionRow>(FIND_SESSION_SQL)
        .bind(hash.as_slice())
        .bind(settings.session_max.as_secs_f64())
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    if row.stale {
        sqlx::query(TOUCH_SESSION_SQL)
            .bind(hash.as_slice())
            .bind(settings.session_idle.as_secs_f64())
            .bind(settings.session_max.as_secs_f64())
            .execute(pool)
            .await?;
    }
    Ok(Some(Principal {
        user_id: Some(row.id),
        token_id: None,
        name: row.display_name,
        email: Some(row.email),
        role: row.role,
        must_change_password: row.must_change_password,
        session: Some(hash),
        token_owner: None,
        client_addr: None,
    }))
}

pub async fn end_session(conn: &mut PgConnection, hash: &[u8; 32]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(hash.as_slice())
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a user: after a password change, a reset or disabling.
pub async fn end_user_sessions(conn: &mut PgConnection, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn sweep_expired_sessions(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// The background sweep listed in `startup::start_services`.
pub async fn run_session_sweeper(pool: PgPool) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match sweep_expired_sessions(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "deleted expired sessions"),
            Err(error) => {
                tracing::warn!(%error, "session sweep failed; next try in {SWEEP_EVERY:?}")
            }
        }
    }
}
