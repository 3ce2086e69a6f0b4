//! The storefront and the client's invoices: the catalog (by category, "fits my vehicle"), product
//! pages, the server-side cart behind the `jj_cart` cookie, checkout on Stripe's hosted page, the
//! no-login order page behind `/shop/orders/<token>`; and in the garage, the client's invoices with
//! "Pay online". shop and billing own every fact and every price; site only shows and forwards.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query, ServiceConfig, get, post};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::http::{error_page, failure, request_id};
use omneuro_platform::{grpc, ids, web};
use omneuro_proto::billing::v1 as billing;
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::shop::v1 as shop;
use serde::Deserialize;
use tonic::Code;

use crate::pages::{SiteState, format_money};
use crate::visitor::{Chrome, Visitor, forbidden, page, private, see_other, site_actor};

/// The cart cookie: a bearer secret naming the server-side cart (shop keeps only its hash).
pub const CART_COOKIE: &str = "jj_cart";
const CART_DAYS: i64 = 30;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/shop", get().to(catalog))
        .route("/shop/p/{id}", get().to(product_page))
        .route("/shop/cart", get().to(cart))
        .route("/shop/cart/items", post().to(cart_item))
        .route("/shop/checkout", post().to(checkout))
        .route("/shop/orders/{token}", get().to(order_page))
        .route("/garage/invoices/{id}", get().to(invoice_page))
        .route("/garage/invoices/{id}/pay", post().to(invoice_pay));
}

const SHOP_BREAK: &str = "The shop is taking a break right now. Please try again in a minute.";
const BILLING_BREAK: &str =
    "Online payment is taking a break right now. Please try again in a minute.";

fn not_found(req: &HttpRequest) -> HttpResponse {
    error_page(StatusCode::NOT_FOUND, &request_id(req))
}

/// Ids that may go into a gRPC call and a return URL (`prd_…`, `inv_…`).
fn id_shaped(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// "Maryland sales tax (6%)" for a rate in basis points ("Maryland sales tax" when unknown).
fn tax_label(bps: u32) -> String {
    if bps == 0 {
        return "Maryland sales tax".to_owned();
    }
    let (whole, frac) = (bps / 100, bps % 100);
    let pct = if frac == 0 {
        whole.to_string()
    } else if frac % 10 == 0 {
        format!("{whole}.{}", frac / 10)
    } else {
        format!("{whole}.{frac:02}")
    };
    format!("Maryland sales tax ({pct}%)")
}

/// `unit × quantity` in the unit's currency.
fn times(unit: Option<&Money>, quantity: i32) -> String {
    unit.map(|u| {
        format_money(Some(&Money {
            amount_cents: u.amount_cents * i64::from(quantity),
            currency: u.currency.clone(),
        }))
    })
    .unwrap_or_default()
}

fn public_url(state: &SiteState) -> &str {
    state.links.public_url.trim_end_matches('/')
}

// ---- the catalog ------------------------------------------------------------------------------

pub struct ProductCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub category_label: String,
    pub price: String,
    pub in_stock: bool,
    pub stock: i64,
}

