//! `fetchJobHistory`: jobs by seed 000's filters, in one of the allowed sorts, paged by
//! `page` (up to `max_offset` deep) or by an opaque cursor that costs the same at any depth,
//! with aggregates over every job the filters select.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::input::FetchJobHistory;
use super::{job_rollups, store};
use crate::model::{parse_id, BadCursor, Cursor, HistorySort, JobStatus, JobView, SortOrder};
use crate::server::jobs::store::JobRow;
use crate::server::jobs::JobError;

#[derive(Debug, Serialize)]
pub struct JobHistory {
    pub jobs: Vec<JobView>,
    pub pagination: PageInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregations: Option<HistoryAggregates>,
}

#[derive(Debug, Serialize)]
pub struct PageInfo {
    /// The seed's page number, when the call paged by number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    pub per_page: i64,
    pub has_more: bool,
    /// Send as `pagination.cursor` for the next page (same filters and sort).
    pub next_cursor: Option<Cursor>,
}

/// Over all the jobs the filters select. A rate is `null` when no selected job has
/// finished; each is asked for by its flag.
#[derive(Debug, Serialize)]
pub struct HistoryAggregates {
    pub total: i64,
    pub finished: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_duration_ms: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<Option<f64>>,
}

#[derive(FromRow)]
struct AggregateRow {
    total: i64,
    finished: i64,
    completed: i64,
    failed: i64,
    avg_duration_ms: Option<f64>,
}

/// Where a page starts: just after this key and id, in this sort. The sort is part of the
/// cursor, so a cursor sent with another sort is refused rather than misread.
struct Position {
    key: String,
    id: Uuid,
}

fn statement(sort: HistorySort, order: SortOrder) -> &'static str {
    use HistorySort::*;
    use SortOrder::*;
    match (sort, order) {
        (CreatedAt, Asc) => store::HISTORY_CREATED_ASC_SQL,
        (CreatedAt, Desc) => store::HISTORY_CREATED_DESC_SQL,
        (StartedAt, Asc) => store::HISTORY_STARTED_ASC_SQL,
        (StartedAt, Desc) => store::HISTORY_STARTED_DESC_SQL,
        (FinishedAt, Asc) => store::HISTORY_FINISHED_ASC_SQL,
        (FinishedAt, Desc) => store::HISTORY_FINISHED_DESC_SQL,
        (Priority, Asc) => store::HISTORY_PRIORITY_ASC_SQL,
        (Priority, Desc) => store::HISTORY_PRIORITY_DESC_SQL,
        (Duration, Asc) => store::HISTORY_DURATION_ASC_SQL,
        (Duration, Desc) => store::HISTORY_DURATION_DESC_SQL,
    }
}

const INFINITE: &str = "infinity";

fn time_key(time: Option<DateTime<Utc>>) -> String {
    time.map_or(INFINITE.into(), |t| {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    })
}

/// The job's key in `sort`, as the SQL key expression computes it (text, cast there).
fn key_of(job: &JobView, sort: HistorySort) -> String {
    match sort {
        HistorySort::CreatedAt => time_key(Some(job.created_at)),
        HistorySort::StartedAt => time_key(job.started_at),
        HistorySort::FinishedAt => time_key(job.finished_at),
        HistorySort::Priority => job.priority.to_string(),
        HistorySort::Duration => match (job.started_at, job.finished_at) {
            (Some(started), Some(finished)) => {
                let micros = (finished - started).num_microseconds().unwrap_or(i64::MAX);
                let sign = if micros < 0 { "-" } else { "" };
                let micros = micros.unsigned_abs();
                format!("{sign}{}.{:06}", micros / 1_000_000, micros % 1_000_000)
            }
            _ => "Infinity".into(),
        },
    }
}

/// Before the first row of `sort` in `order`.
fn start_of(sort: HistorySort, order: SortOrder) -> Position {
    let (low, high) = match sort {
        HistorySort::CreatedAt | HistorySort::StartedAt | HistorySort::FinishedAt => {
            ("-infinity", INFINITE)
        }
        HistorySort::Priority => ("-32768", "32767"),
        HistorySort::Duration => ("-Infinity", "Infinity"),
    };
    match order {
        SortOrder::Asc => Position {
            key: low.into(),
            id: Uuid::nil(),
        },
        SortOrder::Desc => Position {
            key: high.into(),
            id: Uuid::max(),
        },
    }
}

/// A key as its sort writes it: checked here, since it is cast in SQL.
fn valid_key(sort: HistorySort, key: &str) -> bool {
    match sort {
        HistorySort::CreatedAt | HistorySort::StartedAt | HistorySort::FinishedAt => {
            key == INFINITE || key == "-infinity" || DateTime::parse_from_rfc3339(key).is_ok()
        }
        HistorySort::Priority => key.parse::<i16>().is_ok(),
        HistorySort::Duration => {
            key == "Infinity"
                || key == "-Infinity"
                || key
                    .strip_prefix('-')
                    .unwrap_or(key)
                    .split_once('.')
                    .is_some_and(|(s, f)| {
                        !s.is_empty()
                            && f.len() == 6
                            && s.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit())
                    })
        }
    }
}

fn cursor_of(job: &JobView, sort: HistorySort, order: SortOrder) -> Cursor {
    Cursor::new(&[
        sort.as_str(),
        order.as_str(),
        &key_of(job, sort),
        &job.id.to_string(),
    ])
}

