//! `POST /alert-operations`: the alerts' JSON door, the same services the pages call. Every
//! action is `{"action": ..., "data": {...}}` as in the seeds' operation routes; reads need
//! a signed-in caller, changes an operator, and each change is audited by its service (a
//! refusal here as well).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::actions::{self, AlertRef};
use super::channels::{self, ChannelRequest, Senders};
use super::rules::{self, RuleRequest, ScopeRequest};
use super::schedule::{self, ScheduleRequest};
use super::{outbox, page, AlertError};
use crate::model::{AlertCall, MessageLanguage, Permission};
use crate::server::audit::{self, Actor};

#[derive(Debug, Deserialize)]
#[serde(tag = "action", content = "data", rename_all = "camelCase")]
pub enum AlertOperation {
    ListAlerts(ListAlerts),
    AcknowledgeAlert(AlertRef),
    SnoozeAlert(Snooze),
    NoteAlert(Note),
    SetSchedule(ScheduleRequest),
    RemoveSchedule(JobKey),
    ListAlertSettings(Empty),
    CreateAlertRule(RuleRequest),
    UpdateAlertRule(RuleUpdate),
    DeleteAlertRule(RuleId),
    CreateAlertChannel(ChannelRequest),
    DeleteAlertChannel(ChannelId),
    TestAlertChannel(ChannelId),
    CreateSilence(NewSilence),
    EndSilence(SilenceId),
}

