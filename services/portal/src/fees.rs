//! Services and fees, and the sales-tax rate: the owner's prices, kept on the server. jobs owns
//! the services clients book (`ListServiceOfferings` with the switched-off ones,
//! `SaveServiceOffering`); billing owns the tax rate new invoices use (`GetTaxRate`,
//! `SetTaxRate`). One form per service, one for a new service, one for the rate; a refusal shows
//! the owning service's reason on the same page with what was typed, and nothing is half-saved
//! (each form is one call that changes one thing).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::billing::v1 as bpb;
use omneuro_proto::common::v1::Money;
use omneuro_proto::jobs::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::bench::{money, parse_dollars};
use crate::board::JOBS_DOWN;
use crate::pages::{forbidden, page, see_other};
use crate::staff::{Nav, Staff};

/// The jurisdiction the shop's invoices are taxed in (billing's `JURISDICTION`).
pub const JURISDICTION: &str = "US-MD";
const BILLING_DOWN: &str = "The billing service isn't answering, so the tax rate can't be shown or changed right now. Nothing is lost; reload in a minute.";
const BAD_PRICE: &str = "The starting price should be dollars, like 49 or 49.99.";
const BAD_ORDER: &str = "The order should be a whole number, like 3 (lower comes first).";
const BAD_RATE: &str = "The tax rate should be a percentage, like 6 or 6.25.";

/// One service as the form shows it (typed text, so a refused value comes back as typed).
#[derive(Default, Clone, Deserialize)]
pub struct ServiceDraft {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub price: String,
    #[serde(default)]
    pub order: String,
    #[serde(default)]
    pub active: Option<String>,
    /// "1" on the new-service form: a code already in use is then refused, not overwritten.
    #[serde(default)]
    pub new: Option<String>,
}

impl ServiceDraft {
    fn from_pb(o: pb::ServiceOffering) -> Self {
        Self {
            csrf: String::new(),
            price: money(o.starting_price.as_ref())
                .trim_start_matches('$')
                .to_owned(),
            order: o.sort_order.to_string(),
            active: o.active.then(|| "1".to_owned()),
            code: o.code,
            name: o.name,
            description: o.description,
            new: None,
        }
    }
}

#[derive(Template)]
#[template(path = "fees.html")]
struct FeesPage<'a> {
    nav: Nav,
    tab: &'static str,
    services: Vec<ServiceDraft>,
    /// The new-service form as typed (empty when nothing was).
    fresh: &'a ServiceDraft,
    /// The service whose form was refused (its row shows what was typed).
    typed_code: &'a str,
    rate: String,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

struct Shown<'a> {
    status: StatusCode,
    typed: Option<&'a ServiceDraft>,
    rate: Option<&'a str>,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

fn refused<'a>(
    status: StatusCode,
    typed: Option<&'a ServiceDraft>,
    rate: Option<&'a str>,
    message: &'a str,
) -> Shown<'a> {
    Shown {
        status,
        typed,
        rate,
        message: Some(message),
        notice: None,
    }
}

async fn fees_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    shown: Shown<'_>,
) -> HttpResponse {
    let mut j = state.jobs.clone();
    let mut b = state.billing.clone();
    let (services, rate) = tokio::join!(
        grpc::call(
            "JobsService/ListServiceOfferings",
            j.list_service_offerings(auth::request(
                &staff.actor(),
                pb::ListServiceOfferingsRequest {
                    include_inactive: true,
                },
            )),
        ),
        grpc::call(
            "BillingService/GetTaxRate",
            b.get_tax_rate(auth::request(
                &staff.actor(),
                bpb::GetTaxRateRequest {
                    jurisdiction: JURISDICTION.into(),
                },
            )),
        ),
    );
    let mut status = shown.status;
    let mut message = shown.message.map(str::to_owned);
    let typed_code = shown
        .typed
        .filter(|t| t.new.is_none())
        .map(|t| t.code.as_str())
        .unwrap_or("");
    let services = match services {
        Ok(r) => r
            .into_inner()
            .offerings
            .into_iter()
            .map(|o| match shown.typed {
                Some(t) if t.new.is_none() && t.code == o.code => t.clone(),
                _ => ServiceDraft::from_pb(o),
            })
            .collect(),
        Err(_) => {
            status = StatusCode::SERVICE_UNAVAILABLE;
            message.get_or_insert_with(|| JOBS_DOWN.to_owned());
            Vec::new()
        }
    };
    let rate = match (shown.rate, rate) {
        (Some(typed), _) => typed.to_owned(),
        (None, Ok(r)) => r
            .into_inner()
            .tax_rate
            .map(|t| percent(t.rate_bps))
            .unwrap_or_default(),
        (None, Err(_)) => {
            status = StatusCode::SERVICE_UNAVAILABLE;
            message.get_or_insert_with(|| BILLING_DOWN.to_owned());
            String::new()
        }
    };
    let fresh_default = ServiceDraft::default();
    let t = FeesPage {
        nav: staff.nav(req, state),
        tab: "/settings/services",
        services,
        fresh: shown
            .typed
            .filter(|t| t.new.is_some())
            .unwrap_or(&fresh_default),
        typed_code,
        rate,
        message: message.as_deref(),
        notice: shown.notice,
    };
    page(&t, status, req, &[])
}

