//! The app's own settings, read from the environment once at start. `.env.example` lists
//! every one; Leptos's site settings come from `Leptos.toml` (see [`leptos_options`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use leptos::config::{get_config_from_file, get_config_from_str, LeptosOptions};
use subtle::ConstantTimeEq;

use super::http::client_addr::TrustedProxies;
use super::job_report::BatchOptions;
use super::monitoring::Retention;

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
    /// `JOBDECK_INGEST_MAX_BATCH`, `JOBDECK_INGEST_WRITERS`, `JOBDECK_INGEST_QUEUE`,
    /// `JOBDECK_INGEST_DEADLINE_MS` (never shorter than the database timeout)
    pub batch: BatchOptions,
    /// `JOBDECK_HTTP_*`, `JOBDECK_SHUTDOWN_DRAIN_MS`
    pub http: HttpLimits,
    pub accounts: AccountSettings,
    /// `JOBDECK_LEASE_SECS` (default 30): how long a claimed task is held without a
    /// heartbeat before the lease sweeper gives it back.
    pub lease: Duration,
    /// `JOBDECK_RAW_RETENTION_DAYS` (default 7) and `JOBDECK_ROLLUP_RETENTION_DAYS` (default
    /// 400): how long raw metric samples and their rollups are kept.
    pub retention: Retention,
    /// `JOBDECK_RETRY_BREAKER_FAILURES`, `JOBDECK_RETRY_BREAKER_WINDOW_SECS`.
    pub breaker: crate::server::recovery::RetryBreaker,
    /// `JOBDECK_ALERT_EVALUATE_SECS` (default 5; 0 leaves evaluation to other processes) and
    /// `JOBDECK_ALERT_DELIVERY_CLAIM_SECS` (default 60).
    pub alerts: crate::server::alerts::AlertTiming,
    /// `JOBDECK_SMTP_HOST`, `_PORT` (587), `_USERNAME`, `_PASSWORD`, `_FROM`, `_TLS`, `_CA_FILE`
    /// (`starttls`, the default; `tls`; `none`): where email channels send from.
    pub smtp: Option<crate::server::alerts::SmtpSettings>,
}

/// How people sign in.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// `JOBDECK_PUBLIC_URL`, e.g. `https://jobdeck.example.com`: the origin state-changing
    /// requests must come from, and, when https, cookies are marked `Secure`. Without it the
    /// request's own `Host` is the site.
    pub public_origin: Option<String>,
    /// `JOBDECK_SESSION_IDLE_MINUTES` (default 720): a session unused this long ends.
    pub session_idle: Duration,
    /// `JOBDECK_SESSION_MAX_DAYS` (default 7): a session ends this long after its login,
    /// however much it is used.
    pub session_max: Duration,
    /// `JOBDECK_TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed (`http::client_addr`); none by default.
    pub trusted_proxies: TrustedProxies,
    /// `JOBDECK_LOGIN_CONCURRENCY` (default: the number of cores): password checks at once;
    /// a login past it is answered 503 at once, before hashing.
    pub login_concurrency: usize,
    /// `JOBDECK_ADMIN_EMAIL` and `JOBDECK_ADMIN_PASSWORD`: the first admin, created at start
    /// only while no user exists.
    pub first_admin: Option<(String, String)>,
}

impl AccountSettings {
    /// The session cookie's name: under https `__Host-`, which a browser keeps only from a
    /// secure origin, for the whole host and no subdomain.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-jobdeck_session"
        } else {
            "jobdeck_session"
        }
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|origin| origin.starts_with("https://"))
    }
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            public_origin: None,
            session_idle: Duration::from_secs(12 * 3600),
            session_max: Duration::from_secs(7 * 24 * 3600),
            trusted_proxies: TrustedProxies::default(),
            login_concurrency: cores(),
            first_admin: None,
        }
    }
}

