//! API tokens for scripts, workers and CI. Shown once at creation; stored as SHA-256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use super::secret::{check_api_token, display_prefix, new_api_token, sha256, MalformedToken};
use super::{AccountError, Principal};
use crate::model::{CreatedToken, Permission, Role, TokenView};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::db;

/// How long a checked token is trusted without asking the database again: the longest a
/// revocation (or an expiry, a disabled owner) takes to reach a portal that is not the one
/// that revoked it.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX_ENTRIES: usize = 10_000;
pub const NAME_MAX: usize = 100;
pub const MAX_EXPIRY_DAYS: u32 = 3650;

/// Recently checked tokens (and recently refused ones) by hash.
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<TokenHash, Checked>>>);

type TokenHash = [u8; 32];
/// When a token was checked, and whom it named (`None`: refused).
type Checked = (Instant, Option<Principal>);

impl TokenCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Option<Principal>> {
        let map = self.0.lock().expect("token cache poisoned");
        map.get(hash)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, principal)| principal.clone())
    }

    fn put(&self, hash: [u8; 32], principal: Option<Principal>) {
        let mut map = self.0.lock().expect("token cache poisoned");
        if map.len() >= CACHE_MAX_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(hash, (Instant::now(), principal));
    }

    /// This portal forgets every checked token at once (after a revocation here).
    pub fn clear(&self) {
        self.0.lock().expect("token cache poisoned").clear();
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    name: String,
    #[sqlx(try_from = "String")]
    role: Role,
    owner_id: Option<Uuid>,
    email: Option<String>,
    owner_role: Option<String>,
}

/// One indexed lookup; `last_used_at` is written at most once a minute.
const AUTHENTICATE_TOKEN_SQL: &str = "
    WITH found AS (
      SELECT t.id, t.name, t.role, t.owner_id, u.email, u.role AS owner_role
      FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL
        AND (t.expires_at IS NULL OR t.expires_at > now())
        AND (t.owner_id IS NULL OR NOT u.disabled)
    ), touched AS (
      UPDATE api_tokens SET last_used_at = now()
      WHERE id IN (SELECT id FROM found)
        AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    )
    SELECT id, name, role, owner_id, email, owner_role FROM found";

/// The principal behind a bearer token; `Ok(Err(_))` for one that is not even well formed.
pub async fn authenticate_token(
    pool: &PgPool,
    cache: &TokenCache,
    token: &str,
) -> Result<Result<Option<Principal>, MalformedToken>, sqlx::Error> {
    if let Err(malformed) = check_api_token(token) {
        return Ok(Err(malformed));
    }
    let hash = sha256(token);
    if let Some(known) = cache.get(&hash) {
        return Ok(Ok(known));
    }
    let row: Option<TokenRow> = sqlx::query_as(AUTHENTICATE_TOKEN_SQL)
        .bind(hash.as_slice())
        .fetch_optional(pool)
        .await?;
    // A token never does more than its owner now may: a demoted owner's token stops.
    let principal = row
        .filter(
            |row| match row.owner_role.as_deref().and_then(Role::parse) {
                Some(owner_role) => owner_role.may_grant(row.role),
                None => row.owner_id.is_none(),
            },
        )
        .map(|row| Principal {
            user_id: None,
            token_id: Some(row.id),
            name: row.name,
            email: row.email,
            role: row.role,
            must_change_password: false,
            session: None,
            token_owner: row.owner_id,
            client_addr: None,
        });
    cache.put(hash, principal.clone());
    Ok(Ok(principal))
}

/// A token to create: a name, a role and an optional lifetime.
pub struct NewToken {
    name: String,
    role: Role,
    expires_in_days: Option<u32>,
}

impl NewToken {
    pub fn new(name: &str, role: Role, expires_in_days: Option<u32>) -> Result<Self, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX {
            return Err(AccountError::invalid(
                "name",
                format!("a token needs a name of 1 to {NAME_MAX} characters"),
            ));
        }
        if let Some(days) = expires_in_days {
            if days == 0 || days > MAX_EXPIRY_DAYS {
                return Err(AccountError::invalid(
                    "expires_in_days",
                    format!("expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}"),
                ));
            }
        }
        Ok(Self {
            name: name.to_string(),
            role,
            expires_in_days,
        })
    }
}

