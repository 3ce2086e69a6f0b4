//! Dense vectors of chunks: stored in the database (`chunk_vectors`, one row per chunk and model,
//! the vector as little-endian f32 bytes) and searched in memory by brute force.
//!
//! Vectors are unit length (both embedders normalise), so the dot product is the cosine
//! similarity. The in-memory [`VectorIndex`] is derived from the table as the tantivy index is
//! derived from the chunks: loaded on start, kept current by the embedding worker, filtered by
//! the same visibility [`Scope`] as BM25. Results are re-checked against the database by the
//! caller, as BM25 hits are.
//!
//! [`fuse`] is reciprocal-rank fusion (Cormack et al. 2009): a chunk's fused score is the sum over
//! the ranked lists of `1 / (k + rank)`; lists only need ranks, not comparable scores.

use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError};

use crate::documents::Visibility;
use crate::schema::{chunk_vectors, chunks};
use crate::search::Scope;

/// The usual RRF constant.
pub const RRF_K: f32 = 60.0;

/// One chunk's vector with what visibility needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub chunk_id: String,
    pub doc_id: String,
    pub visibility: Visibility,
    pub owner_client: Option<String>,
    pub vector: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    pub chunk_id: String,
    pub doc_id: String,
    pub score: f32,
}

struct Meta {
    chunk_id: String,
    doc_id: String,
    visibility: Visibility,
    owner_client: Option<String>,
}

#[derive(Default)]
struct Inner {
    dim: usize,
    meta: Vec<Meta>,
    /// `meta.len() * dim` floats, row `i` belonging to `meta[i]`.
    data: Vec<f32>,
    by_chunk: HashMap<String, usize>,
}

impl Inner {
    fn remove_where(&mut self, drop: impl Fn(&Meta) -> bool) {
        if !self.meta.iter().any(&drop) {
            return;
        }
        let dim = self.dim;
        let mut keep_meta = Vec::with_capacity(self.meta.len());
        let mut keep_data = Vec::with_capacity(self.data.len());
        for (i, m) in std::mem::take(&mut self.meta).into_iter().enumerate() {
            if !drop(&m) {
                keep_data.extend_from_slice(&self.data[i * dim..(i + 1) * dim]);
                keep_meta.push(m);
            }
        }
        self.meta = keep_meta;
        self.data = keep_data;
        self.reindex();
    }

    fn reindex(&mut self) {
        self.by_chunk = self
            .meta
            .iter()
            .enumerate()
            .map(|(i, m)| (m.chunk_id.clone(), i))
            .collect();
    }
}

/// Chunk vectors in memory; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct VectorIndex {
    inner: RwLock<Inner>,
}

fn visible(m: &Meta, scope: Scope<'_>) -> bool {
    match scope {
        Scope::Staff => true,
        Scope::Client(c) => {
            m.visibility == Visibility::Client && m.owner_client.as_deref().is_none_or(|o| o == c)
        }
        Scope::Public => m.visibility == Visibility::Client && m.owner_client.is_none(),
    }
}

/// Dot product with eight running sums (the compiler vectorises it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Min-heap entry for the top-k selection.
#[derive(PartialEq)]
struct Scored(f32, usize);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: the heap's top is the worst kept hit (ties: the later row is worse).
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl VectorIndex {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.read().meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vectors' size (0 while empty).
    pub fn dim(&self) -> usize {
        self.read().dim
    }

    /// Adds or replaces entries (by chunk id). An entry whose size differs from the index's is
    /// refused with the sizes (the first entry into an empty index sets it).
    pub fn upsert(&self, entries: Vec<Entry>) -> Result<(), String> {
        let mut inner = self.write();
        for e in entries {
            if inner.meta.is_empty() {
                inner.dim = e.vector.len();
            }
            if e.vector.len() != inner.dim || inner.dim == 0 {
                return Err(format!(
                    "a vector of {} numbers in an index of {}",
                    e.vector.len(),
                    inner.dim
                ));
            }
            let dim = inner.dim;
            let meta = Meta {
                chunk_id: e.chunk_id,
                doc_id: e.doc_id,
                visibility: e.visibility,
                owner_client: e.owner_client,
            };
            match inner.by_chunk.get(&meta.chunk_id).copied() {
                Some(i) => {
                    inner.data[i * dim..(i + 1) * dim].copy_from_slice(&e.vector);
                    inner.meta[i] = meta;
                }
                None => {
                    let i = inner.meta.len();
                    inner.by_chunk.insert(meta.chunk_id.clone(), i);
                    inner.meta.push(meta);
                    inner.data.extend_from_slice(&e.vector);
                }
            }
        }
        Ok(())
    }

    /// Removes every chunk of `doc_id`.
    pub fn remove_doc(&self, doc_id: &str) {
        self.write().remove_where(|m| m.doc_id == doc_id);
    }

    pub fn clear(&self) {
        *self.write() = Inner::default();
    }

    /// The `limit` chunks nearest to `query` that `scope` may see, best first.
    pub fn search(&self, query: &[f32], scope: Scope<'_>, limit: usize) -> Vec<VectorHit> {
        let inner = self.read();
        if limit == 0 || inner.dim == 0 || query.len() != inner.dim {
            return Vec::new();
        }
        let dim = inner.dim;
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(limit + 1);
        for (i, m) in inner.meta.iter().enumerate() {
            if !visible(m, scope) {
                continue;
            }
            let s = dot(query, &inner.data[i * dim..(i + 1) * dim]);
            if heap.len() < limit {
                heap.push(Scored(s, i));
            } else if heap.peek().is_some_and(|w| s > w.0) {
                heap.pop();
                heap.push(Scored(s, i));
            }
        }
        let mut top = heap.into_vec();
        top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        top.into_iter()
            .map(|Scored(score, i)| VectorHit {
                chunk_id: inner.meta[i].chunk_id.clone(),
                doc_id: inner.meta[i].doc_id.clone(),
                score,
            })
            .collect()
    }
}

