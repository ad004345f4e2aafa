//! What the pages show of alerts: the open ones on the incidents page, a job's schedule and
//! alert history on its page, the rules, channels and silences on the settings page, and the
//! badge's count.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::outbox::link_path;
use super::schedule::{last_seen, load_schedule};
use super::{channels, message, rules};
use crate::model::{
    AlertEventView, AlertKind, AlertLine, AlertNoteView, AlertSettingsView, AlertState,
    MessageLanguage, ScheduleView, ScopeKind, Severity, SilenceView,
};

/// Open alerts listed on the incidents page; the rest are counted.
pub const OPEN_ALERTS: i64 = 50;
/// History rows on a job's page.
const HISTORY: i64 = 30;
/// Notes shown per alert, latest last.
const NOTES: i64 = 5;

#[derive(FromRow)]
struct OpenRow {
    rule_id: Uuid,
    rule_name: String,
    kind: AlertKind,
    severity: Severity,
    subject: String,
    job_key: Option<String>,
    job_kind: Option<String>,
    label: String,
    state: AlertState,
    pending_since: DateTime<Utc>,
    fired_at: Option<DateTime<Utc>>,
    facts: Value,
    acknowledged_by: Option<String>,
    snoozed_until: Option<DateTime<Utc>>,
    notes: Value,
}

const OPEN_SQL: &str = "
    SELECT a.rule_id, r.name AS rule_name, r.kind, r.severity, a.subject, a.job_key, a.job_kind,
           a.label, a.state, a.pending_since, a.fired_at, a.facts, a.acknowledged_by, a.snoozed_until,
           coalesce((SELECT jsonb_agg(n ORDER BY n.id) FROM (
               SELECT id, body, created_by, created_at FROM alert_notes
               WHERE rule_id = a.rule_id AND subject = a.subject ORDER BY id DESC LIMIT $3) n), '[]') AS notes
    FROM alert_states a JOIN alert_rules r ON r.id = a.rule_id
    WHERE ($1::text IS NULL OR a.job_key = $1)
    ORDER BY a.state = 'firing' DESC, a.acknowledged_at IS NULL DESC,
             array_position(ARRAY['critical', 'warning', 'info'], r.severity),
             coalesce(a.fired_at, a.pending_since) DESC, a.rule_id, a.subject
    LIMIT $2";

fn line(row: OpenRow, language: MessageLanguage) -> AlertLine {
    let notes: Vec<AlertNoteView> = serde_json::from_value(row.notes).unwrap_or_default();
    AlertLine {
        summary: message::summary(row.kind, &row.facts, language),
        link: link_path(
            &row.subject,
            row.job_key.as_deref(),
            row.job_kind.as_deref(),
        ),
        rule_id: row.rule_id,
        rule_name: row.rule_name,
        kind: row.kind,
        severity: row.severity,
        subject: row.subject,
        label: row.label,
        state: row.state,
        since: row.fired_at.unwrap_or(row.pending_since),
        acknowledged_by: row.acknowledged_by,
        snoozed_until: row.snoozed_until,
        notes,
    }
}

/// Firing alerts first (unacknowledged before acknowledged, critical before the rest), then
/// pending ones; at most `OPEN_ALERTS`, with how many are open in all.
pub async fn open_alerts(
    pool: &PgPool,
    job_key: Option<&str>,
    language: MessageLanguage,
) -> Result<(Vec<AlertLine>, i64), sqlx::Error> {
    let rows: Vec<OpenRow> = sqlx::query_as(OPEN_SQL)
        .bind(job_key)
        .bind(OPEN_ALERTS)
        .bind(NOTES)
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_states WHERE ($1::text IS NULL OR job_key = $1)",
    )
    .bind(job_key)
    .fetch_one(pool)
    .await?;
    Ok((rows.into_iter().map(|r| line(r, language)).collect(), total))
}

