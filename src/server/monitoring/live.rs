//! Live updates (seed 000's real-time monitoring): Server-Sent Events fed by PostgreSQL
//! `LISTEN/NOTIFY`, so every portal process behind a load balancer delivers every change.
//!
//! A change to a job is noted in memory after its transaction commits (`JobChanges::touch`)
//! and this process sends the ids it noted at most every [`COALESCE`], in one `NOTIFY
//! jobdeck_jobs, 'id,id,...'` (chunked to fit a payload): ids, never payloads, and never a
//! notification per row inside a hot transaction. The process's one `LISTEN` connection
//! (`dispatch::wakeup`, shared with the task wake-ups) hands what it hears to [`JobChanges`],
//! which fans it out to the streams in memory. A stream reads the job again when its id
//! comes by; when the listener lost its connection (a notification may be gone), every
//! stream gets `resync` and sends the job afresh. A process that dies between a commit and
//! its next send loses those notifications: its clients reconnect and are resynced, and the
//! pages poll every 5 s anyway.

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::Event;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::store;
use crate::model::JobStatus;
use crate::server::jobs::store::get_job;

pub const CHANNEL: &str = "jobdeck_jobs";
/// How often a process sends the ids it noted: the most a job's stream waits for a change.
pub const COALESCE: Duration = Duration::from_millis(250);
/// PostgreSQL's payload limit is 8,000 bytes; an id and its comma take 37.
const IDS_PER_NOTIFY: usize = 200;
/// Transitions a reconnecting job stream replays; past it, `resync`.
pub const REPLAY_MAX: i64 = 1_000;

#[derive(Clone, Debug)]
pub enum Change {
    /// These jobs changed (in any portal process).
    Jobs(Arc<[Uuid]>),
    /// Notifications may have been missed: read everything again.
    Resync,
}

/// One per process: what it noted and will send, and what it heard, fanned out.
#[derive(Clone)]
pub struct JobChanges {
    noted: Arc<Mutex<HashSet<Uuid>>>,
    heard: broadcast::Sender<Change>,
}

impl Default for JobChanges {
    fn default() -> Self {
        Self {
            noted: Arc::default(),
            heard: broadcast::channel(1024).0,
        }
    }
}

impl JobChanges {
    /// After a commit that changed the job: it is announced with the next send.
    pub fn touch(&self, job_id: Uuid) {
        self.noted.lock().expect("noted").insert(job_id);
    }

    pub fn touch_all(&self, job_ids: impl IntoIterator<Item = Uuid>) {
        self.noted.lock().expect("noted").extend(job_ids);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.heard.subscribe()
    }

    /// A notification on [`CHANNEL`], as the listener heard it.
    pub fn heard(&self, payload: &str) {
        let ids: Vec<Uuid> = payload
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect();
        if !ids.is_empty() {
            let _ = self.heard.send(Change::Jobs(ids.into()));
        }
    }

    /// The listener (re)connected: whatever was sent meanwhile was not heard.
    pub fn resync(&self) {
        let _ = self.heard.send(Change::Resync);
    }

    /// The sender: runs for the life of the process. Safe in every process (each sends
    /// only what it noted itself).
    pub async fn run_sender(self, pool: PgPool) {
        let mut tick = tokio::time::interval(COALESCE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let noted: Vec<Uuid> = std::mem::take(&mut *self.noted.lock().expect("noted"))
                .into_iter()
                .collect();
            for chunk in noted.chunks(IDS_PER_NOTIFY) {
                let payload = chunk
                    .iter()
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let sent = sqlx::query(store::NOTIFY_JOBS_SQL)
                    .bind(CHANNEL)
                    .bind(&payload)
                    .execute(&pool)
                    .await;
                if let Err(error) = sent {
                    // Kept for the next send: the listener is fine, so no resync would
                    // tell the streams they missed these.
                    tracing::debug!(%error, "could not announce job changes; trying again");
                    self.touch_all(chunk.iter().copied());
                }
            }
        }
    }
}

/// An SSE body from the events a stream's task sends; it ends when the task does, and the
/// task ends when the client has gone (the receiver is dropped).
pub struct EventStream(mpsc::Receiver<Event>);

impl futures_core::Stream for EventStream {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|event| event.map(Ok))
    }
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}

/// `Last-Event-ID` (or `?since=`) as a job stream wrote it: the job's newest `job_events`
/// id it had seen. Every change to a job holds its row lock until it commits, so one job's
/// event ids grow in commit order (its `now()` times need not).
pub fn parse_event_id(text: &str) -> Option<i64> {
    text.trim().parse().ok().filter(|id| *id >= 0)
}

