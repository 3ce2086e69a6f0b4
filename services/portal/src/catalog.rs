//! The owner's catalog: every product (listed or not) with its price, whether it is listed, what
//! is on hand and held, and where its Stripe copy stands; a product's price and listing change
//! here. shop owns the catalog (`ListCatalog`, `UpdateProduct`, which also syncs Stripe and says
//! how that went, shown on the page); a refused change shows shop's reason on the same page with
//! what was typed. A new product is added here too (`CreateProduct`), and each product's page
//! (`/catalog/{id}`) says which makes and models it fits, picked from garage's vehicle catalog
//! (`SetFitment`).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::garage::v1 as gpb;
use omneuro_proto::shop::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::bench::{money, parse_dollars};
use crate::pages::{forbidden, page, see_other};
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

/// What was typed into the new-product form, kept when it is refused.
#[derive(Default, Deserialize)]
pub struct NewProductForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub price: String,
    #[serde(default)]
    pub stock: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub active: Option<String>,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage<'a> {
    nav: Nav,
    rows: Vec<ProductRow>,
    typed: &'a Typed,
    new: &'a NewProductForm,
    categories: Vec<String>,
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

/// Every product in the catalog (listed or not), as shop lists them.
async fn list_catalog(
    staff: &Staff,
    state: &Portal,
) -> Result<Vec<pb::CatalogProduct>, tonic::Status> {
    let mut s = state.shop.clone();
    grpc::call(
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
    .await
    .map(|r| r.into_inner().products)
}

struct Shown<'a> {
    status: StatusCode,
    typed: &'a Typed,
    new: &'a NewProductForm,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn catalog_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    shown: Shown<'_>,
) -> HttpResponse {
    let Shown {
        status,
        typed,
        new,
        message,
        notice,
    } = shown;
    let (status, products, message) = match list_catalog(staff, state).await {
        Ok(products) => (status, products, message),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new(), Some(SHOP_DOWN)),
    };
    let mut categories: Vec<String> = products
        .iter()
        .filter_map(|c| c.product.as_ref().map(|p| p.category.clone()))
        .collect();
    categories.sort();
    categories.dedup();
    let rows = products
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
        .collect();
    let t = CatalogPage {
        nav: staff.nav(req, state),
        rows,
        typed,
        new,
        categories,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

/// GET `/catalog`.
pub async fn show(staff: Staff, state: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let shown = Shown {
        status: StatusCode::OK,
        typed: &Typed::default(),
        new: &NewProductForm::default(),
        message: None,
        notice: None,
    };
    catalog_page(&staff, &state, &req, shown).await
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
        let shown = Shown {
            status: StatusCode::BAD_REQUEST,
            typed: &typed,
            new: &NewProductForm::default(),
            message: Some(BAD_PRICE),
            notice: None,
        };
        return catalog_page(&staff, &state, &req, shown).await;
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
            let shown = Shown {
                status: StatusCode::OK,
                typed: &saved,
                new: &NewProductForm::default(),
                message: None,
                notice: Some(&note),
            };
            catalog_page(&staff, &state, &req, shown).await
        }
        Err(st) => {
            let (status, message) = failure(&st, SHOP_DOWN);
            let shown = Shown {
                status,
                typed: &typed,
                new: &NewProductForm::default(),
                message: Some(&message),
                notice: None,
            };
            catalog_page(&staff, &state, &req, shown).await
        }
    }
}

