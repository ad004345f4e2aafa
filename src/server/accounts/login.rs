//! Signing in and out. Wrong email and wrong password get the same answer in the same time.
//! Failures are limited per account and per client network, counted from the audit log so
//! every portal sharing the database counts the same ones, and counted atomically: each
//! attempt takes advisory locks on its account and its network around count, verify and
//! record, so concurrent guesses are judged one after the other. Argon2 runs behind a
//! [`LoginGate`] sized to the cores, which refuses a login at once when full, so a flood
//! of logins costs neither unbounded CPU nor unbounded memory (19 MiB per hash).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::password;
use super::sessions::{end_session, start_session};
use super::users::Email;
use super::Principal;
use crate::model::{AuditOutcome, CurrentUser, Role};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::failure::{DomainError, Failure, Refusal};

/// Failed logins allowed per account and per client network within [`WINDOW`]; the next
/// one is refused with 429 until the oldest failure leaves the window. A success forgets
/// the failures of its own (account, network) pair only.
pub const MAX_FAILURES: i64 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The audit log's name of a login, which the failure count reads.
const LOGIN: &str = "login";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong email or password")]
    Invalid,
    #[error("this account is disabled")]
    Disabled,
    #[error("too many failed logins; try again in {retry_after} s")]
    Limited { retry_after: u64 },
    #[error("the portal is checking as many passwords as it can; retry in a moment")]
    Busy,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DomainError for LoginError {
    fn failure(self) -> Failure {
        let message = self.to_string();
        match self {
            LoginError::Invalid => Refusal::new(StatusCode::UNAUTHORIZED, message),
            LoginError::Disabled => Refusal::new(StatusCode::FORBIDDEN, message),
            LoginError::Limited { retry_after } => {
                Refusal::new(StatusCode::TOO_MANY_REQUESTS, message).retry_after(retry_after)
            }
            LoginError::Busy => {
                Refusal::new(StatusCode::SERVICE_UNAVAILABLE, message).retry_after(1)
            }
            LoginError::Database(error) => return Failure::Database(error),
        }
        .into()
    }
}

/// How many password checks a portal runs at once; a login past it is refused at once.
#[derive(Clone)]
pub struct LoginGate(Arc<Semaphore>);

impl LoginGate {
    pub fn new(permits: usize) -> Self {
        Self(Arc::new(Semaphore::new(permits.max(1))))
    }
}

/// The network a client's failures count against: the address itself for IPv4, its /64
/// for IPv6 (one host commonly holds a whole /64). Not an address: counted as itself.
pub fn client_net(addr: &str) -> String {
    match addr.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V4(ip)) => ip.to_string(),
        Err(_) => addr.to_string(),
    }
}

pub struct LoggedIn {
    /// The new session id, for the cookie.
    pub session: String,
    pub user: CurrentUser,
}

/// A login as it arrives.
pub struct Attempt<'a> {
    pub email: &'a str,
    pub password: String,
    pub client_addr: Option<String>,
    /// A session cookie sent with the login: ended, so the session id changes at login.
    pub old_session: Option<[u8; 32]>,
    /// `JOBDECK_SESSION_IDLE_MINUTES`.
    pub idle: Duration,
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

const CANDIDATE_SQL: &str = "
    SELECT id, email, display_name, password_hash, role, disabled, must_change_password
    FROM users WHERE email = $1";

/// Serialises the attempts on one key (an account, a network) until the transaction ends.
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

/// Failures on one key within the window that no later success of the same (account,
/// network) pair forgave, and seconds until the oldest leaves the window. `'login'` is
/// written out, not bound: it is the predicate of the partial indexes these scans use, and
/// a bound value would not match it once the statement's plan is generic ([`LOGIN`] is the
/// name the rows are written with; a test compares the two).
macro_rules! recent_failures_sql {
    ($key:literal) => {
        concat!(
            "SELECT count(*),
                    coalesce(ceil(extract(epoch FROM min(f.at) + make_interval(secs => $2) - now()))::bigint, 0)
             FROM audit_events f
                          WHERE f.action = 'login' AND f.outcome = $3 AND ",
            $key,
            " = $1
               AND f.at > now() - make_interval(secs => $2)
               AND NOT EXISTS (
                   SELECT 1 FROM audit_events s
                                      WHERE s.action = 'login' AND s.outcome = $4 AND s.target = f.target
                     AND s.details->>'client_net' IS NOT DISTINCT FROM f.details->>'client_net'
                     AND s.at > f.at)"
        )
    };
}
const ACCOUNT_FAILURES_SQL: &str = recent_failures_sql!("f.target");
const NET_FAILURES_SQL: &str = recent_failures_sql!("(f.details->>'client_net')");