/// Reciprocal-rank fusion of ranked id lists: `(id, Σ 1/(k + rank))`, best first (rank from 1;
/// ties by id, so equal inputs give equal outputs).
pub fn fuse(lists: &[Vec<String>], k: f32) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, f32> = HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            *scores.entry(id.as_str()).or_default() += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(String, f32)> = scores
        .into_iter()
        .map(|(id, s)| (id.to_owned(), s))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    fused
}

pub fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|f| f.to_le_bytes()).collect()
}

pub fn decode(bytes: &[u8]) -> Option<Vec<f32>> {
    let (chunks, rest) = bytes.as_chunks::<4>();
    if !rest.is_empty() || chunks.is_empty() {
        return None;
    }
    Some(chunks.iter().map(|b| f32::from_le_bytes(*b)).collect())
}

/// Ids of chunks with no vector from `model` yet, oldest documents first.
pub fn missing(conn: &mut DbConnection, model: &str, limit: i64) -> Result<Vec<String>, DbError> {
    Ok(chunks::table
        .left_join(
            chunk_vectors::table.on(chunk_vectors::chunk_id
                .eq(chunks::id)
                .and(chunk_vectors::model.eq(model))),
        )
        .filter(chunk_vectors::chunk_id.is_null())
        .order((chunks::document_id.asc(), chunks::position.asc()))
        .select(chunks::id)
        .limit(limit)
        .load(conn)?)
}

/// How many chunks have no vector from `model`.
pub fn missing_count(conn: &mut DbConnection, model: &str) -> Result<i64, DbError> {
    Ok(chunks::table
        .left_join(
            chunk_vectors::table.on(chunk_vectors::chunk_id
                .eq(chunks::id)
                .and(chunk_vectors::model.eq(model))),
        )
        .filter(chunk_vectors::chunk_id.is_null())
        .count()
        .get_result(conn)?)
}

