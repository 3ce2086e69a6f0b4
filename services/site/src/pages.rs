//! Public pages. Each handler gathers what it shows over gRPC (in parallel), turns it into view
//! types and renders an askama template. A section whose service is down says so; the page still works.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use omneuro_platform::config::LinksConfig;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, request_id};
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::{garage::v1 as garage, jobs::v1 as jobs, shop::v1 as shop};
use serde::Deserialize;

use crate::upstream::Upstreams;

pub struct SiteState {
    pub upstreams: Upstreams,
    pub links: LinksConfig,
}

pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<SiteState>) {
    cfg.app_data(state)
        .route("/", web::get().to(home))
        .route("/shop", web::get().to(shop_page))
        .route("/garage", web::get().to(garage_page));
}

/// The shop's fixed facts (address, phone) live here until a settings service owns them.
pub const ADDRESS: &str = "409 S Addison St, Baltimore, MD 21223";

pub struct MakeView {
    pub name: String,
    pub models: String,
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
            name: m.name,
            models: m
                .models
                .into_iter()
                .map(|md| md.name)
                .collect::<Vec<_>>()
                .join(", "),
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
    links: &'a LinksConfig,
    address: &'a str,
    offerings: Option<Vec<OfferingView>>,
    makes: Option<Vec<MakeView>>,
    products: Option<Vec<ProductView>>,
}

async fn home(state: web::Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let up = &state.upstreams;
    let (mut jobs_client, mut garage_client, mut shop_client) =
        (up.jobs.clone(), up.garage.clone(), up.shop.clone());
    let (offerings, makes, products) = tokio::join!(
        grpc::call(
            "JobsService/ListServiceOfferings",
            jobs_client.list_service_offerings(jobs::ListServiceOfferingsRequest {})
        ),
        grpc::call(
            "GarageService/ListVehicleMakes",
            garage_client.list_vehicle_makes(garage::ListVehicleMakesRequest { category: 0 })
        ),
        grpc::call(
            "ShopService/ListProducts",
            shop_client.list_products(shop::ListProductsRequest {
                page: Some(PageRequest {
                    page_size: 6,
                    page_token: String::new()
                }),
                featured_only: true,
                category: String::new(),
            })
        ),
    );
    let page = HomePage {
        links: &state.links,
        address: ADDRESS,
        offerings: offerings.ok().map(|r| {
            r.into_inner()
                .offerings
                .into_iter()
                .map(|o| OfferingView {
                    from_price: format_money(o.starting_price.as_ref()),
                    code: o.code,
                    name: o.name,
                    description: o.description,
                })
                .collect()
        }),
        makes: makes.ok().map(|r| makes_view(r.into_inner().makes)),
        products: products.ok().map(|r| {
            r.into_inner()
                .products
                .into_iter()
                .map(product_view)
                .collect()
        }),
    };
    render(&page, &req)
}

#[derive(Deserialize)]
pub struct ShopQuery {
    #[serde(default)]
    category: String,
}

#[derive(Template)]
#[template(path = "shop.html")]
struct ShopPage<'a> {
    links: &'a LinksConfig,
    category: String,
    products: Option<Vec<ProductView>>,
}

async fn shop_page(
    state: web::Data<SiteState>,
    q: web::Query<ShopQuery>,
    req: HttpRequest,
) -> HttpResponse {
    let category = q.into_inner().category;
    let mut client = state.upstreams.shop.clone();
    let res = grpc::call(
        "ShopService/ListProducts",
        client.list_products(shop::ListProductsRequest {
            page: Some(PageRequest {
                page_size: 100,
                page_token: String::new(),
            }),
            featured_only: false,
            category: category.clone(),
        }),
    )
    .await;
    let products = match res {
        Ok(r) => Some(
            r.into_inner()
                .products
                .into_iter()
                .map(product_view)
                .collect(),
        ),
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            return error_page(StatusCode::BAD_REQUEST, &request_id(&req));
        }
        Err(_) => None,
    };
    render(
        &ShopPage {
            links: &state.links,
            category,
            products,
        },
        &req,
    )
}

#[derive(Template)]
#[template(path = "garage.html")]
struct GaragePage<'a> {
    links: &'a LinksConfig,
    address: &'a str,
    makes: Option<Vec<MakeView>>,
}

async fn garage_page(state: web::Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let mut client = state.upstreams.garage.clone();
    let makes = grpc::call(
        "GarageService/ListVehicleMakes",
        client.list_vehicle_makes(garage::ListVehicleMakesRequest { category: 0 }),
    )
    .await
    .ok()
    .map(|r| makes_view(r.into_inner().makes));
    render(
        &GaragePage {
            links: &state.links,
            address: ADDRESS,
            makes,
        },
        &req,
    )
}

fn render(t: &impl Template, req: &HttpRequest) -> HttpResponse {
    match t.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, &request_id(req))
        }
    }
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
