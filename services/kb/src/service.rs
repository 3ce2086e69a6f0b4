//! The knowledge base's operations, free of proto types: ingest (extract → chunk → store → index),
//! delete, search with an audience, and rebuilding the index from the database.
//!
//! The database is the source of truth; the tantivy index is derived from it. Writes are
//! serialised (one async lock over "database, then index"), so the index never sees two versions
//! of a document in the wrong order. Searches read the index, then load the hits' chunks from the
//! database and keep only those the audience may see there too (a stale index cannot leak).
//!
//! Errors (top of the module, as the house rule asks): [`KbError`] in every operation; it becomes a
//! typed gRPC status in `grpc.rs`. anyhow only at start-up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use omneuro_platform::config::KbConfig;
use omneuro_platform::db::{self, Database, DbError};

use crate::chunking::{self, ChunkConfig};
use crate::dense::Dense;
use crate::documents::{
    self, Document, HEADING_SEP, NewDocument, PutOutcome, StoredChunk, Visibility,
};
use crate::embed::{self, EmbedError, Embedder};
use crate::extract::{self, ExtractError, SourceFormat};
use crate::graph::{self, DocFacts, EdgeKind, EntityRef, JobMatch, Link, Neighbour, PartUse, Step};
use crate::redact;
use crate::search::{self, IndexedChunk, Scope, SearchIndex};
use crate::vectors::{self, VectorHit};

/// Most results one search returns.
pub const MAX_LIMIT: usize = 100;
/// Results when the caller asks for none in particular.
pub const DEFAULT_LIMIT: usize = 10;
/// Chunks loaded per database page while rebuilding the index.
const REBUILD_PAGE: i64 = 2_000;
/// How deep each ranked list goes before hybrid fusion (whatever the limit asked).
pub const FUSION_DEPTH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// Bad input (`INVALID_ARGUMENT`).
    #[error("{0}")]
    Invalid(String),
    /// Too big (`INVALID_ARGUMENT` too, with the limit in the message).
    #[error("{0}")]
    TooLarge(String),
    /// No such document, or not the caller's to see (`NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// The same document was stored concurrently (`ABORTED`: retry).
    #[error("the same document was stored concurrently; retry")]
    Concurrent,
    #[error(transparent)]
    Db(#[from] DbError),
    /// The search index failed (`INTERNAL`; logged with its cause).
    #[error("search index: {0}")]
    Index(String),
    /// Dense search was asked for and is not configured (`FAILED_PRECONDITION`).
    #[error("{0}")]
    DenseOff(String),
    /// The embedder failed (`UNAVAILABLE`: try again, or search with BM25).
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// How a search ranks chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// Hybrid when dense vectors are configured, else BM25.
    Auto,
    Bm25,
    Dense,
    /// Reciprocal-rank fusion of BM25 and dense ([`vectors::fuse`]).
    Hybrid,
}

impl From<ExtractError> for KbError {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::TooLarge { .. } => KbError::TooLarge(e.to_string()),
            e => KbError::Invalid(e.to_string()),
        }
    }
}

impl From<tantivy::TantivyError> for KbError {
    fn from(e: tantivy::TantivyError) -> Self {
        KbError::Index(e.to_string())
    }
}

fn join_error(e: tokio::task::JoinError) -> KbError {
    KbError::Index(format!("background task failed: {e}"))
}

/// What a document's content arrived as.
#[derive(Debug, Clone)]
pub enum Content {
    Text(String),
    Bytes(Vec<u8>),
}

