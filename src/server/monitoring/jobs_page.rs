//! The jobs page (`/jobs`): its URL's filters, sort and cursor become a `fetchJobHistory`
//! request, read by that action's own parser, so the page and the API select, sort, page and
//! count alike, and a bad value in a URL gets the API's message, under the URL's name.

use chrono::{Days, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use sqlx::PgPool;

use super::history::fetch_job_history;
use super::input::FetchJobHistory;
use crate::model::{JobsAggregates, JobsQuery, JobsView};
use crate::server::jobs::JobError;

/// Jobs per page of `/jobs`.
pub const JOBS_PAGE_SIZE: i64 = 50;

/// Where each part of a `fetchJobHistory` request comes from in the page's URL.
const URL_NAMES: [(&str, &str); 7] = [
    ("filters.status", "status"),
    ("filters.kind", "kind"),
    ("filters.error_types", "error"),
    ("filters.user_id", "user"),
    ("pagination.cursor", "cursor"),
    ("sort.field", "sort"),
    ("sort.order", "order"),
];

fn url_name(path: &str) -> &'static str {
    let path = path.trim_start_matches("data.");
    URL_NAMES
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("jobs", |(_, name)| name)
}

fn day(name: &'static str, text: &str) -> Result<NaiveDate, JobError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        JobError::invalid(
            name,
            format!("{name}: expected a day as YYYY-MM-DD, got {text:?}"),
        )
    })
}

/// The `fetchJobHistory` request the page's URL asks for (every aggregate, 50 a page; the
/// last `JobsQuery::DEFAULT_DAYS` days when it names no day).
pub fn history_request(query: &JobsQuery) -> Result<FetchJobHistory, JobError> {
    let mut filters = Map::new();
    if !query.status.is_empty() {
        filters.insert("status".into(), json!(query.status));
    }
    if let Some(kind) = &query.kind {
        filters.insert("kind".into(), json!(kind));
    }
    if let Some(error) = &query.error {
        filters.insert("error_types".into(), json!([error.trim()]));
    }
    if let Some(user) = &query.user {
        filters.insert("user_id".into(), json!(user.trim()));
    }
    let from = query
        .effective_from(Utc::now().date_naive())
        .map(|d| day("from", &d))
        .transpose()?;
    let to = query.to.as_deref().map(|d| day("to", d)).transpose()?;
    if from.is_some() || to.is_some() {
        let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        // `to` is the last day included.
        filters.insert(
            "date_range".into(),
            json!({ "start": from.map(midnight), "end": to.map(|d| midnight(d + Days::new(1))) }),
        );
    }
    let mut pagination = json!({ "per_page": JOBS_PAGE_SIZE });
    if let Some(cursor) = &query.cursor {
        pagination["cursor"] = json!(cursor);
    }
    let mut sort = json!({ "field": query.sort.as_deref().unwrap_or("created_at") });
    if let Some(order) = &query.order {
        sort["order"] = json!(order);
    }
    let request = json!({
        "filters": Value::Object(filters),
        "pagination": pagination,
        "sort": sort,
        "aggregations": { "success_rate": true, "avg_duration": true, "error_rate": true },
    });
    serde_path_to_error::deserialize(request).map_err(|error| {
        let name = url_name(&error.path().to_string());
        JobError::invalid(name, format!("{name}: {}", error.into_inner()))
    })
}

pub async fn jobs_page(pool: &PgPool, query: &JobsQuery) -> Result<JobsView, JobError> {
    let history = fetch_job_history(pool, history_request(query)?)
        .await
        .map_err(|error| match error {
            JobError::Invalid { field, message } => {
                let name = url_name(&field);
                JobError::invalid(name, format!("{name}: {message}"))
            }
            other => other,
        })?;
    let totals = history.aggregations;
    Ok(JobsView {
        now: Utc::now(),
        jobs: history.jobs,
        next: history.pagination.next_cursor,
        aggregates: JobsAggregates {
            total: totals.as_ref().map_or(0, |t| t.total),
            finished: totals.as_ref().map_or(0, |t| t.finished),
            success_rate: totals.as_ref().and_then(|t| t.success_rate.flatten()),
            avg_duration_ms: totals.as_ref().and_then(|t| t.avg_duration_ms.flatten()),
            error_rate: totals.as_ref().and_then(|t| t.error_rate.flatten()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(edit: impl FnOnce(&mut JobsQuery)) -> JobsQuery {
        let mut query = JobsQuery::default();
        edit(&mut query);
        query
    }

    #[test]
    fn the_url_becomes_the_same_request_as_the_api_takes() {
        let request = history_request(&query(|q| {
            q.status = vec!["failed".into(), "cancelled".into()];
            q.kind = Some("recap".into());
            q.from = Some("2026-11-01".into());
            q.to = Some("2026-11-30".into());
            q.error = Some("TIMEOUT".into());
            q.sort = Some("duration".into());
            q.order = Some("asc".into());
        }))
        .unwrap();
        let range = request.filters.date_range.unwrap();
        assert_eq!(
            range.start.unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        // The last day is included.
        assert_eq!(range.end.unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(request.filters.status.len(), 2);
        assert_eq!(request.sort.field.as_str(), "duration");
        assert_eq!(request.pagination.per_page(), JOBS_PAGE_SIZE);
    }

    #[test]
    fn a_bad_value_is_refused_under_its_url_name() {
        for (edit, name) in [
            (query(|q| q.status = vec!["lost".into()]), "status"),
            (
                query(|q| q.sort = Some("name; DROP TABLE jobs".into())),
                "sort",
            ),
            (query(|q| q.order = Some("sideways".into())), "order"),
            (query(|q| q.kind = Some("cron".into())), "kind"),
            (query(|q| q.from = Some("yesterday".into())), "from"),
            (query(|q| q.to = Some("2026-13-01".into())), "to"),
        ] {
            match history_request(&edit) {
                Err(JobError::Invalid { field, message }) => {
                    assert_eq!(field, name, "{message}");
                    assert!(message.starts_with(&format!("{name}: ")), "{message}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
