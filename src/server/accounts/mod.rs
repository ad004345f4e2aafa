//! Accounts: users and roles, sessions, API tokens and the login that joins them. Every
//! change is audited in its own transaction (`server::audit`).

pub mod login;
pub mod password;
mod principal;
pub mod secret;
pub mod sessions;
pub mod tokens;
pub mod users;

pub use principal::{Denied, Principal};

use std::borrow::Cow;

use axum::http::StatusCode;

use crate::server::failure::{DomainError, Failure, Refusal};

/// What an account operation can refuse; its status and body are decided in
/// [`DomainError`] below.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: Cow<'static, str>,
    },
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl AccountError {
    pub fn invalid(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl DomainError for AccountError {
    fn failure(self) -> Failure {
        let message = self.to_string();
        match self {
            AccountError::Invalid { field, .. } => {
                Refusal::new(StatusCode::BAD_REQUEST, message).field(field)
            }
            AccountError::Denied(denied) => return denied.failure(),
            AccountError::NotFound(_) => Refusal::new(StatusCode::NOT_FOUND, message),
            AccountError::Conflict(_) => Refusal::new(StatusCode::CONFLICT, message),
            AccountError::Database(error) => return Failure::Database(error),
        }
        .into()
    }
}
