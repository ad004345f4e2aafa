//! Live updates (seed 000's real-time monitoring): Server-Sent Events fed by PostgreSQL
//! `LISTEN/NOTIFY`, so every portal process behind a load balancer delivers every change.
//!
//! A change to a job is noted in memory after its transaction commits (`JobChanges::touch`)
//! and this process sends the ids it noted at most every [`COALESCE`], in one `NOTIFY
//! jobdeck_jobs, 'id,id,...'` (chunked to fit a payload): ids, never payloads, and never a
//! notification per row inside a hot transaction. The process's one `LISTEN` connection
//! (`dispatch::wakeup`, shared with the task wake-ups) hands what it hears to [`JobChanges`],
//! which fans it out in memory. One watcher task per watched job reads the job again when its
//! id comes by and hands the result to every stream of that job in the process, so a
//! thousand streams of one job cost one read per change; when the listener lost its
//! connection (a notification may be gone), every stream gets `resync` and the job afresh. A process that dies between a commit and
//! its next send loses those notifications: its clients reconnect and are resynced, and the
//! pages poll every 5 s anyway.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::Event;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, watch, Notify};
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
    /// The jobs this process's streams watch, each read by one watcher task.
    watchers: Watchers,
}

impl Default for JobChanges {
    fn default() -> Self {
        Self {
            noted: Arc::default(),
            heard: broadcast::channel(1024).0,
            watchers: Arc::default(),
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

/// What this process last read of a watched job, shared by all of the job's streams here:
/// one read per change per process, however many streams watch the job.
#[derive(Clone, Default)]
enum Snapshot {
    #[default]
    Reading,
    Job {
        /// The job's newest `job_events` id when it was read: the event id.
        seen: i64,
        updated_at: DateTime<Utc>,
        data: Arc<str>,
    },
    Gone,
    /// The database is away.
    Unreadable,
}

#[derive(Clone, Default)]
struct Watched {
    snapshot: Snapshot,
    /// Gaps the watcher had (the listener reconnected, or it fell behind): each stream sends
    /// `resync` once per gap.
    gaps: u64,
    /// Reads so far (a stream's first job is from a read after it opened).
    reads: u64,
    /// Reads for news of the job: one that found it unchanged was news of its tasks (samples,
    /// a heartbeat), which streams pass on as `activity`.
    news: u64,
}

/// A job's watcher: where it publishes, and a bell that asks it to read the job again.
#[derive(Clone)]
struct Watcher {
    sender: Arc<watch::Sender<Watched>>,
    read_again: Arc<Notify>,
}

type Watchers = Arc<Mutex<HashMap<Uuid, Watcher>>>;

/// A job's stream as it opens: the job was read (or found gone).
pub enum Opened {
    Stream(EventStream),
    /// No such job, or the database is away: the caller says which.
    NotThere,
}

/// One job's stream: `transition` events the job went through since `since` (when
/// resuming), then `job` (the whole job, its id the job's newest event id) now and after
/// each change; `activity` when its tasks reported without changing the job (new samples
/// for its charts); `deleted` when it goes; `resync` after a gap.
pub async fn job_stream(
    pool: PgPool,
    changes: &JobChanges,
    job_id: Uuid,
    since: Option<i64>,
) -> Opened {
    // The transitions to replay are read before the job, so the job sent after them is at
    // least as new as they are.
    let replayed = match since {
        Some(since) => Some(replay(&pool, job_id, since).await),
        None => None,
    };
    // A read that starts after this stream opened: a watcher's last copy may predate a
    // change whose notification was lost (its sender died), or a deletion nobody announced.
    let (mut watched, after) = changes.watch(&pool, job_id);
    let Ok(first) = watched
        .wait_for(|w| w.reads > after && !matches!(w.snapshot, Snapshot::Reading))
        .await
        .map(|w| w.clone())
    else {
        return Opened::NotThere;
    };
    if !matches!(first.snapshot, Snapshot::Job { .. }) {
        return Opened::NotThere;
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for event in replayed.into_iter().flatten() {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        let mut gaps = first.gaps;
        let mut news = first.news;
        let mut last: Option<DateTime<Utc>> = None;
        loop {
            let now = watched.borrow_and_update().clone();
            let seen_news = std::mem::replace(&mut news, now.news);
            if now.gaps != gaps {
                gaps = now.gaps;
                last = None;
                if tx.send(resync()).await.is_err() {
                    return;
                }
            }
            let event = match now.snapshot {
                Snapshot::Reading => None,
                Snapshot::Job { updated_at, .. } if Some(updated_at) == last => {
                    (now.news != seen_news).then(|| {
                        let data = json!({ "job_id": job_id }).to_string();
                        Event::default().event("activity").data(data)
                    })
                }
                Snapshot::Job {
                    seen,
                    updated_at,
                    data,
                } => {
                    last = Some(updated_at);
                    Some(
                        Event::default()
                            .event("job")
                            .id(seen.to_string())
                            .data(&*data),
                    )
                }
                Snapshot::Gone => {
                    let data = json!({ "job_id": job_id }).to_string();
                    let _ = tx.send(Event::default().event("deleted").data(data)).await;
                    return;
                }
                // The client reconnects (EventSource does by itself) and reads afresh.
                Snapshot::Unreadable => {
                    let _ = tx.send(resync()).await;
                    return;
                }
            };
            if let Some(event) = event {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                changed = watched.changed() => if changed.is_err() { return },
            }
        }
    });
    Opened::Stream(EventStream(rx))
}

/// The transitions after `since`, or `resync` when there are more than [`REPLAY_MAX`] (or
/// they cannot be read).
async fn replay(pool: &PgPool, job_id: Uuid, since: i64) -> Vec<Event> {
    let rows: Result<Vec<Transition>, _> = sqlx::query_as(store::TRANSITIONS_SINCE_SQL)
        .bind(job_id)
        .bind(since)
        .bind(REPLAY_MAX + 1)
        .fetch_all(pool)
        .await;
    match rows {
        Ok(rows) if (rows.len() as i64) <= REPLAY_MAX => rows
            .into_iter()
            .map(|row| {
                Event::default().event("transition").data(
                    json!({ "from_status": row.from_status, "to_status": row.to_status,
                            "at": row.at, "actor": row.actor, "reason": row.reason })
                    .to_string(),
                )
            })
            .collect(),
        _ => vec![resync()],
    }
}

impl JobChanges {
    /// Jobs with a watcher running in this process (one per job, whatever its streams).
    pub fn watched(&self) -> usize {
        self.watchers.lock().expect("watchers").len()
    }

    /// A receiver of the job's snapshots and the reads it has seen so far, starting the job's
    /// watcher if none runs in this process, else asking it to read again.
    fn watch(&self, pool: &PgPool, job_id: Uuid) -> (watch::Receiver<Watched>, u64) {
        let mut watchers = self.watchers.lock().expect("watchers");
        if let Some(watcher) = watchers.get(&job_id) {
            let receiver = watcher.sender.subscribe();
            let reads = receiver.borrow().reads;
            // One permit: a burst of openings costs one read more, not one each.
            watcher.read_again.notify_one();
            return (receiver, reads);
        }
        let (sender, receiver) = watch::channel(Watched::default());
        let watcher = Watcher {
            sender: Arc::new(sender),
            read_again: Arc::default(),
        };
        watchers.insert(job_id, watcher.clone());
        // Subscribed before the first read: a change between the read and the wait is kept.
        let heard = self.subscribe();
        tokio::spawn(watch_job(
            pool.clone(),
            self.watchers.clone(),
            job_id,
            watcher,
            heard,
        ));
        (receiver, 0)
    }
}

/// Why a watcher reads the job again.
enum Why {
    /// A stream opened and wants a read newer than itself.
    Opened,
    News,
    Gap,
}

/// Reads the job at start and after each change heard, for as long as a stream watches it.
async fn watch_job(
    pool: PgPool,
    watchers: Watchers,
    job_id: Uuid,
    Watcher { sender, read_again }: Watcher,
    mut heard: broadcast::Receiver<Change>,
) {
    let (mut gaps, mut reads, mut news) = (0, 0, 0);
    loop {
        let snapshot = read_job(&pool, job_id).await;
        reads += 1;
        if !matches!(snapshot, Snapshot::Job { .. }) {
            // Streams opened from now on start a watcher of their own, which reads again.
            watchers.lock().expect("watchers").remove(&job_id);
            sender.send_replace(Watched {
                snapshot,
                gaps,
                reads,
                news,
            });
            return;
        }
        sender.send_replace(Watched {
            snapshot,
            gaps,
            reads,
            news,
        });
        let why = loop {
            tokio::select! {
                _ = sender.closed() => {
                    let mut watchers = watchers.lock().expect("watchers");
                    // A stream may have subscribed since: then go on watching.
                    if sender.receiver_count() == 0 {
                        watchers.remove(&job_id);
                        return;
                    }
                }
                _ = read_again.notified() => break Why::Opened,
                change = heard.recv() => match change {
                    Ok(Change::Jobs(ids)) if ids.contains(&job_id) => break Why::News,
                    Ok(Change::Jobs(_)) => {}
                    Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => break Why::Gap,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        };
        match why {
            Why::Opened => {}
            Why::News => news += 1,
            Why::Gap => gaps += 1,
        }
    }
}

/// The job as it is now. The event id first: a transition committed between the two reads
/// is then replayed again on resume rather than skipped.
async fn read_job(pool: &PgPool, job_id: Uuid) -> Snapshot {
    let read = async {
        let mut conn = pool.acquire().await?;
        let seen: i64 = sqlx::query_scalar(store::LAST_EVENT_SQL)
            .bind(job_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok::<_, sqlx::Error>((seen, get_job(&mut conn, job_id).await?))
    };
    match read.await {
        Ok((seen, Some(job))) => Snapshot::Job {
            seen,
            updated_at: job.updated_at,
            data: serde_json::to_string(&job)
                .expect("a job serializes")
                .into(),
        },
        Ok((_, None)) => Snapshot::Gone,
        Err(error) => {
            tracing::debug!(%error, "a job's watcher could not read it");
            Snapshot::Unreadable
        }
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
