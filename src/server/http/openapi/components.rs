//! The shared schemas: the error body, a job, the dashboard's figures.

use super::*;

pub(super) fn components() -> Value {
    let schemas = fields(vec![
        ("Error", error_schema()),
        ("Job", job_schema()),
        (
            "TaskCounts",
            shape(
                &[],
                [
                    "total",
                    "pending",
                    "running",
                    "completed",
                    "failed",
                    "cancelled",
                ]
                .into_iter()
                .map(|status| (status, integer()))
                .collect(),
            ),
        ),
        (
            "CurrentUser",
            shape(
                &[],
                vec![
                    ("id", about(nullable(uuid()), "Null for an API token.")),
                    ("name", string()),
                    ("email", about(nullable(string()), "Null for an API token.")),
                    ("role", one_of(&Role::NAMES)),
                    ("must_change_password", boolean()),
                ],
            ),
        ),
        ("WindowStats", window_stats()),
        ("JobStats", job_stats()),
        (
            "DashboardError",
            shape(
                &[],
                vec![("code", string()), ("message", string()), ("at", time())],
            ),
        ),
        ("ActiveJob", active_job()),
        ("JobProgress", job_progress()),
    ]);
    json!({
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "jd_ + 32 base62 characters + a 6-character checksum",
                "description": "An API token from `jobdeck token create --name NAME --role ROLE` \
                    (or the /account and /admin/tokens pages), as `Authorization: Bearer jd_...`. \
                    It wins over a cookie; a malformed, unknown, expired or revoked one is a 401.",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "jobdeck_session",
                "description": "The session cookie POST /login sets: `jobdeck_session`, or \
                    `__Host-jobdeck_session` when JOBDECK_PUBLIC_URL is https. A state-changing \
                    request carrying it must prove it comes from this site (Origin, or \
                    `Sec-Fetch-Site: same-origin`), else 403.",
            },
        },
        "schemas": schemas,
        "headers": {
            "RetryAfter": {
                "description": "Seconds to wait before sending the request again.",
                "schema": { "type": "integer", "minimum": 0 },
            },
        },
    })
}

/// `http::error::ErrorBody`: `error`, `field` when one field is at fault, and the refusal's
/// details flattened beside them.
pub(super) fn error_schema() -> Value {
    let statuses = list(string());
    let schema = shape(
        &[
            "field",
            "current_status",
            "requested_status",
            "allowed",
            "allowed_from",
            "task",
            "job_id",
            "deleted_at",
        ],
        vec![
            ("error", about(string(), "What went wrong, for a person.")),
            (
                "field",
                about(
                    string(),
                    "The one field at fault, by its path in the request (`data.retry_config.max_attempts`, \
                     `data.tasks[2].name`, `action`), or a header or parameter (`Content-Type`, \
                     `user_id`, `since`, `job_id`).",
                ),
            ),
            (
                "current_status",
                about(string(), "409, and a worker's 403: the job's (or for a task, the task's) status."),
            ),
            (
                "requested_status",
                about(nullable(string()), "409, and a worker's 403: the status asked for."),
            ),
            (
                "allowed",
                about(statuses.clone(), "409: where the job (or task) may go from current_status."),
            ),
            (
                "allowed_from",
                about(statuses, "409 to a command: the statuses it is allowed from."),
            ),
            ("task", about(string(), "A task's 409: the task.")),
            ("job_id", about(uuid(), "410: the deleted job.")),
            ("deleted_at", about(time(), "410: when it was deleted.")),
        ],
    );
    with(schema, "additionalProperties", json!(true))
}

/// `model::JobView`.
pub(super) fn job_schema() -> Value {
    let retry_config = shape(
        &[],
        vec![
            ("max_attempts", integer()),
            ("retry_interval", integer()),
            ("retry_on_errors", list(string())),
        ],
    );
    let last_error = shape(
        &[],
        vec![
            ("code", string()),
            ("class", one_of(&ErrorClass::NAMES)),
            ("message", string()),
            ("stack", nullable(string())),
            ("task", nullable(string())),
            ("at", time()),
        ],
    );
    shape(
        &[],
        vec![
            ("id", uuid()),
            ("status", one_of(&JobStatus::NAMES)),
            ("kind", one_of(&JobKind::NAMES)),
            ("product_id", nullable(string())),
            ("sending_group_id", nullable(string())),
            ("user_id", nullable(string())),
            ("trigger_source", one_of(&TriggerSource::NAMES)),
            ("driver", one_of(&JobDriver::NAMES)),
            ("queue", string()),
            ("priority", integer()),
            ("max_parallel_tasks", integer()),
            ("retry_config", retry_config),
            ("resource_limits", resource_limits_out()),
            ("detailed_status", detailed_status_out()),
            ("stages", list(string())),
            ("last_error", nullable(last_error)),
            ("created_at", time()),
            ("started_at", nullable(time())),
            ("finished_at", nullable(time())),
            ("updated_at", time()),
            (
                "delete_requested_at",
                about(
                    nullable(time()),
                    "Set when deleteJob asked a live job to stop.",
                ),
            ),
        ],
    )
}

