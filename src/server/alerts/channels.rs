//! Where notifications go: a generic webhook signed as Standard Webhooks specifies, a
//! Slack-compatible incoming webhook, or email over SMTP. Channels are managed here too.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::message::Notice;
use super::AlertError;
use crate::model::{ChannelKind, ChannelView, MessageLanguage};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::input::InvalidInput;

/// How the portal reaches an SMTP server (`JOBDECK_SMTP_*`).
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub tls: SmtpTls,
    /// A certificate (PEM) trusted besides the usual roots: an internal relay's own CA.
    pub ca_pem: Option<Vec<u8>>,
}

/// The longest channel name.
pub const NAME_CHARS: usize = 100;

/// Reads `JOBDECK_SMTP_CA_FILE` at startup, so a wrong path or a file that is no
/// certificate stops the portal then rather than failing every email later.
pub fn read_ca(path: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    // lettre's parser takes a file with no certificate in it (a key, DER, text) as empty.
    let has_certificate = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----");
    if !has_certificate {
        return Err(format!("{path} holds no PEM certificate"));
    }
    lettre::transport::smtp::client::Certificate::from_pem(&pem)
        .map_err(|error| format!("{path} is not a PEM certificate: {error}"))?;
    Ok(pem)
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("from", &self.from)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Upgrade with STARTTLS and refuse a server that cannot (the default).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain text: a relay on the same host only.
    None,
}

impl SmtpTls {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Implicit),
            "none" => Some(SmtpTls::None),
            _ => None,
        }
    }
}

/// What the senders share: one HTTP client, the SMTP settings, the portal's address.
#[derive(Clone)]
pub struct Senders {
    pub http: reqwest::Client,
    pub smtp: Option<SmtpSettings>,
    /// `https://jobdeck.example.com`: links in messages are absolute when it is known.
    pub public_origin: Option<String>,
    pub timeout: Duration,
}

impl Senders {
    pub fn new(
        smtp: Option<SmtpSettings>,
        public_origin: Option<String>,
        timeout: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Jobdeck-Alerts/1")
            .build()
            .expect("an HTTP client");
        Senders {
            http,
            smtp,
            public_origin,
            timeout,
        }
    }
}

/// A channel with what sending needs (its `Debug` leaves out the target and the secret).
#[derive(Clone, FromRow)]
pub struct Channel {
    pub id: Uuid,
    pub name: String,
    pub kind: ChannelKind,
    pub target: String,
    pub secret: Option<String>,
    pub language: MessageLanguage,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One message to one channel.
pub struct Outgoing<'a> {
    /// Stays the same on every retry: a receiver dedupes on it.
    pub message_id: &'a str,
    pub notice: &'a Notice,
    /// The webhook's JSON payload.
    pub payload: &'a Value,
}

/// Why a delivery failed: the HTTP status if there was one, and what happened.
#[derive(Debug)]
pub struct SendError {
    pub status: Option<u16>,
    pub message: String,
}

impl SendError {
    fn new(message: impl std::fmt::Display) -> Self {
        SendError {
            status: None,
            message: message.to_string(),
        }
    }
}

/// The `webhook-signature` of Standard Webhooks: `v1,` and the base64 HMAC-SHA256, keyed
/// by the secret's bytes (base64 after `whsec_`), of `{id}.{timestamp}.{body}`.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// A new signing secret: 24 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", BASE64.encode(bytes))
}

/// Sends one message within the senders' timeout (the whole of it, an SMTP conversation
/// included, so a send never outlasts its claim); returns the HTTP status for a webhook.
pub async fn send(
    senders: &Senders,
    channel: &Channel,
    outgoing: &Outgoing<'_>,
    now: DateTime<Utc>,
) -> Result<Option<u16>, SendError> {
    tokio::time::timeout(senders.timeout, send_now(senders, channel, outgoing, now))
        .await
        .unwrap_or_else(|_| Err(SendError::new("timed out")))
}

async fn send_now(
    senders: &Senders,
    channel: &Channel,
    outgoing: &Outgoing<'_>,
    now: DateTime<Utc>,
) -> Result<Option<u16>, SendError> {
    match channel.kind {
        ChannelKind::Webhook => {
            let body = serde_json::to_vec(outgoing.payload).expect("plain JSON");
            let timestamp = now.timestamp();
            let secret = channel.secret.as_deref().unwrap_or_default();
            let signature = sign(secret, outgoing.message_id, timestamp, &body);
            let request = senders
                .http
                .post(&channel.target)
                .header("content-type", "application/json")
                .header("webhook-id", outgoing.message_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body);
            post(request).await
        }
        ChannelKind::Slack => {
            let text = format!("*{}*\n{}", outgoing.notice.subject, outgoing.notice.body);
            post(
                senders
                    .http
                    .post(&channel.target)
                    .json(&json!({ "text": text })),
            )
            .await
        }
        ChannelKind::Email => {
            let smtp = senders.smtp.as_ref().ok_or_else(|| {
                SendError::new("email is not configured (JOBDECK_SMTP_HOST is not set)")
            })?;
            send_mail(smtp, &channel.target, outgoing.notice, senders.timeout).await?;
            Ok(None)
        }
    }
}

async fn post(request: reqwest::RequestBuilder) -> Result<Option<u16>, SendError> {
    let response = request.send().await.map_err(|error| {
        // reqwest's message names the URL; a Slack URL is itself a secret, so it is left out.
        SendError::new(error.without_url())
    })?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(Some(status))
    } else {
        Err(SendError {
            status: Some(status),
            message: format!("the receiver answered {status}"),
        })
    }
}

