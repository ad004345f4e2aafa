//! Each route's request and responses.

use super::*;

pub(super) fn reply(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

pub(super) fn error(description: &str) -> Value {
    reply(description, schema_ref("Error"))
}

/// Nothing was done; `Retry-After` says when to send it again.
pub(super) fn unavailable(description: &str) -> Value {
    let mut response = error(description);
    response["headers"] = json!({ "Retry-After": { "$ref": "#/components/headers/RetryAfter" } });
    response
}

pub(super) fn redirect(description: &str) -> Value {
    json!({
        "description": description,
        "headers": {
            "Location": { "description": "Where the browser goes.", "schema": string() },
            "Set-Cookie": { "description": "The cookie set or cleared.", "schema": string() },
        },
    })
}

pub(super) const CROSS_SITE: &str =
    "A request whose Origin is another site, or that carries a session \
    cookie without proving it is from this site (Origin or `Sec-Fetch-Site: same-origin`).";

pub(super) fn healthz() -> Value {
    fn health(status: &[&str], database: &[&str]) -> Value {
        shape(
            &[],
            vec![("status", one_of(status)), ("database", one_of(database))],
        )
    }
    let down = json!({
        "oneOf": [health(&["unavailable"], &["migrating", "unreachable"]), schema_ref("Error")],
    });
    json!({
        "responses": {
            "200": reply("The database answers and is migrated.", health(&["ok"], &["ok"])),
            "503": reply(
                "The database is unreachable or still migrating (or the portal is at its \
                 request limit: the Error body, with Retry-After).",
                down,
            ),
        },
    })
}

pub(super) fn job_report() -> Value {
    let limits = REPORT_LIMITS;
    let body = open(
        &["job_key", "title", "status", "finished_at"],
        vec![
            (
                "job_key",
                about(line(limits.job_key_chars), "Identifies the job."),
            ),
            (
                "title",
                about(line(limits.title_chars), "Shown on the page."),
            ),
            ("status", one_of(&ReportStatus::NAMES)),
            (
                "finished_at",
                about(
                    time(),
                    format!(
                        "RFC 3339 with a zone, the year {} or later, at most {} h ahead of the \
                         portal's clock.",
                        limits.min_year,
                        limits.future_skew_secs / 3600
                    ),
                ),
            ),
            (
                "started_at",
                about(
                    nullable(time()),
                    "Not after finished_at; gives the run's duration.",
                ),
            ),
            (
                "duration_ms",
                about(
                    nullable(int((0, limits.max_duration_ms))),
                    "Whole milliseconds, 31 days at most; wins over started_at.",
                ),
            ),
            (
                "message",
                about(
                    nullable(text(limits.message_chars)),
                    "`null` or `\"\"` mean none.",
                ),
            ),
            (
                "tool_id",
                about(
                    json!({ "anyOf": [uuid(), { "const": "" }, { "type": "null" }] }),
                    "A row of `tools` (422 when none has it); `null` or `\"\"` mean none.",
                ),
            ),
        ],
    );
    let example = json!({
        "job_key": "minpaku-in-report",
        "title": "minpaku-IN レポート作成",
        "status": "error",
        "finished_at": "2026-11-22T09:00:00+09:00",
        "message": "在庫CSVが見つかりません",
        "duration_ms": 5230,
    });
    let accepted = shape(
        &[],
        vec![
            ("success", json!({ "const": true })),
            ("id", about(uuid(), "The stored report.")),
            ("job_key", string()),
        ],
    );
    json!({
        "parameters": [{
            "name": SECRET_HEADER,
            "in": "header",
            "required": true,
            "description": "The webhook secret, `TC_PORTAL_WEBHOOK_SECRET` on the server.",
            "schema": string(),
        }],
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": body, "example": example } },
        },
        "responses": {
            "200": reply("Stored exactly once.", accepted),
            "400": error(
                "Not a JSON object, nested too deep, not UTF-8, or a field missing, of the wrong \
                 type, too long, holding NUL, or a date out of range (`field` names it).",
            ),
            "401": error("The secret header is missing or wrong (checked before the body is read)."),
            "408": error("The body paused longer than JOBDECK_HTTP_BODY_TIMEOUT_MS."),
            "413": error(&format!("The body is larger than {} bytes.", limits.body_bytes)),
            "422": error("`tool_id` names no tool."),
            "500": error("No webhook secret is configured."),
            "503": unavailable(
                "Not stored; send it again as it is: the queue is full, the report waited too \
                 long for a writer, the database is unavailable, or the portal is at its request \
                 limit.",
            ),
            "504": error(
                "The database stopped answering after the report was sent to it: it may have been \
                 stored (a retry can add a second history row; the last status stays right).",
            ),
        },
    })
}

