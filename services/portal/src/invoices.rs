//! Invoices at the counter and refunds: the newest invoices of every client (by status), one
//! invoice with its lines and payments, voiding one nobody has paid, and money back to a client.
//! billing owns invoices and talks to Stripe (`ListInvoices`, `GetInvoice`, `VoidInvoice`,
//! `Refund`, each as the signed-in staff member, so billing enforces who may); a refused refund
//! or void shows billing's reason on the same page with what was typed.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth::{self, Permission};
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::billing::v1 as pb;
use omneuro_proto::garage::v1 as gpb;
use serde::Deserialize;

use crate::Portal;
use crate::bench::{money, parse_dollars};
use crate::board::when;
use crate::pages::{forbidden, page, see_other};
use crate::signin::CsrfForm;
use crate::staff::{Nav, Staff};

const BILLING_DOWN: &str = "The billing service isn't answering right now, so invoices can't be shown or changed. Nothing is lost; reload in a minute.";
const NO_REASON: &str =
    "Say why the money goes back (the client sees it on their receipt, the audit log keeps it).";
const BAD_AMOUNT: &str = "The amount should be dollars, like 15 or 15.50 — or leave it empty to refund everything still refundable.";

/// The statuses the list filters by, with the words staff see.
const FILTERS: [(&str, &str); 7] = [
    ("", "all"),
    ("open", "waiting for payment"),
    ("paid", "paid"),
    ("partially_refunded", "partly refunded"),
    ("refunded", "refunded"),
    ("draft", "draft"),
    ("void", "void"),
];

fn status_label(s: &str) -> &'static str {
    FILTERS
        .iter()
        .find(|(k, _)| *k == s)
        .map(|(_, label)| *label)
        .unwrap_or("unknown")
}

pub struct InvoiceRow {
    pub id: String,
    pub number: String,
    pub status: String,
    pub label: &'static str,
    pub what: String,
    pub total: String,
    pub paid: String,
    pub refunded: String,
    pub when: String,
}

fn source_label(inv: &pb::Invoice) -> String {
    match inv.source.as_str() {
        "job" => "repair job".to_owned(),
        "order" => "shop order".to_owned(),
        "quote" => "battery pack deposit".to_owned(),
        other => other.to_owned(),
    }
}

fn row(inv: pb::Invoice) -> InvoiceRow {
    InvoiceRow {
        label: status_label(&inv.status),
        what: source_label(&inv),
        total: money(inv.total.as_ref()),
        paid: money(inv.paid.as_ref()),
        refunded: money(inv.refunded.as_ref()),
        when: inv
            .created_at
            .as_ref()
            .map(|t| when(t.unix_micros))
            .unwrap_or_default(),
        id: inv.id,
        number: inv.number,
        status: inv.status,
    }
}

#[derive(Template)]
#[template(path = "invoices.html")]
struct ListPage<'a> {
    nav: Nav,
    filters: &'static [(&'static str, &'static str)],
    status: &'a str,
    rows: Vec<InvoiceRow>,
    message: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
}

/// GET `/invoices?status=…`: the newest invoices (200 at most), optionally of one status.
pub async fn list(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<ListQuery>,
) -> HttpResponse {
    let status: String = q.status.chars().take(30).collect();
    let mut b = state.billing.clone();
    let res = grpc::call(
        "BillingService/ListInvoices",
        b.list_invoices(auth::request(
            &staff.actor(),
            pb::ListInvoicesRequest {
                client_id: String::new(),
                status: status.clone(),
            },
        )),
    )
    .await;
    let (code, rows, message) = match res {
        Ok(r) => (
            StatusCode::OK,
            r.into_inner().invoices.into_iter().map(row).collect(),
            None,
        ),
        Err(st) => {
            let (code, m) = failure(&st, BILLING_DOWN);
            (code, Vec::new(), Some(m))
        }
    };
    let t = ListPage {
        nav: staff.nav(&req, &state),
        filters: &FILTERS,
        status: &status,
        rows,
        message: message.as_deref(),
    };
    page(&t, code, &req, &[])
}

pub struct LineRow {
    pub kind: String,
    pub description: String,
    pub quantity: i32,
    pub unit: String,
    pub amount: String,
}

