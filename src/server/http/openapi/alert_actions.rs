//! The actions of `POST /alert-operations` (`server::alerts::operations`).

use super::*;
use crate::model::{AlertKind, AlertState, ChannelKind, MessageLanguage, ScopeKind, Severity};
use crate::server::alerts::actions::{MAX_SILENCE_DAYS, MAX_SNOOZE_DAYS, NOTE_CHARS, REASON_CHARS};
use crate::server::alerts::channels::NAME_CHARS as CHANNEL_NAME_CHARS;
use crate::server::alerts::rules::{
    MAX_CHANNELS, MAX_MIN_RUNS, MAX_SECONDS as RULE_MAX_SECONDS, NAME_CHARS as RULE_NAME_CHARS,
};
use crate::server::alerts::schedule::MAX_SECONDS as SCHEDULE_MAX_SECONDS;

const RULE_ID: &str = "7c1f2e3d-4b5a-4968-8776-5a4b3c2d1e0f";
const CHANNEL_ID: &str = "1e2d3c4b-5a69-4877-8695-a4b3c2d1e0f9";
const SILENCE_ID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

fn scope() -> Value {
    about(
        strict(
            &["kind"],
            vec![
                ("kind", one_of(&ScopeKind::NAMES)),
                ("value", nullable(line(REPORT_LIMITS.job_key_chars))),
            ],
        ),
        "`all`; `job_kind` with `script`, `batch` or `recap`; `job_key` with a script's key or \
         a controlled job's id.",
    )
}