pub(super) fn job_start() -> Value {
    let body = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["job_key"],
        "properties": {
            "job_key": about(line(REPORT_LIMITS.job_key_chars), "The script's key, as in its reports."),
            "started_at": about(nullable(time()), "When the run began; the arrival time when absent."),
        },
    });
    let started = shape(
        &[],
        vec![
            ("success", json!({ "const": true })),
            ("job_key", string()),
            ("started_at", time()),
        ],
    );
    json!({
        "parameters": [{
            "name": SECRET_HEADER,
            "in": "header",
            "required": true,
            "description": "The webhook secret, `TC_PORTAL_WEBHOOK_SECRET` on the server.",
            "schema": string(),
        }],
        "requestBody": {
            "required": true,
            "content": { "application/json": {
                "schema": body,
                "example": { "job_key": "minpaku-in-report", "started_at": "2026-11-22T09:00:00+09:00" },
            } },
        },
        "responses": {
            "200": reply("Recorded (only each script's latest start is kept).", started),
            "400": error("Not JSON, an unknown field, or job_key / started_at invalid (`field` names it)."),
            "401": error("The secret header is missing or wrong."),
            "413": error("The body is larger than 4096 bytes."),
            "500": error("No webhook secret is configured."),
            "503": unavailable("Not recorded; send it again."),
        },
    })
}

pub(super) fn login() -> Value {
    let credentials = open(
        &["email", "password"],
        vec![
            ("email", string()),
            (
                "password",
                json!({ "type": "string", "format": "password" }),
            ),
            (
                "next",
                about(
                    string(),
                    "The form's: a path on this site to go to after signing in (/incidents \
                     otherwise); a JSON caller gets JSON whatever it says.",
                ),
            ),
        ],
    );
    let example = json!({ "email": "ops@example.com", "password": "correct horse battery staple" });
    let mut signed_in = reply(
        "Signed in (a JSON body); the session cookie is set.",
        shape(&[], vec![("user", schema_ref("CurrentUser"))]),
    );
    signed_in["headers"] = json!({
        "Set-Cookie": {
            "description": "`jobdeck_session` (`__Host-jobdeck_session` under https), HttpOnly, SameSite=Lax.",
            "schema": string(),
        },
    });
    json!({
        "requestBody": {
            "required": true,
            "content": {
                "application/json": { "schema": credentials, "example": example },
                "application/x-www-form-urlencoded": { "schema": credentials },
            },
        },
        "responses": {
            "200": signed_in,
            "303": redirect(
                "A form: signed in (to `next`, the cookie set), or refused (to \
                 `/login?error=invalid|disabled|limited|busy&next=...`).",
            ),
            "400": error("The body could not be read as the form or JSON (a field missing or of the wrong type)."),
            "401": error("Wrong email or password (a JSON body)."),
            "403": error(&format!("The account is disabled (a JSON body). {CROSS_SITE}")),
            "429": unavailable("Too many failed logins for this account or client network."),
            "503": unavailable(
                "The password checks are all busy (Retry-After: 1), the database is unavailable, \
                 or the portal is at its request limit.",
            ),
        },
    })
}

pub(super) fn lang() -> Value {
    let form = open(&["to"], vec![("to", one_of(&["ja", "en"]))]);
    json!({
        "requestBody": {
            "required": true,
            "content": { "application/x-www-form-urlencoded": { "schema": form } },
        },
        "responses": {
            "303": redirect("Back to the page it came from, with the `i18n_pref_locale` cookie."),
            "400": error("`to` is missing or not a language of this site."),
            "403": error(CROSS_SITE),
        },
    })
}

