//! The OpenAPI 3.1 document of the JSON routes (`GET /openapi.json`), written by hand from
//! the parsers rather than derived from them: each `{action, data}` action's schema says what
//! its parser takes (types, bounds, the fields it will not go without), so it stays right
//! only while it is kept beside them. [`action_doc`] matches every action, so a new one does
//! not compile until it is documented; [`route_summary`] lets a test walk the route table and
//! find a route this file forgot.
//!
//! Conventions the schemas follow, from serde: a field read as `Option<T>` takes `null` as
//! if it were left out (its schema allows `null`); one read with `#[serde(default)]` may be
//! left out but not sent as `null`; every `data` object refuses unknown fields
//! (`deny_unknown_fields`: `additionalProperties: false`).

use axum::http::Method;
use serde_json::{json, Map, Value};

use super::job_report::SECRET_HEADER;
use super::routes::{Access, RouteInfo};
use crate::model::dispatch::codes::LEASE_EXPIRED;
use crate::model::dispatch::{Finished, LeaseAnswer};
use crate::model::{
    AlertCall, Call, ConditionField, ConditionOperator, DashboardFilter, ErrorCall, ErrorClass,
    HistorySort, JobCall, JobDriver, JobKind, JobStatus, LogLevel, MetricInterval, MetricName,
    RecoveryStatus, ReportStatus, RerunReason, Role, SortOrder, StageState, SuggestionKind,
    TaskCall, TaskStatus, Trend, TriggerSource, JOB_LIMITS, MONITORING_LIMITS, RECAP_STAGES,
    RECOVERY_LIMITS, REPORT_LIMITS,
};
use crate::server::dispatch::input::{MAX_BATCH, MAX_LOG_LINES, MAX_QUEUES, MAX_WAIT_MS};
use crate::server::monitoring::live::REPLAY_MAX;

mod alert_actions;
mod answers;
mod components;
mod error_actions;
mod job_actions;
mod route_docs;
mod schema;
mod task_actions;

use alert_actions::*;
use answers::*;
use components::*;
use error_actions::*;
use job_actions::*;
use route_docs::*;
use schema::*;
use task_actions::*;

/// One action's documentation.
pub struct ActionDoc {
    pub summary: &'static str,
    /// JSON Schema of the action's `data`, with `required` listing exactly the fields whose absence the parser refuses with 400.
    pub data: Value,
    /// A `data` the parser accepts as written (ids may be any well-formed UUID; the job need not exist).
    pub example: Value,
}

/// Every action documented: an exhaustive `match` (no `_` arm), so a new action does not compile without its documentation.
pub fn action_doc(call: Call) -> ActionDoc {
    match call {
        Call::Job(JobCall::CreateJob) => create_job(),
        Call::Job(JobCall::UpdateBatchJob) => update_batch_job(),
        Call::Job(JobCall::DeleteJob) => delete_job(),
        Call::Job(JobCall::GetJobInfo) => get_job_info(),
        Call::Job(JobCall::PauseJob) => command(
            "Pause a running job (operator). A dispatched job's holders are told `pause`.",
            "the pipeline's queue is drained",
        ),
        Call::Job(JobCall::ResumeJob) => command(
            "Resume a paused job (operator); a pending job is started by its pipeline or worker, not resumed.",
            "maintenance is over",
        ),
        Call::Job(JobCall::CancelJob) => command(
            "Cancel a pending, running or paused job (operator); its unfinished tasks are cancelled.",
            "started by mistake",
        ),
        Call::Job(JobCall::RetryJob) => command(
            "Retry a failed job (operator): pending again, its failed and cancelled tasks run again with all their attempts.",
            "the upstream feed is back",
        ),
        Call::Job(JobCall::FetchJobHistory) => fetch_job_history(),
        Call::Job(JobCall::GetJobMetrics) => get_job_metrics(),
        Call::Task(TaskCall::AddTasks) => add_tasks(),
        Call::Task(TaskCall::UpdateTasks) => update_tasks(),
        Call::Task(TaskCall::RecordArticles) => record_articles(),
        Call::Task(TaskCall::ClaimTasks) => claim_tasks(),
        Call::Task(TaskCall::Heartbeat) => heartbeat(),
        Call::Task(TaskCall::CompleteTasks) => complete_tasks(),
        Call::Task(TaskCall::FailTasks) => fail_tasks(),
        Call::Task(TaskCall::ReportMetrics) => report_metrics(),
        Call::Error(ErrorCall::ConfigureRetry) => configure_retry(),
        Call::Error(ErrorCall::ManualRecover) => manual_recover(),
        Call::Error(ErrorCall::AnalyzeErrors) => analyze_errors(),
        Call::Alert(call) => alert_action(call),
    }
}

