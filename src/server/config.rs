//! The app's own settings, read from the environment once at start. `.env.example` lists
//! every one; Leptos's site settings come from `Leptos.toml` (see [`leptos_options`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use leptos::config::{get_config_from_file, get_config_from_str, LeptosOptions};
use subtle::ConstantTimeEq;

use super::job_report::BatchOptions;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is not valid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

/// The shared secret of seed 003's webhook. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(std::sync::Arc<[u8]>);

impl WebhookSecret {
    pub fn new(secret: &str) -> Option<Self> {
        (!secret.is_empty()).then(|| Self(secret.as_bytes().into()))
    }

    /// Constant-time in the secret's content (a length mismatch returns early, which
    /// reveals only the length).
    pub fn matches(&self, provided: &[u8]) -> bool {
        self.0.as_ref().ct_eq(provided).into()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`
    pub database_url: String,
    /// `TC_PORTAL_WEBHOOK_SECRET`; without it the webhook answers 500, as in the seed.
    pub webhook_secret: Option<WebhookSecret>,
    /// `JOBDECK_DB_MAX_CONNECTIONS` (default 10)
    pub db_max_connections: u32,
    /// `JOBDECK_DB_TIMEOUT_MS` (default 3000): longest wait for a database connection.
    pub db_timeout: Duration,
    /// `JOBDECK_LEPTOS_CONFIG` (default `Leptos.toml`)
    pub leptos_config: PathBuf,
    /// `JOBDECK_INGEST_MAX_BATCH`, `JOBDECK_INGEST_WRITERS`
    pub batch: BatchOptions,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        problem: format!("expected a positive whole number, got {text:?}"),
                    }),
                },
            }
        };
        let defaults = BatchOptions::default();
        Ok(Self {
            database_url: var("DATABASE_URL")
                .filter(|s| !s.is_empty())
                .ok_or(ConfigError::Missing("DATABASE_URL"))?,
            webhook_secret: var("TC_PORTAL_WEBHOOK_SECRET")
                .as_deref()
                .and_then(WebhookSecret::new),
            db_max_connections: number("JOBDECK_DB_MAX_CONNECTIONS", 10)? as u32,
            db_timeout: Duration::from_millis(number("JOBDECK_DB_TIMEOUT_MS", 3000)?),
            leptos_config: var("JOBDECK_LEPTOS_CONFIG")
                .map_or_else(|| PathBuf::from("Leptos.toml"), PathBuf::from),
            batch: BatchOptions {
                max_batch: number("JOBDECK_INGEST_MAX_BATCH", defaults.max_batch as u64)? as usize,
                writers: number("JOBDECK_INGEST_WRITERS", defaults.writers as u64)? as usize,
                ..defaults
            },
        })
    }
}

/// `Leptos.toml` next to the binary's working directory, or the copy built into the binary
/// when the file is absent, so the release binary and its site folder are a whole deployment.
/// `LEPTOS_*` environment variables override either (cargo-leptos sets them when it runs us).
pub fn leptos_options(path: &Path) -> Result<LeptosOptions, ConfigError> {
    let invalid = |e: leptos::config::errors::LeptosConfigError| ConfigError::Invalid {
        name: "Leptos.toml",
        problem: e.to_string(),
    };
    if path.exists() {
        Ok(get_config_from_file(path).map_err(invalid)?.leptos_options)
    } else {
        get_config_from_str(include_str!("../../Leptos.toml")).map_err(invalid)
    }
}
