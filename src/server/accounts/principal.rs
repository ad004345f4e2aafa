//! The current principal: a signed-in user or an API token, and the role it acts with.

use uuid::Uuid;

use axum::http::StatusCode;

use crate::model::{CurrentUser, Permission, Role};
use crate::server::audit::Actor;
use crate::server::failure::{DomainError, Failure, Refusal};

#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: Option<Uuid>,
    pub token_id: Option<Uuid>,
    /// The user's display name, or the token's name.
    pub name: String,
    /// The user's email, or the token owner's.
    pub email: Option<String>,
    pub role: Role,
    pub must_change_password: bool,
    /// Set when the principal came from a session cookie.
    pub session: Option<[u8; 32]>,
    /// The user who owns the token, for a token.
    pub token_owner: Option<Uuid>,
    pub client_addr: Option<String>,
}

/// 403: this principal's role does not allow the permission.
#[derive(Debug, thiserror::Error)]
#[error("the {role} role may not do this (it needs {permission:?})")]
pub struct Denied {
    pub role: Role,
    pub permission: Permission,
}

impl DomainError for Denied {
    fn failure(self) -> Failure {
        Refusal::new(StatusCode::FORBIDDEN, self).into()
    }
}

impl Principal {
    /// The one check every handler and server function makes, against `Role::may`.
    pub fn require(&self, permission: Permission) -> Result<(), Denied> {
        if self.role.may(permission) {
            Ok(())
        } else {
            Err(Denied {
                role: self.role,
                permission,
            })
        }
    }

    /// A token's actions are audited with its owner: `token:<name> (<owner's email>)`.
    pub fn actor(&self) -> Actor {
        let label = match (self.token_id, &self.email) {
            (Some(_), Some(owner)) => format!("token:{} ({owner})", self.name),
            (Some(_), None) => format!("token:{}", self.name),
            (None, Some(email)) => email.clone(),
            (None, None) => self.name.clone(),
        };
        Actor {
            user_id: self.user_id.or(self.token_owner),
            token_id: self.token_id,
            label,
            client_addr: self.client_addr.clone(),
            role: self.role,
        }
    }

    pub fn current_user(&self) -> CurrentUser {
        CurrentUser {
            id: self.user_id,
            name: self.name.clone(),
            email: self.email.clone(),
            role: self.role,
            must_change_password: self.must_change_password,
        }
    }
}