async fn send_mail(
    smtp: &SmtpSettings,
    to: &str,
    notice: &Notice,
    timeout: Duration,
) -> Result<(), SendError> {
    let message = Message::builder()
        .from(smtp.from.parse().map_err(SendError::new)?)
        .to(to.parse().map_err(SendError::new)?)
        .subject(&notice.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(notice.body.clone())
        .map_err(SendError::new)?;
    let tls = if smtp.tls == SmtpTls::None {
        Tls::None
    } else {
        let mut parameters = TlsParameters::builder(smtp.host.clone());
        if let Some(pem) = &smtp.ca_pem {
            parameters = parameters
                .add_root_certificate(Certificate::from_pem(pem).map_err(SendError::new)?);
        }
        let parameters = parameters.build().map_err(SendError::new)?;
        match smtp.tls {
            // Required: a server that cannot upgrade gets neither credentials nor mail.
            SmtpTls::StartTls => Tls::Required(parameters),
            _ => Tls::Wrapper(parameters),
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .tls(tls)
        .port(smtp.port)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    builder
        .build()
        .send(message)
        .await
        .map_err(SendError::new)?;
    Ok(())
}

/// A channel as a caller creates it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    pub name: String,
    pub kind: ChannelKind,
    pub target: String,
    #[serde(default = "japanese")]
    pub language: MessageLanguage,
}

fn japanese() -> MessageLanguage {
    MessageLanguage::Ja
}

impl ChannelRequest {
    fn check(&self) -> Result<(), InvalidInput> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS {
            return Err(InvalidInput::new(
                "name",
                format!("must be 1 to {NAME_CHARS} characters"),
            ));
        }
        let target = self.target.trim();
        match self.kind {
            ChannelKind::Webhook | ChannelKind::Slack => {
                let url = reqwest::Url::parse(target)
                    .map_err(|_| InvalidInput::new("target", "must be an http(s) URL"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(InvalidInput::new("target", "must be an http(s) URL"));
                }
            }
            ChannelKind::Email => {
                target
                    .parse::<lettre::Address>()
                    .map_err(|_| InvalidInput::new("target", "must be an email address"))?;
            }
        }
        Ok(())
    }
}

/// A channel just created; a webhook's secret is shown this once.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CreatedChannel {
    #[serde(flatten)]
    pub channel: ChannelView,
    pub secret: Option<String>,
}

pub async fn create_channel(
    pool: &PgPool,
    actor: &Actor,
    request: &ChannelRequest,
) -> Result<CreatedChannel, AlertError> {
    super::actions::may_act(actor)?;
    request.check()?;
    let secret = (request.kind == ChannelKind::Webhook).then(new_secret);
    let mut tx = pool.begin().await?;
    let row: Option<ChannelRow> = sqlx::query_as(
        "INSERT INTO alert_channels (name, kind, target, secret, language, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING
         RETURNING id, name, kind, target, language, created_at",
    )
    .bind(request.name.trim())
    .bind(request.kind)
    .bind(request.target.trim())
    .bind(&secret)
    .bind(request.language)
    .bind(&actor.label)
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.ok_or_else(|| {
        AlertError::Conflict(format!("a channel named {:?} exists", request.name.trim()))
    })?;
    let target = row.id.to_string();
    let event = Event {
        action: "createAlertChannel",
        target: Some(&target),
        details: json!({ "name": row.name, "kind": row.kind, "language": row.language }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(CreatedChannel {
        channel: row.into(),
        secret,
    })
}

pub async fn delete_channel(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AlertError> {
    super::actions::delete_named(
        pool,
        actor,
        "DELETE FROM alert_channels WHERE id = $1 RETURNING name",
        "deleteAlertChannel",
        "channel",
        id,
    )
    .await
}

#[derive(FromRow)]
struct ChannelRow {
    id: Uuid,
    name: String,
    kind: ChannelKind,
    target: String,
    language: MessageLanguage,
    created_at: DateTime<Utc>,
}

impl From<ChannelRow> for ChannelView {
    fn from(row: ChannelRow) -> Self {
        ChannelView {
            id: row.id,
            name: row.name,
            kind: row.kind,
            // A Slack URL is its own secret: the page shows where it goes, not the key.
            target: match row.kind {
                ChannelKind::Slack => redact(&row.target),
                _ => row.target,
            },
            language: row.language,
            created_at: row.created_at,
        }
    }
}

fn redact(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{}://{h}/…", u.scheme())))
        .unwrap_or_else(|| "…".into())
}

/// The channels; `full` shows where they go (to those who may edit them), else the host or
/// the email's domain only: a webhook URL often carries its token.
pub async fn list_channels(pool: &PgPool, full: bool) -> Result<Vec<ChannelView>, sqlx::Error> {
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT id, name, kind, target, language, created_at FROM alert_channels ORDER BY name LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(ChannelView::from)
        .map(|mut view| {
            if !full {
                view.target = match view.kind {
                    ChannelKind::Email => view
                        .target
                        .split_once('@')
                        .map(|(_, domain)| format!("…@{domain}"))
                        .unwrap_or_else(|| "…".into()),
                    _ => redact(&view.target),
                };
            }
            view
        })
        .collect())
}

pub async fn load_channel(pool: &PgPool, id: Uuid) -> Result<Channel, AlertError> {
    sqlx::query_as(
        "SELECT id, name, kind, target, secret, language FROM alert_channels WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(AlertError::NotFound("channel", id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("jobdeck-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let text = dir.join("notes.txt");
        std::fs::write(&text, "not a certificate").unwrap();
        for path in [&key, &text] {
            let error = read_ca(path.to_str().unwrap()).unwrap_err();
            assert!(error.contains("no PEM certificate"), "{error}");
        }
        let missing = read_ca("/nonexistent/ca.pem").unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
