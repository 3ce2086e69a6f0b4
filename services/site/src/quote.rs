//! The custom battery pack calculator: `/shop/battery-quote` asks for a range (or an energy), the
//! voltage class, the cell type and the BMS, and shows shop's quote (pack layout, electrical
//! figures, price lines, the deposit and the balance, warranty and safety notes). A signed-in
//! client can ask for the build: billing prices it again with shop and issues a deposit invoice,
//! paid from the garage like any other. Plain forms: it all works without JavaScript.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query, ServiceConfig, get, post};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::billing::v1 as billing;
use omneuro_proto::shop::v1 as shop;
use serde::Deserialize;
use tonic::Code;

use crate::pages::{SiteState, format_money};
use crate::visitor::{Chrome, Visitor, forbidden, page, see_other, site_actor};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/shop/battery-quote", get().to(calculator))
        .route("/shop/battery-quote/request", post().to(request_build));
}

/// The voltage classes the shop builds, for the form's select (shop has the last word).
pub const VOLTAGE_CLASSES: [&str; 12] = [
    "36V", "48V", "52V", "60V", "67V", "72V", "84V", "100V", "126V", "134V", "151V", "168V",
];
pub const CELLS: [&str; 2] = ["18650", "21700"];
/// (value, label)
pub const BMS_OPTIONS: [(&str, &str); 2] = [
    ("regular", "Regular BMS"),
    ("smart", "Smart BMS (Bluetooth app)"),
];

const CALCULATOR_BREAK: &str =
    "The battery calculator is taking a break right now. Please try again in a minute.";
const REQUEST_BREAK: &str =
    "We couldn't take your build request right now. Please try again in a minute.";

/// The calculator's fields as typed (the query string of the GET form, and the hidden fields of
/// "Request this build"); kept as text so the form is refilled exactly.
#[derive(Deserialize, Default, Clone)]
pub struct PackForm {
    #[serde(default)]
    pub range_miles: String,
    #[serde(default)]
    pub energy_wh: String,
    #[serde(default)]
    pub voltage_class: String,
    #[serde(default)]
    pub cell: String,
    #[serde(default)]
    pub bms: String,
    #[serde(default)]
    pub wh_per_mile: String,
}

impl PackForm {
    /// Whether anything was asked (a bare `/shop/battery-quote` only shows the form).
    fn asked(&self) -> bool {
        [
            &self.range_miles,
            &self.energy_wh,
            &self.voltage_class,
            &self.cell,
            &self.bms,
            &self.wh_per_mile,
        ]
        .iter()
        .any(|f| !f.trim().is_empty())
    }

    /// The form a first visit starts from.
    fn starting() -> Self {
        Self {
            voltage_class: "52V".into(),
            cell: "21700".into(),
            bms: "regular".into(),
            ..Self::default()
        }
    }

    /// The request for shop (and billing): numbers checked here only for being numbers; shop
    /// judges the rest and says why in the customer's words.
    fn to_request(&self) -> Result<shop::QuoteBatteryPackRequest, String> {
        Ok(shop::QuoteBatteryPackRequest {
            range_miles: whole(
                &self.range_miles,
                "Range should be a whole number of miles.",
            )?,
            energy_wh: whole(&self.energy_wh, "Energy should be a whole number of Wh.")?,
            voltage_class: self.voltage_class.trim().to_owned(),
            cell: self.cell.trim().to_owned(),
            bms: self.bms.trim().to_owned(),
            wh_per_mile: whole(&self.wh_per_mile, "Wh per mile should be a whole number.")?,
        })
    }
}

/// An optional whole number: empty is 0 (shop's "not given").
fn whole(v: &str, why: &str) -> Result<u32, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(0);
    }
    v.parse::<u32>().map_err(|_| why.to_owned())
}

/// Whether the typed voltage class is `label` ("84v", " 84 V" and "84" are "84V").
fn same_class(label: &str, typed: &str) -> bool {
    let mut t: String = typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !t.is_empty() && !t.ends_with('V') {
        t.push('V');
    }
    t == label
}

