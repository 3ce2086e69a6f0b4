//! garage: clients, their vehicles and the PEV make/model catalog.
//!
//! Layout: `catalog` (makes and models), `clients` (sign-in, sessions, profile, consent),
//! `vehicles` (a client's vehicles), `search` (staff finding clients and their vehicles) — domain
//! types and queries; `grpc` (the `GarageService` RPCs, who may call them, proto mapping); `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod catalog;
pub mod clients;
pub mod grpc;
pub mod schema;
pub mod search;
pub mod vehicles;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::mail::Mailer;
use omneuro_platform::secrets::SecretStore;
use omneuro_proto::garage::v1::garage_service_server::{GarageServiceServer, SERVICE_NAME};

pub const NAME: &str = "garage";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7101\n[grpc]\nport = 7201\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Binds garage's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let mailer = Arc::new(Mailer::from_config(&cfg.mail, cfg.environment, &secrets).await?);
    let service = grpc::Garage::new(db.clone(), mailer, cfg.links.clone());
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(GarageServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: None,
        seed_demo: None,
    };
    App::domain(&cfg, db, spec).await
}
