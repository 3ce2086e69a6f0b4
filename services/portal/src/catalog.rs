//! The owner's catalog: every product (listed or not) with its price, whether it is listed, what
//! is on hand and held, and where its Stripe copy stands; a product's price and listing change
//! here. shop owns the catalog (`ListCatalog`, `UpdateProduct`, which also syncs Stripe and says
//! how that went, shown on the page); a refused change shows shop's reason on the same page with
//! what was typed.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::shop::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::bench::{money, parse_dollars};
use crate::pages::{forbidden, page};
use crate::staff::{Nav, Staff};

const SHOP_DOWN: &str = "The shop service isn't answering right now, so the catalog can't be shown or changed. Nothing is lost; reload in a minute.";
const BAD_PRICE: &str = "The price should be dollars, like 129 or 129.99.";
/// The most products the page lists (the shop's page size cap).
const PAGE_SIZE: u32 = 200;

pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub price: String,
    pub active: bool,
    pub on_hand: i64,
    pub reserved: i64,
    pub stripe: &'static str,
}

/// What was typed into one product's form, kept when it is refused.
#[derive(Default)]
pub struct Typed {
    pub product_id: String,
    pub price: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage<'a> {
    nav: Nav,
    rows: Vec<ProductRow>,
    typed: &'a Typed,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

fn stripe_label(p: &pb::CatalogProduct) -> &'static str {
    match p.stripe.as_ref().map(|s| s.state()) {
        Some(pb::StripeSyncState::Synced) => "in step",
        Some(pb::StripeSyncState::Failed) => "failed (retried by the next sync)",
        _ => "waiting for a sync",
    }
}

/// Money as the price field shows it ("129.99").
fn dollars(m: Option<&Money>) -> String {
    money(m).trim_start_matches('$').to_owned()
}

async fn catalog_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    typed: &Typed,
    message: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let mut s = state.shop.clone();
    let listed = grpc::call(
        "ShopService/ListCatalog",
        s.list_catalog(auth::request(
            &staff.actor(),
            pb::ListCatalogRequest {
                page: Some(PageRequest {
                    page_size: PAGE_SIZE,
                    page_token: String::new(),
                }),
            },
        )),
    )
    .await;
    let (status, rows, message) = match listed {
        Ok(r) => (
            status,
            r.into_inner()
                .products
                .into_iter()
                .map(|c| {
                    let stripe = stripe_label(&c);
                    let p = c.product.unwrap_or_default();
                    ProductRow {
                        id: p.id,
                        name: p.name,
                        category: p.category.replace(['_', '-'], " "),
                        price: dollars(p.price.as_ref()),
                        active: c.active,
                        on_hand: c.on_hand,
                        reserved: c.reserved,
                        stripe,
                    }
                })
                .collect(),
            message,
        ),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new(), Some(SHOP_DOWN)),
    };
    let t = CatalogPage {
        nav: staff.nav(req, state),
        rows,
        typed,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

/// GET `/catalog`.
pub async fn show(staff: Staff, state: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let typed = Typed::default();
    catalog_page(&staff, &state, &req, StatusCode::OK, &typed, None, None).await
}

#[derive(Deserialize)]
pub struct ProductForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    active: Option<String>,
}

/// POST `/catalog/{id}`: the price and whether the product is listed.
pub async fn update(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<ProductForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let form = form.into_inner();
    let typed = Typed {
        product_id: id.into_inner(),
        price: form.price.chars().take(20).collect(),
        active: form.active.is_some(),
    };
    let Some(cents) = parse_dollars(&typed.price) else {
        return catalog_page(
            &staff,
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            &typed,
            Some(BAD_PRICE),
            None,
        )
        .await;
    };
    let mut s = state.shop.clone();
    let res = grpc::call(
        "ShopService/UpdateProduct",
        s.update_product(auth::request(
            &staff.actor(),
            pb::UpdateProductRequest {
                id: typed.product_id.clone(),
                price: Some(Money::usd(cents)),
                active: Some(typed.active),
                ..Default::default()
            },
        )),
    )
    .await;
    match res {
        Ok(r) => {
            let note = r
                .into_inner()
                .product
                .and_then(|p| p.stripe)
                .map(|s| s.note)
                .unwrap_or_default();
            // Shown straight away (not redirected): shop's word on the Stripe copy belongs to
            // this change. Sending the form again sets the same price again.
            let saved = Typed {
                product_id: typed.product_id.clone(),
                ..Typed::default()
            };
            catalog_page(
                &staff,
                &state,
                &req,
                StatusCode::OK,
                &saved,
                None,
                Some(&note),
            )
            .await
        }
        Err(st) => {
            let (status, message) = failure(&st, SHOP_DOWN);
            catalog_page(&staff, &state, &req, status, &typed, Some(&message), None).await
        }
    }
}