/// The address a new product gets from its name when none is typed: lower-case letters and
/// digits, dashes between words ("BMS 20S 60A" → `bms-20s-60a`).
pub fn slug_from(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-')
        .chars()
        .take(80)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// Whole units for the opening stock; empty means none.
fn parse_units(v: &str) -> Option<i64> {
    let v = v.trim();
    if v.is_empty() {
        return Some(0);
    }
    v.parse().ok()
}

/// POST `/catalog`: a new product, then its page to say what it fits.
pub async fn create(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<NewProductForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let mut new = form.into_inner();
    new.csrf.clear();
    let clip = |v: &mut String, n: usize| *v = v.chars().take(n).collect();
    clip(&mut new.name, 200);
    clip(&mut new.slug, 100);
    clip(&mut new.category, 60);
    clip(&mut new.price, 20);
    clip(&mut new.stock, 20);
    clip(&mut new.description, 4100);
    fn refuse<'a>(status: StatusCode, new: &'a NewProductForm, message: &'a str) -> Shown<'a> {
        static NOTHING_TYPED: Typed = Typed {
            product_id: String::new(),
            price: String::new(),
            active: false,
        };
        Shown {
            status,
            typed: &NOTHING_TYPED,
            new,
            message: Some(message),
            notice: None,
        }
    }
    let Some(cents) = parse_dollars(&new.price) else {
        let shown = refuse(StatusCode::BAD_REQUEST, &new, BAD_PRICE);
        return catalog_page(&staff, &state, &req, shown).await;
    };
    let Some(opening_stock) = parse_units(&new.stock) else {
        let shown = refuse(
            StatusCode::BAD_REQUEST,
            &new,
            "The opening stock should be a whole number of units, like 4 (or empty for none).",
        );
        return catalog_page(&staff, &state, &req, shown).await;
    };
    let slug = if new.slug.trim().is_empty() {
        slug_from(&new.name)
    } else {
        new.slug.trim().to_owned()
    };
    let mut s = state.shop.clone();
    let res = grpc::call(
        "ShopService/CreateProduct",
        s.create_product(auth::request(
            &staff.actor(),
            pb::CreateProductRequest {
                slug,
                name: new.name.clone(),
                description: new.description.clone(),
                category: new.category.trim().to_owned(),
                price: Some(Money::usd(cents)),
                active: new.active.is_some(),
                opening_stock,
                ..Default::default()
            },
        )),
    )
    .await;
    match res {
        Ok(r) => match r.into_inner().product.and_then(|c| c.product) {
            Some(p) => see_other(&format!("/catalog/{}?added=1", p.id), &[]),
            None => see_other("/catalog", &[]),
        },
        Err(st) => {
            let (status, message) = failure(&st, SHOP_DOWN);
            let shown = refuse(status, &new, &message);
            catalog_page(&staff, &state, &req, shown).await
        }
    }
}

/// One make on a product's page: whether the whole make fits, and each model.
pub struct MakeRow {
    pub id: String,
    pub name: String,
    pub whole: bool,
    pub models: Vec<ModelRow>,
}

pub struct ModelRow {
    pub id: String,
    pub name: String,
    pub fits: bool,
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage<'a> {
    nav: Nav,
    id: &'a str,
    name: String,
    price: String,
    category: String,
    fits_all: bool,
    makes: Vec<MakeRow>,
    /// Fitment ids garage's catalog no longer has (kept unless unticked).
    unknown: Vec<String>,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

/// What a product fits: (fits every vehicle, (make, model or "") pairs).
type Fits = (bool, Vec<(String, String)>);

/// How a product page is shown: its status, what was typed (a refused change), the words.
struct ProductView<'a> {
    status: StatusCode,
    typed: Option<&'a Fits>,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn product_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: &str,
    view: ProductView<'_>,
) -> HttpResponse {
    let ProductView {
        status,
        typed,
        message,
        notice,
    } = view;
    let products = match list_catalog(staff, state).await {
        Ok(p) => p,
        Err(_) => {
            return product_down(
                staff,
                state,
                req,
                id,
                StatusCode::SERVICE_UNAVAILABLE,
                SHOP_DOWN,
            );
        }
    };
    let Some(product) = products
        .into_iter()
        .filter_map(|c| c.product)
        .find(|p| p.id == id)
    else {
        return product_down(staff, state, req, id, StatusCode::NOT_FOUND, NO_PRODUCT);
    };
    let saved: Fits = (
        product.fits_all,
        product
            .fitment
            .iter()
            .map(|f| (f.make_id.clone(), f.model_id.clone()))
            .collect(),
    );
    let (fits_all, fits) = typed.unwrap_or(&saved);
    let mut g = state.garage.clone();
    let makes = grpc::call(
        "GarageService/ListVehicleMakes",
        g.list_vehicle_makes(auth::request(
            &staff.actor(),
            gpb::ListVehicleMakesRequest::default(),
        )),
    )
    .await;
    let (status, makes, message) = match makes {
        Ok(r) => (status, r.into_inner().makes, message),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Vec::new(),
            Some(GARAGE_DOWN),
        ),
    };
    let has = |make: &str, model: &str| fits.iter().any(|(a, b)| a == make && b == model);
    let unknown = fits
        .iter()
        .filter(|(make, model)| {
            !makes.iter().any(|m| {
                &m.id == make && (model.is_empty() || m.models.iter().any(|x| &x.id == model))
            })
        })
        .map(|(make, model)| fit_value(make, model))
        .collect();
    let makes = makes
        .into_iter()
        .map(|m| MakeRow {
            whole: has(&m.id, ""),
            models: m
                .models
                .into_iter()
                .map(|x| ModelRow {
                    fits: has(&m.id, &x.id),
                    id: x.id,
                    name: x.name,
                })
                .collect(),
            id: m.id,
            name: m.name,
        })
        .collect();
    let t = ProductPage {
        nav: staff.nav(req, state),
        id,
        name: product.name,
        price: money(product.price.as_ref()),
        category: product.category.replace(['_', '-'], " "),
        fits_all: *fits_all,
        makes,
        unknown,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

/// A product page that can't show the product: the reason, and the way back to the catalog.
fn product_down(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: &str,
    status: StatusCode,
    why: &str,
) -> HttpResponse {
    let t = ProductPage {
        nav: staff.nav(req, state),
        id,
        name: String::new(),
        price: String::new(),
        category: String::new(),
        fits_all: false,
        makes: Vec::new(),
        unknown: Vec::new(),
        message: Some(why),
        notice: None,
    };
    page(&t, status, req, &[])
}

const NO_PRODUCT: &str = "There is no such product in the catalog: the address may be mistyped. The catalog lists every product.";
const GARAGE_DOWN: &str = "The vehicle catalog (garage) isn't answering, so makes and models can't be listed right now. Nothing is lost; reload in a minute.";

/// A fitment checkbox's value: `make` for every model of the make, `make/model` for one model.
fn fit_value(make: &str, model: &str) -> String {
    if model.is_empty() {
        make.to_owned()
    } else {
        format!("{make}/{model}")
    }
}

#[derive(Deserialize)]
pub struct Added {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

/// GET `/catalog/{id}`: the product and what it fits.
pub async fn product(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    q: actix_web::web::Query<Added>,
) -> HttpResponse {
    let notice = if q.added.is_some() {
        Some("Added to the catalog. Now tick what it fits (or that it fits every vehicle).")
    } else if q.saved.is_some() {
        Some("Saved what it fits.")
    } else {
        None
    };
    let view = ProductView {
        status: StatusCode::OK,
        typed: None,
        message: None,
        notice,
    };
    product_page(&staff, &state, &req, &id, view).await
}

/// POST `/catalog/{id}/fitment`: replaces what the product fits.
pub async fn fitment(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let form = form.into_inner();
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !staff.csrf_ok(&req, &state, csrf) {
        return forbidden(&req);
    }
    let fits_all = form.iter().any(|(k, _)| k == "fits_all");
    let fits: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k == "fit")
        .map(|(_, v)| match v.split_once('/') {
            Some((make, model)) => (make.to_owned(), model.to_owned()),
            None => (v.clone(), String::new()),
        })
        .collect();
    let mut s = state.shop.clone();
    let res = grpc::call(
        "ShopService/SetFitment",
        s.set_fitment(auth::request(
            &staff.actor(),
            pb::SetFitmentRequest {
                product_id: id.to_string(),
                fits_all,
                fitment: fits
                    .iter()
                    .map(|(make, model)| pb::Fitment {
                        make_id: make.clone(),
                        model_id: model.clone(),
                    })
                    .collect(),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other(&format!("/catalog/{id}?saved=1"), &[]),
        Err(st) => {
            let (status, message) = failure(&st, SHOP_DOWN);
            let typed = (fits_all, fits);
            let view = ProductView {
                status,
                typed: Some(&typed),
                message: Some(&message),
                notice: None,
            };
            product_page(&staff, &state, &req, &id, view).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slug_from("BMS 20S 60A"), "bms-20s-60a");
        assert_eq!(
            slug_from("  Tire — 10\" x 2.5 (tubeless) "),
            "tire-10-x-2-5-tubeless"
        );
        assert_eq!(slug_from("Ünïcode"), "n-code");
        assert_eq!(slug_from("!!!"), "");
        assert_eq!(slug_from(&"a ".repeat(100)).len(), 79);
    }

    #[test]
    fn units() {
        assert_eq!(parse_units(""), Some(0));
        assert_eq!(parse_units(" 4 "), Some(4));
        assert_eq!(parse_units("four"), None);
        assert_eq!(
            parse_units("-2"),
            Some(-2),
            "shop refuses it with its reason"
        );
    }
}
