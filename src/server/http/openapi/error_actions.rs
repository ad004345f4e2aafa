//! The actions of `POST /error-operations` (`server::recovery::input`).

use super::*;

fn retry_condition(response: bool) -> Value {
    let properties = vec![
        ("field", one_of(&ConditionField::NAMES)),
        ("operator", one_of(&ConditionOperator::NAMES)),
        (
            "value",
            about(
                json!({}),
                format!(
                    "A number for priority and attempt, text for the other fields; a list of \
                     1 to {} of them for `in`; a regular expression for `matches`; text at \
                     most {} characters.",
                    RECOVERY_LIMITS.max_in_values, RECOVERY_LIMITS.value_chars
                ),
            ),
        ),
    ];
    let schema = if response {
        shape(&[], properties)
    } else {
        strict(&["field", "operator", "value"], properties)
    };
    about(
        schema,
        "Numbers take eq, ne, gt, gte, lt, lte, in; text takes eq, ne, in, contains, matches \
         (anything else is a 400 naming the condition). A field the job does not have reads as \
         an empty text.",
    )
}

fn delay() -> Value {
    about(between(0.0, RECOVERY_LIMITS.max_delay), "Seconds.")
}

pub(super) fn configure_retry() -> ActionDoc {
    let config = strict(
        &[
            "max_attempts",
            "initial_delay",
            "max_delay",
            "backoff_factor",
        ],
        vec![
            (
                "error_type",
                about(
                    nullable(name()),
                    "May be left out; else must equal data.error_type.",
                ),
            ),
            (
                "max_attempts",
                about(
                    int((1, RECOVERY_LIMITS.attempts_ceiling)),
                    "Attempts in all, the first run included; this replaces the job's own \
                     max_attempts for this type.",
                ),
            ),
            ("initial_delay", delay()),
            (
                "max_delay",
                about(delay(), "Seconds, at least initial_delay."),
            ),
            (
                "backoff_factor",
                between(
                    RECOVERY_LIMITS.backoff_factor.0,
                    RECOVERY_LIMITS.backoff_factor.1,
                ),
            ),
            (
                "retry_conditions",
                about(
                    array(retry_condition(false), 0, RECOVERY_LIMITS.max_conditions),
                    "All must hold for a failure to be retried.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "Store how one error type is retried (operator): attempts, exponential backoff \
                  with jitter, and conditions. Whether a code is retried stays the job's \
                  retry_on_errors.",
        data: strict(
            &["error_type", "config"],
            vec![
                (
                    "error_type",
                    about(
                        name(),
                        "The error code a worker fails a task with (TIMEOUT).",
                    ),
                ),
                ("config", config),
            ],
        ),
        example: json!({
            "error_type": "TIMEOUT",
            "config": {
                "error_type": "TIMEOUT",
                "max_attempts": 5,
                "initial_delay": 2,
                "max_delay": 300,
                "backoff_factor": 2,
                "retry_conditions": [
                    { "field": "priority", "operator": "gte", "value": 3 },
                    { "field": "message", "operator": "matches", "value": "timed? ?out" },
                ],
            },
        }),
    }
}

pub(super) fn configured_retry() -> Value {
    shape(
        &[],
        vec![
            ("error_type", string()),
            ("max_attempts", integer()),
            ("initial_delay", number()),
            ("max_delay", number()),
            ("backoff_factor", number()),
            ("retry_conditions", list(retry_condition(true))),
            (
                "created",
                about(
                    boolean(),
                    "False when it replaced the type's earlier config.",
                ),
            ),
            ("updated_at", time()),
        ],
    )
}

pub(super) fn manual_recover() -> ActionDoc {
    let flag = |about_it: &str| about(nullable(boolean()), about_it);
    ActionDoc {
        summary: "Run a failed dispatched job's work again from one error record (operator): the \
                  record's task, everything downstream of it and whatever else the failure left \
                  unfinished; completed tasks never. A job-level record re-runs every unfinished \
                  task.",
        data: strict(
            &["error_record_id"],
            vec![
                ("error_record_id", uuid()),
                (
                    "recovery_options",
                    nullable(strict(
                        &[],
                        vec![
                            (
                                "force",
                                flag(&format!(
                                    "Run the task although it used the attempts its type's config \
                                     (else its job) allows; never past {} attempts.",
                                    RECOVERY_LIMITS.attempts_ceiling
                                )),
                            ),
                            (
                                "ignore_conditions",
                                flag("Run it although the type's retry_conditions do not hold."),
                            ),
                            (
                                "custom_params",
                                about(
                                    nullable(json!({ "type": "object" })),
                                    format!(
                                        "Merged over the payload of every task that runs again \
                                         (at most {} bytes each after).",
                                        JOB_LIMITS.payload_bytes
                                    ),
                                ),
                            ),
                            (
                                "dry_run",
                                flag(
                                    "Answer what would run, and change nothing (beyond the seed).",
                                ),
                            ),
                        ],
                    )),
                ),
            ],
        ),
        example: json!({
            "error_record_id": JOB_ID,
            "recovery_options": { "force": false, "ignore_conditions": false,
                                  "custom_params": { "batch_size": 50 }, "dry_run": true },
        }),
    }
}

pub(super) fn recovery_answer() -> Value {
    shape(
        &[],
        vec![
            ("error_record_id", uuid()),
            ("job_id", uuid()),
            ("dry_run", boolean()),
            (
                "rerun",
                list(shape(
                    &[],
                    vec![
                        ("task_id", uuid()),
                        ("name", string()),
                        (
                            "status",
                            about(one_of(&TaskStatus::NAMES), "Before the re-run."),
                        ),
                        ("attempt", integer()),
                        ("reason", one_of(&RerunReason::NAMES)),
                    ],
                )),
            ),
            (
                "kept",
                about(list(string()), "Completed tasks, left as they are."),
            ),
            ("recovery_status", one_of(&RecoveryStatus::NAMES)),
            (
                "recovery_attempts",
                about(
                    list(json!({ "type": "object" })),
                    "[{timestamp, method, result, actor}], the newest last.",
                ),
            ),
        ],
    )
}
