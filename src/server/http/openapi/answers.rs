//! What each action answers in its `data`.

use super::*;

/// The success status and the answer's schema.
pub(super) fn answer(call: Call) -> (u16, Value) {
    match call {
        Call::Job(JobCall::CreateJob) => (201, created_job()),
        Call::Job(
            JobCall::UpdateBatchJob
            | JobCall::PauseJob
            | JobCall::ResumeJob
            | JobCall::CancelJob
            | JobCall::RetryJob,
        ) => (200, updated_job()),
        Call::Job(JobCall::DeleteJob) => (200, deletion()),
        Call::Job(JobCall::GetJobInfo) => (200, job_info()),
        Call::Job(JobCall::FetchJobHistory) => (200, job_history()),
        Call::Job(JobCall::GetJobMetrics) => (200, job_metrics()),
        Call::Task(TaskCall::AddTasks) => (201, tasks_changed()),
        Call::Task(TaskCall::UpdateTasks) => (200, tasks_changed()),
        Call::Task(TaskCall::RecordArticles) => (
            201,
            shape(&[], vec![("job_id", uuid()), ("recorded", integer())]),
        ),
        Call::Task(TaskCall::ClaimTasks) => (200, claimed()),
        Call::Task(TaskCall::Heartbeat) => (200, heartbeat_answer()),
        Call::Task(TaskCall::CompleteTasks | TaskCall::FailTasks) => (200, finish_answer()),
        Call::Error(ErrorCall::ConfigureRetry) => (200, configured_retry()),
        Call::Error(ErrorCall::ManualRecover) => (200, recovery_answer()),
        Call::Error(ErrorCall::AnalyzeErrors) => (200, analysis_answer()),
        Call::Alert(call) => alert_answer(call),
        Call::Task(TaskCall::ReportMetrics) => (
            200,
            shape(&[], vec![("job_id", uuid()), ("stored", integer())]),
        ),
    }
}

pub(super) fn detailed_status_out() -> Value {
    shape(
        &[],
        vec![
            ("current_phase", nullable(string())),
            ("progress_percentage", number()),
            ("active_tasks", integer()),
            ("error_count", integer()),
        ],
    )
}

pub(super) fn updated_job() -> Value {
    shape(
        &[],
        vec![
            ("job_id", uuid()),
            ("previous_status", one_of(&JobStatus::NAMES)),
            ("status", one_of(&JobStatus::NAMES)),
            ("detailed_status", detailed_status_out()),
            ("updated_at", time()),
        ],
    )
}

pub(super) fn deletion() -> Value {
    let deleted = shape(
        &[],
        vec![
            ("result", json!({ "const": "deleted" })),
            ("job_id", uuid()),
        ],
    );
    let stopping = shape(
        &[],
        vec![
            ("result", json!({ "const": "stopping" })),
            ("job_id", uuid()),
            ("delete_after", time()),
        ],
    );
    json!({ "oneOf": [deleted, stopping] })
}

pub(super) fn waiting_task() -> Value {
    let reason = shape(
        &[
            "running",
            "limit",
            "waiting_for",
            "not_before",
            "queue",
            "needs_memory_mb",
            "needs_cpus",
            "largest_memory_mb",
            "largest_cpus",
        ],
        vec![
            (
                "reason",
                one_of(&[
                    "job_paused",
                    "limit_reached",
                    "dependencies",
                    "retry_at",
                    "no_worker",
                    "no_capacity",
                    "ready",
                ]),
            ),
            ("running", integer()),
            ("limit", integer()),
            ("waiting_for", list(string())),
            ("not_before", time()),
            ("queue", string()),
            ("needs_memory_mb", integer()),
            ("needs_cpus", number()),
            ("largest_memory_mb", nullable(integer())),
            ("largest_cpus", nullable(number())),
        ],
    );
    shape(&[], vec![("name", string()), ("reasons", list(reason))])
}

pub(super) fn job_info() -> Value {
    let metrics = shape(
        &[],
        vec![
            ("cpu_percent", nullable(number())),
            ("memory_mb", nullable(number())),
            ("peak_cpu_percent", nullable(number())),
            ("peak_memory_mb", nullable(number())),
            ("items", nullable(integer())),
            ("samples", integer()),
            ("duration_ms", nullable(integer())),
            ("throughput_per_second", nullable(number())),
        ],
    );
    let task = shape(
        &[],
        vec![
            ("name", string()),
            ("status", one_of(&TaskStatus::NAMES)),
            ("attempts", integer()),
            ("worker", nullable(string())),
            ("progress", nullable(number())),
            ("phase", nullable(string())),
            ("message", nullable(string())),
            ("created_at", time()),
            ("started_at", nullable(time())),
            ("finished_at", nullable(time())),
            ("heartbeat_at", nullable(time())),
            ("leased_until", nullable(time())),
        ],
    );
    let log_line = shape(
        &[],
        vec![
            ("task_name", nullable(string())),
            ("level", one_of(&LogLevel::NAMES)),
            ("message", string()),
            ("at", time()),
        ],
    );
    shape(
        &["waiting", "metrics", "task_details", "logs", "stream_url"],
        vec![
            ("job", schema_ref("Job")),
            ("tasks", schema_ref("TaskCounts")),
            (
                "waiting",
                about(
                    list(waiting_task()),
                    "The oldest 50 pending tasks and every reason that holds each back; left \
                     out when none waits.",
                ),
            ),
            ("metrics", about(metrics, "With include_metrics.")),
            (
                "task_details",
                about(
                    shape(
                        &[],
                        vec![("tasks", list(task)), ("next_cursor", nullable(string()))],
                    ),
                    "With include_task_details; `next_cursor` is the next `task_cursor`.",
                ),
            ),
            (
                "logs",
                about(
                    shape(
                        &[],
                        vec![
                            ("lines", list(log_line)),
                            ("next_cursor", nullable(string())),
                        ],
                    ),
                    "With include_logs; `next_cursor` is the next `log_cursor`.",
                ),
            ),
            (
                "stream_url",
                about(string(), "With real_time: `/v1/jobs/{job_id}/events`."),
            ),
        ],
    )
}