impl Content {
    pub fn len(&self) -> usize {
        match self {
            Content::Text(s) => s.len(),
            Content::Bytes(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A document to ingest, as the caller described it (checked by [`Kb::put`]).
#[derive(Debug, Clone)]
pub struct PutInput {
    pub title: String,
    pub content: Content,
    pub format: SourceFormat,
    pub visibility: Visibility,
    pub owner_client: Option<String>,
    pub source_ref: Option<String>,
    /// Structured facts for the knowledge graph; replaced with the document.
    pub links: Vec<Link>,
}

/// Whom a search answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Staff and the fleet's workers: everything.
    Staff,
    /// Client-facing: client-visible documents, shop-wide or owned by this client (`None`: shop-wide
    /// only); personal data redacted.
    Client(Option<String>),
}

impl Audience {
    fn scope(&self) -> Scope<'_> {
        match self {
            Audience::Staff => Scope::Staff,
            Audience::Client(Some(c)) => Scope::Client(c),
            Audience::Client(None) => Scope::Public,
        }
    }

    /// May this audience see `doc` (or a chunk with this visibility and owner)?
    pub fn may_see(&self, visibility: Visibility, owner: Option<&str>) -> bool {
        match self {
            Audience::Staff => true,
            Audience::Client(c) => {
                visibility == Visibility::Client && owner.is_none_or(|o| c.as_deref() == Some(o))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub chunk: StoredChunk,
    pub score: f32,
    pub snippet: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildStats {
    pub documents: u64,
    pub chunks: u64,
    pub duration_ms: u64,
}

pub struct Kb {
    db: Arc<Database>,
    index: Arc<SearchIndex>,
    writes: tokio::sync::Mutex<()>,
    max_document_bytes: usize,
    dense: Option<Arc<Dense>>,
}

/// Where the index lives for this configuration: the configured directory, else beside a SQLite
/// database file, else nowhere (in memory).
pub fn index_dir(cfg: &KbConfig, database_url: &str) -> Option<PathBuf> {
    if let Some(d) = &cfg.index_dir {
        return Some(d.clone());
    }
    let path = database_url.strip_prefix("sqlite://")?;
    if path.is_empty() || path.starts_with(':') {
        return None;
    }
    Some(PathBuf::from(format!("{path}.index")))
}

/// What a chunk is embedded as: title and heading path, then the text (as BM25 indexes it).
fn embedding_text(c: &StoredChunk) -> String {
    let i = indexed(c);
    embed::chunk_text(&i.heading, &i.text)
}

fn indexed(c: &StoredChunk) -> IndexedChunk {
    let heading = if c.heading.is_empty() {
        c.title.clone()
    } else {
        format!("{}{HEADING_SEP}{}", c.title, c.heading)
    };
    IndexedChunk {
        chunk_id: c.id.clone(),
        doc_id: c.document_id.clone(),
        visibility: c.visibility,
        owner_client: c.owner_client.clone(),
        heading,
        text: c.text.clone(),
    }
}

impl Kb {
    pub fn new(db: Arc<Database>, index: Arc<SearchIndex>, cfg: &KbConfig) -> Self {
        Self {
            db,
            index,
            writes: tokio::sync::Mutex::new(()),
            max_document_bytes: cfg.max_document_bytes,
            dense: None,
        }
    }

    /// Turns on dense vectors (the worker in [`crate::dense`] fills them in).
    pub fn with_embedder(mut self, embedder: Embedder) -> Self {
        self.dense = Some(Arc::new(Dense::new(embedder)));
        self
    }

    pub fn dense(&self) -> Option<&Arc<Dense>> {
        self.dense.as_ref()
    }

    pub fn is_migrated(&self) -> bool {
        self.db.is_migrated()
    }

    pub fn max_document_bytes(&self) -> usize {
        self.max_document_bytes
    }

    /// Extracts, chunks, stores and indexes a document; replaces a changed one with the same source ref.
    pub async fn put(&self, mut input: PutInput) -> Result<(Document, PutOutcome), KbError> {
        let limit = self.max_document_bytes;
        if input.links.len() > graph::MAX_LINKS {
            return Err(KbError::Invalid(format!(
                "a document carries at most {} links",
                graph::MAX_LINKS
            )));
        }
        let links = std::mem::take(&mut input.links);
        // Extraction (PDF parsing) and chunking are CPU work: off the async threads.
        let (doc, chunks) = db::blocking(move || -> Result<_, KbError> {
            let text = match input.content {
                Content::Text(t) => {
                    if t.len() > limit {
                        return Err(ExtractError::TooLarge {
                            bytes: t.len(),
                            limit,
                        }
                        .into());
                    }
                    extract::check_text(&t)?;
                    if input.format == SourceFormat::Pdf {
                        return Err(KbError::Invalid(
                            "a PDF must be sent as bytes (`data`), not text".into(),
                        ));
                    }
                    t
                }
                Content::Bytes(b) => extract::extract(&b, input.format, limit)?,
            };
            let doc = NewDocument::parse(
                &input.title,
                text,
                input.format,
                input.visibility,
                input.owner_client.as_deref(),
                input.source_ref.as_deref(),
            )
            .map_err(KbError::Invalid)?;
            let chunks = chunking::chunk(
                doc.body(),
                doc.format().chunk_format(),
                ChunkConfig::default(),
            );
            if chunks.is_empty() {
                return Err(KbError::Invalid(
                    "the document has no searchable text (only markup or whitespace)".into(),
                ));
            }
            Ok((doc, chunks))
        })
        .await
        .map_err(join_error)??;

        let _guard = self.writes.lock().await;
        let (stored, outcome) = self
            .db
            .run(move |c| documents::put(c, doc, &chunks))
            .await
            .map_err(|e| match e {
                DbError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => KbError::Concurrent,
                e => KbError::Db(e),
            })?;
        // The graph follows the stored document: its edges are replaced every time it is put (also
        // when the text is unchanged, so links and the dictionary catch up on a re-delivery).
        let facts = DocFacts {
            document_id: stored.id.clone(),
            source_ref: stored.source_ref.clone(),
            title: stored.title.clone(),
            body: stored.body.clone(),
            links,
        };
        self.db
            .run(move |c| db::write_transaction(c, |c| graph::replace(c, &facts)))
            .await?;
        if outcome != PutOutcome::Unchanged {
            if let Some(dense) = &self.dense {
                // The chunks' text changed: their vectors go, the worker makes new ones.
                let id = stored.id.clone();
                self.db
                    .run(move |c| vectors::forget_document(c, &id))
                    .await?;
                dense.index.remove_doc(&stored.id);
                dense.wake();
            }
            let id = stored.id.clone();
            let rows = self.db.run(move |c| documents::chunks_of(c, &id)).await?;
            let index = self.index.clone();
            db::blocking(move || -> Result<(), KbError> {
                let chunks: Vec<IndexedChunk> = rows.iter().map(indexed).collect();
                index.add(&chunks)?;
                index.commit()?;
                Ok(())
            })
            .await
            .map_err(join_error)??;
        }
        Ok((stored, outcome))
    }

    /// A document the audience may see.
    pub async fn get(&self, id: String, audience: &Audience) -> Result<Document, KbError> {
        let doc = self
            .db
            .run(move |c| documents::get(c, &id))
            .await?
            .filter(|d| audience.may_see(d.visibility, d.owner_client.as_deref()))
            .ok_or_else(|| KbError::NotFound("no such document".into()))?;
        Ok(doc)
    }

    /// The id of the document with this source ref.
    pub async fn id_by_source(&self, source_ref: String) -> Result<String, KbError> {
        self.db
            .run(move |c| documents::id_by_source(c, &source_ref))
            .await?
            .ok_or_else(|| KbError::NotFound("no document has this source ref".into()))
    }

    /// Deletes a document from the database and the index; the number of chunks removed.
    pub async fn delete(&self, id: String) -> Result<u32, KbError> {
        let _guard = self.writes.lock().await;
        let id2 = id.clone();
        let removed = self
            .db
            .run(move |c| documents::delete(c, &id2))
            .await?
            .ok_or_else(|| KbError::NotFound("no such document".into()))?;
        if let Some(dense) = &self.dense {
            // The rows went with the chunks (ON DELETE CASCADE).
            dense.index.remove_doc(&id);
        }
        let index = self.index.clone();
        db::blocking(move || -> Result<(), KbError> {
            index.delete_doc(&id);
            index.commit()?;
            Ok(())
        })
        .await
        .map_err(join_error)??;
        Ok(removed)
    }

    /// Search within what `audience` may see, best first; `limit` 0 means the default; the
    /// ranking of [`SearchMode::Auto`] (hybrid with dense vectors, else BM25).
    pub async fn search(
        &self,
        query: String,
        limit: usize,
        audience: Audience,
    ) -> Result<Vec<Hit>, KbError> {
        Ok(self
            .search_with(query, limit, audience, SearchMode::Auto)
            .await?
            .0)
    }

    /// Search with a chosen ranking; also says which ranking answered (`Auto` resolves to hybrid
    /// or BM25, and to BM25 when the embedder fails on the query).
    pub async fn search_with(
        &self,
        query: String,
        limit: usize,
        audience: Audience,
        mode: SearchMode,
    ) -> Result<(Vec<Hit>, SearchMode), KbError> {
        let limit = match limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let query: String = query.trim().chars().take(search::MAX_QUERY_CHARS).collect();
        let dense = match (mode, &self.dense) {
            (SearchMode::Bm25, _) | (SearchMode::Auto, None) => None,
            (_, Some(d)) => Some(d.clone()),
            (_, None) => {
                return Err(KbError::DenseOff(
                    "dense search is off: kb has no [kb.embeddings] provider".into(),
                ));
            }
        };
        let mode = match (mode, &dense) {
            (SearchMode::Auto, Some(_)) => SearchMode::Hybrid,
            (SearchMode::Auto, None) => SearchMode::Bm25,
            (m, _) => m,
        };
        if query.is_empty() {
            return Ok((Vec::new(), mode));
        }
        let depth = if mode == SearchMode::Hybrid {
            limit.max(FUSION_DEPTH)
        } else {
            limit
        };
        // The query's vector first (the only step that can fail for want of an embedder).
        let mut near: Option<Vec<VectorHit>> = None;
        if let Some(d) = &dense {
            match d.embedder.embed(vec![query.clone()]).await {
                Ok(mut v) => {
                    let q = v.pop().unwrap_or_default();
                    let d2 = d.clone();
                    let aud = audience.clone();
                    near = Some(
                        db::blocking(move || d2.index.search(&q, aud.scope(), depth))
                            .await
                            .map_err(join_error)?,
                    );
                }
                Err(e) if mode == SearchMode::Dense => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "query embedding failed; answering with BM25 only");
                }
            }
        }
        let mode = if mode == SearchMode::Hybrid && near.is_none() {
            SearchMode::Bm25
        } else {
            mode
        };
        let lexical = if mode == SearchMode::Dense {
            Vec::new()
        } else {
            let index = self.index.clone();
            let aud = audience.clone();
            let q = query.clone();
            db::blocking(move || index.search(&q, aud.scope(), depth))
                .await
                .map_err(join_error)??
        };
        let near = near.unwrap_or_default();
        let mut snippets: std::collections::HashMap<String, String> = lexical
            .iter()
            .map(|h| (h.chunk_id.clone(), h.snippet.clone()))
            .collect();
        // (chunk id, score), best first.
        let ranked: Vec<(String, f32)> = match mode {
            SearchMode::Dense => near.into_iter().map(|h| (h.chunk_id, h.score)).collect(),
            SearchMode::Hybrid => {
                let lists = [
                    lexical.iter().map(|h| h.chunk_id.clone()).collect(),
                    near.into_iter().map(|h| h.chunk_id).collect(),
                ];
                let mut fused = vectors::fuse(&lists, vectors::RRF_K);
                fused.truncate(limit);
                fused
            }
            _ => lexical.into_iter().map(|h| (h.chunk_id, h.score)).collect(),
        };
        if ranked.is_empty() {
            return Ok((Vec::new(), mode));
        }
        let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
        let rows = self
            .db
            .run(move |c| documents::chunks_by_ids(c, &ids))
            .await?;
        let mut by_id: std::collections::HashMap<String, StoredChunk> =
            rows.into_iter().map(|c| (c.id.clone(), c)).collect();
        let redacting = matches!(audience, Audience::Client(_));
        let mut hits = Vec::with_capacity(ranked.len());
        for (chunk_id, score) in ranked {
            // The database decides: a chunk gone or no longer visible is dropped.
            let Some(mut chunk) = by_id.remove(&chunk_id) else {
                continue;
            };
            if !audience.may_see(chunk.visibility, chunk.owner_client.as_deref()) {
                continue;
            }
            // A chunk only the vectors found has no highlighted terms: its opening words.
            let mut snippet = snippets
                .remove(&chunk_id)
                .unwrap_or_else(|| search::prefix(&chunk.text, search::SNIPPET_CHARS));
            if redacting {
                chunk.text = redact::redact(&chunk.text);
                chunk.title = redact::redact(&chunk.title);
                chunk.heading = redact::redact(&chunk.heading);
                snippet = redact::redact(&snippet);
            }
            hits.push(Hit {
                chunk,
                score,
                snippet,
            });
        }
        // Equal scores in chunk id order, so the same index answers the same way after a rebuild.
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.chunk.id.cmp(&b.chunk.id))
        });
        Ok((hits, mode))
    }

    /// Loads every stored vector of the configured model into memory (vectors of another model
    /// are deleted: the configuration changed, they are re-made). The number loaded.
    pub async fn load_vectors(&self) -> Result<usize, KbError> {
        let Some(dense) = self.dense.clone() else {
            return Ok(0);
        };
        let model = dense.model.clone();
        let dropped = self
            .db
            .run(move |c| vectors::forget_other_models(c, &model))
            .await?;
        if dropped > 0 {
            tracing::info!(kb.vectors_dropped = dropped, kb.embedding_model = %dense.model, "vectors of another embedding model dropped");
        }
        dense.index.clear();
        let mut after = String::new();
        let mut total = 0usize;
        loop {
            let model = dense.model.clone();
            let from = after.clone();
            let page = self
                .db
                .run(move |c| -> Result<_, DbError> {
                    let page = vectors::page(c, &model, &from, REBUILD_PAGE)?;
                    let ids: Vec<String> = page.iter().map(|(id, _)| id.clone()).collect();
                    let chunks = documents::chunks_by_ids(c, &ids)?;
                    Ok((page, chunks))
                })
                .await?;
            let (page, chunks) = page;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            let mut meta: std::collections::HashMap<String, StoredChunk> =
                chunks.into_iter().map(|c| (c.id.clone(), c)).collect();
            let entries: Vec<vectors::Entry> = page
                .into_iter()
                .filter_map(|(id, vector)| {
                    let c = meta.remove(&id)?;
                    Some(vectors::Entry {
                        chunk_id: id,
                        doc_id: c.document_id,
                        visibility: c.visibility,
                        owner_client: c.owner_client,
                        vector,
                    })
                })
                .collect();
            total += entries.len();
            dense.index.upsert(entries).map_err(KbError::Index)?;
        }
        dense.set_loaded();
        dense.wake();
        Ok(total)
    }

    /// Embeds up to `batch` chunks that have no vector from the configured model; the number
    /// stored. The embedding runs outside the write lock; a chunk whose text changed meanwhile is
    /// left for the next round.
    pub async fn embed_pending(&self, batch: i64) -> Result<usize, KbError> {
        let Some(dense) = self.dense.clone() else {
            return Ok(0);
        };
        let model = dense.model.clone();
        let (chunks, waiting) = self
            .db
            .run(move |c| -> Result<_, DbError> {
                let ids = vectors::missing(c, &model, batch)?;
                let waiting = vectors::missing_count(c, &model)?;
                Ok((documents::chunks_by_ids(c, &ids)?, waiting))
            })
            .await?;
        dense.set_pending(waiting);
        if chunks.is_empty() {
            return Ok(0);
        }
        let texts: Vec<String> = chunks.iter().map(embedding_text).collect();
        let vectors_made = dense.embedder.embed(texts.clone()).await?;
        let _guard = self.writes.lock().await;
        let ids: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
        let now = self
            .db
            .run(move |c| documents::chunks_by_ids(c, &ids))
            .await?;
        let now: std::collections::HashMap<String, StoredChunk> =
            now.into_iter().map(|c| (c.id.clone(), c)).collect();
        let mut rows = Vec::new();
        let mut entries = Vec::new();
        for ((chunk, text), vector) in chunks.into_iter().zip(texts).zip(vectors_made) {
            let Some(current) = now.get(&chunk.id) else {
                continue;
            };
            if embedding_text(current) != text {
                continue;
            }
            rows.push((chunk.id.clone(), vector.clone()));
            entries.push(vectors::Entry {
                chunk_id: chunk.id,
                doc_id: current.document_id.clone(),
                visibility: current.visibility,
                owner_client: current.owner_client.clone(),
                vector,
            });
        }
        let stored = rows.len();
        let model = dense.model.clone();
        self.db
            .run(move |c| vectors::store(c, &model, &rows))
            .await?;
        dense.index.upsert(entries).map_err(KbError::Index)?;
        dense.set_pending((waiting - stored as i64).max(0));
        Ok(stored)
    }

    /// The entity, or NOT_FOUND.
    async fn known(&self, r: EntityRef) -> Result<graph::Entity, KbError> {
        let what = r.id();
        self.db
            .run(move |c| graph::entity(c, &r))
            .await?
            .ok_or_else(|| KbError::NotFound(format!("the graph has no {what}")))
    }

    /// The entity and its neighbours (see [`graph::neighbours`]); `limit` 0 means 100.
    pub async fn neighbours(
        &self,
        of: EntityRef,
        kinds: Vec<EdgeKind>,
        limit: usize,
    ) -> Result<(graph::Entity, Vec<Neighbour>), KbError> {
        let me = self.known(of.clone()).await?;
        let limit = if limit == 0 {
            MAX_LIMIT
        } else {
            limit.min(1_000)
        };
        let list = self
            .db
            .run(move |c| graph::neighbours(c, &of, &kinds, limit))
            .await?;
        Ok((me, list))
    }

    /// Past jobs on a make/model whose document mentions `text` (see [`graph::jobs_mentioning`]).
    pub async fn jobs_mentioning(
        &self,
        model: EntityRef,
        text: String,
    ) -> Result<Vec<JobMatch>, KbError> {
        if text.trim().is_empty() {
            return Err(KbError::Invalid("say what the jobs should mention".into()));
        }
        self.known(model.clone()).await?;
        Ok(self
            .db
            .run(move |c| graph::jobs_mentioning(c, &model, &text))
            .await?)
    }

    /// Parts most used on a make/model's jobs that mention `symptom`.
    pub async fn parts_for_symptom(
        &self,
        model: EntityRef,
        symptom: String,
    ) -> Result<Vec<PartUse>, KbError> {
        if symptom.trim().is_empty() {
            return Err(KbError::Invalid("say which symptom".into()));
        }
        self.known(model.clone()).await?;
        Ok(self
            .db
            .run(move |c| graph::parts_for_symptom(c, &model, &symptom))
            .await?)
    }

    /// A shortest path between two entities; `max_depth` 0 means the default (4), at most 6.
    pub async fn path(
        &self,
        from: EntityRef,
        to: EntityRef,
        max_depth: usize,
    ) -> Result<Option<Vec<Step>>, KbError> {
        let depth = match max_depth {
            0 => graph::DEFAULT_DEPTH,
            n if n > graph::MAX_DEPTH => {
                return Err(KbError::Invalid(format!(
                    "max_depth is at most {}",
                    graph::MAX_DEPTH
                )));
            }
            n => n,
        };
        self.known(from.clone()).await?;
        self.known(to.clone()).await?;
        Ok(self
            .db
            .run(move |c| graph::path(c, &from, &to, depth))
            .await?)
    }

    /// The whole index again from the database (documents stored before chunking are chunked first).
    pub async fn rebuild(&self) -> Result<RebuildStats, KbError> {
        let _guard = self.writes.lock().await;
        let started = Instant::now();
        let index = self.index.clone();
        let (documents, chunks) = self
            .db
            .run(move |c| -> Result<(u64, u64), KbError> {
                for (id, body, format) in documents::unchunked(c)? {
                    let chunks =
                        chunking::chunk(&body, format.chunk_format(), ChunkConfig::default());
                    documents::add_chunks(c, &id, &chunks)?;
                }
                index.clear()?;
                let mut after: Option<(String, i32)> = None;
                let mut total = 0u64;
                loop {
                    let page = documents::chunks_page(
                        c,
                        after.as_ref().map(|(d, p)| (d.as_str(), *p)),
                        REBUILD_PAGE,
                    )?;
                    let Some(last) = page.last() else { break };
                    after = Some((last.document_id.clone(), last.position));
                    total += page.len() as u64;
                    let batch: Vec<IndexedChunk> = page.iter().map(indexed).collect();
                    index.insert(&batch)?;
                }
                index.commit()?;
                Ok((documents::count_documents(c)?, total))
            })
            .await?;
        if self.dense.is_some() {
            self.load_vectors().await?;
        }
        let stats = RebuildStats {
            documents,
            chunks,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(
            kb.documents = stats.documents,
            kb.chunks = stats.chunks,
            duration_ms = stats.duration_ms,
            "search index rebuilt from the database"
        );
        Ok(stats)
    }

    /// Rebuilds the index when it disagrees with the database (a fresh or in-memory index, chunks
    /// written while the index failed, documents never chunked). Called once the database is migrated.
    pub async fn reconcile(&self) -> Result<bool, KbError> {
        let (in_db, unchunked) = self
            .db
            .run(|c| -> Result<(u64, usize), DbError> {
                Ok((documents::count_chunks(c)?, documents::unchunked(c)?.len()))
            })
            .await?;
        let in_index = self.index.num_chunks();
        if in_db == in_index && unchunked == 0 {
            return Ok(false);
        }
        tracing::info!(
            kb.chunks_in_db = in_db,
            kb.chunks_in_index = in_index,
            kb.unchunked_documents = unchunked,
            "search index disagrees with the database; rebuilding"
        );
        self.rebuild().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_see_what_they_may() {
        let staff = Audience::Staff;
        let a = Audience::Client(Some("cli_a".into()));
        let public = Audience::Client(None);
        assert!(staff.may_see(Visibility::Staff, Some("cli_a")));
        assert!(a.may_see(Visibility::Client, None));
        assert!(a.may_see(Visibility::Client, Some("cli_a")));
        assert!(!a.may_see(Visibility::Client, Some("cli_b")));
        assert!(!a.may_see(Visibility::Staff, None));
        assert!(public.may_see(Visibility::Client, None));
        assert!(!public.may_see(Visibility::Client, Some("cli_a")));
    }

    #[test]
    fn the_index_sits_beside_a_sqlite_file_unless_configured() {
        let cfg = KbConfig::default();
        assert_eq!(
            index_dir(&cfg, "sqlite:///var/lib/omneuro/kb.db"),
            Some(PathBuf::from("/var/lib/omneuro/kb.db.index"))
        );
        assert_eq!(index_dir(&cfg, "sqlite::memory:"), None);
        assert_eq!(index_dir(&cfg, "postgres://x/kb"), None);
        let set = KbConfig {
            index_dir: Some("/srv/kb-index".into()),
            ..KbConfig::default()
        };
        assert_eq!(
            index_dir(&set, "postgres://x/kb"),
            Some(PathBuf::from("/srv/kb-index"))
        );
    }
}
