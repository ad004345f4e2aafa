//! `GET /metrics`: this process's figures in Prometheus's text format (version 0.0.4), for
//! a scraper holding an API token. Counters are the process's own (`server::telemetry`, the
//! batchers); queue depth and workers are read from the database when scraped, so every
//! portal behind a load balancer reports the same for them.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use sqlx::PgPool;

use super::error::ApiError;
use crate::model::dispatch::Finished;
use crate::server::telemetry::LATENCY_BUCKETS;
use crate::server::AppState;

const QUEUE_DEPTH_SQL: &str = "
    SELECT j.queue, count(*) FILTER (WHERE t.status = 'pending') AS pending,
           count(*) FILTER (WHERE t.status = 'running') AS running
    FROM job_tasks t JOIN jobs j ON j.id = t.job_id
    WHERE t.status IN ('pending', 'running') AND j.driver = 'dispatched'
    GROUP BY 1 ORDER BY 1";

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let queues = queue_depth(&state.pool).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        exposition(&state, &queues),
    ))
}

async fn queue_depth(pool: &PgPool) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(QUEUE_DEPTH_SQL).fetch_all(pool).await
}

/// Escapes a label value as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn exposition(state: &AppState, queues: &[(String, i64, i64)]) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(4096);
    let reports = state.job_reports.stats();
    family(
        &mut out,
        "jobdeck_job_reports_stored_total",
        "counter",
        "Webhook reports committed by this process.",
    );
    let _ = writeln!(
        out,
        "jobdeck_job_reports_stored_total {}",
        reports.stored.load(Relaxed)
    );
    family(
        &mut out,
        "jobdeck_job_report_batches_total",
        "counter",
        "Transactions the webhook's batcher sent.",
    );
    let _ = writeln!(
        out,
        "jobdeck_job_report_batches_total {}",
        reports.batches.load(Relaxed)
    );

    let tasks = &state.dispatch.counts;
    family(
        &mut out,
        "jobdeck_tasks_claimed_total",
        "counter",
        "Tasks this process handed to workers.",
    );
    let _ = writeln!(
        out,
        "jobdeck_tasks_claimed_total {}",
        tasks.claimed.load(Relaxed)
    );
    family(
        &mut out,
        "jobdeck_tasks_finished_total",
        "counter",
        "Finished tasks this process recorded, by result (retrying: failed, to run again).",
    );
    for (result, counter) in [
        (Finished::Completed, &tasks.completed),
        (Finished::Retrying, &tasks.retried),
        (Finished::Failed, &tasks.failed),
    ] {
        let _ = writeln!(
            out,
            "jobdeck_tasks_finished_total{{result=\"{}\"}} {}",
            result.as_str(),
            counter.load(Relaxed)
        );
    }

    family(
        &mut out,
        "jobdeck_queue_tasks",
        "gauge",
        "Tasks of dispatched jobs waiting for a worker (pending) or held by one (running), by queue.",
    );
    for (queue, pending, running) in queues {
        let queue = label(queue);
        let _ = writeln!(
            out,
            "jobdeck_queue_tasks{{queue=\"{queue}\",status=\"pending\"}} {pending}"
        );
        let _ = writeln!(
            out,
            "jobdeck_queue_tasks{{queue=\"{queue}\",status=\"running\"}} {running}"
        );
    }

    family(
        &mut out,
        "jobdeck_http_request_duration_seconds",
        "histogram",
        "Time to answer a JSON route (to the response's head; a stream's life is not counted).",
    );
    for ((method, route, class), latencies) in state.telemetry.latencies() {
        let labels = format!(
            "method=\"{}\",route=\"{}\",status=\"{class}\"",
            label(&method),
            label(&route)
        );
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(latencies.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "jobdeck_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "jobdeck_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             jobdeck_http_request_duration_seconds_sum{{{labels}}} {}\n\
             jobdeck_http_request_duration_seconds_count{{{labels}}} {}",
            latencies.count, latencies.sum_seconds, latencies.count
        );
    }

    let pools = [
        ("portal", &state.pool),
        ("protocol", &state.dispatch.protocol_pool),
    ];
    family(
        &mut out,
        "jobdeck_db_connections",
        "gauge",
        "Connections of this process's pools to PostgreSQL, by pool and state.",
    );
    for (name, pool) in pools {
        let (size, idle) = (pool.size(), pool.num_idle() as u32);
        let _ = writeln!(
            out,
            "jobdeck_db_connections{{pool=\"{name}\",state=\"idle\"}} {idle}\n\
             jobdeck_db_connections{{pool=\"{name}\",state=\"in_use\"}} {}",
            size.saturating_sub(idle)
        );
    }
    family(
        &mut out,
        "jobdeck_db_connections_max",
        "gauge",
        "The most connections each pool opens.",
    );
    for (name, pool) in pools {
        let _ = writeln!(
            out,
            "jobdeck_db_connections_max{{pool=\"{name}\"}} {}",
            pool.options().get_max_connections()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\\b \"c\"\nd"), "a\\\\b \\\"c\\\"\\nd");
    }
}
