//! `POST /webhooks/stripe` (public, through nginx): Stripe's events, each counted exactly once.
//!
//! The signature is checked on the raw body (HMAC-SHA256, 300 s tolerance) with the secret from
//! `/omneuro/stripe/webhook_secret`; without that secret the route keeps answering 503 (ADR 0006)
//! so Stripe retries and nothing is acknowledged unread. A forged or stale event gets 400 and
//! changes nothing. Every event id is recorded in the same transaction as its effect: a duplicate
//! is acknowledged (200) and changes nothing; effects only add facts, so order does not matter.
//! An event that cannot be matched yet (a refund before its payment) is answered 503 and not
//! recorded, so Stripe delivers it again later.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::db::{Database, DbConnection, now_utc, write_transaction};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::mail::{Mail, Mailer};
use omneuro_platform::per_backend;
use omneuro_platform::secrets::Secret;
use omneuro_platform::stripe::{WEBHOOK_TOLERANCE_SECS, verify_webhook};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::shop::v1 as shop;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;

use crate::invoices;
use crate::schema::stripe_events;

pub struct WebhookState {
    pub db: Arc<Database>,
    /// None: webhooks stay refused (503) until the secret is configured.
    pub secret: Option<Secret>,
    /// Shop orders are paid through the same webhook; shop is told before the event is recorded.
    pub shop: ShopServiceClient<TracedChannel>,
    /// A paid job invoice makes the job ready to collect.
    pub jobs: JobsServiceClient<TracedChannel>,
    /// The client's address for the receipt.
    pub garage: GarageServiceClient<TracedChannel>,
    pub mailer: Arc<Mailer>,
}