fn alert_ref(
    summary: &'static str,
    extra: Vec<(&'static str, Value)>,
    example: Value,
) -> ActionDoc {
    let mut required = vec!["rule_id", "subject"];
    required.extend(extra.iter().map(|(name, _)| *name));
    let mut properties = vec![
        ("rule_id", uuid()),
        (
            "subject",
            about(
                string(),
                "As listAlerts answers it: `script:<job_key>`, `job:<id>`.",
            ),
        ),
    ];
    properties.extend(extra);
    ActionDoc {
        summary,
        data: strict(&required, properties),
        example,
    }
}

fn rule() -> Value {
    strict(
        &["name", "scope", "kind"],
        vec![
            ("name", line(RULE_NAME_CHARS)),
            ("scope", scope()),
            ("kind", one_of(&AlertKind::NAMES)),
            (
                "params",
                about(
                    json!({ "type": "object" }),
                    "The kind's parameters (README, \"Rule kinds\"); what is left out takes its \
                     default, written back into the rule. A field it does not take is a 400 \
                     naming `params.<field>`.",
                ),
            ),
            (
                "pending_for",
                about(
                    int((0, RULE_MAX_SECONDS)),
                    "Seconds the condition must hold before the alert fires; 0 when left out.",
                ),
            ),
            (
                "min_runs",
                about(
                    int((0, MAX_MIN_RUNS)),
                    "Runs seen before the rule judges a job.",
                ),
            ),
            (
                "severity",
                with(one_of(&Severity::NAMES), "default", json!("warning")),
            ),
            ("channel_ids", array(uuid(), 0, MAX_CHANNELS)),
            (
                "repeat_interval",
                about(
                    nullable(int((60, RULE_MAX_SECONDS))),
                    "Seconds between reminders while it fires unacknowledged; none when null.",
                ),
            ),
            ("enabled", with(boolean(), "default", json!(true))),
        ],
    )
}

fn rule_example() -> Value {
    json!({
        "name": "nightly backup missed",
        "scope": { "kind": "job_key", "value": "nightly-backup" },
        "kind": "missed_run",
        "pending_for": 0,
        "severity": "critical",
        "repeat_interval": 3600,
    })
}

fn span(max_days: i64, what: &str) -> Value {
    about(
        int((1, max_days * 86_400)),
        format!("Seconds from now {what} (at most {max_days} days)."),
    )
}

pub(super) fn alert_action(call: AlertCall) -> ActionDoc {
    match call {
        AlertCall::ListAlerts => ActionDoc {
            summary: "The open alerts (firing before pending, unacknowledged first, then by \
                      severity), at most 50 with how many are open in all; one job's with \
                      job_key (viewer).",
            data: strict(
                &[],
                vec![
                    ("job_key", nullable(line(REPORT_LIMITS.job_key_chars))),
                    (
                        "language",
                        about(
                            nullable(one_of(&MessageLanguage::NAMES)),
                            "Of the summaries; ja when left out.",
                        ),
                    ),
                ],
            ),
            example: json!({ "job_key": "nightly-backup", "language": "en" }),
        },
        AlertCall::AcknowledgeAlert => alert_ref(
            "Acknowledge a firing alert: its reminders stop until it resolves (operator).",
            vec![],
            json!({ "rule_id": RULE_ID, "subject": "script:nightly-backup" }),
        ),
        AlertCall::SnoozeAlert => alert_ref(
            "Snooze a firing alert: no reminders until then (operator).",
            vec![(
                "duration_seconds",
                span(MAX_SNOOZE_DAYS, "until it may remind again"),
            )],
            json!({ "rule_id": RULE_ID, "subject": "script:nightly-backup", "duration_seconds": 14400 }),
        ),
        AlertCall::NoteAlert => alert_ref(
            "Add a note to an open alert (operator).",
            vec![("body", line(NOTE_CHARS))],
            json!({ "rule_id": RULE_ID, "subject": "script:nightly-backup", "body": "disk replaced, rerun at 10:00" }),
        ),
        AlertCall::SetSchedule => ActionDoc {
            summary: "Set (or replace) a script's expected schedule: a cron expression in a time \
                      zone, or a period; neither is a period of one day, as Healthchecks.io \
                      does (operator). The script need not have reported yet.",
            data: strict(
                &["job_key"],
                vec![
                    ("job_key", line(REPORT_LIMITS.job_key_chars)),
                    (
                        "cron",
                        about(
                            nullable(string()),
                            "Five fields or an alias (`@daily`), in `timezone`'s wall clock; \
                             not with period_seconds.",
                        ),
                    ),
                    (
                        "timezone",
                        about(
                            nullable(string()),
                            "An IANA zone (`Asia/Tokyo`); UTC when left out.",
                        ),
                    ),
                    (
                        "period_seconds",
                        about(
                            nullable(int((60, SCHEDULE_MAX_SECONDS))),
                            "A run at least this often.",
                        ),
                    ),
                    (
                        "grace_seconds",
                        about(
                            nullable(int((0, SCHEDULE_MAX_SECONDS))),
                            "How late a run may be before it counts as missed; 300 when left out.",
                        ),
                    ),
                ],
            ),
            example: json!({
                "job_key": "nightly-backup", "cron": "0 3 * * *", "timezone": "Asia/Tokyo",
                "grace_seconds": 900,
            }),
        },
        AlertCall::RemoveSchedule => ActionDoc {
            summary: "Remove a script's schedule; `removed` is false when it had none (operator).",
            data: strict(
                &["job_key"],
                vec![("job_key", line(REPORT_LIMITS.job_key_chars))],
            ),
            example: json!({ "job_key": "nightly-backup" }),
        },
        AlertCall::ListAlertSettings => ActionDoc {
            summary: "Every rule, the channels (a viewer sees only their hosts) and the \
                      silences in force (viewer).",
            data: strict(&[], vec![]),
            example: json!({}),
        },
        AlertCall::CreateAlertRule => ActionDoc {
            summary: "Create an alert rule (operator).",
            data: rule(),
            example: rule_example(),
        },
        AlertCall::UpdateAlertRule => ActionDoc {
            summary: "Replace a rule's definition; its open alerts stay and the next judgement \
                      resolves what no longer holds (operator).",
            data: strict(
                &["rule_id", "rule"],
                vec![("rule_id", uuid()), ("rule", rule())],
            ),
            example: json!({ "rule_id": RULE_ID, "rule": rule_example() }),
        },
        AlertCall::DeleteAlertRule => ActionDoc {
            summary: "Delete a rule; its open alerts go with it, its history stays (operator).",
            data: strict(&["rule_id"], vec![("rule_id", uuid())]),
            example: json!({ "rule_id": RULE_ID }),
        },
        AlertCall::CreateAlertChannel => ActionDoc {
            summary: "Create a channel (operator). A webhook's signing secret is in the answer \
                      this once.",
            data: strict(
                &["name", "kind", "target"],
                vec![
                    ("name", line(CHANNEL_NAME_CHARS)),
                    ("kind", one_of(&ChannelKind::NAMES)),
                    (
                        "target",
                        about(
                            string(),
                            "An http(s) URL (webhook, slack) or an email address.",
                        ),
                    ),
                    (
                        "language",
                        with(one_of(&MessageLanguage::NAMES), "default", json!("ja")),
                    ),
                ],
            ),
            example: json!({
                "name": "ops webhook", "kind": "webhook",
                "target": "https://hooks.example.com/jobdeck", "language": "en",
            }),
        },
        AlertCall::DeleteAlertChannel => ActionDoc {
            summary: "Delete a channel; the rules that named it keep their other channels \
                      (operator).",
            data: strict(&["channel_id"], vec![("channel_id", uuid())]),
            example: json!({ "channel_id": CHANNEL_ID }),
        },
        AlertCall::TestAlertChannel => ActionDoc {
            summary: "Send a test message to a channel now; 422 saying why when it is not \
                      delivered (operator).",
            data: strict(&["channel_id"], vec![("channel_id", uuid())]),
            example: json!({ "channel_id": CHANNEL_ID }),
        },
        AlertCall::CreateSilence => ActionDoc {
            summary: "Silence a scope: alerts in it still change state (recorded), but nothing \
                      is sent until it ends; what fired meanwhile is announced then (operator).",
            data: strict(
                &["scope", "duration_seconds"],
                vec![
                    ("scope", scope()),
                    ("duration_seconds", span(MAX_SILENCE_DAYS, "until it ends")),
                    ("reason", text(REASON_CHARS)),
                ],
            ),
            example: json!({
                "scope": { "kind": "job_kind", "value": "script" }, "duration_seconds": 7200,
                "reason": "database maintenance",
            }),
        },
        AlertCall::EndSilence => ActionDoc {
            summary: "End a silence now (operator).",
            data: strict(&["silence_id"], vec![("silence_id", uuid())]),
            example: json!({ "silence_id": SILENCE_ID }),
        },
    }
}

fn alert_line() -> Value {
    shape(
        &[],
        vec![
            ("rule_id", uuid()),
            ("rule_name", string()),
            ("kind", one_of(&AlertKind::NAMES)),
            ("severity", one_of(&Severity::NAMES)),
            ("subject", string()),
            ("label", string()),
            ("link", nullable(string())),
            ("state", one_of(&AlertState::NAMES)),
            ("since", time()),
            ("summary", string()),
            ("acknowledged_by", nullable(string())),
            ("snoozed_until", nullable(time())),
            ("notes", list(json!({ "type": "object" }))),
        ],
    )
}

fn rule_view() -> Value {
    shape(
        &[],
        vec![
            ("id", uuid()),
            ("name", string()),
            ("scope_kind", one_of(&ScopeKind::NAMES)),
            ("scope_value", nullable(string())),
            ("kind", one_of(&AlertKind::NAMES)),
            ("params", json!({ "type": "object" })),
            ("pending_for", integer()),
            ("min_runs", integer()),
            ("severity", one_of(&Severity::NAMES)),
            ("repeat_interval", nullable(integer())),
            ("enabled", boolean()),
            ("built_in", boolean()),
            ("channel_ids", list(uuid())),
        ],
    )
}

fn channel_view() -> Vec<(&'static str, Value)> {
    vec![
        ("id", uuid()),
        ("name", string()),
        ("kind", one_of(&ChannelKind::NAMES)),
        ("target", about(string(), "A Slack URL is shown redacted.")),
        ("language", one_of(&MessageLanguage::NAMES)),
        ("created_at", time()),
    ]
}

pub(super) fn alert_answer(call: AlertCall) -> (u16, Value) {
    let alert = |extra: Vec<(&'static str, Value)>| {
        let mut properties = vec![("rule_id", uuid()), ("subject", string())];
        properties.extend(extra);
        shape(&[], properties)
    };
    match call {
        AlertCall::ListAlerts => (
            200,
            shape(
                &[],
                vec![("alerts", list(alert_line())), ("total", integer())],
            ),
        ),
        AlertCall::AcknowledgeAlert => (200, alert(vec![("acknowledged_at", time())])),
        AlertCall::SnoozeAlert => (200, alert(vec![("snoozed_until", time())])),
        AlertCall::NoteAlert => (200, alert(vec![])),
        AlertCall::SetSchedule => (
            200,
            shape(
                &[],
                vec![
                    ("job_key", string()),
                    ("cron", nullable(string())),
                    ("timezone", string()),
                    ("period_seconds", nullable(integer())),
                    ("grace_seconds", integer()),
                    ("updated_at", time()),
                ],
            ),
        ),
        AlertCall::RemoveSchedule => (
            200,
            shape(&[], vec![("job_key", string()), ("removed", boolean())]),
        ),
        AlertCall::ListAlertSettings => (
            200,
            shape(
                &[],
                vec![
                    ("rules", list(rule_view())),
                    ("channels", list(shape(&[], channel_view()))),
                    ("silences", list(json!({ "type": "object" }))),
                    ("may_edit", boolean()),
                ],
            ),
        ),
        AlertCall::CreateAlertRule => (201, rule_view()),
        AlertCall::UpdateAlertRule => (200, rule_view()),
        AlertCall::DeleteAlertRule => (200, shape(&[], vec![("rule_id", uuid())])),
        AlertCall::CreateAlertChannel => {
            let mut properties = channel_view();
            properties.push((
                "secret",
                about(
                    nullable(string()),
                    "A webhook's signing secret (`whsec_...`), shown once.",
                ),
            ));
            (201, shape(&[], properties))
        }
        AlertCall::DeleteAlertChannel => (200, shape(&[], vec![("channel_id", uuid())])),
        AlertCall::TestAlertChannel => (
            200,
            shape(
                &[],
                vec![
                    ("channel_id", uuid()),
                    ("delivered", json!({ "const": true })),
                    (
                        "status",
                        about(
                            nullable(integer()),
                            "The receiver's HTTP status (null for email).",
                        ),
                    ),
                ],
            ),
        ),
        AlertCall::CreateSilence => (
            201,
            shape(&[], vec![("silence_id", uuid()), ("ends_at", time())]),
        ),
        AlertCall::EndSilence => (200, shape(&[], vec![("silence_id", uuid())])),
    }
}

pub(super) fn alert_operations() -> Value {
    let mut operation = action_route(&AlertCall::ALL.map(Call::Alert));
    let responses = &mut operation["responses"];
    responses["400"] = error(BAD_ACTION);
    responses["403"] = error(&format!(
        "A change by a viewer; an account whose password must change first. {CROSS_SITE}"
    ));
    responses["404"] = error("No such rule, channel or silence in force.");
    responses["409"] = error(
        "acknowledgeAlert / snoozeAlert: no firing alert of that rule and subject; noteAlert: \
         no open one; createAlertChannel: the name is taken.",
    );
    responses["415"] = error("The body is not sent as `Content-Type: application/json`.");
    responses["422"] = error(
        "testAlertChannel: the message was not delivered (why, without the URL's secret parts).",
    );
    operation
}