/// Firing alerts nobody has acknowledged, each subject once, leaving out what the badge
/// counts already: a script's failures-in-a-row alerts (its own status says it is failing;
/// counted twice they would linger for a cycle after it recovers) and any alert on a script
/// that is failing.
pub const UNSEEN_FIRING_SQL: &str = "
    SELECT count(DISTINCT a.subject) FROM alert_states a JOIN alert_rules r ON r.id = a.rule_id
    WHERE a.state = 'firing' AND a.acknowledged_at IS NULL
      AND NOT (a.job_kind = 'script' AND r.kind = 'failure_rate' AND r.params->>'consecutive' IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM job_status s
                      WHERE a.job_kind = 'script' AND s.job_key = a.job_key AND s.last_status = ANY($1))";

#[derive(FromRow)]
struct EventRow {
    at: DateTime<Utc>,
    rule_name: String,
    kind: AlertKind,
    from_state: AlertState,
    to_state: AlertState,
    reminder: bool,
    silenced: bool,
    facts: Value,
}

/// A job's schedule (what it expects next) and its alert history, newest first.
pub async fn job_alerts(
    pool: &PgPool,
    job_key: &str,
    language: MessageLanguage,
) -> Result<(Option<ScheduleView>, Vec<AlertEventView>), sqlx::Error> {
    let schedule = match load_schedule(pool, job_key).await? {
        None => None,
        Some(stored) => {
            let (last_report, last_start): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
                sqlx::query_as(
                    "SELECT (SELECT last_finished_at FROM job_status WHERE job_key = $1),
                            (SELECT started_at FROM job_starts WHERE job_key = $1)",
                )
                .bind(job_key)
                .fetch_one(pool)
                .await?;
            let anchor = last_seen(stored.updated_at, last_report, last_start);
            let next_expected = match stored.schedule() {
                Ok(schedule) => schedule
                    .next_after(anchor)
                    .ok_or_else(|| "the cron expression has no further run".to_string()),
                Err(error) => Err(error.to_string()),
            };
            Some(ScheduleView {
                cron: stored.cron,
                timezone: stored.timezone,
                period_seconds: stored.period_seconds,
                grace_seconds: stored.grace_seconds,
                next_expected,
                last_start,
            })
        }
    };
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT at, rule_name, kind, from_state, to_state, reminder, silenced, facts
         FROM alert_events WHERE job_key = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(job_key)
    .bind(HISTORY)
    .fetch_all(pool)
    .await?;
    let history = rows
        .into_iter()
        .map(|row| AlertEventView {
            summary: message::summary(row.kind, &row.facts, language),
            at: row.at,
            rule_name: row.rule_name,
            kind: row.kind,
            from_state: row.from_state,
            to_state: row.to_state,
            reminder: row.reminder,
            silenced: row.silenced,
        })
        .collect();
    Ok((schedule, history))
}

#[derive(FromRow)]
struct SilenceRow {
    id: Uuid,
    scope_kind: ScopeKind,
    scope_value: Option<String>,
    ends_at: DateTime<Utc>,
    reason: String,
    created_by: String,
}

/// Rules, channels and the silences still in force.
pub async fn settings(pool: &PgPool, may_edit: bool) -> Result<AlertSettingsView, sqlx::Error> {
    let silences: Vec<SilenceRow> = sqlx::query_as(
        "SELECT id, scope_kind, scope_value, ends_at, reason, created_by FROM alert_silences
         WHERE ends_at > now() ORDER BY ends_at LIMIT 200",
    )
    .fetch_all(pool)
    .await?;
    Ok(AlertSettingsView {
        rules: rules::list_rules(pool, 500).await?,
        channels: channels::list_channels(pool, may_edit).await?,
        silences: silences
            .into_iter()
            .map(|s| SilenceView {
                id: s.id,
                scope_kind: s.scope_kind,
                scope_value: s.scope_value,
                ends_at: s.ends_at,
                reason: s.reason,
                created_by: s.created_by,
            })
            .collect(),
        may_edit,
    })
}