/// What follows a payment, derived from the invoice's state (not from whether this delivery was
/// new), so a failure answers 503 and Stripe's next delivery — new or duplicate — finishes it:
/// the job moves to ready (idempotent in jobs) and the receipt is mailed once.
async fn follow_up(state: &WebhookState, obj: &serde_json::Value) -> Result<(), String> {
    let pi = obj["payment_intent"]
        .as_str()
        .or_else(|| obj["id"].as_str().filter(|id| id.starts_with("pi_")))
        .map(str::to_owned);
    let meta = obj["metadata"]["invoice_id"].as_str().map(str::to_owned);
    let order = obj["metadata"]["order_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let found = state
        .db
        .run(move |c| {
            let id = match (meta, order) {
                (Some(id), _) => Some(id),
                (None, Some(order)) => match invoices::by_source(c, "order", &order)? {
                    Some(id) => Some(id),
                    None => match pi {
                        Some(pi) => invoices::by_payment_intent(c, &pi)?,
                        None => None,
                    },
                },
                (None, None) => match pi {
                    Some(pi) => invoices::by_payment_intent(c, &pi)?,
                    None => None,
                },
            };
            let Some(id) = id else {
                return Ok::<_, DomainError>(None);
            };
            match invoices::get(c, &id, None) {
                Ok(inv) => {
                    let due = invoices::receipt_due(c, &inv.id)?;
                    Ok(Some((inv, due)))
                }
                Err(DomainError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some((inv, receipt_due)) = found else {
        return Ok(());
    };
    if !matches!(
        inv.status.as_str(),
        "paid" | "partially_refunded" | "refunded"
    ) {
        return Ok(());
    }
    let actor = Actor::System("billing".into());
    if inv.source == "job" {
        let mut j = state.jobs.clone();
        grpc::call(
            "JobsService/MarkPaid",
            j.mark_paid(auth::request(
                &actor,
                jobs::MarkPaidRequest {
                    job_id: inv.source_id.clone(),
                    invoice_number: inv.number.clone(),
                },
            )),
        )
        .await
        .map_err(|s| format!("jobs: {}", s.message()))?;
    }
    if receipt_due {
        // A shop order carries its buyer's address; everyone else is looked up in garage.
        let (to, name) = match inv.email.as_deref().filter(|e| !e.is_empty()) {
            Some(email) => (email.to_owned(), String::new()),
            None if inv.client_id.is_empty() => {
                tracing::warn!(invoice = %inv.number, "no address for the receipt; not mailed");
                return Ok(());
            }
            None => {
                let mut g = state.garage.clone();
                let client = grpc::call(
                    "GarageService/GetClient",
                    g.get_client(auth::request(
                        &actor,
                        garage::GetClientRequest {
                            client_id: inv.client_id.clone(),
                        },
                    )),
                )
                .await
                .map_err(|s| format!("garage: {}", s.message()))?
                .into_inner();
                (client.email, client.name)
            }
        };
        let (subject, text, html) = invoices::receipt(&inv, &name);
        state
            .mailer
            .send(Mail {
                to,
                subject,
                text,
                html: Some(html),
                attachments: Vec::new(),
                message_id: Some(format!("<receipt-{}@omneuro.juicejunkiez.com>", inv.id)),
            })
            .await
            .map_err(|e| format!("receipt: {e}"))?;
        let (id, now) = (inv.id.clone(), now_utc());
        state
            .db
            .run(move |c| invoices::mark_receipt_sent(c, &id, now))
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(invoice = %inv.number, "receipt mailed");
    }
    Ok(())
}

/// Tells shop about its order's checkout (idempotent there). Done before the event is recorded:
/// if shop cannot be reached the event is refused and Stripe delivers it again. Returns the paid
/// order as shop has it (for its invoice), or None when there is no paid order of ours.
async fn tell_shop(
    state: &WebhookState,
    kind: &str,
    obj: &serde_json::Value,
) -> Result<Option<shop::Order>, String> {
    let Some(order) = obj["metadata"]["order_id"]
        .as_str()
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let req = shop::OrderPaymentRequest {
        order_id: order.to_owned(),
        checkout_session_id: obj["id"].as_str().unwrap_or_default().to_owned(),
    };
    let actor = Actor::System("billing".into());
    let mut client = state.shop.clone();
    let (res, paid) = match kind {
        "checkout.session.completed" if obj["payment_status"].as_str() == Some("paid") => (
            grpc::call(
                "ShopService/OrderPaid",
                client.order_paid(auth::request(&actor, req)),
            )
            .await,
            true,
        ),
        "checkout.session.expired" => (
            grpc::call(
                "ShopService/OrderExpired",
                client.order_expired(auth::request(&actor, req)),
            )
            .await,
            false,
        ),
        _ => return Ok(None),
    };
    match res {
        Ok(r) => Ok(paid.then(|| r.into_inner())),
        // Not an order of ours (or a test event): nothing to tell.
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s.message().to_owned()),
    }
}

/// What the paid order's invoice is made of: its items (parts, taxable), the tax Stripe charged,
/// and the buyer (the order's email, else the one the buyer gave Stripe).
fn order_sale(order: shop::Order, session: &serde_json::Value) -> invoices::OrderSale {
    let cents = |m: Option<&omneuro_proto::common::v1::Money>| m.map_or(0, |m| m.amount_cents);
    let email = Some(order.email.trim().to_owned())
        .filter(|e| !e.is_empty())
        .or_else(|| {
            session["customer_details"]["email"]
                .as_str()
                .or_else(|| session["customer_email"].as_str())
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
        });
    invoices::OrderSale {
        lines: order
            .items
            .iter()
            .map(|i| invoices::Line {
                kind: "part".into(),
                description: i.name.clone(),
                quantity: i.quantity,
                unit_cents: cents(i.unit_price.as_ref()),
                amount_cents: cents(i.amount.as_ref()),
                taxable: true,
            })
            .collect(),
        tax_rate_bps: i32::try_from(order.tax_rate_bps).unwrap_or(0),
        tax_cents: cents(order.tax.as_ref()),
        order_id: order.id,
        client_id: order.client_id,
        email,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<WebhookState>) {
    cfg.app_data(state)
        // Stripe sends up to a few hundred KB; refuse anything much larger before reading it.
        .app_data(web::PayloadConfig::new(512 * 1024))
        .route("/webhooks/stripe", web::post().to(stripe));
}

async fn stripe(
    state: web::Data<WebhookState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(secret) = state.secret.as_ref() else {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "3600"))
            .json(serde_json::json!({
                "error": "stripe webhooks are not enabled on this server (secret /omneuro/stripe/webhook_secret is not set); the event was not recorded",
                "service": "billing",
            }));
    };
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify_webhook(&body, header, secret.expose(), now, WEBHOOK_TOLERANCE_SECS) {
        tracing::warn!(error = %e, "stripe webhook refused");
        return HttpResponse::BadRequest().json(serde_json::json!({ "error": e.to_string() }));
    }
    let event: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return HttpResponse::BadRequest()
                .json(serde_json::json!({ "error": "the body is not a JSON event" }));
        }
    };
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({ "error": "the event has no id or type" }));
    };
    let (id, kind) = (id.to_owned(), kind.to_owned());
    let sale = match tell_shop(&state, &kind, &event["data"]["object"]).await {
        Ok(order) => order.map(|o| order_sale(o, &event["data"]["object"])),
        Err(e) => {
            tracing::warn!(stripe.event = %id, error = %e, "shop not told; Stripe will retry");
            return HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "60"))
                .json(serde_json::json!({ "error": "not handled yet; retry later" }));
        }
    };
    let received = now_utc();
    let span_id = id.clone();
    let object = event["data"]["object"].clone();
    let res = state
        .db
        .run(move |c| handle(c, &id, &kind, &event, sale.as_ref(), received))
        .await;
    match res {
        Ok(outcome) => {
            tracing::info!(stripe.event = %span_id, outcome = %outcome, "stripe event handled");
            if let Err(e) = follow_up(&state, &object).await {
                tracing::warn!(stripe.event = %span_id, error = %e, "payment follow-up not done; Stripe will retry");
                return HttpResponse::ServiceUnavailable()
                    .insert_header(("Retry-After", "60"))
                    .json(
                        serde_json::json!({ "error": "recorded; follow-up pending, retry later" }),
                    );
            }
            HttpResponse::Ok().json(serde_json::json!({ "received": true, "outcome": outcome }))
        }
        // Stripe retries non-2xx answers: a database outage or an early refund loses nothing.
        Err(e) => {
            tracing::warn!(stripe.event = %span_id, error = %e, "stripe event not handled; Stripe will retry");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "60"))
                .json(serde_json::json!({ "error": "not handled yet; retry later" }))
        }
    }
}

