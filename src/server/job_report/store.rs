//! The SQL behind the webhook: many reports written by one statement.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::NewReport;

/// What happened to one report of a batch that committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Committed; the `job_status.id` of its job.
    Saved(Uuid),
    /// Its `tool_id` names no row of `tools`; nothing of it was written.
    UnknownTool,
}

/// Upserts `job_status` and appends `job_reports` for every report in one transaction.
/// The result has one entry per report, in order.
pub async fn save_batch(
    conn: &mut PgConnection,
    reports: &[&NewReport],
) -> Result<Vec<Stored>, sqlx::Error> {
    let tool_ids: Vec<Uuid> = reports.iter().filter_map(|r| r.tool_id).collect();
    if tool_ids.is_empty() {
        // One statement is its own transaction: no BEGIN/COMMIT round trips.
        let ids = upsert(conn, reports).await?;
        return Ok(reports
            .iter()
            .map(|r| Stored::Saved(ids[&r.job_key]))
            .collect());
    }

    let mut tx = conn.begin().await?;
    // KEY SHARE keeps the tools from being deleted before this transaction commits.
    let known: HashSet<Uuid> =
        sqlx::query_scalar("SELECT id FROM tools WHERE id = ANY($1) FOR KEY SHARE")
            .bind(&tool_ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let tool_known = |r: &NewReport| r.tool_id.is_none_or(|id| known.contains(&id));
    let accepted: Vec<&NewReport> = reports.iter().copied().filter(|r| tool_known(r)).collect();
    let ids = if accepted.is_empty() {
        HashMap::new()
    } else {
        upsert(&mut tx, &accepted).await?
    };
    tx.commit().await?;
    Ok(reports
        .iter()
        .map(|r| {
            if tool_known(r) {
                Stored::Saved(ids[&r.job_key])
            } else {
                Stored::UnknownTool
            }
        })
        .collect())
}

/// The latest report of each job (by `finished_at`, then arrival) becomes its status, unless
/// the stored one is newer; every report goes into the history. The update runs even for an
/// older report so that `RETURNING` yields every job's id, also for a row another
/// transaction inserted after this statement's snapshot. Rows are locked in `job_key` order,
/// so concurrent batches cannot deadlock.
const UPSERT_SQL: &str = r#"
WITH input AS (
    SELECT *
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                $6::int8[], $7::text[], $8::uuid[])
         WITH ORDINALITY AS t(job_key, title, status, finished_at, started_at, duration_ms, message, tool_id, ord)
),
latest AS (
    SELECT DISTINCT ON (job_key) *
    FROM input
    ORDER BY job_key, finished_at DESC, ord DESC
),
upserted AS (
    INSERT INTO job_status AS s (job_key, title, tool_id, last_status, last_finished_at, last_message)
    SELECT job_key, title, tool_id, status, finished_at, message FROM latest ORDER BY job_key
    ON CONFLICT (job_key) DO UPDATE SET
        title            = CASE WHEN s.last_finished_at <= EXCLUDED.last_finished_at THEN EXCLUDED.title ELSE s.title END,
        tool_id          = CASE WHEN s.last_finished_at <= EXCLUDED.last_finished_at THEN EXCLUDED.tool_id ELSE s.tool_id END,
        last_status      = CASE WHEN s.last_finished_at <= EXCLUDED.last_finished_at THEN EXCLUDED.last_status ELSE s.last_status END,
        last_message     = CASE WHEN s.last_finished_at <= EXCLUDED.last_finished_at THEN EXCLUDED.last_message ELSE s.last_message END,
        updated_at       = CASE WHEN s.last_finished_at <= EXCLUDED.last_finished_at THEN now() ELSE s.updated_at END,
        last_finished_at = GREATEST(s.last_finished_at, EXCLUDED.last_finished_at)
    RETURNING s.id, s.job_key
),
history AS (
    INSERT INTO job_reports (job_status_id, title, status, finished_at, started_at, duration_ms, message, tool_id)
    SELECT u.id, i.title, i.status, i.finished_at, i.started_at, i.duration_ms, i.message, i.tool_id
    FROM input i JOIN upserted u ON u.job_key = i.job_key
    ORDER BY i.ord
)
SELECT id, job_key FROM upserted
"#;

async fn upsert(
    conn: &mut PgConnection,
    reports: &[&NewReport],
) -> Result<HashMap<String, Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(UPSERT_SQL)
        .bind(
            reports
                .iter()
                .map(|r| r.job_key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(reports.iter().map(|r| r.title.as_str()).collect::<Vec<_>>())
        .bind(
            reports
                .iter()
                .map(|r| r.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(reports.iter().map(|r| r.finished_at).collect::<Vec<_>>())
        .bind(reports.iter().map(|r| r.started_at).collect::<Vec<_>>())
        .bind(reports.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
        .bind(
            reports
                .iter()
                .map(|r| r.message.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(reports.iter().map(|r| r.tool_id).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(id, key)| (key, id)).collect())
}