/// The document for these routes: one `paths` entry per route (path and lower-case method), each with summary, description, security (none for Access::Public; bearer or session cookie for Identified), request body where there is one, and responses. The two action routes' requestBody schema is `oneOf` one object per action `{action: {const: name}, data: <data schema>}` with that action's example under `examples`. A route this function has no description for gets the summary "undocumented" (a test will refuse that).
pub fn document(routes: &[RouteInfo]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let method = route.method.as_str().to_ascii_lowercase();
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[method.as_str()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Jobdeck",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON routes of Jobdeck, a job monitoring and control portal. \
                Every error is `{\"error\": \"...\", \"field\": \"...\"}` (components.schemas.Error).",
        },
        "paths": paths,
        "components": components(),
    })
}

/// The summary this file gives a route, `None` if it has none (the test walks the route table with it).
pub fn route_summary(method: &axum::http::Method, path: &str) -> Option<&'static str> {
    route_doc(method, path).map(|doc| doc.summary)
}

const UNDOCUMENTED: &str = "undocumented";

/// What this file says of a route; `document` adds its security and the responses every
/// route shares.
struct RouteDoc {
    summary: &'static str,
    description: &'static str,
    /// Its parameters, request body and responses.
    operation: fn() -> Value,
}

fn route(
    summary: &'static str,
    description: &'static str,
    operation: fn() -> Value,
) -> Option<RouteDoc> {
    Some(RouteDoc {
        summary,
        description,
        operation,
    })
}

fn route_doc(method: &Method, path: &str) -> Option<RouteDoc> {
    match (method.as_str(), path) {
        ("GET", "/healthz") => route(
            "Health check",
            "200 when the database answers and its migrations are applied, else 503; for load \
             balancers, so it needs no identity.",
            healthz,
        ),
        ("POST", "/api/monitor/job-report") => route(
            "Report a script's run (seed 003 webhook)",
            "A scheduled script reports how its run ended. It is authenticated by its own secret \
             header, not by a token or a session. 200 is sent after the report's transaction \
             committed (stored exactly once); any 4xx and 503 mean it was not stored, so a 503 \
             may be sent again as it is; 504 means the outcome is unknown. Unknown fields are \
             ignored and `null` counts as absent. A report older than the stored one (by \
             `finished_at`) goes into the history without overwriting the last status.",
            job_report,
        ),
        ("POST", "/api/monitor/job-start") => route(
            "Signal that a script's run began (issue 25)",
            "Sent by a script as it starts, with the job-report webhook's secret header. A \
             `stuck` alert rule fires when no report follows within the grace; a start also \
             counts as a sign of life for `missed_run`. The job-report contract is unchanged.",
            job_start,
        ),
        ("POST", "/login") => route(
            "Sign in",
            "Email and password. A JSON body (`Content-Type: application/json`) is answered with \
             JSON and status codes; the login page's form with redirects. Success sets the \
             session cookie, with a new id at every login. A wrong email and a wrong password \
             get the same answer; after 10 failures within 15 minutes for one account or from \
             one client network the next attempts get 429 until the oldest failure leaves the \
             window. A request whose Origin is another site is refused (403).",
            login,
        ),
        ("POST", "/lang") => route(
            "Switch the pages' language",
            "Keeps the choice in leptos_i18n's `i18n_pref_locale` cookie for a year and sends \
             the browser back to the page it came from (its Referer, when that is on this site; \
             /incidents otherwise). A request whose Origin is another site is refused (403).",
            lang,
        ),
        ("POST", "/logout") => route(
            "Sign out",
            "Ends the caller's session on the server and clears the cookie.",
            logout,
        ),
        ("GET", "/api/me") => route(
            "Who am I",
            "The caller: a signed-in user, or an API token (its name and role; `id` and `email` \
             are null).",
            me,
        ),
        ("GET", "/v1/dashboard/job-progress") => route(
            "Recap dashboard: live jobs and recent runs",
            "Seed 002: the newest 10 live recap jobs (pending, running, paused) with their \
             stages and genres, the last finished one when none is live, and the 20 newest \
             finished. Answered from memory, recomputed about every second per filter. Needs a \
             viewer.",
            dashboard_progress,
        ),
        ("GET", "/v1/dashboard/job-stats") => route(
            "Recap dashboard: 24-hour figures",
            "Seed 002: recap jobs that finished in the last 24 hours and in the 24 before, per \
             hour and per stage. Answered from memory, recomputed about every 5 s per filter. \
             Needs a viewer.",
            dashboard_stats,
        ),
        ("POST", "/job-operations") => route(
            "Job actions ({action, data})",
            "Seed 001's job control and seed 000's monitoring reads, one `{\"action\": ..., \
             \"data\": {...}}` body per call, sent as `Content-Type: application/json`. Success \
             is `{\"action\": ..., \"data\": ...}`, 201 for createJob and 200 otherwise. Each \
             action's `data` is read by its own parser: an unknown field, a wrong type, a value \
             out of range or a missing required field is a 400 whose `field` is its path \
             (`data.retry_config.max_attempts`); keys beside `action` and `data` are ignored. \
             Reads need a viewer, commands an operator; updateBatchJob a worker or an operator. \
             Every change is audited, and so is a refused (403) or conflicting (409) one.",
            job_operations,
        ),
        ("POST", "/task-operations") => route(
            "Task and worker actions ({action, data})",
            "Tasks of reported jobs (addTasks, updateTasks, recordArticles, reportMetrics) and \
             the worker protocol of dispatched jobs (claimTasks, heartbeat, completeTasks, \
             failTasks), in the envelope and error shape of /job-operations. Needs a worker, \
             operator or admin identity. A pipeline's call takes its job's lock, so a deleted \
             job answers 410 and a finished one 409. A finishing call whose every task was \
             refused is answered with that refusal's status (409, else 404) and the usual \
             `{action, data}` body with the per-task results.",
            task_operations,
        ),
        ("POST", "/error-operations") => route(
            "Error recovery actions ({action, data})",
            "Seed 004's error recovery (configureRetry, manualRecover, analyzeErrors), in the envelope and \
             error shape of /job-operations. Needs an operator; every change is audited, and so \
             is a refused (403, 409) one.",
            error_operations,
        ),
        ("POST", "/alert-operations") => route(
            "Alert actions ({action, data})",
            "Issue 25's alerts: the open alerts and what operators do with them (acknowledge, \
             snooze, note), scripts' schedules, rules, channels and silences, in the envelope \
             and error shape of /job-operations. The lists need a viewer, the changes an \
             operator; every change is audited by the service the pages call, and so is a \
             refused one.",
            alert_operations,
        ),
        ("GET", "/v1/jobs/{job_id}/events") => route(
            "One job's live events (Server-Sent Events)",
            "The job at once and after every change, as Server-Sent Events. A client that \
             reconnects with `Last-Event-ID` (EventSource sends it by itself) or `?since=` first \
             gets every status change since then. A comment every 15 s keeps proxies from \
             closing an idle stream. A job that does not exist is a 404 (410 if deleted), not \
             an empty stream. Needs a viewer.",
            job_events,
        ),
        ("GET", "/v1/events") => route(
            "Every job change (Server-Sent Events)",
            "The ids of the jobs that change, portal-wide, at most every 250 ms per portal \
             process. It cannot replay: a client that resumes gets `resync` first and should \
             refetch what it shows. A comment every 15 s keeps proxies from closing an idle \
             stream. Needs a viewer.",
            portal_events,
        ),
        ("GET", "/metrics") => route(
            "Prometheus metrics",
            "This process's figures in Prometheus's text format 0.0.4, for any identity (a \
             scraper sends an API token). Counters start at 0 when the process starts; queue \
             depths are read from the database at each scrape.",
            prometheus,
        ),
        ("GET", "/openapi.json") => route(
            "This OpenAPI document",
            "The JSON routes and every `{action, data}` action, with the schemas their parsers \
             enforce.",
            openapi,
        ),
        _ => None,
    }
}