pub(super) fn logout() -> Value {
    json!({
        "responses": {
            "303": redirect("To /login, the session cookie cleared."),
            "403": error(CROSS_SITE),
        },
    })
}

pub(super) fn me() -> Value {
    json!({
        "responses": { "200": reply("The caller.", schema_ref("CurrentUser")) },
    })
}

pub(super) fn viewer_only() -> Value {
    error("The caller's role may not read jobs (a worker token).")
}

pub(super) fn dashboard_filter() -> Value {
    json!([{
        "name": "user_id",
        "in": "query",
        "required": false,
        "description": format!(
            "Only the jobs this user triggered or whose articles came from the user's feeds. \
             Trimmed; empty means every user; at most {} bytes, no control characters. It is \
             the only parameter: another, or a repeat, is a 400.",
            DashboardFilter::MAX_USER_ID
        ),
        "schema": { "type": "string", "maxLength": DashboardFilter::MAX_USER_ID },
    }])
}

pub(super) fn dashboard_progress() -> Value {
    json!({
        "parameters": dashboard_filter(),
        "responses": {
            "200": reply("The live recap jobs and the recent runs.", schema_ref("JobProgress")),
            "400": error("A parameter other than user_id, a repeat, or a bad user_id."),
            "403": viewer_only(),
        },
    })
}

pub(super) fn dashboard_stats() -> Value {
    json!({
        "parameters": dashboard_filter(),
        "responses": {
            "200": reply("The figures of the last 24 hours and the 24 before.", schema_ref("JobStats")),
            "400": error("A parameter other than user_id, a repeat, or a bad user_id."),
            "403": viewer_only(),
        },
    })
}

/// One request body and one answer per action, each `{action: <const>, data}`.
pub(super) fn action_route(calls: &[Call]) -> Value {
    let mut bodies = Vec::new();
    let mut examples = Map::new();
    let (mut ok, mut created) = (Vec::new(), Vec::new());
    for &call in calls {
        let doc = action_doc(call);
        let name = call.name();
        let example = json!({ "action": name, "data": doc.example });
        bodies.push(json!({
            "title": name,
            "description": doc.summary,
            "type": "object",
            "required": ["action", "data"],
            "properties": { "action": { "const": name }, "data": doc.data },
            // serde's adjacently tagged enums skip keys beside the tag and the content.
            "additionalProperties": true,
            "examples": [example],
        }));
        examples.insert(
            name.to_string(),
            json!({ "summary": doc.summary, "value": example }),
        );
        let (status, data) = answer(call);
        let body = json!({
            "title": name,
            "type": "object",
            "required": ["action", "data"],
            "properties": { "action": { "const": name }, "data": data },
        });
        if status == 201 {
            created.push(body);
        } else {
            ok.push(body);
        }
    }
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        reply(
            "Done: the action's name and its answer.",
            json!({ "oneOf": ok }),
        ),
    );
    if !created.is_empty() {
        responses.insert(
            "201".into(),
            reply(
                "Created: the action's name and its answer.",
                json!({ "oneOf": created }),
            ),
        );
    }
    json!({
        "requestBody": {
            "required": true,
            "content": {
                "application/json": { "schema": { "oneOf": bodies }, "examples": examples },
            },
        },
        "responses": responses,
    })
}

pub(super) const BAD_ACTION: &str =
    "The body is not an `{action, data}` JSON object, names an unknown \
    action (`field`: `action`), or its `data` is refused by the action's parser (`field`: the \
    path, `data.tasks[2].name`), including checks across fields and items (duplicates, a cycle, \
    a range); also a body that could not be read (larger than 2 MB).";

