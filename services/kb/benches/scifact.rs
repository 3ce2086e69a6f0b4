//! Search quality and speed of `kb::search` on BEIR SciFact (`../shared/data/scifact` next to
//! the workspace): nDCG@10 and Recall@100 over the 300 test queries, indexing throughput, query
//! latency p50/p99 on the corpus (5,183 chunks) and on a 100,000-chunk index (the corpus
//! repeated under distinct ids). Skips with a message when the data is absent.
//!
//!   cargo bench -q -p kb --bench scifact

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use kb::documents::Visibility;
use kb::search::{IndexedChunk, Scope, SearchIndex};
use serde_json::Value;

const LARGE_CHUNKS: usize = 100_000;
const LIMIT: usize = 100;

/// Query id -> ranked document ids.
type Rankings = HashMap<String, Vec<String>>;
/// Query id -> corpus id -> graded relevance.
type Qrels = HashMap<String, HashMap<String, u32>>;

struct Doc {
    id: String,
    title: String,
    text: String,
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Value>> {
    let data = fs::read_to_string(path).with_context(|| path.display().to_string())?;
    data.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| path.display().to_string()))
        .collect()
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn chunk(doc: &Doc, copy: usize) -> IndexedChunk {
    let id = if copy == 0 {
        doc.id.clone()
    } else {
        format!("{}#{copy}", doc.id)
    };
    IndexedChunk {
        chunk_id: id.clone(),
        doc_id: id,
        visibility: Visibility::Client,
        owner_client: None,
        heading: doc.title.clone(),
        text: doc.text.clone(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs every query once to warm up, then once timed; returns sorted latencies and the results.
fn run_queries(
    index: &SearchIndex,
    queries: &[(String, String)],
    limit: usize,
) -> anyhow::Result<(Vec<Duration>, Rankings)> {
    for (_, q) in queries {
        index.search(q, Scope::Staff, limit)?;
    }
    let mut latencies = Vec::with_capacity(queries.len());
    let mut results = HashMap::new();
    for (qid, q) in queries {
        let start = Instant::now();
        let hits = index.search(q, Scope::Staff, limit)?;
        latencies.push(start.elapsed());
        results.insert(qid.clone(), hits.into_iter().map(|h| h.doc_id).collect());
    }
    latencies.sort_unstable();
    Ok((latencies, results))
}

/// Mean nDCG@10 and Recall@100 of `results` over the judged queries.
fn evaluate(qrels: &Qrels, results: &Rankings) -> (f64, f64) {
    let (mut ndcg, mut recall) = (0.0, 0.0);
    for (qid, rels) in qrels {
        let ranked = results.get(qid).map(Vec::as_slice).unwrap_or_default();
        let dcg: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, id)| f64::from(rels.get(id).copied().unwrap_or(0)) / (i as f64 + 2.0).log2())
            .sum();
        let mut ideal: Vec<u32> = rels.values().copied().filter(|&r| r > 0).collect();
        ideal.sort_unstable_by(|a, b| b.cmp(a));
        let idcg: f64 = ideal
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, &r)| f64::from(r) / (i as f64 + 2.0).log2())
            .sum();
        if idcg > 0.0 {
            ndcg += dcg / idcg;
        }
        let relevant = ideal.len();
        let found = ranked
            .iter()
            .take(100)
            .filter(|id| rels.get(*id).is_some_and(|&r| r > 0))
            .count();
        if relevant > 0 {
            recall += found as f64 / relevant as f64;
        }
    }
    let n = qrels.len().max(1) as f64;
    (ndcg / n, recall / n)
}

