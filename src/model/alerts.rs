//! Alerts (issue 25): the names rules, states and channels travel by, and the views the
//! incidents, rules and job pages render.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::wire_enum;

wire_enum! {
    /// What a rule watches.
    pub enum AlertKind ("alert kind") {
        /// A scheduled script's next run plus its grace passed with no report.
        MissedRun = "missed_run",
        /// A run started and neither finished nor showed life within its grace.
        Stuck = "stuck",
        /// Failed / total over a window at or above a threshold, or K failures in a row.
        FailureRate = "failure_rate",
        /// A run longer than max(a fixed limit, k × the p95 of its last N successful runs).
        DurationAnomaly = "duration_anomaly",
        /// One error fingerprint more than N times in a window.
        ErrorSpike = "error_spike",
    }
}

wire_enum! {
    pub enum Severity ("severity") {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

wire_enum! {
    /// Where an alert stands; `ok` and `resolved` only appear in its history.
    pub enum AlertState ("alert state") {
        Ok = "ok",
        Pending = "pending",
        Firing = "firing",
        Resolved = "resolved",
    }
}

wire_enum! {
    /// What a rule or a silence covers.
    pub enum ScopeKind ("scope") {
        All = "all",
        /// `script`, `batch` or `recap`.
        JobKind = "job_kind",
        /// A script's key, or a job's id.
        JobKey = "job_key",
    }
}

wire_enum! {
    pub enum ChannelKind ("channel kind") {
        /// A POST signed the way Standard Webhooks does it.
        Webhook = "webhook",
        /// A Slack-compatible incoming webhook.
        Slack = "slack",
        /// Email over SMTP.
        Email = "email",
    }
}

wire_enum! {
    /// The language of a channel's messages.
    pub enum MessageLanguage ("language") {
        Ja = "ja",
        En = "en",
    }
}

wire_enum! {
    pub enum DeliveryStatus ("delivery status") {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
    }
}

/// The job kinds a scope may name: reported scripts and the two kinds of controlled jobs.
pub const SCOPE_JOB_KINDS: [&str; 3] = ["script", "batch", "recap"];

/// A firing or pending alert, as the incidents page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertLine {
    pub rule_id: Uuid,
    pub rule_name: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub subject: String,
    pub label: String,
    /// The page of the job it is about, if any.
    pub link: Option<String>,
    pub state: AlertState,
    pub since: DateTime<Utc>,
    /// What the rule measured, in the viewer's language.
    pub summary: String,
    pub acknowledged_by: Option<String>,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub notes: Vec<AlertNoteView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertNoteView {
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One row of an alert's history (a state change or a reminder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEventView {
    pub at: DateTime<Utc>,
    pub rule_name: String,
    pub kind: AlertKind,
    pub from_state: AlertState,
    pub to_state: AlertState,
    pub reminder: bool,
    pub silenced: bool,
    pub summary: String,
}

/// A script's schedule and what it implies now, for its page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub cron: Option<String>,
    pub timezone: String,
    pub period_seconds: Option<i32>,
    pub grace_seconds: i32,
    /// When the next run is due (before the grace), or why it cannot be said.
    pub next_expected: Result<DateTime<Utc>, String>,
    pub last_start: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleView {
    pub id: Uuid,
    pub name: String,
    pub scope_kind: ScopeKind,
    pub scope_value: Option<String>,
    pub kind: AlertKind,
    pub params: serde_json::Value,
    pub pending_for: i32,
    pub min_runs: i32,
    pub severity: Severity,
    pub repeat_interval: Option<i32>,
    pub enabled: bool,
    pub built_in: bool,
    pub channel_ids: Vec<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelView {
    pub id: Uuid,
    pub name: String,
    pub kind: ChannelKind,
    pub target: String,
    pub language: MessageLanguage,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SilenceView {
    pub id: Uuid,
    pub scope_kind: ScopeKind,
    pub scope_value: Option<String>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
}

/// The rules and channels page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertSettingsView {
    pub rules: Vec<RuleView>,
    pub channels: Vec<ChannelView>,
    pub silences: Vec<SilenceView>,
    pub may_edit: bool,
}
