//! The actions of `POST /job-operations` (`server::jobs::input`, `server::monitoring::input`).

use super::*;

pub(super) fn job_id() -> Value {
    about(uuid(), "The job.")
}

/// `jobs::input::NewTask`, for `createJob` and `addTasks`.
pub(super) fn new_task() -> Value {
    strict(
        &["name"],
        vec![
            ("name", about(name(), "Unique among the job's tasks.")),
            (
                "payload",
                about(
                    nullable(json!({ "type": "object" })),
                    format!(
                        "Any JSON object of at most {} bytes written out; a dispatched task's \
                         worker gets it on stdin. `{{}}` when left out.",
                        JOB_LIMITS.payload_bytes
                    ),
                ),
            ),
            (
                "depends_on",
                about(
                    list(name()),
                    "Tasks of the job (in this call or already there) that must complete first; \
                     a cycle is a 400.",
                ),
            ),
        ],
    )
}

/// `jobs::input::ErrorDetails`.
pub(super) fn error_details() -> Value {
    strict(
        &["code", "message"],
        vec![
            (
                "code",
                about(
                    name(),
                    "TIMEOUT, RATE_LIMITED, PARSE_ERROR, ...: classified by its words as \
                     transient, resource, input or unknown.",
                ),
            ),
            ("message", message()),
            ("stack", nullable(text(JOB_LIMITS.stack_chars))),
        ],
    )
}

pub(super) fn create_job() -> ActionDoc {
    let limits = JOB_LIMITS;
    let retry_config = strict(
        &["max_attempts", "retry_interval", "retry_on_errors"],
        vec![
            (
                "max_attempts",
                about(int(limits.max_attempts), "Attempts, the first included."),
            ),
            (
                "retry_interval",
                about(int(limits.retry_interval), "Seconds between attempts."),
            ),
            (
                "retry_on_errors",
                about(
                    list(name()),
                    "Error codes worth retrying; empty means every code.",
                ),
            ),
        ],
    );
    let resource_limits = strict(
        &["max_memory", "max_cpu"],
        vec![
            (
                "max_memory",
                about(int(limits.max_memory), "Megabytes; 0 means no limit."),
            ),
            (
                "max_cpu",
                about(
                    between(limits.max_cpu.0, limits.max_cpu.1),
                    "Cores, fractions allowed; 0 means no limit.",
                ),
            ),
        ],
    );
    let batch_needs = "Required (and not null) unless `kind` is `recap`.";
    let mut data = strict(
        &[],
        vec![
            ("product_id", about(nullable(name()), batch_needs)),
            ("sending_group_id", about(nullable(name()), batch_needs)),
            (
                "user_id",
                about(
                    nullable(name()),
                    "Whose job: what fetchJobHistory and the dashboard filter by.",
                ),
            ),
            (
                "priority",
                about(
                    nullable(int(limits.priority)),
                    format!(
                        "Higher is claimed first; {} when left out.",
                        limits.default_priority
                    ),
                ),
            ),
            (
                "max_parallel_tasks",
                about(
                    nullable(int(limits.max_parallel_tasks)),
                    format!(
                        "Tasks running at once; {} when left out.",
                        limits.default_max_parallel_tasks
                    ),
                ),
            ),
            (
                "retry_config",
                about(
                    nullable(retry_config),
                    format!(
                        "All three fields when given; left out: {} attempts, {} s apart, on \
                         every code.",
                        limits.default_max_attempts, limits.default_retry_interval
                    ),
                ),
            ),
            (
                "resource_limits",
                about(
                    nullable(resource_limits),
                    "Both fields when given; left out: no limits. Workers must declare enough \
                     capacity for a dispatched job's tasks.",
                ),
            ),
            (
                "kind",
                about(
                    nullable(one_of(&JobKind::NAMES)),
                    format!(
                        "`batch` when left out. A `recap` job gets seed 002's eight stages ({}) \
                         and needs no product or sending group.",
                        RECAP_STAGES.join(", ")
                    ),
                ),
            ),
            (
                "trigger_source",
                about(
                    nullable(one_of(&TriggerSource::NAMES)),
                    "`user` when left out.",
                ),
            ),
            (
                "driver",
                about(
                    nullable(one_of(&JobDriver::NAMES)),
                    "`reported` when left out: its pipeline reports on it. `dispatched`: \
                     workers claim its tasks (claimTasks) and the job follows them.",
                ),
            ),
            (
                "queue",
                about(
                    nullable(queue()),
                    "A dispatched job's queue; `default` when left out.",
                ),
            ),
            (
                "tasks",
                about(
                    array(new_task(), 0, limits.batch_items),
                    "Its first tasks: unique names, dependencies only on tasks of this list.",
                ),
            ),
            (
                "stages",
                about(
                    nullable(unique(array(name(), 0, limits.max_stages))),
                    "A batch job's stages, which `detailed_status.current_phase` must then be \
                     one of. A recap job must leave it out (or null).",
                ),
            ),
        ],
    );
    // `NewJob::check`: the rules that depend on `kind`, a 400 like any other.
    data["if"] = json!({ "properties": { "kind": { "const": "recap" } }, "required": ["kind"] });
    data["then"] = json!({ "properties": { "stages": { "type": "null" } } });
    data["else"] = json!({
        "required": ["product_id", "sending_group_id"],
        "properties": {
            "product_id": { "type": "string" },
            "sending_group_id": { "type": "string" },
        },
    });
    let data = with(
        data,
        "examples",
        json!([{
            "product_id": "product-123",
            "sending_group_id": "group-456",
            "priority": 8,
            "max_parallel_tasks": 4,
            "retry_config": { "max_attempts": 5, "retry_interval": 30, "retry_on_errors": ["TIMEOUT"] },
            "resource_limits": { "max_memory": 2048, "max_cpu": 2 },
        }]),
    );
    // A recap job that names its product too, so that leaving out any one field still
    // makes a job the parser accepts.
    let example = json!({
        "kind": "recap",
        "product_id": "product-123",
        "sending_group_id": "group-456",
        "user_id": "user-42",
        "trigger_source": "system",
        "priority": 8,
        "max_parallel_tasks": 4,
        "retry_config": { "max_attempts": 5, "retry_interval": 30, "retry_on_errors": ["TIMEOUT"] },
        "resource_limits": { "max_memory": 2048, "max_cpu": 2 },
        "tasks": [
            { "name": "tech", "payload": { "genre": "tech" } },
            { "name": "sports", "payload": { "genre": "sports" }, "depends_on": ["tech"] },
        ],
    });
    ActionDoc {
        summary: "Create a job (operator): a batch job needs product_id and sending_group_id; a recap job gets seed 002's eight stages.",
        data,
        example,
    }
}