/// Limits every route gets at the HTTP layer (`server/http/limits.rs`).
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// `JOBDECK_HTTP_MAX_IN_FLIGHT` (default 512): requests served at once; past it 503.
    pub max_in_flight: usize,
    /// `JOBDECK_HTTP_HEADER_TIMEOUT_MS` (default 10000): longest a client may take to send
    /// a request's headers.
    pub header_timeout: Duration,
    /// `JOBDECK_HTTP_BODY_TIMEOUT_MS` (default 10000): longest pause while a body arrives.
    pub body_timeout: Duration,
    /// `JOBDECK_SHUTDOWN_DRAIN_MS` (default 20000): after SIGTERM, longest wait for requests
    /// in flight; then their connections are closed.
    pub shutdown_drain: Duration,
    /// `JOBDECK_RENDER_TIMEOUT_MS` (default 10000): longest a page or server function may
    /// take to answer in full; past it the portal logs the path and answers 503.
    pub render_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            shutdown_drain: Duration::from_secs(20),
            render_timeout: Duration::from_secs(10),
        }
    }
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
        let millis = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            number(name, default.as_millis() as u64).map(Duration::from_millis)
        };
        let days = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match number(name, default)? {
                n if n <= Retention::MAX_DAYS => Ok(n),
                n => Err(ConfigError::Invalid {
                    name,
                    problem: format!("{n} days is more than {}", Retention::MAX_DAYS),
                }),
            }
        };
        let defaults = BatchOptions::default();
        let http = HttpLimits::default();
        let db_timeout = millis("JOBDECK_DB_TIMEOUT_MS", Duration::from_secs(3))?;
        let deadline = millis("JOBDECK_INGEST_DEADLINE_MS", defaults.deadline)?;
        if deadline < db_timeout {
            return Err(ConfigError::Invalid {
                name: "JOBDECK_INGEST_DEADLINE_MS",
                problem: format!(
                    "{} ms is shorter than JOBDECK_DB_TIMEOUT_MS ({} ms)",
                    deadline.as_millis(),
                    db_timeout.as_millis()
                ),
            });
        }
        Ok(Self {
            database_url: var("DATABASE_URL")
                .filter(|s| !s.is_empty())
                .ok_or(ConfigError::Missing("DATABASE_URL"))?,
            webhook_secret: var("TC_PORTAL_WEBHOOK_SECRET")
                .as_deref()
                .and_then(WebhookSecret::new),
            db_max_connections: number("JOBDECK_DB_MAX_CONNECTIONS", 10)? as u32,
            db_timeout,
            leptos_config: var("JOBDECK_LEPTOS_CONFIG")
                .map_or_else(|| PathBuf::from("Leptos.toml"), PathBuf::from),
            batch: BatchOptions {
                max_batch: number("JOBDECK_INGEST_MAX_BATCH", defaults.max_batch as u64)? as usize,
                writers: number("JOBDECK_INGEST_WRITERS", defaults.writers as u64)? as usize,
                queue: number("JOBDECK_INGEST_QUEUE", defaults.queue as u64)? as usize,
                deadline,
                // A statement is cancelled by PostgreSQL after db_timeout; silence for twice
                // that (a transaction has several statements) means nobody is answering.
                stall_timeout: db_timeout * 2 + Duration::from_secs(1),
            },
            http: HttpLimits {
                max_in_flight: number("JOBDECK_HTTP_MAX_IN_FLIGHT", http.max_in_flight as u64)?
                    as usize,
                header_timeout: millis("JOBDECK_HTTP_HEADER_TIMEOUT_MS", http.header_timeout)?,
                body_timeout: millis("JOBDECK_HTTP_BODY_TIMEOUT_MS", http.body_timeout)?,
                shutdown_drain: millis("JOBDECK_SHUTDOWN_DRAIN_MS", http.shutdown_drain)?,
                render_timeout: millis("JOBDECK_RENDER_TIMEOUT_MS", http.render_timeout)?,
            },
            lease: Duration::from_secs(number(
                "JOBDECK_LEASE_SECS",
                crate::server::dispatch::DEFAULT_LEASE.as_secs(),
            )?),
            breaker: {
                let default = crate::server::recovery::RetryBreaker::default();
                crate::server::recovery::RetryBreaker {
                    failures: number(
                        "JOBDECK_RETRY_BREAKER_FAILURES",
                        u64::from(default.failures),
                    )?
                    .clamp(1, u64::from(u32::MAX)) as u32,
                    window: Duration::from_secs(
                        number(
                            "JOBDECK_RETRY_BREAKER_WINDOW_SECS",
                            default.window.as_secs(),
                        )?
                        .max(1),
                    ),
                }
            },
            alerts: {
                let default = crate::server::alerts::AlertTiming::default();
                let every = match var("JOBDECK_ALERT_EVALUATE_SECS").as_deref().map(str::trim) {
                    Some("0") => Duration::ZERO,
                    _ => Duration::from_secs(number(
                        "JOBDECK_ALERT_EVALUATE_SECS",
                        default.evaluate_every.as_secs(),
                    )?),
                };
                crate::server::alerts::AlertTiming {
                    evaluate_every: every,
                    delivery_claim: Duration::from_secs(
                        number(
                            "JOBDECK_ALERT_DELIVERY_CLAIM_SECS",
                            default.delivery_claim.as_secs(),
                        )?
                        .max(2),
                    ),
                }
            },
            smtp: match var("JOBDECK_SMTP_HOST").filter(|h| !h.trim().is_empty()) {
                None => None,
                Some(host) => Some(crate::server::alerts::SmtpSettings {
                    host: host.trim().to_string(),
                    port: u16::try_from(number("JOBDECK_SMTP_PORT", 587)?).map_err(|_| {
                        ConfigError::Invalid {
                            name: "JOBDECK_SMTP_PORT",
                            problem: "not a port".into(),
                        }
                    })?,
                    username: var("JOBDECK_SMTP_USERNAME").filter(|s| !s.is_empty()),
                    password: var("JOBDECK_SMTP_PASSWORD").filter(|s| !s.is_empty()),
                    from: var("JOBDECK_SMTP_FROM")
                        .filter(|s| !s.trim().is_empty())
                        .ok_or(ConfigError::Missing("JOBDECK_SMTP_FROM"))?,
                    tls: match var("JOBDECK_SMTP_TLS") {
                        None => crate::server::alerts::SmtpTls::StartTls,
                        Some(text) => crate::server::alerts::SmtpTls::parse(text.trim())
                            .ok_or_else(|| ConfigError::Invalid {
                                name: "JOBDECK_SMTP_TLS",
                                problem: format!("expected starttls, tls or none, got {text:?}"),
                            })?,
                    },
                    ca_pem: match var("JOBDECK_SMTP_CA_FILE").filter(|p| !p.trim().is_empty()) {
                        None => None,
                        Some(path) => {
                            Some(crate::server::alerts::channels::read_ca(&path).map_err(
                                |problem| ConfigError::Invalid {
                                    name: "JOBDECK_SMTP_CA_FILE",
                                    problem,
                                },
                            )?)
                        }
                    },
                }),
            },
            retention: {
                let kept = Retention::default();
                Retention {
                    raw_days: days("JOBDECK_RAW_RETENTION_DAYS", kept.raw_days)?,
                    rollup_days: days("JOBDECK_ROLLUP_RETENTION_DAYS", kept.rollup_days)?,
                    report_days: days("JOBDECK_REPORT_RETENTION_DAYS", kept.report_days)?,
                    succeeded_job_days: days(
                        "JOBDECK_SUCCEEDED_JOB_RETENTION_DAYS",
                        kept.succeeded_job_days,
                    )?,
                    failed_job_days: days(
                        "JOBDECK_FAILED_JOB_RETENTION_DAYS",
                        kept.failed_job_days,
                    )?,
                    alert_days: days("JOBDECK_ALERT_RETENTION_DAYS", kept.alert_days)?,
                }
            },
            accounts: AccountSettings {
                public_origin: public_origin(var("JOBDECK_PUBLIC_URL"))?,
                session_idle: Duration::from_secs(
                    60 * number("JOBDECK_SESSION_IDLE_MINUTES", 720)?,
                ),
                session_max: Duration::from_secs(
                    24 * 3600 * number("JOBDECK_SESSION_MAX_DAYS", 7)?,
                ),
                trusted_proxies: TrustedProxies::parse(
                    &var("JOBDECK_TRUSTED_PROXIES").unwrap_or_default(),
                )
                .map_err(|problem| ConfigError::Invalid {
                    name: "JOBDECK_TRUSTED_PROXIES",
                    problem,
                })?,
                login_concurrency: number("JOBDECK_LOGIN_CONCURRENCY", cores() as u64)? as usize,
                first_admin: match (
                    var("JOBDECK_ADMIN_EMAIL").filter(|s| !s.is_empty()),
                    var("JOBDECK_ADMIN_PASSWORD").filter(|s| !s.is_empty()),
                ) {
                    (Some(email), Some(password)) => Some((email, password)),
                    (None, None) => None,
                    _ => return Err(ConfigError::Invalid {
                        name: "JOBDECK_ADMIN_EMAIL",
                        problem:
                            "set both JOBDECK_ADMIN_EMAIL and JOBDECK_ADMIN_PASSWORD, or neither"
                                .into(),
                    }),
                },
            },
        })
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The origin (`scheme://host[:port]`) of `JOBDECK_PUBLIC_URL`, without path or slash.
fn public_origin(url: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(url) = url.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let invalid = || ConfigError::Invalid {
        name: "JOBDECK_PUBLIC_URL",
        problem: format!("expected http(s)://host[:port], got {url:?}"),
    };
    let (scheme, rest) = url.trim().split_once("://").ok_or_else(invalid)?;
    if scheme != "http" && scheme != "https" {
        return Err(invalid());
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid());
    }
    Ok(Some(format!("{scheme}://{}", host.to_ascii_lowercase())))
}

