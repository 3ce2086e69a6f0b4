//! A short-lived, single-flight cache for the catalog answers the public pages show (services,
//! makes, featured products). The homepage is the busiest page and its facts change a few times a
//! day, so site reuses an answer for `upstreams.catalog_cache_ms` instead of asking three services
//! on every hit. At most one refresh runs at a time; while it runs, other requests get the previous
//! answer. Failures are never cached: a section whose service is down degrades and retries on the
//! next request. A TTL of 0 turns caching off (every request asks the service).

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub struct Cached<T> {
    ttl: Duration,
    slot: RwLock<Option<(Instant, Arc<T>)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl<T> Cached<T> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached value if it is younger than the TTL; else the result of `fetch`, stored on
    /// success. A request that finds a refresh already running takes the stale value if there is one.
    pub async fn get<E, Fut>(&self, fetch: impl FnOnce() -> Fut) -> Result<Arc<T>, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if self.ttl.is_zero() {
            return fetch().await.map(Arc::new);
        }
        let (fresh, stale) = self.peek();
        if let Some(v) = fresh {
            return Ok(v);
        }
        let _guard = match (self.refresh.try_lock(), stale) {
            (Ok(g), _) => g,
            (Err(_), Some(stale)) => return Ok(stale),
            (Err(_), None) => self.refresh.lock().await,
        };
        // Someone may have refreshed while this request waited for the lock.
        if let (Some(v), _) = self.peek() {
            return Ok(v);
        }
        let value = Arc::new(fetch().await?);
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some((Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// (fresh value, any value).
    fn peek(&self) -> (Option<Arc<T>>, Option<Arc<T>>) {
        let Ok(slot) = self.slot.read() else {
            return (None, None);
        };
        match slot.as_ref() {
            Some((at, v)) if at.elapsed() < self.ttl => (Some(v.clone()), Some(v.clone())),
            Some((_, v)) => (None, Some(v.clone())),
            None => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn reuses_within_ttl_and_refetches_after() {
        let calls = AtomicUsize::new(0);
        let c = Cached::new(Duration::from_millis(50));
        let fetch = || async { Ok::<_, ()>(calls.fetch_add(1, Ordering::SeqCst)) };
        assert_eq!(*c.get(fetch).await.unwrap(), 0);
        assert_eq!(*c.get(fetch).await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(*c.get(fetch).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_zero_ttl_always_fetches() {
        let c: Cached<u8> = Cached::new(Duration::from_secs(60));
        assert!(c.get(|| async { Err::<u8, _>("down") }).await.is_err());
        assert_eq!(*c.get(|| async { Ok::<_, ()>(7) }).await.unwrap(), 7);

        let calls = AtomicUsize::new(0);
        let off = Cached::new(Duration::ZERO);
        for _ in 0..3 {
            off.get(|| async { Ok::<_, ()>(calls.fetch_add(1, Ordering::SeqCst)) })
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_misses_fetch_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::new(Cached::new(Duration::from_secs(60)));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                c.get(|| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, ()>(42)
                })
                .await
                .map(|v| *v)
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(42));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
