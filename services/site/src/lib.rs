//! site: the public face of Juice Junkiez on the public host. Stateless: every fact on a page comes
//! over gRPC from the service that owns it (makes from garage, services from jobs, products from shop).
//!
//! Layout: `upstream` (gRPC clients), `pages` (handlers and templates), `help` (`/help/{doc_id}`:
//! a client-visible knowledge-base document). `main.rs` only calls
//! [`omneuro_platform::app::main`] with [`build`].

/// In a handler: the signed-in visitor and their caller identity, or a redirect to sign in.
macro_rules! signed_in {
    ($state:expr, $req:expr) => {{
        let v = $crate::visitor::Visitor::of(&$state, &$req).await;
        match v.actor() {
            Some(actor) => (v, actor),
            None => return $crate::visitor::see_other("/signin", &v.cookies),
        }
    }};
}

pub mod account;
pub mod assistant;
pub mod cache;
pub mod help;
pub mod pages;
pub mod quote;
pub mod repairs;
pub mod store;
pub mod upstream;
pub mod visitor;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use omneuro_platform::App;
use omneuro_platform::config::{LINK_DEFAULTS, UPSTREAM_DEFAULTS, WebConfig};

pub const NAME: &str = "site";

/// Built-in defaults (DESIGN.md port, dev links, default upstreams); overridable like every setting.
pub fn defaults() -> String {
    format!(
        "[http]\nport = 7107\nworkers = 2\n{UPSTREAM_DEFAULTS}catalog_cache_ms = 2000\n{LINK_DEFAULTS}"
    )
}

pub async fn build(cfg: WebConfig) -> anyhow::Result<App> {
    let upstreams = upstream::Upstreams::connect(&cfg.upstreams)?;
    let state = web::Data::new(pages::SiteState::new(
        upstreams,
        cfg.links.clone(),
        cfg.environment,
        Duration::from_millis(cfg.upstreams.catalog_cache_ms),
    ));
    App::web(
        NAME,
        &cfg,
        Arc::new(move |c: &mut web::ServiceConfig| pages::routes(c, state.clone())),
    )
}
