//! A figure computed once per interval per key, however many people ask. The first caller
//! of a key computes it (callers arriving meanwhile wait for that one computation), and a
//! background task then recomputes it every interval for as long as someone keeps asking,
//! so a poller is answered from memory and never waits for the database. A key nobody asked
//! for in [`IDLE`] is dropped with its task. If recomputing fails, the last value is still
//! answered for up to [`STALE_FOR`] intervals; after that callers compute (and fail) again.
//! Each portal process has its own; several portals cost one computation each per interval.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// Keys kept at most; past it, the least recently asked half is dropped.
const MAX_KEYS: usize = 1_000;
/// How many intervals an old value may still be answered when recomputing fails.
const STALE_FOR: u32 = 6;
/// A key nobody asked for this long stops being recomputed.
const IDLE: Duration = Duration::from_secs(30);

struct Slot<T> {
    made: Instant,
    value: Arc<OnceCell<T>>,
    asked: Instant,
}

pub struct Cached<K, T> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<T>>>,
}

impl<K, T> Cached<K, T>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The value for `key`, from memory once it has been computed (see the module comment).
    /// A failed computation is not kept: the next caller tries again.
    pub async fn get<E, F, Fut>(self: &Arc<Self>, key: &K, compute: F) -> Result<T, E>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let (cell, new) = {
            let mut slots = self.slots.lock().expect("cache poisoned");
            let now = Instant::now();
            match slots.get_mut(key) {
                Some(slot) => {
                    slot.asked = now;
                    if let Some(value) = slot.value.get() {
                        if slot.made.elapsed() < self.ttl * STALE_FOR {
                            return Ok(value.clone());
                        }
                        // Too old to answer: compute in the caller, as for a new key.
                        slot.value = Arc::new(OnceCell::new());
                        slot.made = now;
                    }
                    (slot.value.clone(), false)
                }
                None => {
                    if slots.len() >= MAX_KEYS {
                        let mut asked: Vec<Instant> = slots.values().map(|s| s.asked).collect();
                        asked.sort_unstable();
                        let cut = asked[asked.len() / 2];
                        slots.retain(|_, slot| slot.asked > cut);
                    }
                    let slot = Slot {
                        made: now,
                        value: Arc::new(OnceCell::new()),
                        asked: now,
                    };
                    let cell = slot.value.clone();
                    slots.insert(key.clone(), slot);
                    (cell, true)
                }
            }
        };
        let compute = Arc::new(compute);
        let result = cell.get_or_try_init(|| compute()).await.cloned();
        if new {
            tokio::spawn(Self::recompute(Arc::downgrade(self), key.clone(), compute));
        }
        result
    }

    /// Every interval while the key is asked for and the cache lives.
    async fn recompute<E, F, Fut>(cache: Weak<Self>, key: K, compute: Arc<F>)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        loop {
            let Some(ttl) = cache.upgrade().map(|c| c.ttl) else {
                return;
            };
            tokio::time::sleep(ttl).await;
            let Some(this) = cache.upgrade() else { return };
            {
                let mut slots = this.slots.lock().expect("cache poisoned");
                match slots.get(&key) {
                    Some(slot) if slot.asked.elapsed() < IDLE => {}
                    Some(_) => {
                        slots.remove(&key);
                        return;
                    }
                    None => return,
                }
            }
            drop(this);
            let made = Instant::now();
            let result = compute().await;
            let Some(this) = cache.upgrade() else { return };
            let mut slots = this.slots.lock().expect("cache poisoned");
            match (result, slots.get_mut(&key)) {
                (Ok(value), Some(slot)) => {
                    slot.value = Arc::new(OnceCell::new_with(Some(value)));
                    slot.made = made;
                }
                (Err(error), Some(_)) => {
                    tracing::warn!(%error, "recomputing a cached figure failed; the last one stays");
                }
                (_, None) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn fifty_callers_share_one_computation() {
        let cache = Arc::new(Cached::<u8, usize>::new(Duration::from_secs(5)));
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..50).map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                let compute = move || {
                    let runs = runs.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, String>(runs.fetch_add(1, Ordering::SeqCst))
                    }
                };
                cache.get(&1, compute).await
            })
        });
        for call in calls {
            assert_eq!(call.await.unwrap(), Ok(0));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_is_not_kept() {
        let cache = Arc::new(Cached::<u8, u8>::new(Duration::from_secs(5)));
        let failed = cache.get(&1, || async { Err::<u8, _>("down".to_string()) });
        assert_eq!(failed.await, Err("down".to_string()));
        let worked = cache.get(&1, || async { Ok::<_, String>(7) });
        assert_eq!(worked.await, Ok(7));
    }

    #[tokio::test]
    async fn a_polled_key_is_recomputed_in_the_background_and_answered_from_memory() {
        let cache = Arc::new(Cached::<u8, usize>::new(Duration::from_millis(50)));
        let runs = Arc::new(AtomicUsize::new(0));
        let slow = {
            let runs = runs.clone();
            move || {
                let runs = runs.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok::<_, String>(runs.fetch_add(1, Ordering::SeqCst))
                }
            }
        };
        assert_eq!(cache.get(&1, slow.clone()).await, Ok(0));
        // Polled for 300 ms: every answer is immediate, and the value moves on by itself.
        let mut last = 0;
        for _ in 0..30 {
            let started = Instant::now();
            let value = cache.get(&1, slow.clone()).await.unwrap();
            assert!(
                started.elapsed() < Duration::from_millis(20),
                "answered from memory"
            );
            assert!(value >= last);
            last = value;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(last >= 2, "recomputed while polled: {last}");
        let runs_then = runs.load(Ordering::SeqCst);
        assert!(
            runs_then <= 1 + 300 / 50 + 1,
            "about once per interval: {runs_then}"
        );
    }

    #[tokio::test]
    async fn the_background_task_ends_with_the_cache() {
        let cache = Arc::new(Cached::<u8, usize>::new(Duration::from_millis(10)));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = {
            let runs = runs.clone();
            move || {
                let runs = runs.clone();
                async move { Ok::<_, String>(runs.fetch_add(1, Ordering::SeqCst)) }
            }
        };
        cache.get(&1, counted).await.unwrap();
        drop(cache);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
