//! A read-through cache of the signing keys, for processes that sign many deliveries (the
//! AWS deliver and failure-callback functions). Without it every delivery attempt reads
//! the keys from the store: one billable request per message on DynamoDB.
//!
//! Keys read are trusted for a fixed time to live; after it the next read goes to the
//! store. A swap (rotation) goes through to the store and refreshes the cache with the
//! keys in force afterwards, so a rotation made through this cache is seen by its next
//! read at once. A rotation made by another process is seen within the time to live:
//! until then deliveries are still signed with the previous current key, which receivers
//! following the rotation procedure still accept (they hold current and next).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::error::Result;
use crate::ports::KeyStore;
use crate::signing::SigningKeys;

/// The keys last read and when (Unix ms, taken before the read).
struct Entry {
    keys: SigningKeys,
    read_ms: i64,
}

/// A [`KeyStore`] that remembers the keys it read for `ttl`.
pub struct CachedKeys {
    inner: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    ttl_ms: i64,
    /// Held across a read of the store, so concurrent misses cause one read, not one each.
    entry: Mutex<Option<Entry>>,
}

impl CachedKeys {
    /// Caches `inner`'s keys for `ttl` of `clock`'s time.
    pub fn new(inner: Arc<dyn KeyStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            inner,
            clock,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            entry: Mutex::new(None),
        }
    }

    /// Remembers keys just read from the store by other means (at start-up), as if read now.
    pub async fn prime(&self, keys: SigningKeys) {
        let read_ms = self.clock.now_ms();
        *self.entry.lock().await = Some(Entry { keys, read_ms });
    }

    /// Whether keys read at `read_ms` may still be used at `now`. A clock that went back
    /// makes them stale rather than trusted for longer.
    fn fresh(&self, read_ms: i64, now: i64) -> bool {
        (0..self.ttl_ms).contains(&now.saturating_sub(read_ms))
    }
}

#[async_trait]
impl KeyStore for CachedKeys {
    async fn keys(&self) -> Result<SigningKeys> {
        let mut entry = self.entry.lock().await;
        let now = self.clock.now_ms();
        if let Some(cached) = entry.as_ref().filter(|e| self.fresh(e.read_ms, now)) {
            return Ok(cached.keys.clone());
        }
        let keys = self.inner.keys().await?;
        *entry = Some(Entry {
            keys: keys.clone(),
            read_ms: now,
        });
        Ok(keys)
    }

    async fn swap_keys(&self, expected: &SigningKeys, next: &SigningKeys) -> Result<SigningKeys> {
        let mut entry = self.entry.lock().await;
        let now = self.clock.now_ms();
        // Forgotten first: if the swap fails, whether it happened is unknown.
        *entry = None;
        let after = self.inner.swap_keys(expected, next).await?;
        *entry = Some(Entry {
            keys: after.clone(),
            read_ms: now,
        });
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::error::Error;
    use crate::signing::SigningKey;

    const TTL: Duration = Duration::from_secs(60);

    /// A key store that counts its reads and can be made to fail.
    struct Counted {
        keys: std::sync::Mutex<SigningKeys>,
        reads: AtomicUsize,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Counted {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                keys: std::sync::Mutex::new(fresh_keys()),
                reads: AtomicUsize::new(0),
                failing: Default::default(),
            })
        }

        fn stored(&self) -> SigningKeys {
            self.keys.lock().expect("not poisoned").clone()
        }

        /// Another process rotates the stored keys behind the cache's back.
        fn rotate_elsewhere(&self) -> SigningKeys {
            let mut keys = self.keys.lock().expect("not poisoned");
            *keys = keys.rotated();
            keys.clone()
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }

