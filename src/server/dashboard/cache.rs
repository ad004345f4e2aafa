//! A figure computed at most once per interval per key, however many people ask: callers
//! that arrive while it is being computed wait for that one computation (single flight).
//! Each portal process has its own; several portals cost one computation each.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// Keys kept at most; past it, expired entries are dropped first, then all.
const MAX_KEYS: usize = 1_000;

struct Slot<T> {
    made: Instant,
    value: Arc<OnceCell<T>>,
}

pub struct Cached<K, T> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<T>>>,
}

impl<K: Eq + Hash + Clone, T: Clone> Cached<K, T> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The value for `key` if computed less than `ttl` ago, else `compute`'s. A failed
    /// computation is not kept: the next caller tries again.
    pub async fn get<E, F, Fut>(&self, key: &K, compute: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cell = {
            let mut slots = self.slots.lock().expect("cache poisoned");
            let fresh = slots
                .get(key)
                .filter(|slot| slot.made.elapsed() < self.ttl)
                .map(|slot| slot.value.clone());
            match fresh {
                Some(cell) => cell,
                None => {
                    if slots.len() >= MAX_KEYS {
                        let ttl = self.ttl;
                        slots.retain(|_, slot| slot.made.elapsed() < ttl);
                        if slots.len() >= MAX_KEYS {
                            slots.clear();
                        }
                    }
                    let cell = Arc::new(OnceCell::new());
                    slots.insert(
                        key.clone(),
                        Slot {
                            made: Instant::now(),
                            value: cell.clone(),
                        },
                    );
                    cell
                }
            }
        };
        cell.get_or_try_init(compute).await.cloned()
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
                cache
                    .get(&1, || async {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst))
                    })
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
        let cache = Cached::<u8, u8>::new(Duration::from_secs(5));
        assert_eq!(
            cache.get(&1, || async { Err::<u8, _>("down") }).await,
            Err("down")
        );
        assert_eq!(cache.get(&1, || async { Ok::<_, &str>(7) }).await, Ok(7));
    }
}