/// Records the event id and applies its effect in one transaction; a known id changes nothing.
/// `sale` is the paid shop order the event is about (as shop reported it), invoiced here.
pub fn handle(
    conn: &mut DbConnection,
    id: &str,
    kind: &str,
    event: &serde_json::Value,
    sale: Option<&invoices::OrderSale>,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    write_transaction(conn, |c| {
        let outcome = apply(c, kind, &event["data"]["object"], sale, now)?;
        let created = event["created"].as_i64().unwrap_or(0);
        let inserted = per_backend!(&mut *c, |cc| diesel::insert_into(stripe_events::table)
            .values((
                stripe_events::id.eq(id),
                stripe_events::kind.eq(kind),
                stripe_events::created.eq(created),
                stripe_events::received_at.eq(now),
                stripe_events::outcome.eq(&outcome),
            ))
            .on_conflict_do_nothing()
            .execute(cc))?;
        if inserted == 0 {
            // Seen before: undo whatever this delivery did (nothing changes twice).
            return Err(Duplicate.into());
        }
        Ok(outcome)
    })
    .or_else(|e| match e {
        DomainError::Conflict(m) if m == DUPLICATE => Ok("duplicate".to_owned()),
        other => Err(other),
    })
}

const DUPLICATE: &str = "duplicate stripe event";
struct Duplicate;
impl From<Duplicate> for DomainError {
    fn from(_: Duplicate) -> Self {
        DomainError::Conflict(DUPLICATE.into())
    }
}