async fn retry_after(
    conn: &mut sqlx::PgConnection,
    sql: &'static str,
    key: &str,
) -> Result<Option<u64>, sqlx::Error> {
    let (failures, wait): (i64, i64) = sqlx::query_as(sql)
        .bind(key)
        .bind(WINDOW.as_secs_f64())
        .bind(AuditOutcome::Failure)
        .bind(AuditOutcome::Success)
        .fetch_one(conn)
        .await?;
    Ok((failures >= MAX_FAILURES).then_some(wait.max(1) as u64))
}

/// Checks the password and starts a new session.
pub async fn login(
    pool: &PgPool,
    gate: &LoginGate,
    attempt: Attempt<'_>,
) -> Result<LoggedIn, LoginError> {
    let Ok(_permit) = gate.0.try_acquire() else {
        return Err(LoginError::Busy);
    };
    // What was typed is never kept: only an account that exists is named.
    let email = Email::parse(attempt.email).ok();
    let net = attempt.client_addr.as_deref().map(client_net);
    let mut tx = pool.begin().await?;
    let candidate: Option<Candidate> = match &email {
        Some(email) => {
            sqlx::query_as(CANDIDATE_SQL)
                .bind(email.as_str())
                .fetch_optional(&mut *tx)
                .await?
        }
        None => None,
    };
    // Always the account before the network, so two attempts cannot wait on each other.
    let account = candidate.as_ref().map(|c| c.email.clone());
    if let Some(account) = &account {
        sqlx::query(LOCK_SQL)
            .bind(format!("jobdeck.login.account:{account}"))
            .execute(&mut *tx)
            .await?;
    }
    if let Some(net) = &net {
        sqlx::query(LOCK_SQL)
            .bind(format!("jobdeck.login.net:{net}"))
            .execute(&mut *tx)
            .await?;
    }
    let mut limited = None;
    if let Some(account) = &account {
        limited = retry_after(&mut tx, ACCOUNT_FAILURES_SQL, account).await?;
    }
    if let Some(net) = &net {
        limited = limited.max(retry_after(&mut tx, NET_FAILURES_SQL, net).await?);
    }
    if let Some(retry_after) = limited {
        tracing::warn!(account = ?account, client = ?attempt.client_addr, "login refused: too many failures");
        return Err(LoginError::Limited { retry_after });
    }
    let stored = candidate.as_ref().map(|c| c.password_hash.clone());
    let matches = password::verify(attempt.password, stored).await;
    let outcome = match candidate {
        Some(user) if matches && !user.disabled => Ok(user),
        Some(_) if matches => Err(LoginError::Disabled),
        _ => Err(LoginError::Invalid),
    };
    let actor = Actor {
        user_id: outcome.as_ref().ok().map(|user| user.id),
        token_id: None,
        label: account.clone().unwrap_or_else(|| "unknown account".into()),
        client_addr: attempt.client_addr.clone(),
        role: Role::Viewer,
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
            action: LOGIN,
            target: account.as_deref(),
            details: serde_json::json!({ "reason": reason, "client_net": net }),
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
    if let Some(old) = attempt.old_session {
        end_session(&mut tx, &old).await?;
    }
    let session = start_session(
        &mut tx,
        user.id,
        attempt.client_addr.as_deref(),
        attempt.idle,
    )
    .await?;
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

#[cfg(test)]
mod tests {
    use super::client_net;

    #[test]
    fn the_counted_action_is_the_written_one() {
        let literal = format!("action = '{}'", super::LOGIN);
        assert!(super::ACCOUNT_FAILURES_SQL.contains(&literal));
        assert!(super::NET_FAILURES_SQL.contains(&literal));
    }

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        assert_eq!(client_net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_net("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        assert_ne!(client_net("2001:db8:1:3::1"), client_net("2001:db8:1:2::1"));
        assert_eq!(client_net("192.0.2.7"), "192.0.2.7");
        assert_eq!(client_net("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client_net("not an address"), "not an address");
    }
}