/// Who creates a token: their role caps the token's, and the token is theirs (`owner`
/// `None` for the command line).
pub struct Granter {
    pub actor: Actor,
    pub role: Role,
    pub owner: Option<Uuid>,
}

impl Granter {
    pub fn cli() -> Self {
        Self {
            actor: Actor::cli(),
            role: Role::Admin,
            owner: None,
        }
    }

    pub fn of(principal: &Principal) -> Self {
        Self {
            actor: principal.actor(),
            role: principal.role,
            owner: principal.user_id,
        }
    }
}

const TOKEN_COLUMNS: &str = "t.id, t.name, t.prefix, t.role, u.email AS owner_email, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

const CREATE_TOKEN_SQL: &str = "
    INSERT INTO api_tokens (name, token_hash, prefix, role, owner_id, expires_at)
    VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6))
    RETURNING id";

pub async fn create_token(
    pool: &PgPool,
    granter: &Granter,
    new: NewToken,
) -> Result<CreatedToken, AccountError> {
    if !granter.role.may_grant(new.role) {
        return Err(AccountError::invalid(
            "role",
            format!("a {} may not create a {} token", granter.role, new.role),
        ));
    }
    let token = new_api_token();
    let mut tx = pool.begin().await?;
    let id: Uuid = sqlx::query_scalar(CREATE_TOKEN_SQL)
        .bind(&new.name)
        .bind(sha256(&token).as_slice())
        .bind(display_prefix(&token))
        .bind(new.role.as_str())
        .bind(granter.owner)
        .bind(new.expires_in_days.map(|d| d as i32))
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| match db::constraint(&error) {
            Some("api_tokens_live_name_key") => AccountError::Conflict(
                format!("a live token is already named {:?}", new.name).into(),
            ),
            _ => error.into(),
        })?;
    audit::record(
        &mut tx,
        &granter.actor,
        Event {
            action: "createToken",
            target: Some(&new.name),
            details: serde_json::json!({ "role": new.role, "expires_in_days": new.expires_in_days }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    let view = token_view(&mut tx, id).await?;
    tx.commit().await?;
    Ok(CreatedToken { token, view })
}

async fn token_view(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<TokenView, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_one(conn)
    .await
}

/// The tokens of one user, or every token for an admin (`owner` `None`), newest first.
pub async fn list_tokens(
    pool: &PgPool,
    owner: Option<Uuid>,
) -> Result<Vec<TokenView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.owner_id
         WHERE ($1::uuid IS NULL OR t.owner_id = $1)
         ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC LIMIT 500"
    ))
    .bind(owner)
    .fetch_all(pool)
    .await
}

const REVOKE_TOKEN_SQL: &str = "
    UPDATE api_tokens SET revoked_at = now()
    WHERE revoked_at IS NULL AND (id = $1::uuid OR ($1::uuid IS NULL AND name = $2::text))
      AND ($3::uuid IS NULL OR owner_id = $3)
    RETURNING name";

/// Revokes every live token a user owns (disabled, or a password reset that asked for it).
pub async fn revoke_user_tokens(
    conn: &mut sqlx::PgConnection,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE owner_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Which token to revoke.
pub enum TokenRef<'a> {
    Id(Uuid),
    Name(&'a str),
}

/// Revokes a live token. `principal` may revoke its own tokens, or any with `Administer`;
/// `None` is the command line.
pub async fn revoke_token(
    pool: &PgPool,
    cache: &TokenCache,
    principal: Option<&Principal>,
    token: TokenRef<'_>,
) -> Result<(), AccountError> {
    let only_owner = match principal {
        Some(p) if !p.role.may(Permission::Administer) => {
            Some(p.user_id.ok_or(AccountError::NotFound("token"))?)
        }
        _ => None,
    };
    let (id, name) = match token {
        TokenRef::Id(id) => (Some(id), None),
        TokenRef::Name(name) => (None, Some(name)),
    };
    let actor = principal.map(Principal::actor).unwrap_or_else(Actor::cli);
    let mut tx = pool.begin().await?;
    let revoked: Option<String> = sqlx::query_scalar(REVOKE_TOKEN_SQL)
        .bind(id)
        .bind(name)
        .bind(only_owner)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(revoked) = revoked else {
        return Err(AccountError::NotFound("live token"));
    };
    audit::record(
        &mut tx,
        &actor,
        Event {
            action: "revokeToken",
            target: Some(&revoked),
            details: serde_json::json!({}),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await?;
    cache.clear();
    Ok(())
}
