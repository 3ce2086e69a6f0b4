//! Stock at the counter: what each product in the shop has available to sell, and adjustments
//! with a reason (parts arriving, a count, damage). shop owns the counters and the ledger
//! (`ListProducts` for what is listed, `AdjustStock` as the signed-in staff member); a refused
//! adjustment shows shop's reason on the same page with what was typed.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::common::v1::PageRequest;
use omneuro_proto::shop::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::pages::{forbidden, page, see_other};
use crate::staff::{Nav, Staff};

const SHOP_DOWN: &str = "The shop service isn't answering right now, so stock can't be shown or changed. Nothing is lost; reload in a minute.";
/// The most products the page lists (the shop's page size cap).
const PAGE_SIZE: u32 = 200;

pub struct StockRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub available: i64,
}

/// What was typed into one product's form, kept when it is refused.
#[derive(Default)]
pub struct Typed {
    pub product_id: String,
    pub delta: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "stock.html")]
struct StockPage<'a> {
    nav: Nav,
    rows: Vec<StockRow>,
    typed: &'a Typed,
    message: Option<&'a str>,
    notice: Option<String>,
}

async fn stock_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    typed: &Typed,
    message: Option<&str>,
    notice: Option<String>,
) -> HttpResponse {
    let mut s = state.shop.clone();
    let listed = grpc::call(
        "ShopService/ListProducts",
        s.list_products(auth::request(
            &staff.actor(),
            pb::ListProductsRequest {
                page: Some(PageRequest {
                    page_size: PAGE_SIZE,
                    page_token: String::new(),
                }),
                ..Default::default()
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
                .map(|p| StockRow {
                    id: p.id,
                    name: p.name,
                    category: p.category.replace(['_', '-'], " "),
                    available: p.stock,
                })
                .collect(),
            message,
        ),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new(), Some(SHOP_DOWN)),
    };
    let t = StockPage {
        nav: staff.nav(req, state),
        rows,
        typed,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

#[derive(Deserialize)]
pub struct StockQuery {
    #[serde(default)]
    now: Option<i64>,
    #[serde(default)]
    product: Option<String>,
}

/// GET `/stock` (after a change, `?product=…&now=N` says what it is now).
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<StockQuery>,
) -> HttpResponse {
    let notice = q.now.map(|n| format!("Stock changed: {n} available now."));
    let typed = Typed {
        product_id: q.product.clone().unwrap_or_default(),
        ..Typed::default()
    };
    stock_page(&staff, &state, &req, StatusCode::OK, &typed, None, notice).await
}

#[derive(Deserialize)]
pub struct AdjustForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    delta: String,
    #[serde(default)]
    reason: String,
}

/// POST `/stock/{id}`: adds or takes away `delta` with a reason.
pub async fn adjust(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<AdjustForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let form = form.into_inner();
    let typed = Typed {
        product_id: id.into_inner(),
        delta: form.delta.chars().take(20).collect(),
        reason: form.reason.chars().take(400).collect(),
    };
    let Ok(delta) = typed.delta.trim().trim_start_matches('+').parse::<i64>() else {
        let message = "Type how many to add (like 6) or take away (like -2).";
        return stock_page(
            &staff,
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            &typed,
            Some(message),
            None,
        )
        .await;
    };
    let mut s = state.shop.clone();
    let res = grpc::call(
        "ShopService/AdjustStock",
        s.adjust_stock(auth::request(
            &staff.actor(),
            pb::AdjustStockRequest {
                product_id: typed.product_id.clone(),
                delta,
                reason: typed.reason.trim().to_owned(),
            },
        )),
    )
    .await;
    match res {
        Ok(r) => see_other(
            &format!(
                "/stock?product={}&now={}",
                typed.product_id,
                r.into_inner().available
            ),
            &[],
        ),
        Err(st) => {
            let (status, message) = failure(&st, SHOP_DOWN);
            stock_page(&staff, &state, &req, status, &typed, Some(&message), None).await
        }
    }
}
