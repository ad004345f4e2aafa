//! Server functions of the alerts: the open ones on the incidents page and what operators
//! do with them, a script's schedule, and the rules, channels and silences page. Each
//! asks for the role it needs and calls the service in `server::alerts`, which checks the
//! role again and audits.

// The rule form posts its fields flat, one argument each (the macro's generated client
// function carries them too, where an `#[allow]` on the function does not reach).
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AlertEventView, AlertLine, AlertSettingsView, AppError, ScheduleView};

#[cfg(feature = "ssr")]
use crate::model::{MessageLanguage, Permission};

/// The incidents page's alert panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenAlertsView {
    pub now: chrono::DateTime<chrono::Utc>,
    pub alerts: Vec<AlertLine>,
    pub total: i64,
    pub may_act: bool,
}

/// A script's alert panel: schedule, open alerts, history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobAlertsView {
    pub now: chrono::DateTime<chrono::Utc>,
    pub schedule: Option<ScheduleView>,
    pub open: Vec<AlertLine>,
    pub history: Vec<AlertEventView>,
    pub may_act: bool,
}

#[cfg(feature = "ssr")]
fn language(lang: &str) -> MessageLanguage {
    MessageLanguage::parse(lang).unwrap_or(MessageLanguage::Ja)
}

#[cfg(feature = "ssr")]
fn utc_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[server(endpoint = "alerts/open")]
pub async fn open_alerts(lang: String) -> Result<OpenAlertsView, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let (alerts, total) =
                crate::server::alerts::page::open_alerts(&state.pool, None, language(&lang))
                    .await?;
            Ok(OpenAlertsView {
                now: utc_now(),
                alerts,
                total,
                may_act: principal.actor().may(Permission::ActOnJobs),
            })
        }
        .await,
    )
}

#[server(endpoint = "alerts/job")]
pub async fn job_alerts(job_key: String, lang: String) -> Result<JobAlertsView, AppError> {
    use crate::server::alerts::page;
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let language = language(&lang);
            let (open, _) = page::open_alerts(&state.pool, Some(&job_key), language).await?;
            let (schedule, history) = page::job_alerts(&state.pool, &job_key, language).await?;
            Ok(JobAlertsView {
                now: utc_now(),
                schedule,
                open,
                history,
                may_act: principal.actor().may(Permission::ActOnJobs),
            })
        }
        .await,
    )
}

#[server(endpoint = "alerts/acknowledge")]
pub async fn acknowledge_alert(rule_id: Uuid, subject: String) -> Result<(), AppError> {
    use crate::server::alerts::actions::{self, AlertRef};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let alert = AlertRef { rule_id, subject };
            actions::acknowledge(&state.pool, &principal.actor(), &alert, utc_now()).await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "alerts/snooze")]
pub async fn snooze_alert(rule_id: Uuid, subject: String, hours: i64) -> Result<(), AppError> {
    use crate::server::alerts::actions::{self, AlertRef};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            // Clamped only so no number overflows; the service says how long is allowed.
            let lasting = chrono::Duration::hours(hours.clamp(-1, 24 * 400));
            let alert = AlertRef { rule_id, subject };
            actions::snooze(&state.pool, &principal.actor(), &alert, lasting, utc_now()).await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "alerts/note")]
pub async fn note_alert(rule_id: Uuid, subject: String, body: String) -> Result<(), AppError> {
    use crate::server::alerts::actions::{self, AlertRef};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let alert = AlertRef { rule_id, subject };
            actions::add_note(&state.pool, &principal.actor(), &alert, &body).await?;
            Ok(())
        }
        .await,
    )
}

/// A script's schedule from its page: a cron expression (with its zone) or a period in
/// minutes; both empty removes it.
#[server(endpoint = "alerts/schedule")]
pub async fn set_schedule(
    job_key: String,
    cron: String,
    timezone: String,
    period_minutes: String,
    grace_minutes: String,
) -> Result<(), AppError> {
    use crate::server::alerts::schedule::{self, ScheduleRequest};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let actor = principal.actor();
            let minutes = |field: &'static str, text: &str| -> Result<Option<i64>, AppError> {
                let text = text.trim();
                if text.is_empty() {
                    return Ok(None);
                }
                text.parse::<i64>()
                    .map(|m| Some(m.saturating_mul(60)))
                    .map_err(|_| AppError::Invalid {
                        field: Some(field.into()),
                        message: "a whole number of minutes".into(),
                    })
            };
            let period_seconds = minutes("period_minutes", &period_minutes)?;
            if cron.trim().is_empty() && period_seconds.is_none() {
                schedule::remove_schedule(&state.pool, &actor, &job_key).await?;
                return Ok(());
            }
            let request = ScheduleRequest {
                job_key,
                cron: Some(cron).filter(|c| !c.trim().is_empty()),
                timezone: Some(timezone).filter(|t| !t.trim().is_empty()),
                period_seconds,
                grace_seconds: minutes("grace_minutes", &grace_minutes)?,
            };
            schedule::set_schedule(&state.pool, &actor, &request, utc_now()).await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "alerts/settings")]