/// The deposit as a whole percentage of the subtotal (65 for $410.15 of $631.00).
fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    (part * 100 + whole / 2) / whole
}

/// shop's quote, ready to show.
pub struct QuoteView {
    pub configuration: String,
    pub series: u32,
    pub parallel: u32,
    pub cell_count: u32,
    pub cell: String,
    pub nominal_volts: String,
    pub full_volts: String,
    pub capacity_ah: String,
    pub energy_wh: String,
    pub range_miles: u32,
    /// "at 30 Wh per mile" when the customer gave their consumption.
    pub consumption: String,
    /// (description, amount)
    pub lines: Vec<(String, String)>,
    pub subtotal: String,
    pub deposit: String,
    pub deposit_percent: i64,
    pub balance: String,
    pub warranty: String,
    pub safety_notes: Vec<String>,
}

fn quote_view(q: shop::BatteryPackQuote, form: &PackForm) -> QuoteView {
    let whpm = form.wh_per_mile.trim();
    QuoteView {
        consumption: if whpm.is_empty() || whpm == "0" {
            String::new()
        } else {
            format!("at {whpm} Wh per mile")
        },
        cell: form.cell.trim().to_owned(),
        lines: q
            .lines
            .into_iter()
            .map(|l| (l.description, format_money(l.amount.as_ref())))
            .collect(),
        subtotal: format_money(q.subtotal.as_ref()),
        deposit: format_money(q.deposit.as_ref()),
        deposit_percent: percent(
            q.deposit.as_ref().map_or(0, |m| m.amount_cents),
            q.subtotal.as_ref().map_or(0, |m| m.amount_cents),
        ),
        balance: format_money(q.balance.as_ref()),
        configuration: q.configuration,
        series: q.series,
        parallel: q.parallel,
        cell_count: q.cell_count,
        nominal_volts: q.nominal_volts,
        full_volts: q.full_volts,
        capacity_ah: q.capacity_ah,
        energy_wh: q.energy_wh,
        range_miles: q.range_miles,
        warranty: q.warranty,
        safety_notes: q.safety_notes,
    }
}

