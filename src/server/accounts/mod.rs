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

/// What an account operation can refuse. Converted to `ApiError` in `http::accounts` and
/// to the pages' `AppError` below.
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

impl From<AccountError> for crate::model::AppError {
    fn from(error: AccountError) -> Self {
        use crate::model::AppError;
        match error {
            AccountError::Invalid { field, message } => AppError::Invalid {
                field: Some(field.to_string()),
                message: message.into_owned(),
            },
            AccountError::Denied(denied) => denied.into(),
            AccountError::NotFound(_) => AppError::NotFound,
            AccountError::Conflict(message) => AppError::Conflict(message.into_owned()),
            AccountError::Database(error) => error.into(),
        }
    }
}
