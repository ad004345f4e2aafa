//! Waking waiting claims. A change that may free work (tasks added, released, retried, a
//! slot or a dependency freed, a job resumed) sends `NOTIFY jobdeck_tasks, '<queue>'` in
//! its transaction. Each portal process holds one `LISTEN` connection and fans what it
//! hears out to its waiting claims in memory, so a claim that waits costs no query until
//! something may be there for it.
//!
//! A lost connection is re-established (with backoff) and every waiter is woken when it
//! is, since a notification sent meanwhile was missed; and every waiter is woken every
//! [`SWEEP_EVERY`] anyway, so a wake-up lost for any reason is late, never lost for good.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::broadcast;

use super::store;
use crate::server::monitoring::{live, JobChanges};

pub const CHANNEL: &str = "jobdeck_tasks";
/// Every waiter re-checks this often even when nothing was heard.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub enum Wake {
    /// Something may be claimable in this queue.
    Queue(Arc<str>),
    /// Anything may be: a periodic check, or the listener was reconnected.
    All,
}

impl Wake {
    pub fn concerns(&self, queues: &[&str]) -> bool {
        match self {
            Wake::Queue(queue) => queues.contains(&&**queue),
            Wake::All => true,
        }
    }
}

/// Counters for tests and logs; they only grow.
#[derive(Debug, Default)]
pub struct WakeStats {
    pub heard: AtomicU64,
    pub connects: AtomicU64,
}

#[derive(Clone)]
pub struct Wakeups {
    sender: broadcast::Sender<Wake>,
    pub stats: Arc<WakeStats>,
}

impl Default for Wakeups {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
            stats: Arc::default(),
        }
    }
}

impl Wakeups {
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.sender.subscribe()
    }

    fn send(&self, wake: Wake) {
        // No receiver is no one waiting: nothing to do.
        let _ = self.sender.send(wake);
    }

    /// The listener: runs for the life of the process.
    /// `changes` hears the live streams' channel on the same connection.
    pub async fn run(self, pool: PgPool, changes: JobChanges) {
        let mut backoff = Duration::from_millis(100);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            let mut listener = match connect(&pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN for task wake-ups; waiting claims fall back to periodic checks");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    self.send(Wake::All);
                    changes.resync();
                    continue;
                }
            };
            self.stats.connects.fetch_add(1, Ordering::Relaxed);
            backoff = Duration::from_millis(100);
            // Whatever was sent while no one listened.
            self.send(Wake::All);
            changes.resync();
            loop {
                tokio::select! {
                    heard = listener.try_recv() => match heard {
                        Ok(Some(notification)) if notification.channel() == live::CHANNEL => {
                            changes.heard(notification.payload());
                        }
                        Ok(Some(notification)) => {
                            self.stats.heard.fetch_add(1, Ordering::Relaxed);
                            self.send(Wake::Queue(notification.payload().into()));
                        }
                        // sqlx reconnected (and listens again) on its own; it may have
                        // missed some.
                        Ok(None) => {
                            self.stats.connects.fetch_add(1, Ordering::Relaxed);
                            self.send(Wake::All);
                            changes.resync();
                        }
                        Err(error) => {
                            tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
                            break;
                        }
                    },
                    _ = sweep.tick() => self.send(Wake::All),
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, live::CHANNEL]).await?;
    Ok(listener)
}

/// Sent inside the caller's transaction: heard when it commits, never if it rolls back.
pub async fn wake(tx: &mut PgConnection, queue: &str) -> Result<(), sqlx::Error> {
    sqlx::query(store::NOTIFY_SQL)
        .bind(CHANNEL)
        .bind(queue)
        .execute(tx)
        .await?;
    Ok(())
}

/// A retry that waits: whoever scheduled it wakes the queue when its time comes (every
/// portal hears it). Should this process stop first, the periodic check finds the task.
pub fn wake_at(pool: &PgPool, queue: String, delay: Duration) {
    let pool = pool.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let notified = sqlx::query(store::NOTIFY_SQL)
            .bind(CHANNEL)
            .bind(&queue)
            .execute(&pool)
            .await;
        if let Err(error) = notified {
            tracing::debug!(%error, "could not wake a queue for a retry; the periodic check will");
        }
    });
}
