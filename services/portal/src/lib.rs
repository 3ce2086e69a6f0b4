//! portal: the tech portal on the tech host. Stateless: every fact on a page comes over gRPC from
//! the service that owns it (jobs for work orders and their bench, shop for the parts catalog,
//! garage for a walk-in client's vehicles).
//!
//! Staff accounts (argon2, TOTP, roles) arrive with the portal release. Until then one temporary
//! guard lets the shop in: the staff key from the secret store (`/omneuro/portal/staff_key`). When
//! that secret is unset every staff page says it is closed; nothing ever falls back to "open" (the
//! original portal opened when its password was unset).
//!
//! Layout: `staff` (the guard: key, session cookie, the [`staff::Staff`] extractor every staff
//! handler takes), `signin` (sign-in and sign-out), `board` (the job board, a job, moving it),
//! `bench` (a job's bench: notes, labor and parts lines, the tech, the estimate), `walkin` (opening
//! a job for a vehicle that came in without a booking), `pages` (routes and page helpers).
//! `main.rs` only calls [`omneuro_platform::app::main`].

pub mod bench;
pub mod board;
pub mod pages;
pub mod password;
pub mod signin;
pub mod staff;
pub mod totp;
pub mod walkin;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use omneuro_platform::App;
use omneuro_platform::config::{
    Environment, LINK_DEFAULTS, LinksConfig, UPSTREAM_DEFAULTS, WebConfig,
};
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::secrets::{SecretError, SecretStore, names};
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

use crate::staff::StaffKey;

pub const NAME: &str = "portal";

pub fn defaults() -> String {
    format!("[http]\nport = 7108\n{UPSTREAM_DEFAULTS}{LINK_DEFAULTS}")
}

/// What every portal handler shares; one per process.
pub struct Portal {
    pub links: LinksConfig,
    pub environment: Environment,
    /// Connects lazily: the portal starts (and says so on the board) when jobs is down.
    pub jobs: JobsServiceClient<TracedChannel>,
    /// The parts catalog for the bench's part picker (lazy too: without it parts can't be added,
    /// everything else on the bench still works).
    pub shop: ShopServiceClient<TracedChannel>,
    /// A client's vehicles for a walk-in (lazy too).
    pub garage: GarageServiceClient<TracedChannel>,
    /// Read once at start; `None` keeps every staff page closed.
    pub staff_key: Option<StaffKey>,
}

/// The staff key, read once. Missing or unreadable both mean closed (never open).
async fn read_staff_key(store: &SecretStore) -> Option<StaffKey> {
    match store.get(names::PORTAL_STAFF_KEY).await {
        Ok(key) => Some(StaffKey::new(&key)),
        Err(e @ SecretError::Missing { .. }) => {
            tracing::warn!(error = %e, "staff pages closed: no staff key configured");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "staff pages closed: the staff key could not be read");
            None
        }
    }
}

pub async fn build(cfg: WebConfig) -> anyhow::Result<App> {
    let secrets = SecretStore::from_config(&cfg.secrets).await;
    let staff_key = read_staff_key(&secrets).await;
    let connect = Duration::from_millis(cfg.upstreams.connect_timeout_ms);
    let request = Duration::from_millis(cfg.upstreams.request_timeout_ms);
    let state = web::Data::new(Portal {
        links: cfg.links.clone(),
        environment: cfg.environment,
        jobs: JobsServiceClient::new(grpc::channel(&cfg.upstreams.jobs, connect, request)?),
        shop: ShopServiceClient::new(grpc::channel(&cfg.upstreams.shop, connect, request)?),
        garage: GarageServiceClient::new(grpc::channel(&cfg.upstreams.garage, connect, request)?),
        staff_key,
    });
    App::web(
        NAME,
        &cfg,
        Arc::new(move |c: &mut web::ServiceConfig| pages::routes(c, state.clone())),
    )
}