/// "bms" → "BMS", "tires" → "Tires".
fn category_label(c: &str) -> String {
    if c.eq_ignore_ascii_case("bms") {
        return "BMS".into();
    }
    let words = c.replace(['_', '-'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn card(p: shop::Product) -> ProductCard {
    ProductCard {
        price: format_money(p.price.as_ref()),
        in_stock: p.stock > 0,
        stock: p.stock,
        category_label: category_label(&p.category),
        id: p.id,
        name: p.name,
        description: p.description,
        category: p.category,
    }
}

async fn list_products(
    state: &SiteState,
    category: &str,
    fits: Vec<shop::Fitment>,
) -> Result<Vec<shop::Product>, tonic::Status> {
    let mut s = state.upstreams.shop.clone();
    grpc::call(
        "ShopService/ListProducts",
        s.list_products(shop::ListProductsRequest {
            page: Some(PageRequest {
                page_size: 200,
                page_token: String::new(),
            }),
            featured_only: false,
            category: category.to_owned(),
            fits,
        }),
    )
    .await
    .map(|r| r.into_inner().products)
}

/// The make/model pairs of the client's active vehicles from garage's catalog (None: garage did
/// not answer).
async fn my_fitment(state: &SiteState, actor: &Actor) -> Option<Vec<shop::Fitment>> {
    let mut g = state.upstreams.garage.clone();
    let r = grpc::call(
        "GarageService/ListVehicles",
        g.list_vehicles(auth::request(actor, garage::ListVehiclesRequest::default())),
    )
    .await
    .ok()?;
    let mut fits: Vec<shop::Fitment> = Vec::new();
    for v in r.into_inner().vehicles.into_iter().filter(|v| !v.archived) {
        let input = v.input.unwrap_or_default();
        if input.make_id.is_empty() {
            continue;
        }
        let f = shop::Fitment {
            make_id: input.make_id,
            model_id: input.model_id,
        };
        if !fits.contains(&f) {
            fits.push(f);
        }
    }
    Some(fits)
}

#[derive(Deserialize)]
struct CatalogQuery {
    #[serde(default)]
    category: String,
    #[serde(default)]
    fits: String,
}

#[derive(Template)]
#[template(path = "shop.html")]
struct CatalogPage<'a> {
    chrome: Chrome<'a>,
    category: String,
    category_label: String,
    /// (value, label) of every category in the catalog.
    categories: Vec<(String, String)>,
    /// "Fits my vehicle" is on (and applied).
    fits: bool,
    /// Why "fits my vehicle" could not be applied (shown above the full list).
    fits_notice: String,
    /// Names of the vehicles the list is filtered for.
    fits_for: String,
    products: Option<Vec<ProductCard>>,
}

async fn catalog(state: Data<SiteState>, req: HttpRequest, q: Query<CatalogQuery>) -> HttpResponse {
    let mut v = Visitor::of(&state, &req).await;
    v.form_csrf(&state, &req);
    let q = q.into_inner();
    let category = q.category.trim().chars().take(64).collect::<String>();
    let wants_fits = !q.fits.is_empty() && q.fits != "0";
    let mut fits_notice = String::new();
    let mut fits_for = String::new();
    let mut fits = Vec::new();
    if wants_fits {
        match v.actor() {
            None => {
                fits_notice = "Sign in and add your vehicle to see what fits it.".into();
            }
            Some(actor) => match my_fitment(&state, &actor).await {
                None => {
                    fits_notice =
                        "We can't see your vehicles right now, so here is everything.".into();
                }
                Some(f) if f.is_empty() => {
                    fits_notice = "None of the vehicles in your garage is from our make and model list, so we can't tell what fits. Here is everything.".into();
                }
                Some(f) => {
                    fits_for = vehicle_names(&state, &f).await;
                    fits = f;
                }
            },
        }
    }
    let fits_on = !fits.is_empty();
    let filtered = !category.is_empty() || fits_on;
    let (listed, everything) = if filtered {
        let (a, b) = tokio::join!(
            list_products(&state, &category, fits),
            list_products(&state, "", Vec::new())
        );
        (a, b.ok())
    } else {
        (list_products(&state, "", Vec::new()).await, None)
    };
    let products = match listed {
        Ok(list) => Some(list),
        Err(s) if s.code() == Code::InvalidArgument => {
            return error_page(StatusCode::BAD_REQUEST, &request_id(&req));
        }
        Err(_) => None,
    };
    let mut categories: Vec<(String, String)> = Vec::new();
    for p in everything
        .as_ref()
        .or(products.as_ref())
        .into_iter()
        .flatten()
    {
        if !p.category.is_empty() && !categories.iter().any(|(c, _)| *c == p.category) {
            categories.push((p.category.clone(), category_label(&p.category)));
        }
    }
    page(
        &CatalogPage {
            chrome: v.chrome(&state.links),
            category_label: category_label(&category),
            category,
            categories,
            fits: fits_on,
            fits_notice,
            fits_for,
            products: products.map(|l| l.into_iter().map(card).collect()),
        },
        StatusCode::OK,
        &req,
        &v.cookies,
    )
}

/// "Segway-Ninebot Max G30P, Begode" for the filter's heading (ids when garage is down).
async fn vehicle_names(state: &SiteState, fits: &[shop::Fitment]) -> String {
    let makes = state.makes().await;
    fits.iter()
        .map(|f| fitment_name(makes.as_deref().map(Vec::as_slice), f, ""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "Segway-Ninebot Max G30P", or "Segway-Ninebot" + `any_model` when the model is empty.
fn fitment_name(
    makes: Option<&[crate::pages::MakeView]>,
    f: &shop::Fitment,
    any_model: &str,
) -> String {
    let make = makes.and_then(|ms| ms.iter().find(|m| m.id == f.make_id));
    let make_name = make.map_or(f.make_id.as_str(), |m| m.name.as_str());
    if f.model_id.is_empty() {
        return format!("{make_name}{any_model}");
    }
    let model = make
        .and_then(|m| m.models.iter().find(|md| md.id == f.model_id))
        .map_or(f.model_id.as_str(), |md| md.name.as_str());
    format!("{make_name} {model}")
}

// ---- a product --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "store_product.html")]
struct ProductPage<'a> {
    chrome: Chrome<'a>,
    p: ProductCard,
    fitment: String,
}

async fn product_page(state: Data<SiteState>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let id = id.into_inner();
    if !id_shaped(&id) {
        return not_found(&req);
    }
    let mut s = state.upstreams.shop.clone();
    let (mut v, res) = tokio::join!(
        Visitor::of(&state, &req),
        grpc::call(
            "ShopService/GetProduct",
            s.get_product(shop::GetProductRequest { id }),
        )
    );
    let product = match res.map(|r| r.into_inner().product) {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(&req),
        Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => {
            return not_found(&req);
        }
        Err(_) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    };
    let fitment = if product.fitment.is_empty() {
        String::new()
    } else {
        let makes = state.makes().await;
        product
            .fitment
            .iter()
            .map(|f| fitment_name(makes.as_deref().map(Vec::as_slice), f, " (every model)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    v.form_csrf(&state, &req);
    page(
        &ProductPage {
            chrome: v.chrome(&state.links),
            p: card(product),
            fitment,
        },
        StatusCode::OK,
        &req,
        &v.cookies,
    )
}

// ---- the cart ---------------------------------------------------------------------------------

/// The visitor's cart token, when the cookie holds one.
fn cart_token(req: &HttpRequest) -> Option<String> {
    web::cookie(req, CART_COOKIE).filter(|t| ids::is_secret_shaped(t))
}

fn cart_cookie(state: &SiteState, token: &str) -> String {
    web::set_cookie(
        CART_COOKIE,
        token,
        Some(CART_DAYS * 24 * 3600),
        state.environment,
        false,
    )
}

pub struct CartLineView {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    pub unit: String,
    pub amount: String,
    /// Fewer on the shelf than in the cart: how many there are.
    pub short: Option<i64>,
}

#[derive(Template)]
#[template(path = "store_cart.html")]
struct CartPage<'a> {
    chrome: Chrome<'a>,
    /// None: shop did not answer.
    lines: Option<Vec<CartLineView>>,
    subtotal: String,
    /// "Maryland sales tax (6%)", or a plain label when the rate is not known right now.
    tax_label: String,
    /// Empty: shop could not work the tax out now (it is added at checkout).
    tax: String,
    total: String,
    /// "The price of X changed from $a to $b."
    repriced: Vec<String>,
    error: String,
    email: String,
}

/// Renders the cart (prices acknowledged: the shopper sees them now) with an optional error.
async fn cart_page(
    state: &SiteState,
    req: &HttpRequest,
    mut v: Visitor,
    status: StatusCode,
    error: String,
    email: Option<String>,
) -> HttpResponse {
    v.form_csrf(state, req);
    let cart = match cart_token(req) {
        None => Ok(shop::Cart::default()),
        Some(token) => {
            let mut s = state.upstreams.shop.clone();
            grpc::call(
                "ShopService/GetCart",
                s.get_cart(auth::request(
                    &v.actor().unwrap_or_else(site_actor),
                    shop::GetCartRequest {
                        cart_token: token,
                        acknowledge_prices: true,
                    },
                )),
            )
            .await
            .map(|r| r.into_inner())
        }
    };
    let (lines, subtotal, tax_label, tax, total, repriced) = match cart {
        Ok(c) => {
            let repriced = c
                .lines
                .iter()
                .filter_map(|l| {
                    l.repriced_from.as_ref().map(|old| {
                        format!(
                            "The price of {} changed from {} to {}.",
                            l.name,
                            format_money(Some(old)),
                            format_money(l.unit_price.as_ref())
                        )
                    })
                })
                .collect();
            let lines = c
                .lines
                .into_iter()
                .map(|l| CartLineView {
                    unit: format_money(l.unit_price.as_ref()),
                    amount: times(l.unit_price.as_ref(), l.quantity),
                    short: (l.available < i64::from(l.quantity)).then_some(l.available),
                    product_id: l.product_id,
                    name: l.name,
                    quantity: l.quantity,
                })
                .collect();
            let zero = || {
                format_money(Some(&Money {
                    amount_cents: 0,
                    currency: "USD".into(),
                }))
            };
            let total = c
                .total
                .as_ref()
                .map(|t| format_money(Some(t)))
                .unwrap_or_else(zero);
            let subtotal = c
                .subtotal
                .as_ref()
                .map(|t| format_money(Some(t)))
                .unwrap_or_else(|| total.clone());
            let tax = c
                .tax
                .as_ref()
                .map(|t| format_money(Some(t)))
                .unwrap_or_default();
            (
                Some(lines),
                subtotal,
                tax_label(c.tax_rate_bps),
                tax,
                total,
                repriced,
            )
        }
        Err(_) => (
            None,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            Vec::new(),
        ),
    };
    let error = if lines.is_none() && error.is_empty() {
        SHOP_BREAK.to_owned()
    } else {
        error
    };
    let email = email
        .or_else(|| v.client.as_ref().map(|c| c.email.clone()))
        .unwrap_or_default();
    page(
        &CartPage {
            chrome: v.chrome(&state.links),
            lines,
            subtotal,
            tax_label,
            tax,
            total,
            repriced,
            error,
            email,
        },
        status,
        req,
        &v.cookies,
    )
}

async fn cart(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    cart_page(&state, &req, v, StatusCode::OK, String::new(), None).await
}

#[derive(Deserialize)]
struct CartItemForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    product_id: String,
    #[serde(default)]
    quantity: String,
    /// Set by "Add to cart": the quantity is added to what the cart already holds.
    #[serde(default)]
    add: String,
}

/// Sets a product's quantity in the cart (0 removes it; "Add to cart" adds to it). The first item
/// starts the cart and its cookie.
async fn cart_item(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<CartItemForm>,
) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let Ok(mut quantity) = form.quantity.trim().parse::<i32>() else {
        return cart_page(
            &state,
            &req,
            v,
            StatusCode::BAD_REQUEST,
            "Quantity should be a whole number between 0 and 20.".into(),
            None,
        )
        .await;
    };
    let actor = v.actor().unwrap_or_else(site_actor);
    let mut s = state.upstreams.shop.clone();
    let (token, new_cart) = match cart_token(&req) {
        Some(t) => (t, false),
        None if quantity == 0 => return see_other("/shop/cart", &v.cookies),
        None => (ids::new_secret(), true),
    };
    if !form.add.is_empty() && quantity > 0 && !new_cart {
        let held = grpc::call(
            "ShopService/GetCart",
            s.get_cart(auth::request(
                &actor,
                shop::GetCartRequest {
                    cart_token: token.clone(),
                    acknowledge_prices: false,
                },
            )),
        )
        .await;
        if let Ok(c) = held {
            quantity = quantity.saturating_add(
                c.into_inner()
                    .lines
                    .iter()
                    .find(|l| l.product_id == form.product_id)
                    .map_or(0, |l| l.quantity),
            );
        }
    }
    let res = grpc::call(
        "ShopService/SetCartItem",
        s.set_cart_item(auth::request(
            &actor,
            shop::SetCartItemRequest {
                cart_token: token.clone(),
                product_id: form.product_id.clone(),
                quantity,
            },
        )),
    )
    .await;
    match res {
        Ok(_) => {
            let mut cookies = v.cookies;
            if new_cart {
                cookies.push(cart_cookie(&state, &token));
            }
            see_other("/shop/cart", &cookies)
        }
        Err(s) => {
            let (status, msg) = failure(&s, SHOP_BREAK);
            let status = if status == StatusCode::NOT_FOUND {
                StatusCode::BAD_REQUEST
            } else {
                status
            };
            cart_page(&state, &req, v, status, msg, None).await
        }
    }
}

#[derive(Deserialize)]
struct CheckoutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Places the order (shop reserves the stock) and sends the shopper to Stripe's hosted page.
async fn checkout(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<CheckoutForm>,
) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let email = form.email.trim().to_owned();
    let Some(token) = cart_token(&req) else {
        return cart_page(
            &state,
            &req,
            v,
            StatusCode::BAD_REQUEST,
            "Your cart is empty.".into(),
            Some(email),
        )
        .await;
    };
    let base = public_url(&state);
    let mut s = state.upstreams.shop.clone();
    let res = grpc::call(
        "ShopService/Checkout",
        s.checkout(auth::request(
            &v.actor().unwrap_or_else(site_actor),
            shop::CheckoutRequest {
                cart_token: token,
                email: email.clone(),
                success_url: format!("{base}/shop/orders/{{ORDER_TOKEN}}?paid=1"),
                cancel_url: format!("{base}/shop/cart"),
            },
        )),
    )
    .await;
    match res.map(|r| r.into_inner()) {
        Ok(order) if !order.checkout_url.is_empty() => see_other(&order.checkout_url, &v.cookies),
        Ok(order) => see_other(&format!("/shop/orders/{}", order.status_token), &v.cookies),
        Err(s) => {
            let (status, msg) = failure(&s, SHOP_BREAK);
            cart_page(&state, &req, v, status, msg, Some(email)).await
        }
    }
}

// ---- the no-login order page ------------------------------------------------------------------

pub struct OrderLineView {
    pub name: String,
    pub quantity: i32,
    pub unit: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "store_order.html")]
struct OrderPage<'a> {
    chrome: Chrome<'a>,
    status: &'static str,
    explain: &'static str,
    items: Vec<OrderLineView>,
    subtotal: String,
    tax_label: String,
    tax: String,
    total: String,
    placed: String,
    /// Stripe's page while the order waits for payment (empty otherwise).
    pay_url: String,
}

#[derive(Deserialize)]
struct PaidFlash {
    #[serde(default)]
    paid: String,
}

/// (status in words, what it means)
fn order_status(s: &str, just_paid: bool) -> (&'static str, &'static str) {
    match s {
        "pending_payment" if just_paid => (
            "Confirming payment",
            "Thanks! We're waiting for the card processor to confirm your payment; refresh this page in a moment.",
        ),
        "pending_payment" => (
            "Waiting for payment",
            "Your items are held for you for about 30 minutes while you pay.",
        ),
        "paid" => (
            "Paid",
            "Thank you! We're getting your order ready; pick it up at 409 S Addison St, Baltimore.",
        ),
        "fulfilled" => (
            "Completed",
            "This order has been handed over. Enjoy the ride!",
        ),
        "expired" => (
            "Expired",
            "The payment window closed before payment, so nothing was charged and the items went back on the shelf.",
        ),
        "canceled" => ("Canceled", "This order was canceled; nothing was charged."),
        _ => ("Updated", "Questions about this order? Stop by the shop."),
    }
}

async fn order_page(
    state: Data<SiteState>,
    req: HttpRequest,
    token: Path<String>,
    q: Query<PaidFlash>,
) -> HttpResponse {
    let mut s = state.upstreams.shop.clone();
    let (v, res) = tokio::join!(
        Visitor::of(&state, &req),
        grpc::call(
            "ShopService/GetOrder",
            s.get_order(auth::request(
                &site_actor(),
                shop::GetOrderRequest {
                    id: String::new(),
                    status_token: token.chars().take(64).collect(),
                },
            )),
        )
    );
    let mut resp = match res.map(|r| r.into_inner()) {
        Ok(o) => {
            let (status, explain) = order_status(&o.status, !q.paid.is_empty());
            let placed = o
                .created_at
                .as_ref()
                .and_then(|t| t.to_utc())
                .map(|u| {
                    u.and_utc()
                        .with_timezone(&chrono_tz::America::New_York)
                        .format("%b %-d, %Y %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            page(
                &OrderPage {
                    chrome: v.chrome(&state.links),
                    status,
                    explain,
                    items: o
                        .items
                        .iter()
                        .map(|i| OrderLineView {
                            name: i.name.clone(),
                            quantity: i.quantity,
                            unit: format_money(i.unit_price.as_ref()),
                            amount: format_money(i.amount.as_ref()),
                        })
                        .collect(),
                    subtotal: format_money(o.subtotal.as_ref().or(o.total.as_ref())),
                    tax_label: tax_label(o.tax_rate_bps),
                    tax: format_money(o.tax.as_ref()),
                    total: format_money(o.total.as_ref()),
                    placed,
                    pay_url: if o.status == "pending_payment" && q.paid.is_empty() {
                        o.checkout_url
                    } else {
                        String::new()
                    },
                },
                StatusCode::OK,
                &req,
                &v.cookies,
            )
        }
        Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => not_found(&req),
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    };
    private(&mut resp);
    resp
}

// ---- invoices in the garage -------------------------------------------------------------------

/// A row of "Invoices" on the garage page.
pub struct InvoiceRow {
    pub id: String,
    pub number: String,
    pub total: String,
    pub status: &'static str,
}

fn invoice_status(s: &str) -> &'static str {
    match s {
        "draft" => "Being prepared",
        "open" => "Waiting for payment",
        "paid" => "Paid",
        "partially_refunded" => "Paid, partly refunded",
        "refunded" => "Refunded",
        "void" => "Canceled",
        _ => "Updated",
    }
}

/// The signed-in client's invoices (None when billing does not answer).
pub async fn my_invoices(state: &SiteState, actor: &Actor) -> Option<Vec<InvoiceRow>> {
    let mut b = state.upstreams.billing.clone();
    grpc::call(
        "BillingService/ListInvoices",
        b.list_invoices(auth::request(
            actor,
            billing::ListInvoicesRequest::default(),
        )),
    )
    .await
    .ok()
    .map(|r| {
        r.into_inner()
            .invoices
            .into_iter()
            .map(|i| InvoiceRow {
                total: format_money(i.total.as_ref()),
                status: invoice_status(&i.status),
                id: i.id,
                number: i.number,
            })
            .collect()
    })
}

pub struct InvoiceLineView {
    pub description: String,
    pub quantity: i32,
    pub unit: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage<'a> {
    chrome: Chrome<'a>,
    inv: billing::Invoice,
    status: &'static str,
    lines: Vec<InvoiceLineView>,
    subtotal: String,
    tax_rate: String,
    tax: String,
    total: String,
    /// Empty when nothing was paid / refunded yet.
    paid: String,
    refunded: String,
    /// What is still owed, while the invoice is open.
    due: String,
    open: bool,
    flash: &'static str,
    error: String,
}

fn cents(m: Option<&Money>) -> i64 {
    m.map_or(0, |m| m.amount_cents)
}

fn invoice_view<'a>(
    state: &'a SiteState,
    v: &Visitor,
    inv: billing::Invoice,
    just_paid: bool,
    error: String,
) -> InvoicePage<'a> {
    let open = inv.status == "open";
    let nonzero = |m: Option<&Money>| {
        if cents(m) == 0 {
            String::new()
        } else {
            format_money(m)
        }
    };
    let due = if open {
        let currency = inv
            .total
            .as_ref()
            .map_or_else(|| "USD".to_owned(), |t| t.currency.clone());
        format_money(Some(&Money {
            amount_cents: cents(inv.total.as_ref()) - cents(inv.paid.as_ref()),
            currency,
        }))
    } else {
        String::new()
    };
    let flash = match (just_paid, inv.status.as_str()) {
        (false, _) => "",
        (true, "open") => {
            "Thanks! We're waiting for the card processor to confirm your payment; refresh this page in a moment."
        }
        (true, _) => "Thank you, your payment is in.",
    };
    InvoicePage {
        chrome: v.chrome(&state.links),
        status: invoice_status(&inv.status),
        lines: inv
            .lines
            .iter()
            .map(|l| InvoiceLineView {
                description: l.description.clone(),
                quantity: l.quantity,
                unit: format_money(l.unit_price.as_ref()),
                amount: format_money(l.amount.as_ref()),
            })
            .collect(),
        subtotal: format_money(inv.subtotal.as_ref()),
        tax_rate: format!("{}.{:02} %", inv.tax_rate_bps / 100, inv.tax_rate_bps % 100),
        tax: format_money(inv.tax.as_ref()),
        total: format_money(inv.total.as_ref()),
        paid: nonzero(inv.paid.as_ref()),
        refunded: nonzero(inv.refunded.as_ref()),
        due,
        open,
        flash,
        error,
        inv,
    }
}