fn read_cursor(
    cursor: &Cursor,
    sort: HistorySort,
    order: SortOrder,
) -> Result<Position, BadCursor> {
    let [field, direction, key, id] = cursor.parts()?;
    if field != sort.as_str() || direction != order.as_str() || !valid_key(sort, &key) {
        return Err(BadCursor);
    }
    Ok(Position {
        key,
        id: parse_id(&id)?,
    })
}

pub async fn fetch_job_history(
    pool: &PgPool,
    request: FetchJobHistory,
) -> Result<JobHistory, JobError> {
    request.check()?;
    let (sort, order) = (request.sort.field, request.sort.order);
    let position = match &request.pagination.cursor {
        Some(cursor) => read_cursor(cursor, sort, order)
            .map_err(|bad| JobError::invalid("data.pagination.cursor", bad.to_string()))?,
        None => start_of(sort, order),
    };
    let filters = &request.filters;
    let statuses: Vec<&str> = filters.status.iter().map(|s| s.as_str()).collect();
    let (start, end) = filters
        .date_range
        .as_ref()
        .map_or((None, None), |range| (range.start, range.end));
    let user = filters.user_id.as_ref().map(|u| u.as_str());
    let error_types: Vec<&str> = filters.error_types.iter().map(|e| e.as_str()).collect();
    let per_page = request.pagination.per_page();
    // The page and its aggregates read one snapshot, so they agree even while jobs change.
    let mut tx = pool.begin().await?;
    if request.aggregations.is_some() {
        sqlx::query(store::ONE_SNAPSHOT_SQL)
            .execute(&mut *tx)
            .await?;
    }
    let rows: Vec<JobRow> = sqlx::query_as(statement(sort, order))
        .bind(&statuses)
        .bind(start)
        .bind(end)
        .bind(user)
        .bind(&error_types)
        .bind(filters.kind)
        .bind(&position.key)
        .bind(position.id)
        .bind(per_page + 1)
        .bind(request.pagination.offset())
        .fetch_all(&mut *tx)
        .await?;
    let mut jobs: Vec<JobView> = rows.into_iter().map(JobView::from).collect();
    let has_more = jobs.len() as i64 > per_page;
    jobs.truncate(per_page as usize);
    let next_cursor = has_more.then(|| cursor_of(&jobs[jobs.len() - 1], sort, order));
    let aggregations = match &request.aggregations {
        None => None,
        Some(asked) => {
            // Wide filters read the rollups; a user filter is narrow (an index on the user)
            // and the rollups do not hold users.
            let days = user
                .is_none()
                .then(|| job_rollups::whole_days(start, end))
                .flatten();
            let row: AggregateRow = match days {
                Some((first, last)) => {
                    sqlx::query_as(store::HISTORY_ROLLUP_AGGREGATES_SQL)
                        .bind(&statuses)
                        .bind(start)
                        .bind(end)
                        .bind(filters.kind)
                        .bind(JobStatus::Completed)
                        .bind(JobStatus::Failed)
                        .bind(JobStatus::finished())
                        .bind(first)
                        .bind(last)
                        .bind(&error_types)
                        .fetch_one(&mut *tx)
                        .await?
                }
                None => {
                    sqlx::query_as(store::HISTORY_AGGREGATES_SQL)
                        .bind(&statuses)
                        .bind(start)
                        .bind(end)
                        .bind(user)
                        .bind(&error_types)
                        .bind(filters.kind)
                        .bind(JobStatus::Completed)
                        .bind(JobStatus::Failed)
                        .bind(JobStatus::finished())
                        .fetch_one(&mut *tx)
                        .await?
                }
            };
            let rate = |n: i64| (row.finished > 0).then(|| n as f64 / row.finished as f64);
            Some(HistoryAggregates {
                total: row.total,
                finished: row.finished,
                success_rate: asked.success_rate.then(|| rate(row.completed)),
                avg_duration_ms: asked.avg_duration.then_some(row.avg_duration_ms),
                error_rate: asked.error_rate.then(|| rate(row.failed)),
            })
        }
    };
    tx.commit().await?;
    Ok(JobHistory {
        jobs,
        pagination: PageInfo {
            page: request.pagination.page.map(|p| p.get()),
            per_page,
            has_more,
            next_cursor,
        },
        aggregations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_a_sort_writes_it_also_reads() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T01:02:03.456789Z")
            .unwrap()
            .to_utc();
        for sort in HistorySort::ALL {
            for order in SortOrder::ALL {
                let start = start_of(sort, order);
                assert!(valid_key(sort, &start.key), "{sort} {order}");
            }
        }
        for sort in [
            HistorySort::CreatedAt,
            HistorySort::StartedAt,
            HistorySort::FinishedAt,
        ] {
            assert!(valid_key(sort, &time_key(Some(at))));
            assert!(valid_key(sort, &time_key(None)));
        }
        assert!(valid_key(HistorySort::Duration, "12.345678"));
        assert!(valid_key(HistorySort::Duration, "-0.000001"));
        assert!(!valid_key(HistorySort::Duration, "12.3"));
        assert!(!valid_key(HistorySort::Duration, "1e9"));
        assert!(!valid_key(HistorySort::Priority, "99999"));
        assert!(!valid_key(HistorySort::CreatedAt, "yesterday"));
    }
}