#[derive(sqlx::FromRow)]
struct Transition {
    from_status: Option<JobStatus>,
    to_status: JobStatus,
    at: DateTime<Utc>,
    actor: String,
    reason: Option<String>,
}

/// One job's stream: `transition` events the job went through since `since` (when
/// resuming), then `job` (the whole job, its id the job's `updated_at`) now and after each
/// change; `deleted` when it goes; `resync` after a gap.
pub fn job_stream(
    pool: PgPool,
    changes: &JobChanges,
    job_id: Uuid,
    since: Option<i64>,
) -> EventStream {
    let (tx, rx) = mpsc::channel(16);
    // Subscribed before the first read: a change between the read and the wait is kept.
    let mut heard = changes.subscribe();
    tokio::spawn(async move {
        let mut last: Option<DateTime<Utc>> = None;
        if let Some(since) = since {
            let replay: Result<Vec<Transition>, _> = sqlx::query_as(store::TRANSITIONS_SINCE_SQL)
                .bind(job_id)
                .bind(since)
                .bind(REPLAY_MAX + 1)
                .fetch_all(&pool)
                .await;
            match replay {
                Ok(rows) if (rows.len() as i64) <= REPLAY_MAX => {
                    for row in rows {
                        let event = Event::default().event("transition").data(
                            json!({ "from_status": row.from_status, "to_status": row.to_status,
                                    "at": row.at, "actor": row.actor, "reason": row.reason })
                            .to_string(),
                        );
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                _ => {
                    if tx.send(resync()).await.is_err() {
                        return;
                    }
                }
            }
        }
        loop {
            match send_job(&pool, &tx, job_id, &mut last).await {
                Sent::Ok => {}
                Sent::Ended => return,
            }
            let gap = loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    change = heard.recv() => match change {
                        Ok(Change::Jobs(ids)) if ids.contains(&job_id) => break false,
                        Ok(Change::Jobs(_)) => continue,
                        Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => break true,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            };
            if gap {
                last = None;
                if tx.send(resync()).await.is_err() {
                    return;
                }
            }
        }
    });
    EventStream(rx)
}

enum Sent {
    Ok,
    Ended,
}

/// The job as it is now, unless the client already has this version.
async fn send_job(
    pool: &PgPool,
    tx: &mpsc::Sender<Event>,
    job_id: Uuid,
    last: &mut Option<DateTime<Utc>>,
) -> Sent {
    // The event id first: a transition committed between the two reads is then replayed
    // again on resume rather than skipped.
    let read = async {
        let mut conn = pool.acquire().await?;
        let seen: i64 = sqlx::query_scalar(store::LAST_EVENT_SQL)
            .bind(job_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok::<_, sqlx::Error>((seen, get_job(&mut conn, job_id).await?))
    };
    let event = match read.await {
        Ok((_, Some(job))) if Some(job.updated_at) == *last => return Sent::Ok,
        Ok((seen, Some(job))) => {
            *last = Some(job.updated_at);
            let data = serde_json::to_string(&job).expect("a job serializes");
            Event::default()
                .event("job")
                .id(seen.to_string())
                .data(data)
        }
        Ok((_, None)) => {
            let _ = tx
                .send(
                    Event::default()
                        .event("deleted")
                        .data(json!({ "job_id": job_id }).to_string()),
                )
                .await;
            return Sent::Ended;
        }
        // The database is away: say so; the client retries (EventSource reconnects).
        Err(error) => {
            tracing::debug!(%error, "a job stream could not read its job");
            let _ = tx.send(resync()).await;
            return Sent::Ended;
        }
    };
    match tx.send(event).await {
        Ok(()) => Sent::Ok,
        Err(_) => Sent::Ended,
    }
}

/// The portal-wide stream: `jobs` events with the ids of jobs that changed; `resync` after
/// a gap, and at once for a client that resumes (ids are not kept to replay).
pub fn portal_stream(changes: &JobChanges, resuming: bool) -> EventStream {
    let (tx, rx) = mpsc::channel(64);
    let mut heard = changes.subscribe();
    tokio::spawn(async move {
        if resuming && tx.send(resync()).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                _ = tx.closed() => return,
                change = heard.recv() => match change {
                    Ok(Change::Jobs(ids)) => Event::default()
                        .event("jobs")
                        .id(Utc::now().timestamp_micros().to_string())
                        .data(json!({ "job_ids": &*ids }).to_string()),
                    Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        resync()
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    EventStream(rx)
}
