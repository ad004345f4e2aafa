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

pub(super) fn analyze_errors() -> ActionDoc {
    let max = RECOVERY_LIMITS.max_filter_values;
    ActionDoc {
        summary: "What failed in a period and how it ended, against the period before it of equal \
                  length: patterns by fingerprint, figures per error type, job kind and worker, \
                  and suggestions stating their figures (operator). Read in whole hours from \
                  hourly rollups.",
        data: strict(
            &[],
            vec![
                (
                    "period",
                    about(
                        nullable(strict(
                            &["start", "end"],
                            vec![("start", time()), ("end", time())],
                        )),
                        format!(
                            "Start before end, at most {} days; the last 30 days when left out.",
                            RECOVERY_LIMITS.max_period_days
                        ),
                    ),
                ),
                ("error_types", array(name(), 0, max)),
                (
                    "job_ids",
                    about(
                        array(uuid(), 0, max),
                        "Only these jobs' records (read from the records; by_job_kind is empty \
                         and by_worker has no completions).",
                    ),
                ),
            ],
        ),
        example: json!({
            "period": { "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z" },
            "error_types": ["TIMEOUT", "PARSE_ERROR"],
            "job_ids": [],
        }),
    }
}

pub(super) fn analysis_answer() -> Value {
    let span = || shape(&[], vec![("start", time()), ("end", time())]);
    let trend = || one_of(&Trend::NAMES);
    let rate = || nullable(number());
    shape(
        &[],
        vec![
            ("period", span()),
            ("previous_period", span()),
            ("total_errors", integer()),
            ("previous_total_errors", integer()),
            (
                "patterns",
                about(
                    list(shape(
                        &[],
                        vec![
                            ("error_type", string()),
                            ("fingerprint", string()),
                            ("pattern", string()),
                            ("count", integer()),
                            ("share", number()),
                            ("previous", integer()),
                            ("first_at", nullable(time())),
                            ("last_at", nullable(time())),
                            ("trend", trend()),
                            (
                                "affected_jobs",
                                about(
                                    list(uuid()),
                                    "Jobs among the pattern's latest 100 records, latest first, at most 10.",
                                ),
                            ),
                            (
                                "affected_scripts",
                                about(list(string()), "The same for scripts: their job keys."),
                            ),
                        ],
                    )),
                    "The 20 largest.",
                ),
            ),
            (
                "by_type",
                list(shape(
                    &[],
                    vec![
                        ("error_type", string()),
                        ("count", integer()),
                        ("share", number()),
                        ("previous", integer()),
                        ("trend", trend()),
                        ("recovered", integer()),
                        ("failed", integer()),
                        ("recovery_rate", rate()),
                        ("mean_attempts_to_recover", rate()),
                    ],
                )),
            ),
            (
                "by_job_kind",
                list(shape(
                    &[],
                    vec![
                        ("kind", one_of(&JobKind::NAMES)),
                        ("finished", integer()),
                        ("failure_rate", rate()),
                    ],
                )),
            ),
            (
                "by_worker",
                list(shape(
                    &[],
                    vec![
                        ("worker_id", string()),
                        ("failed", integer()),
                        ("completed", integer()),
                        ("failure_rate", rate()),
                        ("share_of_failures", number()),
                    ],
                )),
            ),
            (
                "suggestions",
                list(shape(
                    &[],
                    vec![
                        (
                            "kind",
                            one_of(&SuggestionKind::NAMES),
                        ),
                        ("error_type", nullable(string())),
                        ("worker_id", nullable(string())),
                        ("text", string()),
                        ("proposed_config", nullable(configured_retry_config())),
                        (
                            "proposed_max_memory",
                            about(nullable(integer()), "Megabytes, for raise_memory_limit."),
                        ),
                    ],
                )),
            ),
        ],
    )
}

fn configured_retry_config() -> Value {
    shape(
        &[],
        vec![
            ("error_type", string()),
            ("max_attempts", integer()),
            ("initial_delay", number()),
            ("max_delay", number()),
            ("backoff_factor", number()),
            ("retry_conditions", list(retry_condition(true))),
        ],
    )
}