fn operation(route: &RouteInfo) -> Value {
    let mut operation = match route_doc(&route.method, route.path) {
        Some(doc) => {
            let mut operation = (doc.operation)();
            operation["summary"] = json!(doc.summary);
            operation["description"] = json!(doc.description);
            operation
        }
        None => json!({
            "summary": UNDOCUMENTED,
            "responses": { "default": { "description": UNDOCUMENTED } },
        }),
    };
    operation["operationId"] = json!(operation_id(route));
    operation["security"] = match route.access {
        Access::Public => json!([]),
        Access::Identified => json!([{ "bearer": [] }, { "session": [] }]),
    };
    if let Some(responses) = operation["responses"].as_object_mut() {
        if route.access == Access::Identified {
            responses.entry("401").or_insert_with(|| {
                error(
                    "No identity: neither a bearer token nor a live session cookie; or a token \
                     that is malformed, unknown, expired or revoked.",
                )
            });
        }
        // Every route sits behind the same load limits (`limits.rs`).
        responses
            .entry("500")
            .or_insert_with(|| error("A fault of the portal's; the cause is logged, never shown."));
        responses.entry("503").or_insert_with(|| {
            unavailable(
                "Nothing was done and the request can be sent again: the portal is serving as \
                 many requests as it can, or the database is unavailable.",
            )
        });
    }
    operation
}

/// `post_job_operations`, `get_v1_jobs_job_id_events`: unique per method and path.
fn operation_id(route: &RouteInfo) -> String {
    let words: Vec<&str> = route
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    format!(
        "{}_{}",
        route.method.as_str().to_ascii_lowercase(),
        words.join("_")
    )
}