pub(super) fn job_operations() -> Value {
    let mut operation = action_route(&JobCall::ALL.map(Call::Job));
    let responses = &mut operation["responses"];
    responses["400"] = error(BAD_ACTION);
    responses["403"] = error(&format!(
        "The caller's role may not do this action, or this move of the job (a worker's \
         updateBatchJob may only start, complete or fail a run: with current_status and \
         requested_status); an account whose password must change first. {CROSS_SITE}"
    ));
    responses["404"] = error("No such job (for getJobMetrics, one of job_ids).");
    responses["409"] = error(
        "The job's state does not allow it: a move the state machine refuses (current_status, \
         allowed, requested_status), a command from a status it is not offered in \
         (current_status, allowed_from, requested_status), a report on a finished run, or \
         updateBatchJob on a dispatched job.",
    );
    responses["410"] =
        error("The job was deleted (job_id, deleted_at): a pipeline driving it must stop.");
    responses["415"] = error("The body is not sent as `Content-Type: application/json`.");
    responses["504"] = error(
        "updateBatchJob: the database stopped answering after a batch of reports was sent; the \
         report may or may not be stored.",
    );
    operation
}

pub(super) fn error_operations() -> Value {
    let mut operation = action_route(&ErrorCall::ALL.map(Call::Error));
    let responses = &mut operation["responses"];
    responses["400"] = error(BAD_ACTION);
    responses["403"] = error(&format!(
        "The caller's role is not operator or admin; an account whose password must change \
         first. {CROSS_SITE}"
    ));
    responses["404"] = error("manualRecover: no such error record.");
    responses["409"] = error(
        "manualRecover: the record is recovered or a recovery of it is under way (of two \
         concurrent recoveries, the second); its job is not failed or is reported; its task used \
         its attempts (force) or its type's conditions do not hold (ignore_conditions).",
    );
    responses["410"] = error("manualRecover: the record's job was deleted.");
    responses["415"] = error("The body is not sent as `Content-Type: application/json`.");
    responses["422"] =
        error("manualRecover: a script's record, which its next successful report recovers.");
    operation
}

pub(super) fn task_operations() -> Value {
    let mut operation = action_route(&TaskCall::ALL.map(Call::Task));
    let finished = json!({
        "type": "object",
        "required": ["action", "data"],
        "properties": {
            "action": one_of(&[TaskCall::CompleteTasks.as_str(), TaskCall::FailTasks.as_str()]),
            "data": finish_answer(),
        },
    });
    let refused = |description: &str| {
        reply(
            description,
            json!({ "oneOf": [schema_ref("Error"), finished] }),
        )
    };
    let responses = &mut operation["responses"];
    responses["400"] = error(BAD_ACTION);
    responses["403"] = error(&format!(
        "The caller's role may not report on jobs (a viewer); an account whose password must \
         change first. {CROSS_SITE}"
    ));
    responses["404"] = refused(
        "No such job; or every task of a completeTasks or failTasks call is unknown (the \
         action's answer, each result `refused`).",
    );
    responses["409"] = refused(
        "The job is finished; updateTasks on a dispatched job; a task move its machine refuses \
         (task, current_status, allowed); or every task of a completeTasks or failTasks call \
         was presented with a stale lease token (the action's answer, each result `refused`).",
    );
    responses["410"] =
        error("The job was deleted (job_id, deleted_at): a pipeline driving it must stop.");
    responses["415"] = error("The body is not sent as `Content-Type: application/json`.");
    responses["422"] = error(
        "A task the job does not have: updateTasks' `data.tasks[i].name`, reportMetrics' \
         `data.samples[i].task_name`.",
    );
    operation
}

pub(super) fn event_stream(description: String, events: Value, example: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "text/event-stream": {
                "schema": string(),
                "example": example,
                "x-events": events,
            },
        },
    })
}

