//! portal: the tech portal on the tech host. It owns staff accounts and sessions in its own
//! database (ADR 0011); every other fact on a page comes over gRPC from the service that owns it
//! (jobs for work orders and their bench, shop for the parts catalog, garage for clients and
//! vehicles, billing for revenue), called as the signed-in staff member so each service enforces
//! the role table.
//!
//! Layout: `accounts` (staff, sessions, invites, throttling, audit: domain and queries),
//! `password` and `totp` (the credential rules), `staff` (the guard: session cookie and the
//! [`staff::Staff`] extractor), `pages` (the route table with who may use each route, and page
//! helpers), `signin` (password, second factor, set-up), `team` (own account, staff and invites,
//! audit log), `today`/`board`/`bench`/`walkin`/`clients` (the shop floor and the counter),
//! `conversations` (repairbot's conversations, read by staff), `assistant` (the techs' chat with
//! repairbot), `kb` (the knowledge base's documents: list, read, upload as a streamed multipart
//! form with a hard cap, delete), `photos` (job
//! photos: streamed uploads with a hard cap, served back as the type jobs decided),
//! `stock` (stock adjustments with a reason), `catalog` (the owner's products: prices, listings,
//! new products and fitment), `invoices` (invoices by status, voids and refunds),
//! `settings` (the owner's booking rules), `fees` (services with their starting prices, the
//! tax rate), `roster` (the team's skills and weekly hours), `reports` (the owner's weekly figures from jobs and
//! billing, charts drawn as SVG on the server), `cli` (`portal create-owner`).
//! `main.rs` runs a command-line step when one is named, else the service.

pub mod accounts;
pub mod assistant;
pub mod bench;
pub mod board;
pub mod catalog;
pub mod cli;
pub mod clients;
pub mod conversations;
pub mod fees;
pub mod invoices;
pub mod kb;
pub mod pages;
pub mod password;
pub mod photos;
pub mod reports;
pub mod roster;
pub mod schema;
pub mod settings;
pub mod signin;
pub mod staff;
pub mod stock;
pub mod team;
pub mod today;
pub mod totp;
pub mod walkin;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use omneuro_platform::App;
use omneuro_platform::config::{
    Environment, LINK_DEFAULTS, LinksConfig, PortalConfig, StaffConfig, UPSTREAM_DEFAULTS,
};
use omneuro_platform::db::{Database, Migrations};
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::mail::Mailer;
use omneuro_platform::secrets::SecretStore;
use omneuro_proto::billing::v1::billing_service_client::BillingServiceClient;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_proto::repairbot::v1::repairbot_service_client::RepairbotServiceClient;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

pub const NAME: &str = "portal";

static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
static SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub fn migrations() -> Migrations {
    Migrations {
        postgres: &PG,
        sqlite: &SQLITE,
    }
}

pub fn defaults() -> String {
    format!("[http]\nport = 7108\n[database]\n{UPSTREAM_DEFAULTS}{LINK_DEFAULTS}")
}

/// The longest a reply from repairbot (model and tools included) may take.
const REPLY_LIMIT: Duration = Duration::from_secs(90);

/// The least time a photo upload or download to jobs gets (10 MB over a slow link).
const FILE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every portal handler shares; one per process.
pub struct Portal {
    pub links: LinksConfig,
    pub environment: Environment,
    /// Staff accounts, sessions, invites, attempts, audit log.
    pub db: Arc<Database>,
    pub staff: StaffConfig,
    /// Invites by email.
    pub mailer: Arc<Mailer>,
    /// Connects lazily: the portal starts (and says so on the board) when jobs is down.
    pub jobs: JobsServiceClient<TracedChannel>,
    /// jobs again, for photos only: they travel whole (AddPhoto, GetPhoto), so the message limit
    /// is jobs' file limit and a call may take longer than the usual request timeout.
    pub job_files: JobsServiceClient<TracedChannel>,
    /// The parts catalog for the bench's part picker (lazy too: without it parts can't be added,
    /// everything else on the bench still works).
    pub shop: ShopServiceClient<TracedChannel>,
    /// A client's vehicles for a walk-in (lazy too).
    pub garage: GarageServiceClient<TracedChannel>,
    /// Invoices, refunds and revenue (lazy too).
    pub billing: BillingServiceClient<TracedChannel>,
    /// The assistant's conversations, read by staff (lazy too).
    pub repairbot: RepairbotServiceClient<TracedChannel>,
    /// The knowledge base's documents (lazy too). Documents travel whole (an upload, a document
    /// read back with its sections), so the message limits are kb's and calls get the file time.
    pub kb: KbServiceClient<TracedChannel>,
    /// repairbot again, for the techs' chat: a reply may wait on the model ([`REPLY_LIMIT`]).
    pub repairbot_replies: RepairbotServiceClient<TracedChannel>,
}

/// The largest kb message the portal sends or reads: an upload at kb's limit with its form, or a
/// document's text twice (body and sections).
const KB_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub async fn build(cfg: PortalConfig) -> anyhow::Result<App> {
    let db = Arc::new(Database::new(&cfg.database, migrations())?);
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let mailer = Arc::new(Mailer::from_config(&cfg.mail, cfg.environment, &secrets).await?);
    let connect = Duration::from_millis(cfg.upstreams.connect_timeout_ms);
    let request = Duration::from_millis(cfg.upstreams.request_timeout_ms);
    let state = web::Data::new(Portal {
        links: cfg.links.clone(),
        environment: cfg.environment,
        db: db.clone(),
        staff: cfg.staff.clone(),
        mailer,
        jobs: JobsServiceClient::new(grpc::channel(&cfg.upstreams.jobs, connect, request)?),
        job_files: JobsServiceClient::new(grpc::channel(
            &cfg.upstreams.jobs,
            connect,
            request.max(FILE_REQUEST_TIMEOUT),
        )?)
        .max_decoding_message_size(grpc::FILE_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::FILE_MESSAGE_BYTES),
        shop: ShopServiceClient::new(grpc::channel(&cfg.upstreams.shop, connect, request)?),
        garage: GarageServiceClient::new(grpc::channel(&cfg.upstreams.garage, connect, request)?),
        billing: BillingServiceClient::new(grpc::channel(
            &cfg.upstreams.billing,
            connect,
            request,
        )?),
        repairbot: RepairbotServiceClient::new(grpc::channel(
            &cfg.upstreams.repairbot,
            connect,
            request,
        )?),
        kb: KbServiceClient::new(grpc::channel(
            &cfg.upstreams.kb,
            connect,
            request.max(FILE_REQUEST_TIMEOUT),
        )?)
        .max_decoding_message_size(KB_MESSAGE_BYTES)
        .max_encoding_message_size(KB_MESSAGE_BYTES),
        repairbot_replies: RepairbotServiceClient::new(grpc::channel(
            &cfg.upstreams.repairbot,
            connect,
            request.max(REPLY_LIMIT),
        )?),
    });
    App::web_with_database(
        NAME,
        &cfg,
        db,
        Arc::new(move |c: &mut web::ServiceConfig| pages::routes(c, state.clone())),
    )
}