/// What was typed into the refund form, kept when it is refused.
#[derive(Default)]
pub struct TypedRefund {
    pub amount: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage<'a> {
    nav: Nav,
    inv: Option<InvoiceRow>,
    client: String,
    source_id: String,
    source: String,
    lines: Vec<LineRow>,
    subtotal: String,
    tax: String,
    tax_rate: String,
    refundable: String,
    may_refund: bool,
    may_void: bool,
    typed: &'a TypedRefund,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

struct Shown<'a> {
    status: StatusCode,
    typed: &'a TypedRefund,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn invoice_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: &str,
    shown: Shown<'_>,
) -> HttpResponse {
    let mut b = state.billing.clone();
    let res = grpc::call(
        "BillingService/GetInvoice",
        b.get_invoice(auth::request(
            &staff.actor(),
            pb::GetInvoiceRequest { id: id.to_owned() },
        )),
    )
    .await;
    let inv = match res {
        Ok(r) => r.into_inner(),
        Err(st) => {
            let (code, m) = failure(&st, BILLING_DOWN);
            let t = InvoicePage {
                nav: staff.nav(req, state),
                inv: None,
                client: String::new(),
                source_id: String::new(),
                source: String::new(),
                lines: Vec::new(),
                subtotal: String::new(),
                tax: String::new(),
                tax_rate: String::new(),
                refundable: String::new(),
                may_refund: false,
                may_void: false,
                typed: shown.typed,
                message: Some(&m),
                notice: None,
            };
            return page(&t, code, req, &[]);
        }
    };
    // The client's name (garage); their id when garage can't say.
    let mut g = state.garage.clone();
    let client = match grpc::call(
        "GarageService/GetClient",
        g.get_client(auth::request(
            &staff.actor(),
            gpb::GetClientRequest {
                client_id: inv.client_id.clone(),
            },
        )),
    )
    .await
    {
        Ok(c) => {
            let c = c.into_inner();
            if c.name.is_empty() { c.email } else { c.name }
        }
        Err(_) => inv.client_id.clone(),
    };
    let cents = |m: &Option<omneuro_proto::common::v1::Money>| {
        m.as_ref().map(|m| m.amount_cents).unwrap_or(0)
    };
    let refundable_cents = cents(&inv.paid) - cents(&inv.refunded);
    let refundable = money(Some(&omneuro_proto::common::v1::Money::usd(
        refundable_cents,
    )));
    let t = InvoicePage {
        nav: staff.nav(req, state),
        client,
        source_id: inv.source_id.clone(),
        source: inv.source.clone(),
        lines: inv
            .lines
            .iter()
            .map(|l| LineRow {
                kind: l.kind.clone(),
                description: l.description.clone(),
                quantity: l.quantity,
                unit: money(l.unit_price.as_ref()),
                amount: money(l.amount.as_ref()),
            })
            .collect(),
        subtotal: money(inv.subtotal.as_ref()),
        tax: money(inv.tax.as_ref()),
        tax_rate: format!("{}.{:02}%", inv.tax_rate_bps / 100, inv.tax_rate_bps % 100),
        refundable,
        may_refund: staff.may(Permission::Refund) && refundable_cents > 0,
        may_void: staff.may(Permission::Invoice)
            && matches!(inv.status.as_str(), "draft" | "open")
            && cents(&inv.paid) == 0,
        inv: Some(row(inv)),
        typed: shown.typed,
        message: shown.message,
        notice: shown.notice,
    };
    page(&t, shown.status, req, &[])
}

#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// GET `/invoices/{id}`.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    q: Query<Done>,
) -> HttpResponse {
    let notice = match q.done.as_str() {
        "refunded" => Some(
            "Refunded through Stripe. The client gets the money back on their card in 5–10 days.",
        ),
        "voided" => Some("Voided: the client can no longer pay it."),
        _ => None,
    };
    let shown = Shown {
        status: StatusCode::OK,
        typed: &TypedRefund::default(),
        message: None,
        notice,
    };
    invoice_page(&staff, &state, &req, &id, shown).await
}

#[derive(Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

/// POST `/invoices/{id}/refund`: money back to the client's card (all that is still refundable
/// when no amount is given), with a reason.
pub async fn refund(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<RefundForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let typed = TypedRefund {
        amount: form.amount.chars().take(20).collect(),
        reason: form.reason.trim().chars().take(300).collect(),
    };
    let refuse = |message| Shown {
        status: StatusCode::BAD_REQUEST,
        typed: &typed,
        message: Some(message),
        notice: None,
    };
    let amount_cents = if typed.amount.trim().is_empty() {
        0
    } else {
        match parse_dollars(&typed.amount) {
            Some(c) if c > 0 => c,
            _ => return invoice_page(&staff, &state, &req, &id, refuse(BAD_AMOUNT)).await,
        }
    };
    if typed.reason.is_empty() {
        return invoice_page(&staff, &state, &req, &id, refuse(NO_REASON)).await;
    }
    let mut b = state.billing.clone();
    let res = grpc::call(
        "BillingService/Refund",
        b.refund(auth::request(
            &staff.actor(),
            pb::RefundRequest {
                invoice_id: id.to_string(),
                amount_cents,
                reason: typed.reason.clone(),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other(&format!("/invoices/{id}?done=refunded"), &[]),
        Err(st) => {
            let (status, m) = failure(&st, BILLING_DOWN);
            let shown = Shown {
                status,
                typed: &typed,
                message: Some(&m),
                notice: None,
            };
            invoice_page(&staff, &state, &req, &id, shown).await
        }
    }
}

/// POST `/invoices/{id}/void`: an invoice nobody has paid is called off.
pub async fn void(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let mut b = state.billing.clone();
    let res = grpc::call(
        "BillingService/VoidInvoice",
        b.void_invoice(auth::request(
            &staff.actor(),
            pb::VoidInvoiceRequest { id: id.to_string() },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other(&format!("/invoices/{id}?done=voided"), &[]),
        Err(st) => {
            let (status, m) = failure(&st, BILLING_DOWN);
            let shown = Shown {
                status,
                typed: &TypedRefund::default(),
                message: Some(&m),
                notice: None,
            };
            invoice_page(&staff, &state, &req, &id, shown).await
        }
    }
}