/// Stores (replaces) vectors: `(chunk id, vector)`.
pub fn store(
    conn: &mut DbConnection,
    model: &str,
    items: &[(String, Vec<f32>)],
) -> Result<(), DbError> {
    omneuro_platform::db::write_transaction(conn, |c| {
        for (chunk_id, vector) in items {
            diesel::delete(chunk_vectors::table.filter(chunk_vectors::chunk_id.eq(chunk_id)))
                .execute(c)?;
            diesel::insert_into(chunk_vectors::table)
                .values((
                    chunk_vectors::chunk_id.eq(chunk_id),
                    chunk_vectors::model.eq(model),
                    chunk_vectors::dim.eq(i32::try_from(vector.len()).unwrap_or(i32::MAX)),
                    chunk_vectors::vector.eq(encode(vector)),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Drops the vectors of every chunk of `doc_id` (its text changed).
pub fn forget_document(conn: &mut DbConnection, doc_id: &str) -> Result<usize, DbError> {
    let ids = chunks::table
        .filter(chunks::document_id.eq(doc_id))
        .select(chunks::id);
    Ok(
        diesel::delete(chunk_vectors::table.filter(chunk_vectors::chunk_id.eq_any(ids)))
            .execute(conn)?,
    )
}

/// Drops vectors made by any other model than `model` (the configuration changed).
pub fn forget_other_models(conn: &mut DbConnection, model: &str) -> Result<usize, DbError> {
    Ok(
        diesel::delete(chunk_vectors::table.filter(chunk_vectors::model.ne(model)))
            .execute(conn)?,
    )
}

/// One page of stored vectors from `model`, by chunk id after `after`: `(chunk id, vector)`;
/// rows that do not decode are skipped (and re-made by the worker once deleted).
pub fn page(
    conn: &mut DbConnection,
    model: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<f32>)>, DbError> {
    let rows: Vec<(String, Vec<u8>)> = chunk_vectors::table
        .filter(chunk_vectors::model.eq(model))
        .filter(chunk_vectors::chunk_id.gt(after))
        .order(chunk_vectors::chunk_id.asc())
        .select((chunk_vectors::chunk_id, chunk_vectors::vector))
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, bytes)| decode(&bytes).map(|v| (id, v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, doc: &str, vis: Visibility, owner: Option<&str>, v: &[f32]) -> Entry {
        Entry {
            chunk_id: id.into(),
            doc_id: doc.into(),
            visibility: vis,
            owner_client: owner.map(Into::into),
            vector: v.to_vec(),
        }
    }

    fn ids(hits: &[VectorHit]) -> Vec<&str> {
        hits.iter().map(|h| h.chunk_id.as_str()).collect()
    }

    #[test]
    fn nearest_first_within_scope() {
        let idx = VectorIndex::new();
        idx.upsert(vec![
            entry("shop", "d1", Visibility::Client, None, &[1.0, 0.0]),
            entry("a", "d2", Visibility::Client, Some("A"), &[0.8, 0.6]),
            entry("b", "d3", Visibility::Client, Some("B"), &[0.6, 0.8]),
            entry("staff", "d4", Visibility::Staff, None, &[0.0, 1.0]),
        ])
        .unwrap();
        let q = [0.0, 1.0];
        assert_eq!(
            ids(&idx.search(&q, Scope::Staff, 10)),
            ["staff", "b", "a", "shop"]
        );
        assert_eq!(ids(&idx.search(&q, Scope::Client("A"), 10)), ["a", "shop"]);
        assert_eq!(ids(&idx.search(&q, Scope::Client("B"), 1)), ["b"]);
        assert_eq!(ids(&idx.search(&q, Scope::Public, 10)), ["shop"]);
        let top = idx.search(&q, Scope::Staff, 2);
        assert_eq!(ids(&top), ["staff", "b"]);
        assert!((top[0].score - 1.0).abs() < 1e-6);
        // A query of the wrong size finds nothing rather than failing.
        assert!(idx.search(&[1.0, 0.0, 0.0], Scope::Staff, 5).is_empty());
    }

    #[test]
    fn replace_and_remove() {
        let idx = VectorIndex::new();
        idx.upsert(vec![
            entry("d1#0", "d1", Visibility::Staff, None, &[1.0, 0.0]),
            entry("d1#1", "d1", Visibility::Staff, None, &[0.0, 1.0]),
            entry("d2#0", "d2", Visibility::Staff, None, &[0.6, 0.8]),
        ])
        .unwrap();
        idx.upsert(vec![entry(
            "d1#0",
            "d1",
            Visibility::Staff,
            None,
            &[0.0, -1.0],
        )])
        .unwrap();
        assert_eq!(idx.len(), 3);
        assert_eq!(ids(&idx.search(&[1.0, 0.0], Scope::Staff, 1)), ["d2#0"]);
        idx.remove_doc("d1");
        assert_eq!(idx.len(), 1);
        assert_eq!(ids(&idx.search(&[0.0, 1.0], Scope::Staff, 5)), ["d2#0"]);
        assert!(
            idx.upsert(vec![entry("x", "d9", Visibility::Staff, None, &[1.0])])
                .is_err()
        );
        idx.clear();
        assert!(idx.is_empty());
        idx.upsert(vec![entry("x", "d9", Visibility::Staff, None, &[1.0])])
            .unwrap();
        assert_eq!(idx.dim(), 1);
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let idx = VectorIndex::new();
        let mut all = Vec::new();
        for i in 0..500u32 {
            let a = (i as f32 * 0.37).sin();
            let b = (i as f32 * 0.91).cos();
            let n = (a * a + b * b).sqrt().max(1e-6);
            let v = vec![a / n, b / n];
            all.push((format!("c{i:03}"), v.clone()));
            idx.upsert(vec![entry(
                &format!("c{i:03}"),
                "d",
                Visibility::Staff,
                None,
                &v,
            )])
            .unwrap();
        }
        let q = [0.6f32, 0.8];
        let mut expected: Vec<(String, f32)> =
            all.iter().map(|(id, v)| (id.clone(), dot(&q, v))).collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let got = idx.search(&q, Scope::Staff, 25);
        let want: Vec<&str> = expected
            .iter()
            .take(25)
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(ids(&got), want);
    }

    #[test]
    fn fusion_rewards_agreement() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let fused = fuse(&[s(&["a", "b", "c"]), s(&["b", "d", "a"])], RRF_K);
        let order: Vec<&str> = fused.iter().map(|(id, _)| id.as_str()).collect();
        // b (2nd and 1st) beats a (1st and 3rd); d and c are in one list each.
        assert_eq!(order, ["b", "a", "d", "c"]);
        assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert!(fuse(&[], RRF_K).is_empty());
    }

    #[test]
    fn vectors_round_trip_as_bytes() {
        let v = vec![0.25f32, -1.5, 3.0e-7];
        assert_eq!(decode(&encode(&v)).unwrap(), v);
        assert!(decode(&[1, 2, 3]).is_none());
        assert!(decode(&[]).is_none());
    }
}
