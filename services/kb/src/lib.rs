//! kb: documents, search index and knowledge graph — the shop's memory.
//!
//! Layout — domain: `extract` (text, Markdown, HTML, PDF text layer; size and binary checks),
//! `chunking` (heading- and paragraph-aware chunks with overlap), `documents` (documents and chunks
//! in the database, de-duplication, replacement by source ref), `search` (the tantivy BM25 index,
//! derived from the database), `redact` (personal data out of client-facing text), `graph` (entities and edges from
//! documents' links and mentions, and the graph queries), `service` (the
//! operations: ingest, delete, search by audience, rebuild); `grpc` (the `KbService` RPCs, who may
//! call them, proto mapping); `cli` (`kb ingest`, `kb rebuild-index`); `schema` (diesel tables).
//! `main.rs` runs a command-line step or [`omneuro_platform::app::main`] with [`build`].

pub mod chunking;
pub mod cli;
pub mod dense;
pub mod documents;
pub mod embed;
pub mod extract;
pub mod graph;
pub mod grpc;
pub mod minilm;
pub mod redact;
pub mod schema;
pub mod search;
pub mod service;
pub mod vectors;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::secrets::{SecretStore, names};
use omneuro_proto::kb::v1::kb_service_server::{KbServiceServer, SERVICE_NAME};

use crate::search::SearchIndex;
use crate::service::Kb;

pub const NAME: &str = "kb";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7106\n[grpc]\nport = 7206\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Opens the search index where the configuration puts it (see [`service::index_dir`]).
pub fn open_index(cfg: &ServiceConfig) -> anyhow::Result<SearchIndex> {
    match service::index_dir(&cfg.kb, &cfg.database.url) {
        Some(dir) => SearchIndex::open(&dir).with_context(|| {
            format!(
                "cannot open the search index in {} (is another kb using it?)",
                dir.display()
            )
        }),
        None => Ok(SearchIndex::open_in_ram()?),
    }
}

/// Binds kb's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let index = Arc::new(open_index(&cfg)?);
    let mut kb = Kb::new(db.clone(), index, &cfg.kb);
    if let Some(embedder) = embedder(&cfg).await? {
        tracing::info!(kb.embedding_model = %embedder.model_id(), "dense vectors on: hybrid search");
        kb = kb.with_embedder(embedder);
    }
    let kb = Arc::new(kb);
    // Room for the largest document plus the rest of the message; bigger ones get a clear
    // INVALID_ARGUMENT from kb rather than the transport's RESOURCE_EXHAUSTED.
    let max_message = cfg.kb.max_document_bytes.saturating_add(1024 * 1024);
    let server = KbServiceServer::new(grpc::KbGrpc::new(kb.clone(), db.clone()))
        .max_decoding_message_size(max_message.saturating_mul(2));
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(server),
        grpc_services: vec![SERVICE_NAME],
        http_routes: None,
        seed_demo: None,
    };
    let mut app = App::domain(&cfg, db.clone(), spec).await?;
    if kb.dense().is_some() {
        let kb = kb.clone();
        app.spawn_worker("kb_embeddings", move |stop| dense::run_worker(kb, stop));
    }
    app.spawn_worker("kb_index_reconcile", move |stop| {
        reconcile_when_migrated(db, kb, stop)
    });
    Ok(app)
}

/// The configured embedder (`[kb.embeddings]`), loaded now so a wrong model directory stops kb
/// with the reason rather than leaving dense search silently off. The openai provider's key comes
/// from `/omneuro/openai/api_key` when the store has it (local servers need none).
async fn embedder(cfg: &ServiceConfig) -> anyhow::Result<Option<embed::Embedder>> {
    let e = &cfg.kb.embeddings;
    let key = if e.provider.trim() == "openai" {
        let secrets = SecretStore::from_config(&cfg.secrets).await;
        match secrets.get(names::OPENAI_API_KEY).await {
            Ok(k) => Some(k.expose().to_owned()),
            Err(err) => {
                tracing::info!(error = %err, "no API key for the embeddings endpoint; calling it without one");
                None
            }
        }
    } else {
        None
    };
    let cfg = e.clone();
    tokio::task::spawn_blocking(move || embed::Embedder::from_config(&cfg, key))
        .await?
        .context("[kb.embeddings]")
}

/// Once the database is migrated, rebuilds the index if it disagrees with the database; retries
/// while the database is down, stops with the service.
async fn reconcile_when_migrated(
    db: Arc<Database>,
    kb: Arc<Kb>,
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    tokio::pin!(stop);
    loop {
        if db.is_migrated() {
            match kb.reconcile().await {
                Ok(_) => return,
                Err(e) => tracing::warn!(error = %e, "index check failed; will retry"),
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
