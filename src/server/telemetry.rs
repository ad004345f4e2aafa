//! What a portal process counts about itself, for `GET /metrics` (`http::prometheus`):
//! tasks handed out and finished, and the latency of every JSON route. Counters only grow
//! for the life of the process, as Prometheus expects; what the database holds (queue
//! depth) is read when scraped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::dispatch::Finished;

/// Upper bounds (seconds) of the request-latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Debug)]
pub struct TaskCounts {
    pub claimed: AtomicU64,
    pub completed: AtomicU64,
    /// Failed and pending again under the job's retry settings.
    pub retried: AtomicU64,
    /// Failed for good.
    pub failed: AtomicU64,
}

impl TaskCounts {
    pub fn finished(&self, result: Finished) {
        let counter = match result {
            Finished::Completed => &self.completed,
            Finished::Retrying => &self.retried,
            Finished::Failed => &self.failed,
            Finished::Refused => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One route's latencies: a count per bucket (not cumulative), the sum and the count.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub sum_seconds: f64,
    pub count: u64,
}

/// `(method, route pattern, status class)`: the route as declared (`/v1/jobs/{job_id}/events`),
/// never the path asked for, so the series stay few.
pub type RouteKey = (String, String, &'static str);

/// The JSON routes' latencies (the tasks' counts are the dispatcher's, `Dispatcher::counts`).
#[derive(Clone, Default)]
pub struct Telemetry {
    routes: Arc<Mutex<HashMap<RouteKey, Latencies>>>,
}

impl Telemetry {
    pub fn observe(&self, key: RouteKey, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut routes = self.routes.lock().expect("latency lock");
        let entry = routes.entry(key).or_default();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&bound| seconds <= bound) {
            entry.buckets[i] += 1;
        }
        entry.sum_seconds += seconds;
        entry.count += 1;
    }

    /// A copy, sorted, so the exposition is stable between scrapes.
    pub fn latencies(&self) -> Vec<(RouteKey, Latencies)> {
        let routes = self.routes.lock().expect("latency lock");
        let mut all: Vec<_> = routes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Middleware of the JSON routes: times each answer under its declared route.
pub async fn time_routes(
    axum::extract::State(telemetry): axum::extract::State<Telemetry>,
    route: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let response = next.run(request).await;
    if let Some(route) = route {
        let class = status_class(response.status().as_u16());
        telemetry.observe(
            (method, route.as_str().to_owned(), class),
            started.elapsed(),
        );
    }
    response
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
