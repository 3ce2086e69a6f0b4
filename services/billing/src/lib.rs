//! billing: invoices, payments, refunds, tax rates and the Stripe webhook log.
//!
//! Layout: `tax` (domain types and queries), `webhooks` (HTTP), `grpc` (the `BillingService` RPCs and proto mapping),
//! `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod grpc;
pub mod schema;
pub mod tax;
pub mod webhooks;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_proto::billing::v1::billing_service_server::{BillingServiceServer, SERVICE_NAME};

pub const NAME: &str = "billing";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7103\n[grpc]\nport = 7203\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Binds billing's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let service = grpc::Billing::new(db.clone());
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(BillingServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: Some(Arc::new(webhooks::routes)),
        seed_demo: None,
    };
    App::domain(&cfg, db, spec).await
}
