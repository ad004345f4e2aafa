//! A figure computed once per interval per key, however many people ask. The first caller
//! of a key computes it (callers arriving meanwhile wait for that one computation), and a
//! background task then recomputes it every interval for as long as someone keeps asking,
//! so pollers are answered from memory and never wait for the database. A key nobody asked
//! for in [`IDLE`] is dropped with its task. At most [`MAX_LIVE`] keys have a task (the
//! first ones asked for: all jobs, and a few users' filters); any further key is computed by
//! the caller once it is older than the interval, so a viewer sending many `user_id`s
//! cannot make the portal recompute them all forever. If recomputing fails, the last value
//! is still answered for up to [`STALE_FOR`] intervals; after that callers compute (and
//! fail) again. Each portal process has its own; several portals cost one computation each
//! per interval.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// Keys kept at most; past it, the least recently asked half is dropped.
const MAX_KEYS: usize = 1_000;
/// Keys recomputed in the background at most.
const MAX_LIVE: usize = 16;
/// How many intervals an old value may still be answered when recomputing fails.
const STALE_FOR: u32 = 6;
/// A key nobody asked for this long stops being recomputed.
const IDLE: Duration = Duration::from_secs(30);

struct Slot<T> {
    made: Instant,
    value: Arc<OnceCell<T>>,
    asked: Instant,
    /// A background task recomputes it.
    live: bool,
}

struct Slots<K, T> {
    by_key: HashMap<K, Slot<T>>,
    live: usize,
}

pub struct Cached<K, T> {
    ttl: Duration,
    slots: Mutex<Slots<K, T>>,
}

impl<K, T> Cached<K, T>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(Slots {
                by_key: HashMap::new(),
                live: 0,
            }),
        }
    }

    /// The value for `key` (see the module comment for how fresh). A failed computation is
    /// not kept: the next caller tries again.
    pub async fn get<E, F, Fut>(self: &Arc<Self>, key: &K, compute: F) -> Result<T, E>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let (cell, start_task) = {
            let mut slots = self.slots.lock().expect("cache poisoned");
            let now = Instant::now();
            let answer_for = |live: bool| if live { self.ttl * STALE_FOR } else { self.ttl };
            match slots.by_key.get_mut(key) {
                Some(slot) => {
                    slot.asked = now;
                    if let Some(value) = slot.value.get() {
                        if slot.made.elapsed() < answer_for(slot.live) {
                            return Ok(value.clone());
                        }
                        // Too old: this caller computes, the others wait for it.
                        slot.value = Arc::new(OnceCell::new());
                        slot.made = now;
                    }
                    (slot.value.clone(), false)
                }
                None => {
                    if slots.by_key.len() >= MAX_KEYS {
                        let mut asked: Vec<Instant> =
                            slots.by_key.values().map(|s| s.asked).collect();
                        asked.sort_unstable();
                        let cut = asked[asked.len() / 2];
                        slots.by_key.retain(|_, slot| slot.asked > cut);
                    }
                    let live = slots.live < MAX_LIVE;
                    slots.live += usize::from(live);
                    let slot = Slot {
                        made: now,
                        value: Arc::new(OnceCell::new()),
                        asked: now,
                        live,
                    };
                    let cell = slot.value.clone();
                    slots.by_key.insert(key.clone(), slot);
                    (cell, live)
                }
            }
        };
        let compute = Arc::new(compute);
        let result = cell.get_or_try_init(|| compute()).await.cloned();
        if start_task {
            let (cache, key) = (Arc::downgrade(self), key.clone());
            tokio::spawn(async move {
                Self::recompute(&cache, &key, compute).await;
                if let Some(this) = cache.upgrade() {
                    let mut slots = this.slots.lock().expect("cache poisoned");
                    slots.live -= 1;
                    if let Some(slot) = slots.by_key.get_mut(&key) {
                        slot.live = false;
                    }
                }
            });
        }
        result
    }

    /// Every interval while the key is asked for and the cache lives.
    async fn recompute<E, F, Fut>(cache: &Weak<Self>, key: &K, compute: Arc<F>)
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
                match slots.by_key.get(key) {
                    Some(slot) if slot.live && slot.asked.elapsed() < IDLE => {}
                    Some(slot) if slot.live => {
                        slots.by_key.remove(key);
                        return;
                    }
                    // Dropped, or dropped and asked for again (a new slot, maybe a new task).
                    _ => return,
                }
            }
            drop(this);
            let made = Instant::now();
            let result = compute().await;
            let Some(this) = cache.upgrade() else { return };
            let mut slots = this.slots.lock().expect("cache poisoned");
            match (result, slots.by_key.get_mut(key)) {
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
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Counted = Pin<Box<dyn Future<Output = Result<usize, String>> + Send>>;

    /// A computation that takes `delay` and answers how many ran before it.
    fn counting(
        runs: &Arc<AtomicUsize>,
        delay: Duration,
    ) -> impl Fn() -> Counted + Clone + Send + Sync + 'static {
        let runs = runs.clone();
        move || {
            let runs = runs.clone();
            Box::pin(async move {
                // No delay: no await either, so nothing else runs in between.
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(runs.fetch_add(1, Ordering::SeqCst))
            })
        }
    }

    #[tokio::test]
    async fn fifty_callers_share_one_computation() {
        let cache = Arc::new(Cached::<u8, usize>::new(Duration::from_secs(5)));
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = (0..50).map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get(&1, counting(&runs, Duration::from_millis(20)))
                    .await
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
        let slow = counting(&runs, Duration::from_millis(30));
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
    async fn keys_past_the_live_ones_are_computed_by_their_callers_once_per_interval() {
        let cache = Arc::new(Cached::<usize, usize>::new(Duration::from_millis(40)));
        // One counter per key: a key's count is what was computed for that key alone.
        let runs: Vec<Arc<AtomicUsize>> = (0..MAX_LIVE + 10).map(|_| Arc::default()).collect();
        for (key, runs) in runs.iter().enumerate() {
            cache
                .get(&key, counting(runs, Duration::ZERO))
                .await
                .unwrap();
        }
        assert_eq!(cache.slots.lock().unwrap().live, MAX_LIVE);
        // Nobody asks again for 100 ms: the live keys are recomputed in the background
        // (about twice at 40 ms), the extra ones not at all.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (key, runs) in runs.iter().enumerate() {
            let n = runs.load(Ordering::SeqCst);
            if key < MAX_LIVE {
                assert!((2..=4).contains(&n), "live key {key}: {n}");
            } else {
                assert_eq!(n, 1, "extra key {key} recomputed");
            }
        }
        // An extra key asked again after its interval is computed by its caller; asked
        // again within it, answered from memory.
        let mine = Arc::new(AtomicUsize::new(0));
        let key = MAX_LIVE + 1;
        cache
            .get(&key, counting(&mine, Duration::ZERO))
            .await
            .unwrap();
        assert_eq!(mine.load(Ordering::SeqCst), 1, "older than 40 ms: computed");
        cache
            .get(&key, counting(&mine, Duration::ZERO))
            .await
            .unwrap();
        assert_eq!(mine.load(Ordering::SeqCst), 1, "fresh: not recomputed");
    }

    #[tokio::test]
    async fn the_background_task_ends_with_the_cache() {
        let cache = Arc::new(Cached::<u8, usize>::new(Duration::from_millis(10)));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = counting(&runs, Duration::ZERO);
        cache.get(&1, counted).await.unwrap();
        drop(cache);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