pub(super) fn job_events() -> Value {
    let transition = shape(
        &[],
        vec![
            ("from_status", nullable(one_of(&JobStatus::NAMES))),
            ("to_status", one_of(&JobStatus::NAMES)),
            ("at", time()),
            ("actor", string()),
            ("reason", nullable(string())),
        ],
    );
    let events = json!({
        "job": schema_ref("Job"),
        "transition": transition,
        "activity": shape(&[], vec![("job_id", uuid())]),
        "deleted": shape(&[], vec![("job_id", uuid())]),
        "resync": { "type": "object", "maxProperties": 0 },
    });
    let description = format!(
        "Events: `job` (data: the whole job; id: the id of its newest event trail row, which \
         grows in commit order) at once and after every change; `transition` (data: from_status, \
         to_status, at, actor, reason) for every status change since `Last-Event-ID` or `since`, \
         sent first and only when resuming, up to {REPLAY_MAX} (more is a `resync`); `activity` \
         (data: job_id) when its tasks reported without changing the job (samples, a \
         heartbeat); `deleted` \
         (data: job_id) when the job goes, and the stream ends; `resync` (data: {{}}) after a \
         gap: read the job afresh."
    );
    let resume = "Resume after this event id (a `job` event's id); `Last-Event-ID` wins over it.";
    json!({
        "parameters": [
            {
                "name": "job_id",
                "in": "path",
                "required": true,
                "description": "The job; not a UUID is a 400 naming `job_id`.",
                "schema": uuid(),
            },
            {
                "name": "since",
                "in": "query",
                "required": false,
                "description": resume,
                "schema": { "type": "integer", "minimum": 0 },
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": false,
                "description": "Sent by EventSource when it reconnects: the last event id it saw.",
                "schema": { "type": "integer", "minimum": 0 },
            },
        ],
        "responses": {
            "200": event_stream(
                description,
                events,
                "event: job\nid: 42\ndata: {\"id\":\"0b7e3c9a-5f1d-4e2a-9c8b-3d6f1a2e4b5c\",\"status\":\"running\",...}\n\n",
            ),
            "400": error("`job_id` is not a UUID, or `since` / `Last-Event-ID` is not an event id this stream gave out."),
            "403": viewer_only(),
            "404": error("No such job."),
            "410": error("The job was deleted (job_id, deleted_at)."),
            "503": unavailable("The job could not be read; try again."),
        },
    })
}

pub(super) fn portal_events() -> Value {
    let events = json!({
        "jobs": shape(&[], vec![("job_ids", list(uuid()))]),
        "resync": { "type": "object", "maxProperties": 0 },
    });
    let description = "Events: `jobs` (data: job_ids, the jobs that changed; id: a timestamp in \
        microseconds) as changes are heard; `resync` (data: {}) at once for a client that \
        resumes, and after a gap: refetch what is shown."
        .to_string();
    let resuming = "Any value: the client is resuming, so the stream starts with `resync`.";
    json!({
        "parameters": [
            {
                "name": "since",
                "in": "query",
                "required": false,
                "description": resuming,
                "schema": string(),
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": false,
                "description": resuming,
                "schema": string(),
            },
        ],
        "responses": {
            "200": event_stream(
                description,
                events,
                "event: jobs\nid: 1796190000123456\ndata: {\"job_ids\":[\"0b7e3c9a-5f1d-4e2a-9c8b-3d6f1a2e4b5c\"]}\n\n",
            ),
            "400": error("`Last-Event-ID` is not text."),
            "403": viewer_only(),
        },
    })
}

pub(super) fn prometheus() -> Value {
    json!({
        "responses": {
            "200": {
                "description": "Prometheus's text format (`text/plain; version=0.0.4; \
                    charset=utf-8`): jobdeck_job_reports_stored_total, \
                    jobdeck_job_report_batches_total, jobdeck_tasks_claimed_total, \
                    jobdeck_tasks_finished_total{result}, jobdeck_queue_tasks{queue,status}, \
                    jobdeck_http_request_duration_seconds{method,route,status}, \
                    jobdeck_db_connections{pool,state}, jobdeck_db_connections_max{pool}.",
                "content": {
                    "text/plain": {
                        "schema": string(),
                        "example": "# HELP jobdeck_tasks_claimed_total Tasks this process handed to workers.\n# TYPE jobdeck_tasks_claimed_total counter\njobdeck_tasks_claimed_total 42\n",
                    },
                },
            },
        },
    })
}

pub(super) fn openapi() -> Value {
    json!({
        "responses": {
            "200": reply("This document.", json!({ "type": "object" })),
        },
    })
}
