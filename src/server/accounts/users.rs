//! Users: create, change role, disable, reset or change a password, and the first admin.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::password::{self, Password};
use super::sessions::end_user_sessions;
use super::tokens::{revoke_user_tokens, TokenCache};
use super::{AccountError, Principal};
use crate::model::{Role, UserView};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::db;

pub const NAME_MAX: usize = 100;

/// A well-formed email address, lower-cased (emails are compared case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, AccountError> {
        let email = text.trim().to_lowercase();
        let well_formed = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if well_formed {
            Ok(Self(email))
        } else {
            Err(AccountError::invalid("email", "not an email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub struct NewUser {
    pub email: Email,
    pub display_name: String,
    pub role: Role,
    pub password: Password,
    pub must_change_password: bool,
}

impl NewUser {
    /// `display_name` defaults to the part of the email before `@`.
    pub fn new(
        email: &str,
        display_name: Option<&str>,
        role: Role,
        password: Password,
    ) -> Result<Self, AccountError> {
        let email = Email::parse(email)?;
        if !role.is_user_role() {
            return Err(AccountError::invalid(
                "role",
                "a user is a viewer, an operator or an admin",
            ));
        }
        let display_name = match display_name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) if name.chars().count() > NAME_MAX => {
                return Err(AccountError::invalid(
                    "name",
                    format!("a name has at most {NAME_MAX} characters"),
                ))
            }
            Some(name) => name.to_string(),
            None => email
                .as_str()
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        Ok(Self {
            email,
            display_name,
            role,
            password,
            must_change_password: false,
        })
    }
}

const USER_COLUMNS: &str =
    "id, email, display_name, role, disabled, must_change_password, created_at";

const CREATE_USER_SQL: &str = "
    INSERT INTO users (email, display_name, password_hash, role, must_change_password)
    VALUES ($1, $2, $3, $4, $5)
    RETURNING id, email, display_name, role, disabled, must_change_password, created_at";

pub async fn create_user(
    pool: &PgPool,
    actor: &Actor,
    new: NewUser,
) -> Result<UserView, AccountError> {
    let hash = password::hash(&new.password).await;
    let mut tx = pool.begin().await?;
    let user = insert_user(&mut tx, &new, &hash).await?;
    audit::record(
        &mut tx,
        actor,
        Event {
            action: "createUser",
            target: Some(new.email.as_str()),
            details: serde_json::json!({ "role": new.role }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

async fn insert_user(
    conn: &mut PgConnection,
    new: &NewUser,
    hash: &str,
) -> Result<UserView, AccountError> {
    sqlx::query_as(CREATE_USER_SQL)
        .bind(new.email.as_str())
        .bind(&new.display_name)
        .bind(hash)
        .bind(new.role.as_str())
        .bind(new.must_change_password)
        .fetch_one(conn)
        .await
        .map_err(|error| match db::constraint(&error) {
            Some("users_email_key") => AccountError::Conflict(
                format!("a user with the email {} exists", new.email.as_str()).into(),
            ),
            _ => error.into(),
        })
}

pub async fn list_users(pool: &PgPool) -> Result<Vec<UserView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY email LIMIT 1000"
    ))
    .fetch_all(pool)
    .await
}

/// A change an admin makes to a user.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

const UPDATE_USER_SQL: &str = "
    UPDATE users SET role = coalesce($2, role), disabled = coalesce($3, disabled), updated_at = now()
    WHERE id = $1
    RETURNING id, email, display_name, role, disabled, must_change_password, created_at";

/// Changes a user's role or disables them. Disabling ends their sessions and revokes their
/// tokens. Either clears this portal's token cache at once, so a demoted owner's token stops
/// here now and on other portals within `tokens::CACHE_TTL`. The last enabled admin cannot
/// be demoted or disabled, so the portal always has someone who can manage it.
pub async fn update_user(
    pool: &PgPool,
    cache: &TokenCache,
    actor: &Actor,
    id: Uuid,
    change: UserChange,
) -> Result<UserView, AccountError> {
    if let Some(role) = change.role {
        if !role.is_user_role() {
            return Err(AccountError::invalid(
                "role",
                "a user is a viewer, an operator or an admin",
            ));
        }
    }
    let mut tx = pool.begin().await?;
    // Lock the enabled admins so two admins cannot demote each other at once.
    let admins: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = $1 AND NOT disabled ORDER BY id FOR UPDATE",
    )
    .bind(Role::Admin)
    .fetch_all(&mut *tx)
    .await?;
    let loses_admin =
        change.role.is_some_and(|r| r != Role::Admin) || change.disabled == Some(true);
    if loses_admin && admins == [id] {
        return Err(AccountError::Conflict(
            "this is the last enabled admin".into(),
        ));
    }
    let user: UserView = sqlx::query_as(UPDATE_USER_SQL)
        .bind(id)
        .bind(change.role.map(Role::as_str))
        .bind(change.disabled)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AccountError::NotFound("user"))?;
    let mut revoked = 0;
    if change.disabled == Some(true) {
        end_user_sessions(&mut tx, id).await?;
        revoked = revoke_user_tokens(&mut tx, id).await?;
    }
    audit::record(
        &mut tx,
        actor,
        Event {
            action: "updateUser",
            target: Some(&user.email),
            details: serde_json::json!({
                "role": change.role,
                "disabled": change.disabled,
                "revoked_tokens": revoked,
            }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await?;
    cache.clear();
    Ok(user)
}

/// Which user: by id (pages) or email (command line).
pub enum UserRef<'a> {
    Id(Uuid),
    Email(&'a Email),
}

/// Sets a new password (given, or generated and returned to be shown once), makes the user
/// change it at next login and ends their sessions; with `revoke_tokens`, their API tokens
/// stop too (someone who knew the old password may have made some).
pub async fn reset_password(
    pool: &PgPool,
    cache: &TokenCache,
    actor: &Actor,
    user: UserRef<'_>,
    password: Option<Password>,
    revoke_tokens: bool,
) -> Result<Password, AccountError> {
    let password = password.unwrap_or_else(Password::generate);
    let hash = password::hash(&password).await;
    let (id, email) = match user {
        UserRef::Id(id) => (Some(id), None),
        UserRef::Email(email) => (None, Some(email.as_str())),
    };
    let mut tx = pool.begin().await?;
    let found: Option<(Uuid, String)> = sqlx::query_as(
        "UPDATE users SET password_hash = $3, must_change_password = true, updated_at = now()
         WHERE id = $1::uuid OR email = $2::text RETURNING id, email",
    )
    .bind(id)
    .bind(email)
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, email) = found.ok_or(AccountError::NotFound("user"))?;
    end_user_sessions(&mut tx, id).await?;
    let revoked = if revoke_tokens {
        revoke_user_tokens(&mut tx, id).await?
    } else {
        0
    };
    audit::record(
        &mut tx,
        actor,
        Event {
            action: "resetPassword",
            target: Some(&email),
            details: serde_json::json!({ "revoked_tokens": revoked }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await?;
    if revoke_tokens {
        cache.clear();
    }
    Ok(password)
}

/// A user changes their own password; every session of theirs ends, this one too, and with
/// `revoke_tokens` every token of theirs.
pub async fn change_password(
    pool: &PgPool,
    cache: &TokenCache,
    principal: &Principal,
    current: String,
    new: Password,
    revoke_tokens: bool,
) -> Result<(), AccountError> {
    let id = principal
        .user_id
        .ok_or(AccountError::invalid("current", "a token has no password"))?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let stored = stored.ok_or(AccountError::NotFound("user"))?;
    if !password::verify(current, Some(stored)).await {
        return Err(AccountError::invalid(
            "current",
            "the current password is wrong",
        ));
    }
    let hash = password::hash(&new).await;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = false, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    end_user_sessions(&mut tx, id).await?;
    let revoked = if revoke_tokens {
        revoke_user_tokens(&mut tx, id).await?
    } else {
        0
    };
    audit::record(
        &mut tx,
        &principal.actor(),
        Event {
            action: "changePassword",
            target: principal.email.as_deref(),
            details: serde_json::json!({ "revoked_tokens": revoked }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await?;
    if revoke_tokens {
        cache.clear();
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    Created,
    /// Users exist: `JOBDECK_ADMIN_*` are ignored from now on.
    Skipped,
}

/// Creates the first admin, only while there is no user at all. Several portals may start
/// at once; a transaction-scoped advisory lock lets exactly one of them do it.
pub async fn bootstrap_admin(
    pool: &PgPool,
    email: &str,
    password: Password,
) -> Result<Bootstrap, AccountError> {
    let new = NewUser::new(email, None, Role::Admin, password)?;
    let hash = password::hash(&new.password).await;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('jobdeck.bootstrap_admin'))")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(Bootstrap::Skipped);
    }
    insert_user(&mut tx, &new, &hash).await?;
    audit::record(
        &mut tx,
        &Actor::system(),
        Event {
            action: "createUser",
            target: Some(new.email.as_str()),
            details: serde_json::json!({ "role": Role::Admin, "bootstrap": true }),
            outcome: Outcome::Success,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Bootstrap::Created)
}
