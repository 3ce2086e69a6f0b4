//! billing: invoices, payments, refunds, tax rates and the Stripe webhook log.
//!
//! Layout: `invoices` (numbers, lines, tax, payments and refunds), `tax` (rates), `reports` (the
//! owner's weekly revenue: paid, refunded, net) — domain;
//! `webhooks` (Stripe events over HTTP, each once), `grpc` (the `BillingService` RPCs, Stripe
//! calls, proto mapping), `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod grpc;
pub mod invoices;
pub mod reports;
pub mod schema;
pub mod tax;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::mail::Mailer;
use omneuro_platform::secrets::{SecretStore, names};
use omneuro_platform::stripe::Stripe;
use omneuro_proto::billing::v1::billing_service_server::{BillingServiceServer, SERVICE_NAME};
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

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
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let stripe = Arc::new(Stripe::from_config(&cfg.stripe, &secrets).await);
    let webhook_secret = match secrets.get(names::STRIPE_WEBHOOK_SECRET).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "Stripe webhooks stay refused (503)");
            None
        }
    };
    let up = &cfg.upstreams;
    let jobs = JobsServiceClient::new(omneuro_platform::grpc::channel(
        &up.jobs,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let shop = ShopServiceClient::new(omneuro_platform::grpc::channel(
        &up.shop,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let garage = GarageServiceClient::new(omneuro_platform::grpc::channel(
        &up.garage,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let mailer = Arc::new(Mailer::from_config(&cfg.mail, cfg.environment, &secrets).await?);
    let service = grpc::Billing::new(
        db.clone(),
        stripe,
        jobs.clone(),
        shop.clone(),
        garage.clone(),
    );
    let hooks = actix_web::web::Data::new(webhooks::WebhookState {
        db: db.clone(),
        secret: webhook_secret,
        shop,
        jobs,
        garage,
        mailer,
    });
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(BillingServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: Some(Arc::new(move |c: &mut actix_web::web::ServiceConfig| {
            webhooks::routes(c, hooks.clone())
        })),
        seed_demo: None,
    };
    App::domain(&cfg, db, spec).await
}
