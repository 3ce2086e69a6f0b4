//! shop: products, prices, fitment, inventory, carts and orders.
//!
//! Layout — domain: `products` (catalog, fitment, demo data), `inventory` (stock counters and the
//! ledger), `orders` (server-side carts, orders, reservations), `quote` (custom battery packs),
//! `catalog` (staff catalog edits), `stripe_sync` (one Stripe Product and current Price per product),
//! `kbsync` (products and orders into kb through shop's `kb_outbox`, ADR 0020);
//! `grpc` (the `ShopService` RPCs, Stripe checkout with Maryland sales tax from billing, proto mapping); `schema` (diesel tables). `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod catalog;
pub mod grpc;
pub mod inventory;
pub mod kbsync;
pub mod orders;
pub mod products;
pub mod quote;
pub mod schema;
pub mod stripe_sync;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::secrets::SecretStore;
use omneuro_platform::stripe::Stripe;
use omneuro_proto::billing::v1::billing_service_client::BillingServiceClient;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_proto::shop::v1::shop_service_server::{SERVICE_NAME, ShopServiceServer};

pub const NAME: &str = "shop";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7104\n[grpc]\nport = 7204\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Binds shop's ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let stripe = Arc::new(Stripe::from_config(&cfg.stripe, &secrets).await);
    // Checkout asks billing for the sales-tax rate (a lazy channel: shop starts without billing).
    let up = &cfg.upstreams;
    let billing = BillingServiceClient::new(omneuro_platform::grpc::channel(
        &up.billing,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    // Lazy too: shop starts (and keeps selling) without kb or garage; its rows wait in `kb_outbox`.
    let kb = KbServiceClient::new(omneuro_platform::grpc::channel(
        &up.kb,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let garage = GarageServiceClient::new(omneuro_platform::grpc::channel(
        &up.garage,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let service = grpc::Shop::new(db.clone(), stripe, billing);
    let sync = service.catalog_sync();
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(ShopServiceServer::new(service)),
        grpc_services: vec![SERVICE_NAME],
        http_routes: None,
        seed_demo: Some(products::seed_demo),
    };
    let mut app = App::domain(&cfg, db.clone(), spec).await?;
    // Products whose Stripe sync failed (or that changed while Stripe was off) catch up.
    if cfg.worker.enabled && sync.is_on() {
        app.spawn_worker("stripe_catalog_sync", move |stop| sync.run(stop));
    } else {
        tracing::info!("Stripe catalog sync worker not started (worker off or Stripe off)");
    }
    if cfg.worker.enabled {
        let kb_sync = omneuro_platform::kb_outbox::Worker {
            db: db.clone(),
            outbox: kbsync::OUTBOX,
            kb,
            worker: cfg.worker.clone(),
            service: NAME,
            metrics: Some(app.metrics()),
            renderer: kbsync::ShopDocs { db, garage },
        };
        app.spawn_worker("kb_sync", move |stop| kb_sync.run(stop));
    } else {
        tracing::warn!(
            "worker.enabled = false: product and order updates for kb wait in kb_outbox"
        );
    }
    Ok(app)
}
