//! The actions of `POST /task-operations` (`server::tasks::input`, `server::dispatch::input`).

use super::*;

pub(super) fn add_tasks() -> ActionDoc {
    let data = strict(
        &["job_id", "tasks"],
        vec![
            ("job_id", job_id()),
            (
                "tasks",
                about(
                    array(new_task(), 1, JOB_LIMITS.batch_items),
                    format!(
                        "New names only; dependencies on tasks old or new; at most {} tasks \
                         per job in all.",
                        JOB_LIMITS.tasks_per_job
                    ),
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "Add tasks to a job, with dependencies on its tasks old or new.",
        data,
        example: json!({
            "job_id": JOB_ID,
            "tasks": [
                { "name": "tech", "payload": { "genre": "tech" } },
                { "name": "sports", "depends_on": ["tech"] },
            ],
        }),
    }
}

pub(super) fn update_tasks() -> ActionDoc {
    let update = strict(
        &["name"],
        vec![
            (
                "name",
                about(name(), "A task of the job (422 otherwise); once per call."),
            ),
            (
                "status",
                about(
                    nullable(one_of(&TaskStatus::NAMES)),
                    "Along the task's machine: pending → running → completed, failed or \
                     cancelled; failed → pending or running (409 otherwise).",
                ),
            ),
            ("articles", nullable(counter())),
            ("clusters", nullable(counter())),
            (
                "message",
                about(nullable(message()), "A line for the job's log."),
            ),
            ("error_details", nullable(error_details())),
        ],
    );
    let data = strict(
        &["job_id", "tasks"],
        vec![
            ("job_id", job_id()),
            (
                "tasks",
                about(
                    array(update, 1, JOB_LIMITS.batch_items),
                    "All or none. A dispatched job's tasks are its workers' (409).",
                ),
            ),
        ],
    );
    ActionDoc {
        summary:
            "Update a reported job's tasks, all or none: status, counters, a log line, an error.",
        data,
        example: json!({
            "job_id": JOB_ID,
            "tasks": [{ "name": "tech", "status": "completed", "articles": 120, "clusters": 14 }],
        }),
    }
}

pub(super) fn record_articles() -> ActionDoc {
    let article = strict(
        &["feed_id", "original_user_id", "genre"],
        vec![
            ("feed_id", name()),
            ("original_user_id", name()),
            ("genre", name()),
            ("article_id", nullable(name())),
        ],
    );
    let data = strict(
        &["job_id", "articles"],
        vec![
            ("job_id", job_id()),
            ("articles", array(article, 1, JOB_LIMITS.batch_items)),
        ],
    );
    ActionDoc {
        summary: "Record a batch of seed 002's articles of a job, with their feed, user and genre.",
        data,
        example: json!({
            "job_id": JOB_ID,
            "articles": [{
                "feed_id": "feed-7",
                "original_user_id": "user-42",
                "genre": "tech",
                "article_id": "article-1001",
            }],
        }),
    }
}

pub(super) fn worker_id() -> Value {
    about(name(), "The worker's own name, the same on every call.")
}

pub(super) fn lease(what: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("task_id", about(uuid(), format!("The task {what}."))),
        (
            "lease_token",
            about(
                uuid(),
                "The task's current lease token, from its claim; a stale one is refused.",
            ),
        ),
    ]
}

pub(super) fn claim_tasks() -> ActionDoc {
    let capacity = strict(
        &[],
        vec![
            ("memory_mb", nullable(counter())),
            ("cpus", nullable(measure())),
        ],
    );
    let data = strict(
        &["worker_id", "queues"],
        vec![
            ("worker_id", worker_id()),
            ("queues", unique(array(queue(), 1, MAX_QUEUES))),
            (
                "max_tasks",
                with(nullable(int((1, MAX_BATCH as i64))), "default", json!(1)),
            ),
            (
                "capacity",
                about(
                    capacity,
                    "What the worker can take on beyond what it holds; a bound left out (or \
                     null) is no bound. The object itself may be left out but not null.",
                ),
            ),
            (
                "wait_ms",
                about(
                    nullable(int((0, MAX_WAIT_MS))),
                    "How long to wait for work when there is none; 0 when left out.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "A worker claims pending tasks of dispatched jobs from its queues, best job first, waiting up to wait_ms for work.",
        data,
        example: json!({
            "worker_id": "w1",
            "queues": ["default"],
            "max_tasks": 4,
            "capacity": { "memory_mb": 4096, "cpus": 2 },
            "wait_ms": 1000,
        }),
    }
}

pub(super) fn heartbeat() -> ActionDoc {
    let metrics = strict(
        &[],
        vec![
            ("cpu_percent", nullable(measure())),
            ("memory_mb", nullable(measure())),
            (
                "items",
                about(nullable(counter()), "Items done so far (a counter)."),
            ),
        ],
    );
    let mut report = lease("held");
    report.extend([
        ("progress", nullable(percent())),
        (
            "phase",
            about(
                nullable(name()),
                "The task's, and so the job's, current phase.",
            ),
        ),
        ("message", nullable(message())),
        ("metrics", nullable(metrics)),
        (
            "log",
            about(
                array(message(), 0, MAX_LOG_LINES),
                "Lines for the job's log, oldest first.",
            ),
        ),
    ]);
    let data = strict(
        &["worker_id", "leases"],
        vec![
            ("worker_id", worker_id()),
            (
                "leases",
                about(
                    array(strict(&["task_id", "lease_token"], report), 1, MAX_BATCH),
                    "Each task once.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "A worker extends its leases and reports progress, metrics and log lines; each task is answered continue, pause or stop.",
        data,
        example: json!({
            "worker_id": "w1",
            "leases": [{
                "task_id": TASK_ID,
                "lease_token": LEASE_TOKEN,
                "progress": 40,
                "phase": "Dedup",
                "metrics": { "cpu_percent": 85.5, "memory_mb": 512, "items": 1200 },
                "log": ["deduplicated 1200 articles"],
            }],
        }),
    }
}

pub(super) fn complete_tasks() -> ActionDoc {
    let data = strict(
        &["worker_id", "tasks"],
        vec![
            ("worker_id", worker_id()),
            (
                "tasks",
                about(
                    array(
                        strict(&["task_id", "lease_token"], lease("done")),
                        1,
                        MAX_BATCH,
                    ),
                    "Each task once.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "A worker completes tasks it holds, each fenced by its current lease token.",
        data,
        example: json!({
            "worker_id": "w1",
            "tasks": [{ "task_id": TASK_ID, "lease_token": LEASE_TOKEN }],
        }),
    }
}

pub(super) fn fail_tasks() -> ActionDoc {
    let mut code = about(
        name(),
        format!("Why it failed; `{LEASE_EXPIRED}` is the portal's own (400)."),
    );
    code["not"] = json!({ "const": LEASE_EXPIRED });
    let mut failed = lease("failed");
    failed.extend([
        ("code", code),
        ("message", message()),
        ("stack", nullable(text(JOB_LIMITS.stack_chars))),
        (
            "retryable",
            about(
                nullable(boolean()),
                "`false`: never retry it, whatever the job's retry settings say.",
            ),
        ),
    ]);
    let data = strict(
        &["worker_id", "tasks"],
        vec![
            ("worker_id", worker_id()),
            (
                "tasks",
                about(
                    array(
                        strict(&["task_id", "lease_token", "code", "message"], failed),
                        1,
                        MAX_BATCH,
                    ),
                    "Each task once.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary: "A worker fails tasks it holds; each is retried or fails for good by the job's retry rules.",
        data,
        example: json!({
            "worker_id": "w1",
            "tasks": [{
                "task_id": TASK_ID,
                "lease_token": LEASE_TOKEN,
                "code": "TIMEOUT",
                "message": "feed did not answer",
                "retryable": true,
            }],
        }),
    }
}

pub(super) fn report_metrics() -> ActionDoc {
    let limits = MONITORING_LIMITS;
    let mut sample = strict(
        &[],
        vec![
            (
                "task_name",
                about(
                    nullable(name()),
                    "A task of the job (422 otherwise); left out, a sample of the whole job.",
                ),
            ),
            (
                "at",
                about(
                    nullable(time()),
                    format!(
                        "When it was measured, at most {} s ahead of the portal's clock; now \
                         when left out.",
                        limits.max_sample_ahead_secs
                    ),
                ),
            ),
            ("cpu_percent", nullable(measure())),
            ("memory_mb", nullable(measure())),
            ("items", nullable(counter())),
        ],
    );
    // `ReportMetrics::check`: a sample with no value is a 400.
    sample["anyOf"] = json!([
        { "required": ["cpu_percent"], "properties": { "cpu_percent": { "type": "number" } } },
        { "required": ["memory_mb"], "properties": { "memory_mb": { "type": "number" } } },
        { "required": ["items"], "properties": { "items": { "type": "integer" } } },
    ]);
    let data = strict(
        &["job_id", "samples"],
        vec![
            ("job_id", job_id()),
            (
                "samples",
                about(
                    array(sample, 1, limits.max_samples),
                    "Each with at least one of cpu_percent, memory_mb and items.",
                ),
            ),
        ],
    );
    ActionDoc {
        summary:
            "A reported pipeline sends cpu, memory and item samples of its job or of its tasks.",
        data,
        example: json!({
            "job_id": JOB_ID,
            "samples": [
                { "task_name": "fetch", "cpu_percent": 85.5, "memory_mb": 512, "items": 1200 },
                { "cpu_percent": 12 },
            ],
        }),
    }
}