pub(super) fn update_batch_job() -> ActionDoc {
    let detailed_status = strict(
        &[
            "current_phase",
            "progress_percentage",
            "active_tasks",
            "error_count",
        ],
        vec![
            (
                "current_phase",
                about(
                    name(),
                    "One of the job's stages when it has any (400 otherwise).",
                ),
            ),
            ("progress_percentage", percent()),
            ("active_tasks", count()),
            ("error_count", count()),
        ],
    );
    let data = strict(
        &["job_id"],
        vec![
            ("job_id", job_id()),
            (
                "status",
                about(
                    nullable(one_of(&JobStatus::NAMES)),
                    "A move along the state machine (409 otherwise; a worker may only start, \
                     complete or fail a run: 403). The job's own status is a progress report.",
                ),
            ),
            (
                "detailed_status",
                about(
                    nullable(detailed_status),
                    "All four fields when given; sent to a finished job it is a 409.",
                ),
            ),
            (
                "error_details",
                about(
                    nullable(error_details()),
                    "Kept in the job's errors and counted in error_count.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "Report on a reported job (worker or operator): a status along the state machine, its detailed status, an error.",
        data,
        example: json!({
            "job_id": JOB_ID,
            "status": "running",
            "detailed_status": {
                "current_phase": "fetching",
                "progress_percentage": 42.5,
                "active_tasks": 3,
                "error_count": 0,
            },
        }),
    }
}

pub(super) fn delete_job() -> ActionDoc {
    let data = strict(
        &["job_id"],
        vec![
            ("job_id", job_id()),
            (
                "force",
                about(
                    flag(),
                    format!(
                        "Delete a running or paused job at once. Without it such a job is \
                         cancelled and goes at its pipeline's next call (which gets 410) or \
                         after {} s.",
                        JOB_LIMITS.delete_grace_secs
                    ),
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "Delete a job and everything under it (operator); a job a pipeline drives is stopped first unless force.",
        data,
        example: json!({ "job_id": JOB_ID, "force": false }),
    }
}

pub(super) fn get_job_info() -> ActionDoc {
    let data = strict(
        &["job_id"],
        vec![
            ("job_id", job_id()),
            (
                "include_metrics",
                about(
                    flag(),
                    "Adds `metrics`: use now and at peak, items, duration, throughput.",
                ),
            ),
            (
                "include_task_details",
                about(
                    flag(),
                    "Adds `task_details`: 500 tasks a page, in the order they were added.",
                ),
            ),
            (
                "include_logs",
                about(flag(), "Adds `logs`: 100 log lines a page, newest first."),
            ),
            (
                "real_time",
                about(
                    flag(),
                    "Adds `stream_url`, the job's Server-Sent Events stream.",
                ),
            ),
            (
                "task_cursor",
                about(
                    nullable(cursor()),
                    "`task_details.next_cursor` of a previous answer.",
                ),
            ),
            (
                "log_cursor",
                about(
                    nullable(cursor()),
                    "`logs.next_cursor` of a previous answer.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "Read a job and its tasks' counts (viewer), with seed 000's optional metrics, task details, logs and stream URL.",
        data,
        example: json!({
            "job_id": JOB_ID,
            "include_metrics": true,
            "include_task_details": true,
            "include_logs": true,
            "real_time": false,
        }),
    }
}

/// `pauseJob`, `resumeJob`, `cancelJob`, `retryJob` (`jobs::input::JobCommand`).
pub(super) fn command(summary: &'static str, reason: &str) -> ActionDoc {
    let data = strict(
        &["job_id"],
        vec![
            ("job_id", job_id()),
            (
                "reason",
                about(nullable(message()), "Kept in the job's event trail."),
            ),
        ],
    );
    ActionDoc {
        summary,
        data,
        example: json!({ "job_id": JOB_ID, "reason": reason }),
    }
}

pub(super) fn fetch_job_history() -> ActionDoc {
    let limits = MONITORING_LIMITS;
    let values = limits.max_filter_values;
    let date_range = strict(
        &[],
        vec![
            ("start", about(nullable(time()), "Created at or after.")),
            (
                "end",
                about(
                    nullable(time()),
                    "Created before; `start` after `end` is a 400.",
                ),
            ),
        ],
    );
    let filters = strict(
        &[],
        vec![
            (
                "status",
                about(
                    array(one_of(&JobStatus::NAMES), 0, values),
                    "Any of these statuses.",
                ),
            ),
            (
                "date_range",
                about(nullable(date_range), "On `created_at`."),
            ),
            (
                "error_types",
                about(
                    array(name(), 0, values),
                    format!(
                        "Jobs that had an error of one of these codes (`TIMEOUT`) or classes ({}).",
                        ErrorClass::NAMES.join(", ")
                    ),
                ),
            ),
            ("user_id", nullable(name())),
            ("kind", nullable(one_of(&JobKind::NAMES))),
        ],
    );
    let pagination = strict(
        &[],
        vec![
            (
                "page",
                about(
                    nullable(int((1, i64::MAX))),
                    format!(
                        "From 1; a page may start at most {} jobs deep (a 400 beyond: follow \
                         the cursor). Not above 1 with `cursor`.",
                        limits.max_offset
                    ),
                ),
            ),
            (
                "per_page",
                with(
                    nullable(int((1, limits.max_per_page))),
                    "default",
                    json!(limits.default_per_page),
                ),
            ),
            (
                "cursor",
                about(
                    nullable(cursor()),
                    "`pagination.next_cursor` of the previous answer, with the same filters \
                     and sort; it costs the same at any depth.",
                ),
            ),
        ],
    );
    let sort = strict(
        &["field"],
        vec![
            (
                "field",
                about(
                    one_of(&HistorySort::NAMES),
                    "Required once `sort` is given; `created_at` when `sort` is left out. \
                     `duration` is finished minus started.",
                ),
            ),
            (
                "order",
                with(one_of(&SortOrder::NAMES), "default", json!("desc")),
            ),
        ],
    );
    let aggregations = strict(
        &[],
        vec![
            ("success_rate", flag()),
            ("avg_duration", flag()),
            ("error_rate", flag()),
        ],
    );
    let data = strict(
        &[],
        vec![
            ("filters", filters),
            ("pagination", pagination),
            ("sort", sort),
            (
                "aggregations",
                about(
                    nullable(aggregations),
                    "Each `true` to get it, over every job the filters select, not the page.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "Page through jobs by filters and sort (viewer), with aggregates over every job the filters select.",
        data,
        example: json!({
            "filters": {
                "status": ["failed", "cancelled"],
                "date_range": { "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z" },
                "error_types": ["TIMEOUT"],
            },
            "pagination": { "page": 1, "per_page": 50 },
            "sort": { "field": "finished_at", "order": "desc" },
            "aggregations": { "success_rate": true, "avg_duration": true, "error_rate": true },
        }),
    }
}

pub(super) fn get_job_metrics() -> ActionDoc {
    let limits = MONITORING_LIMITS;
    let data = strict(
        &["job_ids", "metrics"],
        vec![
            (
                "job_ids",
                about(
                    unique(array(uuid(), 1, limits.max_metric_jobs)),
                    "Each must exist (404 otherwise); answered in this order.",
                ),
            ),
            (
                "metrics",
                unique(array(one_of(&MetricName::NAMES), 1, MetricName::ALL.len())),
            ),
            (
                "interval",
                about(
                    nullable(one_of(&MetricInterval::NAMES)),
                    format!(
                        "`5m` when left out. Buckets per series times jobs may be at most {} \
                         (a 400 otherwise).",
                        limits.max_buckets
                    ),
                ),
            ),
            (
                "start_time",
                about(nullable(time()), "A day before `end_time` when left out."),
            ),
            (
                "end_time",
                about(nullable(time()), "Now when left out; after `start_time`."),
            ),
        ],
    );
    ActionDoc {
        summary: "Bucketed cpu, memory, duration and throughput series of one to 50 jobs (viewer).",
        data,
        example: json!({
            "job_ids": [JOB_ID],
            "metrics": ["cpu", "memory", "throughput"],
            "interval": "5m",
            "start_time": "2026-12-01T00:00:00Z",
            "end_time": "2026-12-02T00:00:00Z",
        }),
    }
}
