//! Argon2id password hashes. Hashing takes tens of milliseconds of CPU on purpose, so it
//! always runs on the blocking pool, never on the async runtime's threads.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_LEN} characters")]
    TooShort,
    #[error("a password may have at most {MAX_LEN} characters")]
    TooLong,
}

/// A password that meets the rules; its text never reaches a log.
pub struct Password(String);

impl Password {
    pub fn new(text: String) -> Result<Self, PasswordError> {
        match text.chars().count() {
            n if n < MIN_LEN => Err(PasswordError::TooShort),
            n if n > MAX_LEN => Err(PasswordError::TooLong),
            _ => Ok(Self(text)),
        }
    }

    /// 20 random base62 characters (about 119 bits).
    pub fn generate() -> Self {
        Self(super::secret::random_base62(20))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

pub async fn hash(password: &Password) -> String {
    let text = password.0.clone();
    tokio::task::spawn_blocking(move || hash_now(&text))
        .await
        .expect("password hashing panicked")
}

fn hash_now(text: &str) -> String {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(text.as_bytes(), &salt)
        .expect("argon2 accepts any password within MAX_LEN")
        .to_string()
}

/// Whether `text` matches `stored`. Without a stored hash (no such user) it checks against
/// a dummy hash, so an unknown email takes as long as a wrong password.
pub async fn verify(text: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(text.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .expect("password verification panicked")
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now(&super::secret::random_base62(20)))
}
