//! Dense search's moving parts (ADR 0016): the configured [`Embedder`], the in-memory
//! [`VectorIndex`] and the worker that gives every chunk a vector.
//!
//! Ingestion never waits for embeddings: `PutDocument` stores and BM25-indexes the chunks and drops
//! the document's old vectors; the worker ([`crate::service::Kb::embed_pending`]) then finds chunks
//! without a vector from the configured model, embeds them outside the write lock, and stores them
//! under it only if the chunk's text is still what was embedded. So a slow or absent embeddings
//! endpoint delays dense results, never ingestion, and nothing is lost: chunks wait and catch up,
//! as the other services' outboxes do for kb.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::embed::Embedder;
use crate::service::Kb;
use crate::vectors::VectorIndex;

/// Chunks per worker round.
pub const BATCH: i64 = 32;
/// Longest pause between two attempts while the embedder fails.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the worker looks for chunks without vectors when nobody wakes it.
const IDLE: Duration = Duration::from_secs(30);

pub struct Dense {
    pub embedder: Embedder,
    /// [`Embedder::model_id`], the key vectors are stored under.
    pub model: String,
    pub index: VectorIndex,
    wake: tokio::sync::Notify,
    loaded: AtomicBool,
    /// Chunks without a vector at the last count (-1: not counted yet).
    pending: AtomicI64,
}

impl Dense {
    pub fn new(embedder: Embedder) -> Self {
        Self {
            model: embedder.model_id(),
            embedder,
            index: VectorIndex::new(),
            wake: tokio::sync::Notify::new(),
            loaded: AtomicBool::new(false),
            pending: AtomicI64::new(-1),
        }
    }

    /// New chunks are waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Vectors were loaded from the database (dense results are complete once nothing is pending).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub(crate) fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// Chunks still without a vector (-1 before the first count).
    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub(crate) fn set_pending(&self, n: i64) {
        self.pending.store(n, Ordering::Relaxed);
    }
}

/// Loads the stored vectors, then embeds chunks without one until stopped: right away while
/// there are some, on a wake-up or every 30 s otherwise, backing off (1 s doubling to 60 s) while
/// the embedder fails.
pub async fn run_worker(
    kb: Arc<Kb>,
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let Some(dense) = kb.dense().cloned() else {
        return;
    };
    tokio::pin!(stop);
    let mut backoff = Duration::from_secs(1);
    loop {
        let pause = if !kb.is_migrated() {
            Duration::from_millis(100)
        } else if !dense.is_loaded() {
            match kb.load_vectors().await {
                Ok(n) => {
                    tracing::info!(kb.vectors = n, kb.embedding_model = %dense.model, "vectors loaded");
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "loading vectors failed; will retry");
                    Duration::from_secs(1)
                }
            }
        } else {
            match kb.embed_pending(BATCH).await {
                Ok(0) => {
                    backoff = Duration::from_secs(1);
                    IDLE
                }
                Ok(_) => {
                    backoff = Duration::from_secs(1);
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "embedding chunks failed; will retry");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            }
        };
        if pause.is_zero() {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::task::yield_now() => {}
            }
            continue;
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = dense.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