        fn check(&self) -> Result<()> {
            match self.failing.load(Ordering::SeqCst) {
                true => Err(Error::internal("the store is unreachable")),
                false => Ok(()),
            }
        }
    }

    #[async_trait]
    impl KeyStore for Counted {
        async fn keys(&self) -> Result<SigningKeys> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.check()?;
            Ok(self.stored())
        }

        async fn swap_keys(
            &self,
            expected: &SigningKeys,
            next: &SigningKeys,
        ) -> Result<SigningKeys> {
            self.check()?;
            let mut keys = self.keys.lock().expect("not poisoned");
            if *keys == *expected {
                *keys = next.clone();
            }
            Ok(keys.clone())
        }
    }

    fn fresh_keys() -> SigningKeys {
        SigningKeys {
            current: SigningKey::generate(),
            next: SigningKey::generate(),
        }
    }

    fn cache(store: &Arc<Counted>) -> (CachedKeys, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let cache = CachedKeys::new(store.clone(), clock.clone(), TTL);
        (cache, clock)
    }

    #[tokio::test]
    async fn reads_within_the_time_to_live_are_answered_without_the_store() {
        let store = Counted::new();
        let (cache, clock) = cache(&store);
        let first = cache.keys().await.expect("read");
        clock.advance_ms(59_999);
        assert_eq!(cache.keys().await.expect("cached"), first);
        assert_eq!(store.reads(), 1);
    }

    #[tokio::test]
    async fn a_rotation_elsewhere_is_seen_once_the_time_to_live_has_passed() {
        let store = Counted::new();
        let (cache, clock) = cache(&store);
        let before = cache.keys().await.expect("read");
        let rotated = store.rotate_elsewhere();
        clock.advance_ms(30_000);
        assert_eq!(cache.keys().await.expect("cached"), before, "still cached");
        clock.advance_ms(30_000);
        assert_eq!(cache.keys().await.expect("read again"), rotated);
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test]
    async fn a_rotation_through_the_cache_is_seen_at_once_without_a_read() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        let keys = cache.keys().await.expect("read");
        let rotated = keys.rotated();
        assert_eq!(
            cache.swap_keys(&keys, &rotated).await.expect("swap"),
            rotated
        );
        assert_eq!(cache.keys().await.expect("cached"), rotated);
        assert_eq!((store.stored(), store.reads()), (rotated, 1));
    }

    #[tokio::test]
    async fn a_lost_swap_caches_the_keys_that_won() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        let stale = cache.keys().await.expect("read");
        let winner = store.rotate_elsewhere();
        let after = cache.swap_keys(&stale, &stale.rotated()).await;
        assert_eq!(after.expect("swap answered"), winner);
        assert_eq!(cache.keys().await.expect("cached"), winner);
        assert_eq!(store.reads(), 1);
    }

    #[tokio::test]
    async fn a_rotation_starting_from_stale_keys_succeeds_on_its_second_try() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        cache.keys().await.expect("read");
        let elsewhere = store.rotate_elsewhere();
        // What `keys::rotate` does: read, swap, and again while the swap lost.
        let mut tries = 0;
        let rotated = loop {
            tries += 1;
            let keys = cache.keys().await.expect("read");
            let rotated = keys.rotated();
            if cache.swap_keys(&keys, &rotated).await.expect("swap") == rotated {
                break rotated;
            }
        };
        assert_eq!((tries, rotated.current.clone()), (2, elsewhere.next));
        assert_eq!(store.stored(), rotated);
    }

    #[tokio::test]
    async fn a_failed_swap_forgets_the_cached_keys() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        let keys = cache.keys().await.expect("read");
        store.failing.store(true, Ordering::SeqCst);
        assert!(cache.swap_keys(&keys, &keys.rotated()).await.is_err());
        store.failing.store(false, Ordering::SeqCst);
        cache.keys().await.expect("read again");
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test]
    async fn a_failed_read_is_reported_and_the_next_read_tries_again() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        store.failing.store(true, Ordering::SeqCst);
        assert!(cache.keys().await.is_err());
        store.failing.store(false, Ordering::SeqCst);
        assert_eq!(cache.keys().await.expect("read"), store.stored());
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test]
    async fn primed_keys_are_used_without_a_read() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        cache.prime(store.stored()).await;
        assert_eq!(cache.keys().await.expect("cached"), store.stored());
        assert_eq!(store.reads(), 0);
    }

    #[tokio::test]
    async fn a_clock_that_went_back_makes_the_cached_keys_stale() {
        let store = Counted::new();
        let (cache, clock) = cache(&store);
        cache.keys().await.expect("read");
        clock.advance_ms(-1);
        cache.keys().await.expect("read again");
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_read_the_store_once() {
        let store = Counted::new();
        let (cache, _clock) = cache(&store);
        let cache = Arc::new(cache);
        let reads: Vec<_> = (0..16)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.keys().await })
            })
            .collect();
        for read in reads {
            read.await.expect("task").expect("keys");
        }
        assert_eq!(store.reads(), 1);
    }
}