async fn load_invoice(
    state: &SiteState,
    actor: &Actor,
    id: &str,
) -> Result<billing::Invoice, tonic::Status> {
    let mut b = state.upstreams.billing.clone();
    grpc::call(
        "BillingService/GetInvoice",
        b.get_invoice(auth::request(
            actor,
            billing::GetInvoiceRequest { id: id.to_owned() },
        )),
    )
    .await
    .map(|r| r.into_inner())
}

async fn invoice_page(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    q: Query<PaidFlash>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !id_shaped(&id) {
        return not_found(&req);
    }
    match load_invoice(&state, &actor, &id).await {
        Ok(inv) => page(
            &invoice_view(&state, &v, inv, !q.paid.is_empty(), String::new()),
            StatusCode::OK,
            &req,
            &v.cookies,
        ),
        Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => not_found(&req),
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// "Pay online": a Stripe Checkout Session for what is owed, then off to its hosted page.
async fn invoice_pay(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let id = id.into_inner();
    if !id_shaped(&id) {
        return not_found(&req);
    }
    let base = public_url(&state);
    let mut b = state.upstreams.billing.clone();
    let res = grpc::call(
        "BillingService/PayInvoice",
        b.pay_invoice(auth::request(
            &actor,
            billing::PayInvoiceRequest {
                id: id.clone(),
                success_url: format!("{base}/garage/invoices/{id}?paid=1"),
                cancel_url: format!("{base}/garage/invoices/{id}"),
            },
        )),
    )
    .await;
    match res.map(|r| r.into_inner()) {
        Ok(r) if !r.checkout_url.is_empty() => see_other(&r.checkout_url, &v.cookies),
        Ok(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
        Err(s) if s.code() == Code::NotFound => not_found(&req),
        Err(s) => {
            let (status, msg) = failure(&s, BILLING_BREAK);
            match load_invoice(&state, &actor, &id).await {
                Ok(inv) => page(
                    &invoice_view(&state, &v, inv, false, msg),
                    status,
                    &req,
                    &v.cookies,
                ),
                Err(_) => error_page(status, &request_id(&req)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_ids_read_well() {
        assert_eq!(category_label("bms"), "BMS");
        assert_eq!(category_label("tires"), "Tires");
        assert_eq!(category_label("power_tools"), "Power tools");
        assert_eq!(category_label(""), "");
        assert!(id_shaped("prd_demo_tube_10") && id_shaped("inv_abc123"));
        assert!(!id_shaped("") && !id_shaped("inv_1?x=1") && !id_shaped("a/b"));
    }

    #[test]
    fn line_amounts_multiply_the_unit_price() {
        let unit = Money {
            amount_cents: 1299,
            currency: "USD".into(),
        };
        assert_eq!(times(Some(&unit), 3), "$38.97");
        assert_eq!(times(None, 3), "");
    }
}