/// `listAlerts`: the open alerts, firing and unacknowledged first; one job's with `job_key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAlerts {
    pub job_key: Option<String>,
    /// Of the summaries: `ja` (the default) or `en`.
    pub language: Option<MessageLanguage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snooze {
    pub rule_id: Uuid,
    pub subject: String,
    /// From now: a span, not a time, so a client's clock does not matter.
    pub duration_seconds: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub rule_id: Uuid,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobKey {
    pub job_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleUpdate {
    pub rule_id: Uuid,
    pub rule: RuleRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleId {
    pub rule_id: Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelId {
    pub channel_id: Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub scope: ScopeRequest,
    pub duration_seconds: i64,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceId {
    pub silence_id: Uuid,
}

impl AlertOperation {
    pub fn call(&self) -> AlertCall {
        match self {
            AlertOperation::ListAlerts(_) => AlertCall::ListAlerts,
            AlertOperation::AcknowledgeAlert(_) => AlertCall::AcknowledgeAlert,
            AlertOperation::SnoozeAlert(_) => AlertCall::SnoozeAlert,
            AlertOperation::NoteAlert(_) => AlertCall::NoteAlert,
            AlertOperation::SetSchedule(_) => AlertCall::SetSchedule,
            AlertOperation::RemoveSchedule(_) => AlertCall::RemoveSchedule,
            AlertOperation::ListAlertSettings(_) => AlertCall::ListAlertSettings,
            AlertOperation::CreateAlertRule(_) => AlertCall::CreateAlertRule,
            AlertOperation::UpdateAlertRule(_) => AlertCall::UpdateAlertRule,
            AlertOperation::DeleteAlertRule(_) => AlertCall::DeleteAlertRule,
            AlertOperation::CreateAlertChannel(_) => AlertCall::CreateAlertChannel,
            AlertOperation::DeleteAlertChannel(_) => AlertCall::DeleteAlertChannel,
            AlertOperation::TestAlertChannel(_) => AlertCall::TestAlertChannel,
            AlertOperation::CreateSilence(_) => AlertCall::CreateSilence,
            AlertOperation::EndSilence(_) => AlertCall::EndSilence,
        }
    }

    pub fn name(&self) -> &'static str {
        self.call().as_str()
    }

    /// Whether a success is a 201.
    pub fn creates(&self) -> bool {
        matches!(
            self,
            AlertOperation::CreateAlertRule(_)
                | AlertOperation::CreateAlertChannel(_)
                | AlertOperation::CreateSilence(_)
        )
    }

    fn reads(&self) -> bool {
        matches!(
            self,
            AlertOperation::ListAlerts(_) | AlertOperation::ListAlertSettings(_)
        )
    }

    /// What the audit log names as the action's target.
    fn target(&self) -> Option<String> {
        match self {
            AlertOperation::AcknowledgeAlert(alert) => Some(alert.target()),
            AlertOperation::SnoozeAlert(Snooze {
                rule_id, subject, ..
            })
            | AlertOperation::NoteAlert(Note {
                rule_id, subject, ..
            }) => Some(
                AlertRef {
                    rule_id: *rule_id,
                    subject: subject.clone(),
                }
                .target(),
            ),
            AlertOperation::SetSchedule(ScheduleRequest { job_key, .. })
            | AlertOperation::RemoveSchedule(JobKey { job_key }) => Some(job_key.clone()),
            AlertOperation::UpdateAlertRule(RuleUpdate { rule_id, .. })
            | AlertOperation::DeleteAlertRule(RuleId { rule_id }) => Some(rule_id.to_string()),
            AlertOperation::DeleteAlertChannel(ChannelId { channel_id })
            | AlertOperation::TestAlertChannel(ChannelId { channel_id }) => {
                Some(channel_id.to_string())
            }
            AlertOperation::EndSilence(SilenceId { silence_id }) => Some(silence_id.to_string()),
            _ => None,
        }
    }
}

/// Runs one operation; a refused change is audited with why.
pub async fn perform(
    pool: &PgPool,
    senders: &Senders,
    actor: &Actor,
    operation: AlertOperation,
    now: DateTime<Utc>,
) -> Result<Value, AlertError> {
    let (name, target, reads) = (operation.name(), operation.target(), operation.reads());
    // The services name a field as the pages' forms do; here it sits under `data`.
    let under = match operation {
        AlertOperation::UpdateAlertRule(_) => "data.rule.",
        _ => "data.",
    };
    let result = run(pool, senders, actor, operation, now)
        .await
        .map_err(|error| match error {
            AlertError::Invalid(mut invalid) if !invalid.field.starts_with("data.") => {
                invalid.field = format!("{under}{}", invalid.field).into();
                AlertError::Invalid(invalid)
            }
            other => other,
        });
    if let Err(error) = &result {
        // A send test that failed was audited as such by its service.
        let audited = matches!(error, AlertError::Database(_) | AlertError::NotDelivered(_));
        if !reads && !audited {
            let why = error.to_string();
            audit::record_refusal(pool, actor, name, target.as_deref(), &why).await;
        }
    }
    result
}

async fn run(
    pool: &PgPool,
    senders: &Senders,
    actor: &Actor,
    operation: AlertOperation,
    now: DateTime<Utc>,
) -> Result<Value, AlertError> {
    if !actor.may(Permission::ReadJobs) {
        return Err(AlertError::Forbidden(actor.role));
    }
    // The role first, so a viewer hears 403 whatever its input (the services check again).
    if !operation.reads() {
        actions::may_act(actor)?;
    }
    let may_edit = actor.may(Permission::ActOnJobs);
    Ok(match operation {
        AlertOperation::ListAlerts(query) => {
            let language = query.language.unwrap_or(MessageLanguage::Ja);
            let (alerts, total) =
                page::open_alerts(pool, query.job_key.as_deref(), language).await?;
            json!({ "alerts": alerts, "total": total })
        }
        AlertOperation::AcknowledgeAlert(alert) => {
            actions::acknowledge(pool, actor, &alert, now).await?;
            json!({ "rule_id": alert.rule_id, "subject": alert.subject, "acknowledged_at": now })
        }
        AlertOperation::SnoozeAlert(snooze) => {
            let alert = AlertRef {
                rule_id: snooze.rule_id,
                subject: snooze.subject,
            };
            let lasting = seconds(snooze.duration_seconds);
            let until = actions::snooze(pool, actor, &alert, lasting, now).await?;
            json!({ "rule_id": alert.rule_id, "subject": alert.subject, "snoozed_until": until })
        }
        AlertOperation::NoteAlert(note) => {
            let alert = AlertRef {
                rule_id: note.rule_id,
                subject: note.subject,
            };
            actions::add_note(pool, actor, &alert, &note.body).await?;
            json!({ "rule_id": alert.rule_id, "subject": alert.subject })
        }
        AlertOperation::SetSchedule(request) => {
            json!(schedule::set_schedule(pool, actor, &request, now).await?)
        }
        AlertOperation::RemoveSchedule(JobKey { job_key }) => {
            let removed = schedule::remove_schedule(pool, actor, &job_key).await?;
            json!({ "job_key": job_key, "removed": removed })
        }
        AlertOperation::ListAlertSettings(Empty {}) => json!(page::settings(pool, may_edit).await?),
        AlertOperation::CreateAlertRule(request) => {
            json!(rules::save_rule(pool, actor, None, &request).await?)
        }
        AlertOperation::UpdateAlertRule(RuleUpdate { rule_id, rule }) => {
            json!(rules::save_rule(pool, actor, Some(rule_id), &rule).await?)
        }
        AlertOperation::DeleteAlertRule(RuleId { rule_id }) => {
            rules::delete_rule(pool, actor, rule_id).await?;
            json!({ "rule_id": rule_id })
        }
        AlertOperation::CreateAlertChannel(request) => {
            json!(channels::create_channel(pool, actor, &request).await?)
        }
        AlertOperation::DeleteAlertChannel(ChannelId { channel_id }) => {
            channels::delete_channel(pool, actor, channel_id).await?;
            json!({ "channel_id": channel_id })
        }
        AlertOperation::TestAlertChannel(ChannelId { channel_id }) => {
            let status = outbox::test_channel(pool, senders, actor, channel_id).await?;
            json!({ "channel_id": channel_id, "delivered": true, "status": status })
        }
        AlertOperation::CreateSilence(silence) => {
            let (scope, reason) = (&silence.scope, &silence.reason);
            let lasting = seconds(silence.duration_seconds);
            let (id, ends_at) =
                actions::create_silence(pool, actor, scope, lasting, reason, now).await?;
            json!({ "silence_id": id, "ends_at": ends_at })
        }
        AlertOperation::EndSilence(SilenceId { silence_id }) => {
            actions::end_silence(pool, actor, silence_id).await?;
            json!({ "silence_id": silence_id })
        }
    })
}

/// Clamped only so no number overflows; the services say how long is allowed.
fn seconds(seconds: i64) -> Duration {
    Duration::seconds(seconds.clamp(-1, 400 * 86_400))
}