fn main() -> anyhow::Result<()> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/scifact");
    if !data.join("corpus.jsonl").is_file() {
        println!("scifact: skipped, no data at {}", data.display());
        return Ok(());
    }

    let docs: Vec<Doc> = read_jsonl(&data.join("corpus.jsonl"))?
        .iter()
        .map(|v| Doc {
            id: str_field(v, "_id"),
            title: str_field(v, "title"),
            text: str_field(v, "text"),
        })
        .collect();
    let query_text: HashMap<String, String> = read_jsonl(&data.join("queries.jsonl"))?
        .iter()
        .map(|v| (str_field(v, "_id"), str_field(v, "text")))
        .collect();
    let mut qrels: Qrels = HashMap::new();
    let tsv = fs::read_to_string(data.join("qrels/test.tsv"))?;
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 3, "bad qrels line: {line}");
        let rel: u32 = cols[2].trim().parse()?;
        qrels
            .entry(cols[0].to_owned())
            .or_default()
            .insert(cols[1].to_owned(), rel);
    }
    let mut queries: Vec<(String, String)> = qrels
        .keys()
        .map(|qid| {
            (
                qid.clone(),
                query_text.get(qid).cloned().unwrap_or_default(),
            )
        })
        .collect();
    queries.sort_unstable_by_key(|(qid, _)| qid.parse::<u64>().unwrap_or(u64::MAX));

    // Index the corpus: one chunk per document, heading = title.
    let bytes: usize = docs.iter().map(|d| d.title.len() + d.text.len()).sum();
    let chunks: Vec<IndexedChunk> = docs.iter().map(|d| chunk(d, 0)).collect();
    // Indexing on one core: one writer thread.
    let index = SearchIndex::open_in_ram_single_threaded()?;
    let start = Instant::now();
    index.add(&chunks)?;
    index.commit()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "scifact corpus: {} docs, {:.1} MB",
        docs.len(),
        bytes as f64 / 1e6
    );
    println!("scifact indexing (one writer thread): {:.2} s", secs);
    println!(
        "scifact indexing (one writer thread): {:.0} docs/s",
        docs.len() as f64 / secs
    );
    println!(
        "scifact indexing (one writer thread): {:.2} MB/s",
        bytes as f64 / 1e6 / secs
    );

    let (latencies, bm25) = run_queries(&index, &queries, LIMIT)?;
    let (ndcg, recall) = evaluate(&qrels, &bm25);
    println!("scifact test queries: {}", qrels.len());
    println!("scifact BM25 nDCG@10: {ndcg:.4}");
    println!("scifact BM25 Recall@100: {recall:.4}");
    println!(
        "scifact query latency (5,183 chunks, limit {LIMIT}): p50 {}",
        ms(percentile(&latencies, 50.0))
    );
    println!(
        "scifact query latency (5,183 chunks, limit {LIMIT}): p99 {}",
        ms(percentile(&latencies, 99.0))
    );
    let (lat10, _) = run_queries(&index, &queries, 10)?;
    println!(
        "scifact query latency (5,183 chunks, limit 10): p50 {} p99 {}",
        ms(percentile(&lat10, 50.0)),
        ms(percentile(&lat10, 99.0))
    );
    drop(index);

    // 100,000 chunks: the corpus repeated under distinct ids.
    let large: Vec<IndexedChunk> = (0..)
        .flat_map(|copy| docs.iter().map(move |d| (copy, d)))
        .take(LARGE_CHUNKS)
        .map(|(copy, d)| chunk(d, copy))
        .collect();
    let large_bytes: usize = large.iter().map(|c| c.heading.len() + c.text.len()).sum();
    let index = SearchIndex::open_in_ram()?;
    let start = Instant::now();
    for batch in large.chunks(10_000) {
        index.add(batch)?;
    }
    index.commit()?;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(index.num_chunks(), LARGE_CHUNKS as u64);
    println!(
        "large index: {} chunks, {:.1} MB, built in {:.2} s ({:.0} chunks/s, {:.2} MB/s)",
        LARGE_CHUNKS,
        large_bytes as f64 / 1e6,
        secs,
        LARGE_CHUNKS as f64 / secs,
        large_bytes as f64 / 1e6 / secs
    );
    let (latencies, _) = run_queries(&index, &queries, LIMIT)?;
    println!(
        "large query latency (100,000 chunks, limit {LIMIT}): p50 {}",
        ms(percentile(&latencies, 50.0))
    );
    println!(
        "large query latency (100,000 chunks, limit {LIMIT}): p99 {}",
        ms(percentile(&latencies, 99.0))
    );
    let (lat10, _) = run_queries(&index, &queries, 10)?;
    println!(
        "large query latency (100,000 chunks, limit 10): p50 {} p99 {}",
        ms(percentile(&lat10, 50.0)),
        ms(percentile(&lat10, 99.0))
    );
    drop(index);
    dense::run(&docs, &queries, &qrels, &bm25)
}

/// Dense (all-MiniLM-L6-v2 through `kb::minilm`) and hybrid (RRF of BM25 and dense), when the
/// model files are there (`OMNEURO_MINILM_DIR`, set by scripts/bench-kb).
mod dense {
    use super::*;
    use kb::minilm::MiniLm;
    use kb::vectors::{self, Entry, VectorIndex};

