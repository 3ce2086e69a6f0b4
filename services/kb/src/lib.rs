//! kb: documents, search index and knowledge graph — the shop's memory.
//!
//! Layout: `documents` (domain types and queries), `grpc` (the `KbService` RPCs and proto mapping),
//! `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod chunking;
pub mod documents;
pub mod grpc;
pub mod redact;
pub mod schema;
pub mod search;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_proto::kb::v1::kb_service_server::{KbServiceServer, SERVICE_NAME};

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

/// Binds kb's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let service = grpc::Kb::new(db.clone());
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(KbServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: None,
        seed_demo: None,
    };
    App::domain(&cfg, db, spec).await
}