/// Basis points as the form shows them: 600 → "6", 625 → "6.25".
pub fn percent(bps: u32) -> String {
    let s = format!("{}.{:02}", bps / 100, bps % 100);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A typed percentage as basis points: "6" → 600, "6.25 %" → 625; more than two decimals or
/// anything else is `None`.
pub fn parse_percent(v: &str) -> Option<u32> {
    let v = v.trim().trim_end_matches('%').trim();
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

#[derive(Deserialize)]
pub struct Saved {
    #[serde(default)]
    saved: String,
}

/// GET `/settings/services`.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<Saved>,
) -> HttpResponse {
    let notice = match q.saved.as_str() {
        "service" => Some("Service saved. Clients see it on the site and when they book."),
        "tax" => Some("Tax rate saved. Invoices made from now on use it; issued ones keep theirs."),
        _ => None,
    };
    let shown = Shown {
        status: StatusCode::OK,
        typed: None,
        rate: None,
        message: None,
        notice,
    };
    fees_page(&staff, &state, &req, shown).await
}

/// POST `/settings/services`: one service, new or changed.
pub async fn save_service(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<ServiceDraft>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let mut typed = form.into_inner();
    typed.csrf.clear();
    let clip = |v: &mut String, n: usize| *v = v.chars().take(n).collect();
    clip(&mut typed.code, 60);
    clip(&mut typed.name, 120);
    clip(&mut typed.description, 600);
    clip(&mut typed.price, 20);
    clip(&mut typed.order, 10);
    let refuse = |status, message| refused(status, Some(&typed), None, message);
    let Some(cents) = parse_dollars(&typed.price) else {
        return fees_page(
            &staff,
            &state,
            &req,
            refuse(StatusCode::BAD_REQUEST, BAD_PRICE),
        )
        .await;
    };
    let order = if typed.order.trim().is_empty() {
        Some(0)
    } else {
        typed.order.trim().parse::<u32>().ok()
    };
    let Some(order) = order else {
        return fees_page(
            &staff,
            &state,
            &req,
            refuse(StatusCode::BAD_REQUEST, BAD_ORDER),
        )
        .await;
    };
    let mut j = state.jobs.clone();
    if typed.new.is_some() {
        // A new service must not quietly replace one with the same code.
        let existing = grpc::call(
            "JobsService/ListServiceOfferings",
            j.list_service_offerings(auth::request(
                &staff.actor(),
                pb::ListServiceOfferingsRequest {
                    include_inactive: true,
                },
            )),
        )
        .await;
        match existing {
            Ok(r)
                if r.get_ref()
                    .offerings
                    .iter()
                    .any(|o| o.code == typed.code.trim()) =>
            {
                let m = format!(
                    "There is already a service with the code `{}`; change it in its row, or pick another code.",
                    typed.code.trim()
                );
                return fees_page(
                    &staff,
                    &state,
                    &req,
                    refused(StatusCode::CONFLICT, Some(&typed), None, &m),
                )
                .await;
            }
            Ok(_) => {}
            Err(st) => {
                let (status, m) = failure(&st, JOBS_DOWN);
                let shown = refused(status, Some(&typed), None, &m);
                return fees_page(&staff, &state, &req, shown).await;
            }
        }
    }
    let res = grpc::call(
        "JobsService/SaveServiceOffering",
        j.save_service_offering(auth::request(
            &staff.actor(),
            pb::SaveServiceOfferingRequest {
                offering: Some(pb::ServiceOffering {
                    code: typed.code.trim().to_owned(),
                    name: typed.name.clone(),
                    description: typed.description.clone(),
                    starting_price: Some(Money::usd(cents)),
                    sort_order: order,
                    active: typed.active.is_some(),
                }),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/settings/services?saved=service", &[]),
        Err(st) => {
            let (status, m) = failure(&st, JOBS_DOWN);
            let shown = refused(status, Some(&typed), None, &m);
            fees_page(&staff, &state, &req, shown).await
        }
    }
}

#[derive(Deserialize)]
pub struct TaxForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rate: String,
}

/// POST `/settings/tax`: the rate new invoices use.
pub async fn save_tax(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<TaxForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let typed: String = form.rate.chars().take(12).collect();
    let refuse = |status, message| refused(status, None, Some(&typed), message);
    let Some(bps) = parse_percent(&typed) else {
        return fees_page(
            &staff,
            &state,
            &req,
            refuse(StatusCode::BAD_REQUEST, BAD_RATE),
        )
        .await;
    };
    let mut b = state.billing.clone();
    let res = grpc::call(
        "BillingService/SetTaxRate",
        b.set_tax_rate(auth::request(
            &staff.actor(),
            bpb::SetTaxRateRequest {
                jurisdiction: JURISDICTION.into(),
                rate_bps: bps,
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/settings/services?saved=tax", &[]),
        Err(st) => {
            let (status, m) = failure(&st, BILLING_DOWN);
            let shown = refused(status, None, Some(&typed), &m);
            fees_page(&staff, &state, &req, shown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_basis_points() {
        assert_eq!(percent(600), "6");
        assert_eq!(percent(625), "6.25");
        assert_eq!(percent(650), "6.5");
        assert_eq!(percent(0), "0");
        for (typed, bps) in [
            ("6", Some(600)),
            ("6.25", Some(625)),
            (" 6.5 % ", Some(650)),
            (".5", Some(50)),
            ("0", Some(0)),
            ("6.255", None),
            ("six", None),
            ("-6", None),
            ("", None),
            (".", None),
            ("99999999999", None),
        ] {
            assert_eq!(parse_percent(typed), bps, "{typed}");
        }
    }
}
