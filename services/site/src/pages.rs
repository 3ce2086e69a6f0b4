//! Public pages. Each handler gathers what it shows over gRPC (in parallel), turns it into view
//! types and renders an askama template. A section whose service is down says so; the page still works.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{Data, get};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::config::{Environment, LinksConfig};
use omneuro_platform::grpc;
use omneuro_platform::web;
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::{garage::v1 as garage, jobs::v1 as jobs, shop::v1 as shop};

use crate::account;
use crate::cache::Cached;
use crate::upstream::Upstreams;
use crate::visitor::{Chrome, SESSION_COOKIE, Visitor, page};

pub struct SiteState {
    pub upstreams: Upstreams,
    pub links: LinksConfig,
    pub environment: Environment,
    /// Catalog answers reused for `upstreams.catalog_cache_ms` (see [`Cached`]).
    pub offerings: Cached<Vec<OfferingView>>,
    pub makes: Cached<Vec<MakeView>>,
    pub featured: Cached<Vec<ProductView>>,
}

impl SiteState {
    pub fn new(
        upstreams: Upstreams,
        links: LinksConfig,
        environment: Environment,
        catalog_ttl: Duration,
    ) -> Self {
        Self {
            upstreams,
            links,
            environment,
            offerings: Cached::new(catalog_ttl),
            makes: Cached::new(catalog_ttl),
            featured: Cached::new(catalog_ttl),
        }
    }

    /// The session cookie (`max_age` 0 removes it).
    pub fn session_cookie(&self, value: &str, max_age: Option<i64>) -> String {
        web::set_cookie(SESSION_COOKIE, value, max_age, self.environment, false)
    }

    async fn offerings(&self) -> Option<Arc<Vec<OfferingView>>> {
        let mut client = self.upstreams.jobs.clone();
        self.offerings
            .get(|| async move {
                let r = grpc::call(
                    "JobsService/ListServiceOfferings",
                    client.list_service_offerings(jobs::ListServiceOfferingsRequest::default()),
                )
                .await?;
                Ok::<_, tonic::Status>(
                    r.into_inner()
                        .offerings
                        .into_iter()
                        .map(|o| OfferingView {
                            from_price: format_money(o.starting_price.as_ref()),
                            code: o.code,
                            name: o.name,
                            description: o.description,
                        })
                        .collect(),
                )
            })
            .await
            .ok()
    }

    pub async fn makes(&self) -> Option<Arc<Vec<MakeView>>> {
        let mut client = self.upstreams.garage.clone();
        self.makes
            .get(|| async move {
                let r = grpc::call(
                    "GarageService/ListVehicleMakes",
                    client.list_vehicle_makes(garage::ListVehicleMakesRequest { category: 0 }),
                )
                .await?;
                Ok::<_, tonic::Status>(makes_view(r.into_inner().makes))
            })
            .await
            .ok()
    }

    async fn featured(&self) -> Option<Arc<Vec<ProductView>>> {
        let mut client = self.upstreams.shop.clone();
        self.featured
            .get(|| async move {
                let r = grpc::call(
                    "ShopService/ListProducts",
                    client.list_products(shop::ListProductsRequest {
                        page: Some(PageRequest {
                            page_size: 6,
                            page_token: String::new(),
                        }),
                        featured_only: true,
                        category: String::new(),
                        fits: Vec::new(),
                    }),
                )
                .await?;
                Ok::<_, tonic::Status>(
                    r.into_inner()
                        .products
                        .into_iter()
                        .map(product_view)
                        .collect(),
                )
            })
            .await
            .ok()
    }
}

pub fn routes(cfg: &mut actix_web::web::ServiceConfig, state: Data<SiteState>) {
    cfg.app_data(state).route("/", get().to(home));
    account::routes(cfg);
    crate::assistant::routes(cfg);
    crate::repairs::routes(cfg);
    crate::store::routes(cfg);
    crate::quote::routes(cfg);
    crate::help::routes(cfg);
}

/// The shop's fixed facts (address, phone) live here until a settings service owns them.
pub const ADDRESS: &str = "409 S Addison St, Baltimore, MD 21223";

pub struct MakeView {
    pub id: String,
    pub name: String,
    pub models: Vec<ModelView>,
}

pub struct ModelView {
    pub id: String,
    pub name: String,
}

impl MakeView {
    /// "Master, Monster Pro, …" for the lists on the public pages.
    pub fn models_text(&self) -> String {
        self.models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct OfferingView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub from_price: String,
}

pub struct ProductView {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: String,
    pub in_stock: bool,
}

/// `$24.99` for USD cents; other currencies show their code.
pub fn format_money(m: Option<&Money>) -> String {
    let Some(m) = m else { return String::new() };
    let sign = if m.amount_cents < 0 { "-" } else { "" };
    let abs = m.amount_cents.unsigned_abs();
    let amount = format!("{}.{:02}", abs / 100, abs % 100);
    if m.currency.eq_ignore_ascii_case("USD") {
        format!("{sign}${amount}")
    } else {
        format!("{sign}{amount} {}", m.currency)
    }
}

fn makes_view(makes: Vec<garage::VehicleMake>) -> Vec<MakeView> {
    makes
        .into_iter()
        .map(|m| MakeView {
            id: m.id,
            name: m.name,
            models: m
                .models
                .into_iter()
                .map(|md| ModelView {
                    id: md.id,
                    name: md.name,
                })
                .collect(),
        })
        .collect()
}

fn product_view(p: shop::Product) -> ProductView {
    ProductView {
        price: format_money(p.price.as_ref()),
        name: p.name,
        description: p.description,
        category: p.category,
        in_stock: p.stock > 0,
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    chrome: Chrome<'a>,
    address: &'a str,
    offerings: Option<&'a [OfferingView]>,
    makes: Option<&'a [MakeView]>,
    products: Option<&'a [ProductView]>,
}

async fn home(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let (visitor, offerings, makes, products) = tokio::join!(
        Visitor::of(&state, &req),
        state.offerings(),
        state.makes(),
        state.featured()
    );
    let home = HomePage {
        chrome: visitor.chrome(&state.links),
        address: ADDRESS,
        offerings: offerings.as_deref().map(Vec::as_slice),
        makes: makes.as_deref().map(Vec::as_slice),
        products: products.as_deref().map(Vec::as_slice),
    };
    page(&home, StatusCode::OK, &req, &visitor.cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_for_people() {
        let usd = |c| Money {
            amount_cents: c,
            currency: "USD".into(),
        };
        assert_eq!(format_money(Some(&usd(2499))), "$24.99");
        assert_eq!(format_money(Some(&usd(5))), "$0.05");
        assert_eq!(format_money(Some(&usd(-150))), "-$1.50");
        assert_eq!(
            format_money(Some(&Money {
                amount_cents: 1000,
                currency: "EUR".into()
            })),
            "10.00 EUR"
        );
        assert_eq!(format_money(None), "");
    }
}