pub async fn alert_settings() -> Result<AlertSettingsView, AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ReadJobs)?;
            let may_edit = principal.actor().may(Permission::ActOnJobs);
            Ok(crate::server::alerts::page::settings(&state.pool, may_edit).await?)
        }
        .await,
    )
}

/// The rule form: the parameters as JSON text, the channels as ticked boxes.
#[server(endpoint = "alerts/rule")]
pub async fn save_alert_rule(
    rule_id: Option<Uuid>,
    name: String,
    scope_kind: String,
    scope_value: String,
    kind: String,
    params: String,
    pending_for: i64,
    min_runs: i64,
    severity: String,
    repeat_minutes: String,
    // The ticked channels (`channel_ids[]`); none ticked sends none.
    #[server(default)] channel_ids: Vec<Uuid>,
) -> Result<(), AppError> {
    use crate::server::alerts::rules;
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let params = if params.trim().is_empty() { "{}".to_string() } else { params };
            let body = serde_json::json!({
                "name": name,
                "scope": { "kind": scope_kind, "value": Some(scope_value).filter(|v| !v.trim().is_empty()) },
                "kind": kind,
                "params": serde_json::from_str::<serde_json::Value>(&params).map_err(|e| AppError::Invalid {
                    field: Some("params".into()),
                    message: format!("params is not JSON: {e}"),
                })?,
                "pending_for": pending_for,
                "min_runs": min_runs,
                "severity": severity,
                "repeat_interval": match repeat_minutes.trim() {
                    "" => None,
                    text => Some(text.parse::<i64>().ok().and_then(|m| m.checked_mul(60)).ok_or_else(|| AppError::Invalid {
                        field: Some("repeat_minutes".into()),
                        message: "a whole number of minutes".into(),
                    })?),
                },
                "channel_ids": channel_ids,
            });
            let request: rules::RuleRequest =
                serde_json::from_value(body).map_err(|error| AppError::Invalid {
                    field: None,
                    message: error.to_string(),
                })?;
            rules::save_rule(&state.pool, &principal.actor(), rule_id, &request).await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "alerts/rule/delete")]
pub async fn delete_alert_rule(rule_id: Uuid) -> Result<(), AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            crate::server::alerts::rules::delete_rule(&state.pool, &principal.actor(), rule_id)
                .await?;
            Ok(())
        }
        .await,
    )
}

/// What the channel form's answer holds: the webhook's signing secret, shown once (the
/// other kinds have none: an explanation instead).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChannelCreated {
    pub secret: String,
}

#[server(endpoint = "alerts/channel")]
pub async fn create_alert_channel(
    name: String,
    kind: String,
    target: String,
    language: String,
) -> Result<ChannelCreated, AppError> {
    use crate::server::alerts::channels::{self, ChannelRequest};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let body = serde_json::json!({ "name": name, "kind": kind, "target": target, "language": language });
            let request: ChannelRequest =
                serde_json::from_value(body).map_err(|error| AppError::Invalid {
                    field: None,
                    message: error.to_string(),
                })?;
            let created = channels::create_channel(&state.pool, &principal.actor(), &request).await?;
            Ok(ChannelCreated {
                secret: created.secret.unwrap_or_else(|| "—".into()),
            })
        }
        .await,
    )
}

#[server(endpoint = "alerts/channel/delete")]
pub async fn delete_alert_channel(channel_id: Uuid) -> Result<(), AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            crate::server::alerts::channels::delete_channel(
                &state.pool,
                &principal.actor(),
                channel_id,
            )
            .await?;
            Ok(())
        }
        .await,
    )
}

/// "Send test": one message to the channel now; a failure is shown with why.
#[server(endpoint = "alerts/channel/test")]
pub async fn test_alert_channel(channel_id: Uuid) -> Result<(), AppError> {
    use crate::server::alerts::outbox;
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            outbox::test_channel(&state.pool, &state.senders, &principal.actor(), channel_id)
                .await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "alerts/silence")]
pub async fn create_silence(
    scope_kind: String,
    scope_value: String,
    hours: i64,
    reason: String,
) -> Result<(), AppError> {
    use crate::server::alerts::{actions, rules::ScopeRequest};
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            let scope: ScopeRequest = serde_json::from_value(serde_json::json!({
                "kind": scope_kind, "value": Some(scope_value).filter(|v| !v.trim().is_empty()),
            }))
            .map_err(|error| AppError::Invalid {
                field: Some("scope_kind".into()),
                message: error.to_string(),
            })?;
            // Clamped only so no number overflows; the service says how long is allowed.
            let lasting = chrono::Duration::hours(hours.clamp(-1, 24 * 400));
            let actor = principal.actor();
            actions::create_silence(&state.pool, &actor, &scope, lasting, &reason, utc_now())
                .await?;
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "alerts/silence/end")]
pub async fn end_silence(silence_id: Uuid) -> Result<(), AppError> {
    crate::api::answer(
        async move {
            let (state, principal) = crate::api::allowed(Permission::ActOnJobs)?;
            crate::server::alerts::actions::end_silence(
                &state.pool,
                &principal.actor(),
                silence_id,
            )
            .await?;
            Ok(())
        }
        .await,
    )
}