fn invoice_for(
    c: &mut DbConnection,
    obj: &serde_json::Value,
    pi: Option<&str>,
) -> Result<Option<String>, DomainError> {
    if let Some(id) = obj["metadata"]["invoice_id"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        return Ok(Some(id.to_owned()));
    }
    match pi {
        Some(pi) => invoices::by_payment_intent(c, pi),
        None => Ok(None),
    }
}

fn apply(
    c: &mut DbConnection,
    kind: &str,
    obj: &serde_json::Value,
    sale: Option<&invoices::OrderSale>,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let currency = obj["currency"].as_str().unwrap_or("usd");
    match kind {
        "payment_intent.succeeded" => {
            let Some(pi) = obj["id"].as_str() else {
                return Ok("ignored: no payment intent id".into());
            };
            let amount = obj["amount_received"]
                .as_i64()
                .filter(|a| *a > 0)
                .or_else(|| obj["amount"].as_i64())
                .unwrap_or(0);
            let invoice = invoice_for(c, obj, Some(pi))?;
            paid(c, invoice, pi, amount, currency, now)
        }
        "checkout.session.completed"
            if obj["metadata"]["invoice_id"].as_str().is_none()
                && obj["metadata"]["order_id"].as_str().is_some() =>
        {
            if obj["payment_status"].as_str() != Some("paid") {
                return Ok("shop order checkout completed, payment still pending".into());
            }
            let Some(sale) = sale else {
                return Ok("ignored: payment for no order of ours".into());
            };
            let pi = obj["payment_intent"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or_else(|| obj["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            let amount = obj["amount_total"].as_i64().unwrap_or(0);
            // The invoice first (once per order), then its payment (once per PaymentIntent).
            let invoice = invoices::order_invoice(c, sale, now)?;
            if invoice.total_cents != amount {
                tracing::warn!(
                    invoice = %invoice.number,
                    invoice_total = invoice.total_cents,
                    charged = amount,
                    "Stripe charged another amount than the order's total"
                );
            }
            paid(c, Some(invoice.id), &pi, amount, currency, now)
                .map(|outcome| format!("shop order paid; {outcome}"))
        }
        "checkout.session.completed" => {
            if obj["payment_status"].as_str() != Some("paid") {
                return Ok("checkout completed, payment still pending".into());
            }
            let pi = obj["payment_intent"]
                .as_str()
                .or_else(|| obj["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            let amount = obj["amount_total"].as_i64().unwrap_or(0);
            let invoice = invoice_for(c, obj, Some(&pi))?;
            paid(c, invoice, &pi, amount, currency, now)
        }
        "charge.refunded" => {
            let pi = obj["payment_intent"].as_str();
            let Some(inv) = invoice_for(c, obj, pi)? else {
                // Delivered before the payment it refunds: not recorded, so Stripe retries it
                // (with backoff) until the payment is known. Order never loses a refund.
                return Err(DomainError::Unavailable(
                    "refund arrived before its payment; retry later".into(),
                ));
            };
            let total = obj["amount_refunded"].as_i64().unwrap_or(0);
            let invoice = invoices::record_refunded_total(c, &inv, total, now)?;
            Ok(format!(
                "refund recorded on {} ({})",
                invoice.number, invoice.status
            ))
        }
        "payment_intent.payment_failed" => {
            let why = obj["last_payment_error"]["message"]
                .as_str()
                .unwrap_or("declined");
            Ok(format!("payment failed: {why}"))
        }
        "checkout.session.expired" => Ok("checkout expired".into()),
        other => Ok(format!("ignored: {other}")),
    }
}

fn paid(
    c: &mut DbConnection,
    invoice: Option<String>,
    pi: &str,
    amount: i64,
    currency: &str,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let Some(inv) = invoice else {
        return Ok("ignored: payment for no invoice of ours".into());
    };
    match invoices::record_payment(c, &inv, pi, amount, currency, now) {
        Ok((invoice, true)) => Ok(format!(
            "payment recorded on {} ({})",
            invoice.number, invoice.status
        )),
        Ok((invoice, false)) => Ok(format!("payment already recorded on {}", invoice.number)),
        Err(DomainError::NotFound(_)) => Ok("ignored: unknown invoice".into()),
        Err(e) => Err(e),
    }
}