#[derive(Template)]
#[template(path = "quote.html")]
struct QuotePage<'a> {
    chrome: Chrome<'a>,
    /// (value, selected)
    voltage_options: Vec<(&'static str, bool)>,
    cell_options: Vec<(&'static str, bool)>,
    /// (value, label, selected)
    bms_options: Vec<(&'static str, &'static str, bool)>,
    form: PackForm,
    error: String,
    quote: Option<QuoteView>,
    /// Signed in: "Request this build"; otherwise a link to sign in.
    signed_in: bool,
}

/// Asks shop for the quote of `form` (when anything was asked) and renders the page; `error`
/// (from a failed build request) is shown above it with `status`.
async fn quote_page(
    state: &SiteState,
    req: &HttpRequest,
    v: Visitor,
    form: PackForm,
    mut status: StatusCode,
    mut error: String,
) -> HttpResponse {
    let mut quote = None;
    if form.asked() {
        match form.to_request() {
            Err(why) => {
                status = StatusCode::BAD_REQUEST;
                error = why;
            }
            Ok(r) => {
                let mut s = state.upstreams.shop.clone();
                let res = grpc::call(
                    "ShopService/QuoteBatteryPack",
                    s.quote_battery_pack(auth::request(&v.actor().unwrap_or_else(site_actor), r)),
                )
                .await;
                match res {
                    Ok(q) => quote = Some(quote_view(q.into_inner(), &form)),
                    Err(s) if s.code() == Code::InvalidArgument => {
                        status = StatusCode::BAD_REQUEST;
                        error = s.message().to_owned();
                    }
                    Err(_) => {
                        status = StatusCode::SERVICE_UNAVAILABLE;
                        error = CALCULATOR_BREAK.to_owned();
                    }
                }
            }
        }
    }
    let form = if form.asked() {
        form
    } else {
        PackForm::starting()
    };
    page(
        &QuotePage {
            chrome: v.chrome(&state.links),
            voltage_options: VOLTAGE_CLASSES
                .iter()
                .map(|c| (*c, same_class(c, &form.voltage_class)))
                .collect(),
            cell_options: CELLS.iter().map(|c| (*c, form.cell.trim() == *c)).collect(),
            bms_options: BMS_OPTIONS
                .iter()
                .map(|(b, label)| (*b, *label, form.bms.trim().eq_ignore_ascii_case(b)))
                .collect(),
            form,
            error,
            quote,
            signed_in: v.client.is_some(),
        },
        status,
        req,
        &v.cookies,
    )
}

/// `GET /shop/battery-quote[?range_miles=…&voltage_class=…&cell=…&bms=…]`
async fn calculator(state: Data<SiteState>, req: HttpRequest, q: Query<PackForm>) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    quote_page(
        &state,
        &req,
        v,
        q.into_inner(),
        StatusCode::OK,
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    range_miles: String,
    #[serde(default)]
    energy_wh: String,
    #[serde(default)]
    voltage_class: String,
    #[serde(default)]
    cell: String,
    #[serde(default)]
    bms: String,
    #[serde(default)]
    wh_per_mile: String,
}

/// "Request this build": billing prices the pack with shop and issues the deposit invoice; the
/// client is sent to it to pay. Failures are shown on the quote page.
async fn request_build(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<RequestForm>,
) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    let Some(actor) = v.actor() else {
        return see_other("/signin", &v.cookies);
    };
    let f = form.into_inner();
    if !v.csrf_ok(&state, &req, &f.csrf) {
        return forbidden(&req);
    }
    let pack = PackForm {
        range_miles: f.range_miles,
        energy_wh: f.energy_wh,
        voltage_class: f.voltage_class,
        cell: f.cell,
        bms: f.bms,
        wh_per_mile: f.wh_per_mile,
    };
    let r = match pack.to_request() {
        Ok(r) => r,
        Err(why) => {
            return quote_page(&state, &req, v, pack, StatusCode::BAD_REQUEST, why).await;
        }
    };
    let mut b = state.upstreams.billing.clone();
    let res = grpc::call(
        "BillingService/CreateQuoteDeposit",
        b.create_quote_deposit(auth::request(
            &actor,
            billing::CreateQuoteDepositRequest {
                range_miles: r.range_miles,
                energy_wh: r.energy_wh,
                voltage_class: r.voltage_class,
                cell: r.cell,
                bms: r.bms,
                wh_per_mile: r.wh_per_mile,
            },
        )),
    )
    .await;
    match res.map(|r| r.into_inner()) {
        Ok(inv) => see_other(&format!("/garage/invoices/{}", inv.id), &v.cookies),
        Err(s) => {
            let (status, msg) = failure(&s, REQUEST_BREAK);
            quote_page(&state, &req, v, pack, status, msg).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_optional_but_whole() {
        assert_eq!(whole("", "x"), Ok(0));
        assert_eq!(whole(" 30 ", "x"), Ok(30));
        assert_eq!(whole("30.5", "no"), Err("no".to_owned()));
        assert_eq!(whole("-1", "no"), Err("no".to_owned()));
        let f = PackForm {
            range_miles: "30".into(),
            voltage_class: "67.2 V".into(),
            cell: "21700".into(),
            bms: "regular".into(),
            ..PackForm::default()
        };
        assert!(f.asked() && !PackForm::default().asked());
        assert!(same_class("84V", " 84 v") && same_class("84V", "84") && !same_class("84V", ""));
        assert!(!same_class("84V", "8"));
        assert_eq!((percent(41_015, 63_100), percent(29_361, 45_170)), (65, 65));
        assert_eq!(percent(1, 0), 0);
        let r = f.to_request().unwrap();
        assert_eq!((r.range_miles, r.energy_wh, r.wh_per_mile), (30, 0, 0));
        assert_eq!(r.voltage_class, "67.2 V");
    }
}