/// `Leptos.toml` next to the binary's working directory, or the copy built into the binary
/// when the file is absent, so the release binary and its site folder are a whole deployment.
/// `LEPTOS_*` environment variables override either (cargo-leptos sets them when it runs us).
pub fn leptos_options(path: &Path) -> Result<LeptosOptions, ConfigError> {
    let invalid = |e: leptos::config::errors::LeptosConfigError| ConfigError::Invalid {
        name: "Leptos.toml",
        problem: e.to_string(),
    };
    let mut options = if path.exists() {
        get_config_from_file(path).map_err(invalid)?.leptos_options
    } else {
        get_config_from_str(include_str!("../../Leptos.toml")).map_err(invalid)?
    };
    // Leptos looks for the hashes beside the running binary; without them it would link
    // names that a hashed build does not have. Say so once, and link the plain names.
    let hashes = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(&*options.hash_file)));
    if options.hash_files && !hashes.as_ref().is_some_and(|h| h.exists()) {
        tracing::warn!(
            expected = ?hashes,
            "hash-files is on but the build's hash file is not beside the binary: linking unhashed asset names"
        );
        options.hash_files = false;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_defaults_and_overrides() {
        let config = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://db/jobdeck"),
            ("JOBDECK_INGEST_MAX_BATCH", "64"),
        ]))
        .unwrap();
        assert!(config.webhook_secret.is_none());
        assert_eq!(config.db_max_connections, 10);
        assert_eq!(config.db_timeout, Duration::from_secs(3));
        assert_eq!(config.batch.max_batch, 64);
        assert_eq!(config.batch.writers, BatchOptions::default().writers);
        assert_eq!(config.batch.deadline, Duration::from_secs(5));
        assert_eq!(config.batch.stall_timeout, Duration::from_secs(7));
        assert_eq!(config.http.max_in_flight, 512);
        assert_eq!(config.accounts.session_idle, Duration::from_secs(12 * 3600));
        assert!(config.accounts.first_admin.is_none());
    }

    #[test]
    fn the_public_url_gives_the_origin_and_cookie_security() {
        let config = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "x"),
            ("JOBDECK_PUBLIC_URL", "https://Jobdeck.example.com/portal/"),
        ]))
        .unwrap();
        assert_eq!(
            config.accounts.public_origin.as_deref(),
            Some("https://jobdeck.example.com")
        );
        assert!(config.accounts.secure_cookies());
        let bad = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "x"),
            ("JOBDECK_PUBLIC_URL", "jobdeck"),
        ]));
        assert!(bad.is_err());
        let half = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "x"),
            ("JOBDECK_ADMIN_EMAIL", "a@b.c"),
        ]));
        assert!(half.is_err());
    }

    #[test]
    fn refuses_a_deadline_shorter_than_the_database_timeout() {
        let error = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "x"),
            ("JOBDECK_DB_TIMEOUT_MS", "4000"),
            ("JOBDECK_INGEST_DEADLINE_MS", "2000"),
        ]))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "JOBDECK_INGEST_DEADLINE_MS is not valid: 2000 ms is shorter than JOBDECK_DB_TIMEOUT_MS (4000 ms)"
        );
    }

    #[test]
    fn refuses_a_missing_url_and_bad_numbers() {
        let missing = Config::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(missing.to_string(), "DATABASE_URL is not set");
        let bad = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "x"),
            ("JOBDECK_DB_TIMEOUT_MS", "soon"),
        ]))
        .unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("JOBDECK_DB_TIMEOUT_MS is not valid"),
            "{bad}"
        );
    }

    #[test]
    fn an_empty_secret_is_no_secret() {
        assert!(WebhookSecret::new("").is_none());
        let secret = WebhookSecret::new("s3cret").unwrap();
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cres"));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
    }

    #[test]
    fn leptos_options_come_from_the_file_or_the_built_in_copy() {
        let from_file = leptos_options(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/Leptos.toml"
        )))
        .unwrap();
        let built_in = leptos_options(Path::new("/nonexistent/Leptos.toml")).unwrap();
        assert_eq!(&*from_file.output_name, "jobdeck");
        assert_eq!(&*built_in.output_name, "jobdeck");
        assert_eq!(from_file.site_pkg_dir, built_in.site_pkg_dir);
    }
}