    pub fn run(
        docs: &[Doc],
        queries: &[(String, String)],
        qrels: &Qrels,
        bm25: &Rankings,
    ) -> anyhow::Result<()> {
        let Some(dir) = std::env::var_os("OMNEURO_MINILM_DIR").map(PathBuf::from) else {
            println!("dense: skipped, OMNEURO_MINILM_DIR is not set (scripts/bench-kb sets it)");
            return Ok(());
        };
        let model = MiniLm::load(&dir, 0)?;
        let texts: Vec<String> = docs
            .iter()
            .map(|d| kb::embed::chunk_text(&d.title, &d.text))
            .collect();
        let vectors = corpus_vectors(&model, &dir, &texts)?;
        let index = VectorIndex::new();
        index
            .upsert(
                docs.iter()
                    .zip(&vectors)
                    .map(|(d, v)| Entry {
                        chunk_id: d.id.clone(),
                        doc_id: d.id.clone(),
                        visibility: Visibility::Client,
                        owner_client: None,
                        vector: v.clone(),
                    })
                    .collect(),
            )
            .map_err(anyhow::Error::msg)?;

        // Queries: embedding time and search time apart.
        let mut embed_lat = Vec::new();
        let mut search_lat = Vec::new();
        let mut dense = Rankings::new();
        let mut query_vectors = Vec::new();
        model.embed(&[queries[0].1.clone()])?; // warm-up
        for (qid, q) in queries {
            let start = Instant::now();
            let v = model
                .embed(std::slice::from_ref(q))?
                .pop()
                .unwrap_or_default();
            embed_lat.push(start.elapsed());
            let start = Instant::now();
            let hits = index.search(&v, Scope::Staff, LIMIT);
            search_lat.push(start.elapsed());
            dense.insert(qid.clone(), hits.into_iter().map(|h| h.doc_id).collect());
            query_vectors.push(v);
        }
        embed_lat.sort_unstable();
        search_lat.sort_unstable();
        let (ndcg, recall) = evaluate(qrels, &dense);
        println!("scifact dense nDCG@10: {ndcg:.4}");
        println!("scifact dense Recall@100: {recall:.4}");
        let hybrid: Rankings = queries
            .iter()
            .map(|(qid, _)| {
                let lists = [
                    bm25.get(qid).cloned().unwrap_or_default(),
                    dense.get(qid).cloned().unwrap_or_default(),
                ];
                let fused = vectors::fuse(&lists, vectors::RRF_K);
                (qid.clone(), fused.into_iter().map(|(id, _)| id).collect())
            })
            .collect();
        let (ndcg, recall) = evaluate(qrels, &hybrid);
        println!("scifact hybrid (RRF k=60 of BM25 and dense top 100) nDCG@10: {ndcg:.4}");
        println!("scifact hybrid Recall@100: {recall:.4}");
        println!(
            "dense query embedding (one query, one thread pool): p50 {} p99 {}",
            ms(percentile(&embed_lat, 50.0)),
            ms(percentile(&embed_lat, 99.0))
        );
        println!(
            "dense vector search (5,183 vectors, limit {LIMIT}): p50 {} p99 {}",
            ms(percentile(&search_lat, 50.0)),
            ms(percentile(&search_lat, 99.0))
        );

        // 100,000 vectors: the corpus repeated under distinct ids.
        let large = VectorIndex::new();
        let entries: Vec<Entry> = (0..)
            .flat_map(|copy| docs.iter().zip(&vectors).map(move |(d, v)| (copy, d, v)))
            .take(LARGE_CHUNKS)
            .map(|(copy, d, v)| Entry {
                chunk_id: format!("{}#{copy}", d.id),
                doc_id: d.id.clone(),
                visibility: Visibility::Client,
                owner_client: None,
                vector: v.clone(),
            })
            .collect();
        large.upsert(entries).map_err(anyhow::Error::msg)?;
        let mut lat = Vec::new();
        for v in &query_vectors {
            let start = Instant::now();
            large.search(v, Scope::Staff, LIMIT);
            lat.push(start.elapsed());
        }
        lat.sort_unstable();
        println!(
            "dense vector search (100,000 vectors, limit {LIMIT}): p50 {} p99 {}",
            ms(percentile(&lat, 50.0)),
            ms(percentile(&lat, 99.0))
        );
        Ok(())
    }

    /// The corpus's vectors, cached under target/ (embedding 5,183 abstracts takes minutes on
    /// two cores); the cache is keyed by the texts and the model file's size.
    fn corpus_vectors(
        model: &MiniLm,
        dir: &Path,
        texts: &[String],
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for t in texts {
            h.update(t.as_bytes());
            h.update([0]);
        }
        h.update(
            fs::metadata(dir.join("model.safetensors"))?
                .len()
                .to_le_bytes(),
        );
        let key: String = h
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/bench-cache")
            .join(format!("scifact-minilm-{key}.bin"));
        if let Ok(bytes) = fs::read(&cache)
            && let Some(all) = vectors::decode(&bytes)
            && all.len() == texts.len() * kb::minilm::DIM
        {
            println!("dense corpus vectors: from {}", cache.display());
            return Ok(all.chunks(kb::minilm::DIM).map(<[f32]>::to_vec).collect());
        }
        let start = Instant::now();
        let mut out = Vec::with_capacity(texts.len());
        for (i, batch) in texts.chunks(256).enumerate() {
            out.extend(model.embed(batch)?);
            let done = (i + 1) * 256;
            eprint!(
                "\rembedding the corpus: {}/{}",
                done.min(texts.len()),
                texts.len()
            );
        }
        eprintln!();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "dense corpus embedding: {} docs in {:.1} s ({:.1} docs/s)",
            texts.len(),
            secs,
            texts.len() as f64 / secs
        );
        fs::create_dir_all(cache.parent().unwrap_or(Path::new(".")))?;
        let flat: Vec<f32> = out.iter().flatten().copied().collect();
        fs::write(&cache, vectors::encode(&flat))?;
        Ok(out)
    }
}