pub(super) fn window_stats() -> Value {
    shape(
        &[],
        vec![
            (
                "jobs",
                about(
                    integer(),
                    "Finished in the window: completed + failed + cancelled.",
                ),
            ),
            ("completed", integer()),
            ("failed", integer()),
            ("cancelled", integer()),
            (
                "success_rate",
                about(
                    nullable(number()),
                    "completed / (completed + failed), in percent; null when neither happened.",
                ),
            ),
            (
                "avg_duration_ms",
                about(
                    nullable(number()),
                    "Of the completed jobs, start to finish.",
                ),
            ),
        ],
    )
}

pub(super) fn job_stats() -> Value {
    let hour = shape(
        &[],
        vec![
            ("start", time()),
            ("jobs", integer()),
            ("failures", integer()),
        ],
    );
    let stage = shape(
        &[],
        vec![
            ("name", string()),
            ("runs", integer()),
            ("avg_ms", number()),
        ],
    );
    shape(
        &[],
        vec![
            ("generated_at", time()),
            ("user_id", nullable(string())),
            ("last_24h", schema_ref("WindowStats")),
            ("previous_24h", schema_ref("WindowStats")),
            ("per_hour", about(list(hour), "24 hours, oldest first.")),
            (
                "stages",
                about(
                    list(stage),
                    "Seed 002's order; stages with no run in the window are left out.",
                ),
            ),
        ],
    )
}

pub(super) fn active_job() -> Value {
    let stage = shape(
        &[],
        vec![
            ("name", string()),
            ("state", one_of(&StageState::NAMES)),
            ("started_at", nullable(time())),
            ("elapsed_ms", nullable(integer())),
            (
                "usual_ms",
                about(nullable(integer()), "Its average over the last 24 hours."),
            ),
        ],
    );
    let genre = shape(
        &[],
        vec![
            ("genre", string()),
            ("status", one_of(&TaskStatus::NAMES)),
            ("articles", integer()),
            ("clusters", integer()),
            ("message", nullable(string())),
        ],
    );
    shape(
        &[],
        vec![
            ("id", uuid()),
            ("status", one_of(&JobStatus::NAMES)),
            ("trigger_source", one_of(&TriggerSource::NAMES)),
            ("user_id", nullable(string())),
            ("created_at", time()),
            ("started_at", nullable(time())),
            ("elapsed_ms", integer()),
            ("current_stage", nullable(string())),
            ("progress_percentage", number()),
            ("stages", list(stage)),
            ("genres", list(genre)),
            ("last_error", nullable(schema_ref("DashboardError"))),
        ],
    )
}

pub(super) fn job_progress() -> Value {
    let recent = shape(
        &[],
        vec![
            ("id", uuid()),
            ("status", one_of(&JobStatus::NAMES)),
            ("trigger_source", one_of(&TriggerSource::NAMES)),
            ("user_id", nullable(string())),
            ("started_at", nullable(time())),
            ("finished_at", nullable(time())),
            ("duration_ms", nullable(integer())),
            ("articles", integer()),
            ("genres", integer()),
            ("last_error", nullable(schema_ref("DashboardError"))),
        ],
    );
    shape(
        &[],
        vec![
            ("generated_at", time()),
            ("user_id", nullable(string())),
            (
                "active",
                about(
                    list(schema_ref("ActiveJob")),
                    "Live recap jobs, newest first, at most 10.",
                ),
            ),
            ("more_active", boolean()),
            (
                "last_finished",
                about(
                    nullable(schema_ref("ActiveJob")),
                    "With no live job, the newest finished one.",
                ),
            ),
            (
                "recent",
                about(list(recent), "The newest finished recap jobs."),
            ),
        ],
    )
}
