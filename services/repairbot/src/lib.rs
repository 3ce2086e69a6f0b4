//! repairbot: conversations with clients and techs, the LLM and its tools, the phone receptionist.
//!
//! Layout: `conversations` (domain types and queries), `webhooks` (HTTP), `grpc` (the `RepairbotService` RPCs and proto mapping),
//! `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod conversations;
pub mod grpc;
pub mod intent;
pub mod llm;
pub mod schema;
pub mod webhooks;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::secrets::{SecretStore, names};
use omneuro_proto::repairbot::v1::repairbot_service_server::{
    RepairbotServiceServer, SERVICE_NAME,
};

pub const NAME: &str = "repairbot";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7105\n[grpc]\nport = 7205\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Binds repairbot's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    // The assistant's model key: without it the LLM stays off (the offline assistant arrives with
    // the repairbot issue); it is never replaced by anything "open".
    // Resolved in the background so a slow secret store never delays start-up.
    let secrets_cfg = cfg.secrets.clone();
    tokio::spawn(async move {
        let secrets = SecretStore::from_config(&secrets_cfg).await;
        match secrets.get(names::OPENAI_API_KEY).await {
            Ok(key) => tracing::info!(secret.len = key.expose().len(), "LLM enabled"),
            Err(e) => tracing::warn!(error = %e, "LLM disabled"),
        }
    });
    let service = grpc::Repairbot::new(db.clone());
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(RepairbotServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: Some(Arc::new(webhooks::routes)),
        seed_demo: None,
    };
    App::domain(&cfg, db, spec).await
}