pub(super) fn job_history() -> Value {
    let pagination = shape(
        &["page"],
        vec![
            ("page", about(integer(), "When the call paged by number.")),
            ("per_page", integer()),
            ("has_more", boolean()),
            (
                "next_cursor",
                about(
                    nullable(string()),
                    "Send as `pagination.cursor` for the next page.",
                ),
            ),
        ],
    );
    let rate = |text: &str| about(nullable(number()), text.to_string());
    let aggregations = shape(
        &["success_rate", "avg_duration_ms", "error_rate"],
        vec![
            ("total", integer()),
            (
                "finished",
                about(integer(), "Completed, failed and cancelled."),
            ),
            (
                "success_rate",
                rate("Completed / finished, 0 to 1; null when none finished."),
            ),
            ("avg_duration_ms", rate("Over finished jobs that started.")),
            (
                "error_rate",
                rate("Failed / finished, 0 to 1; null when none finished."),
            ),
        ],
    );
    shape(
        &["aggregations"],
        vec![
            ("jobs", list(schema_ref("Job"))),
            ("pagination", pagination),
            (
                "aggregations",
                about(aggregations, "When asked; each rate when asked."),
            ),
        ],
    )
}

pub(super) fn job_metrics() -> Value {
    let bucket = shape(
        &[],
        vec![
            ("start", time()),
            ("count", integer()),
            ("min", nullable(number())),
            ("avg", nullable(number())),
            ("max", nullable(number())),
            (
                "p95",
                about(nullable(number()), "The nearest-rank 95th percentile."),
            ),
        ],
    );
    let series = shape(
        &[],
        vec![
            ("unit", one_of(&["percent", "MB", "ms", "items/s"])),
            (
                "buckets",
                about(
                    list(bucket),
                    "Every bucket of the range; an empty one has count 0.",
                ),
            ),
        ],
    );
    let metrics = json!({
        "type": "object",
        "propertyNames": one_of(&MetricName::NAMES),
        "additionalProperties": series,
    });
    let job = shape(&[], vec![("job_id", uuid()), ("metrics", metrics)]);
    shape(
        &[],
        vec![
            ("interval", one_of(&MetricInterval::NAMES)),
            ("start_time", time()),
            ("end_time", time()),
            ("jobs", about(list(job), "In the order of job_ids.")),
        ],
    )
}

pub(super) fn tasks_changed() -> Value {
    shape(
        &[],
        vec![
            ("job_id", uuid()),
            (
                "tasks",
                about(integer(), "How many tasks the call added or updated."),
            ),
            ("job_status", one_of(&JobStatus::NAMES)),
            ("active_tasks", integer()),
            ("progress_percentage", number()),
        ],
    )
}

pub(super) fn resource_limits_out() -> Value {
    shape(&[], vec![("max_memory", integer()), ("max_cpu", number())])
}

pub(super) fn claimed() -> Value {
    let task = shape(
        &[],
        vec![
            ("task_id", uuid()),
            ("job_id", uuid()),
            ("name", string()),
            ("lease_token", uuid()),
            ("lease_expires_at", time()),
            ("attempt", about(integer(), "1 for the first run.")),
            ("priority", integer()),
            ("resource_limits", resource_limits_out()),
            ("payload", json!({ "type": "object" })),
        ],
    );
    shape(&[], vec![("tasks", list(task)), ("waited_ms", integer())])
}

pub(super) fn heartbeat_answer() -> Value {
    let verdict = shape(
        &[],
        vec![
            ("task_id", uuid()),
            (
                "answer",
                about(
                    one_of(&LeaseAnswer::NAMES),
                    "`pause`: the job is paused, keep heartbeating; `stop`: stop now, nothing \
                     more is accepted.",
                ),
            ),
        ],
    );
    shape(
        &[],
        vec![("leases", list(verdict)), ("lease_expires_at", time())],
    )
}

pub(super) fn finish_answer() -> Value {
    let result = shape(
        &["not_before", "error"],
        vec![
            ("task_id", uuid()),
            (
                "status",
                about(
                    json!({ "type": "integer", "enum": [200, 404, 409] }),
                    "The status this task alone would have got.",
                ),
            ),
            ("result", one_of(&Finished::NAMES)),
            (
                "not_before",
                about(time(), "When a retried task may run again."),
            ),
            ("error", string()),
        ],
    );
    shape(&[], vec![("results", list(result))])
}

/// The job, with `warnings`: what similar work did lately (it is created either way).
pub(super) fn created_job() -> Value {
    json!({ "allOf": [
        schema_ref("Job"),
        shape(&[], vec![(
            "warnings",
            list(shape(&[], vec![
                ("kind", one_of(&["repeated_failures", "memory_below_peak", "cpu_below_peak"])),
                ("message", string()),
                ("figures", json!({ "type": "object" })),
            ])),
        )]),
    ] })
}
