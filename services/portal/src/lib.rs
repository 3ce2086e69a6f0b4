//! portal: the tech portal on the tech host. Staff accounts and sign-in arrive with the portal issue;
//! until then the portal shows its sign-in page and refuses every sign-in attempt (it never lets
//! anyone in without an account: the original portal opened when its password was unset).
//!
//! Layout: `pages` (handlers and templates). `main.rs` only calls [`omneuro_platform::app::main`].

pub mod pages;

use std::sync::Arc;

use actix_web::web;
use omneuro_platform::App;
use omneuro_platform::config::{LINK_DEFAULTS, UPSTREAM_DEFAULTS, WebConfig};

pub const NAME: &str = "portal";

pub fn defaults() -> String {
    format!("[http]\nport = 7108\n{UPSTREAM_DEFAULTS}{LINK_DEFAULTS}")
}

pub async fn build(cfg: WebConfig) -> anyhow::Result<App> {
    let links = web::Data::new(cfg.links.clone());
    App::web(
        NAME,
        &cfg,
        Arc::new(move |c: &mut web::ServiceConfig| pages::routes(c, links.clone())),
    )
}
