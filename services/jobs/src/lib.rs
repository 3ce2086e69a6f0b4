//! jobs: work orders, booking rules and the catalog of services the shop offers.
//!
//! Layout — domain (no proto, no transport): `booking` (the rules as data and the availability
//! maths), `booking_store` (rules, window load, book/reschedule in the database), `workorders`
//! (status workflow, history, status links), `outbox` (notifications written with the change), `kbsync` (jobs into kb through
//! their own outbox, ADR 0014),
//! `offerings`, `photos` (job photos: the checks and their rows; the bytes in the photo store), `reports` (the owner's weekly figures: jobs by status, turnaround, parts used); `notify` (the worker that delivers the outbox by email and SMS, and queues
//! reminders); `grpc` (the `JobsService` RPCs, who may call them, proto mapping); `schema`. `main.rs` only calls [`omneuro_platform::app::main`] with [`build`].

pub mod booking;
pub mod booking_store;
pub mod estimates;
pub mod grpc;
pub mod kbsync;
pub mod notify;
pub mod offerings;
pub mod outbox;
pub mod photos;
pub mod reports;
pub mod schema;
pub mod workorders;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::app::DomainSpec;
use omneuro_platform::blobs::{Blobs, DiskStore};
use omneuro_platform::config::ServiceConfig;
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::mail::Mailer;
use omneuro_platform::secrets::SecretStore;
use omneuro_platform::sms::Sms;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1::jobs_service_server::{JobsServiceServer, SERVICE_NAME};
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

pub const NAME: &str = "jobs";

/// Built-in defaults (DESIGN.md ports); the config file and `OMNEURO__…` env vars override them.
pub const DEFAULTS: &str = "[http]\nport = 7102\n[grpc]\nport = 7202\n[database]\n";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

/// Binds jobs' ports and wires its gRPC service; run it with [`App::run_until_stopped`].
pub async fn build(cfg: ServiceConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let mailer = Arc::new(Mailer::from_config(&cfg.mail, cfg.environment, &secrets).await?);
    let sms = Arc::new(Sms::from_config(&cfg.sms, &secrets).await);
    let up = &cfg.upstreams;
    let garage = GarageServiceClient::new(omneuro_platform::grpc::channel(
        &up.garage,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let shop = ShopServiceClient::new(omneuro_platform::grpc::channel(
        &up.shop,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    // Lazy: jobs starts (and keeps working) without kb; its rows wait in `kb_outbox`.
    let kb = KbServiceClient::new(omneuro_platform::grpc::channel(
        &up.kb,
        Duration::from_millis(up.connect_timeout_ms),
        Duration::from_millis(up.request_timeout_ms),
    )?);
    let photos = Blobs::new(
        DiskStore::from_config(&cfg.photos, cfg.environment)
            .context("the photo store ([photos] dir)")?,
    );
    let service = grpc::Jobs::new(db.clone(), garage.clone(), shop, cfg.links.clone(), photos);
    // Photos travel whole in AddPhoto/GetPhoto: larger messages than tonic's 4 MiB default.
    let server = JobsServiceServer::new(service)
        .max_decoding_message_size(omneuro_platform::grpc::FILE_MESSAGE_BYTES)
        .max_encoding_message_size(omneuro_platform::grpc::FILE_MESSAGE_BYTES);
    let spec = DomainSpec {
        name: NAME,
        routes: tonic::service::Routes::new(server),
        grpc_services: vec![SERVICE_NAME],
        http_routes: None,
        seed_demo: None,
    };
    let mut app = App::domain(&cfg, db.clone(), spec).await?;
    if cfg.worker.enabled {
        let sync = omneuro_platform::kb_outbox::Worker {
            db: db.clone(),
            outbox: kbsync::OUTBOX,
            kb,
            worker: cfg.worker.clone(),
            service: NAME,
            metrics: Some(app.metrics()),
            renderer: kbsync::JobDocs {
                db: db.clone(),
                garage: garage.clone(),
            },
        };
        app.spawn_worker("kb_sync", move |stop| sync.run(stop));
        let notifier = notify::Notifier {
            db,
            mailer,
            sms,
            garage,
            links: cfg.links.clone(),
            worker: cfg.worker.clone(),
        };
        app.spawn_worker("notifications", move |stop| notifier.run(stop));
    } else {
        tracing::warn!(
            "worker.enabled = false: notifications and kb updates wait in their outboxes"
        );
    }
    Ok(app)
}
