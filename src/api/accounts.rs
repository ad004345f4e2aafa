//! Accounts for the pages: who am I, users (admins), tokens (own, or all for admins),
//! password changes and the audit log.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{AppError, AuditPage, CreatedToken, Cursor, Role, TokenView, UserView};

#[cfg(feature = "ssr")]
use crate::model::Permission;
#[cfg(feature = "ssr")]
use crate::server::accounts::{password::Password, tokens, users, AccountError};

#[cfg(feature = "ssr")]
fn password(field: &'static str, text: String) -> Result<Password, AppError> {
    Password::new(text).map_err(|e| AccountError::invalid(field, e.to_string()).into())
}

/// Tokens are made and revoked by people: a token cannot mint or end other tokens.
#[cfg(feature = "ssr")]
fn signed_in_user(principal: &crate::server::accounts::Principal) -> Result<(), AppError> {
    match principal.user_id {
        Some(_) => Ok(()),
        None => Err(AppError::Invalid {
            field: None,
            message: "sign in as a user to manage tokens".into(),
        }),
    }
}

#[server(endpoint = "admin/users/list")]
pub async fn list_users() -> Result<Vec<UserView>, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::Administer)?;
            Ok(users::list_users(&state.pool).await?)
        }
        .await,
    )
}

/// Creates a user with a generated password, returned once so the admin can pass it on;
/// the user must change it at first login.
#[server(endpoint = "admin/users/create")]
pub async fn create_user(email: String, name: String, role: Role) -> Result<String, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::Administer)?;
            let generated = Password::generate();
            let shown = generated.expose().to_string();
            let mut new = users::NewUser::new(&email, Some(&name), role, generated)?;
            new.must_change_password = true;
            users::create_user(&state.pool, &principal.actor(), new).await?;
            Ok(shown)
        }
        .await,
    )
}

#[server(endpoint = "admin/users/update")]
pub async fn update_user(
    id: Uuid,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<UserView, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::Administer)?;
            let change = users::UserChange { role, disabled };
            let actor = principal.actor();
            Ok(users::update_user(&state.pool, &state.tokens, &actor, id, change).await?)
        }
        .await,
    )
}

/// Returns the new, generated password, shown once. `revoke_tokens` is the form's
/// checkbox (present when ticked).
#[server(endpoint = "admin/users/reset-password")]
pub async fn reset_password(id: Uuid, revoke_tokens: Option<String>) -> Result<String, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::Administer)?;
            let password = users::reset_password(
                &state.pool,
                &state.tokens,
                &principal.actor(),
                users::UserRef::Id(id),
                None,
                revoke_tokens.is_some(),
            )
            .await?;
            Ok(password.expose().to_string())
        }
        .await,
    )
}

/// Ends every session of the user, this one too: they sign in again with the new password.
#[server(endpoint = "account/password")]
pub async fn change_password(
    current: String,
    new: String,
    revoke_tokens: Option<String>,
) -> Result<(), AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ManageOwnAccount)?;
            let new = password("new", new)?;
            let revoke = revoke_tokens.is_some();
            users::change_password(&state.pool, &state.tokens, &principal, current, new, revoke)
                .await?;
            // This session has ended too: sign in with the new password.
            leptos_axum::redirect("/login");
            Ok(())
        }
        .await,
    )
}

/// The caller's own tokens, or with `all` (admins) everyone's.
#[server(endpoint = "tokens/list")]
pub async fn list_tokens(all: bool) -> Result<Vec<TokenView>, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(if all {
                Permission::Administer
            } else {
                Permission::ManageOwnAccount
            })?;
            let owner = if all { None } else { principal.user_id };
            if owner.is_none() && !all {
                return Ok(Vec::new());
            }
            Ok(tokens::list_tokens(&state.pool, owner).await?)
        }
        .await,
    )
}

#[server(endpoint = "tokens/create")]
pub async fn create_token(
    name: String,
    role: Role,
    expires_in_days: Option<u32>,
) -> Result<CreatedToken, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ManageOwnAccount)?;
            signed_in_user(&principal)?;
            let new = tokens::NewToken::new(&name, role, expires_in_days)?;
            Ok(tokens::create_token(&state.pool, &tokens::Granter::of(&principal), new).await?)
        }
        .await,
    )
}

#[server(endpoint = "tokens/revoke")]
pub async fn revoke_token(id: Uuid) -> Result<(), AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ManageOwnAccount)?;
            signed_in_user(&principal)?;
            tokens::revoke_token(
                &state.pool,
                &state.tokens,
                Some(&principal),
                tokens::TokenRef::Id(id),
            )
            .await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "admin/audit")]
pub async fn list_audit(
    actor: Option<String>,
    action: Option<String>,
    after: Option<Cursor>,
) -> Result<AuditPage, AppError> {
    crate::api::answer(
        async move {
            let (state, _) = crate::api::allowed(Permission::ReadAudit)?;
            let filter = crate::server::audit::AuditFilter {
                actor,
                action,
                after,
            };
            Ok(crate::server::audit::list_audit(&state.pool, &filter).await?)
        }
        .await,
    )
}
