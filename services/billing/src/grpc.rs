//! `omneuro.billing.v1.BillingService`: the RPCs, who may call them, the Stripe calls, and the
//! proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::auth::{self, Actor, Permission};
use omneuro_platform::db::{Database, now_utc, write_transaction};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::ids;
use omneuro_platform::stripe::{Stripe, StripeError};
use omneuro_platform::weeks::Weeks;
use omneuro_proto::billing::v1 as pb;
use omneuro_proto::common::v1::{Money, Timestamp};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::shop::v1 as shop;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;
use tonic::{Request, Response, Status};

use crate::invoices::{self, Invoice, Line, NewInvoice};
use crate::reports::{self, RevenueReport};
use crate::tax::{self, Jurisdiction};

/// Where the shop is: the tax rate invoices use.
pub const JURISDICTION: &str = "US-MD";

pub struct Billing {
    db: Arc<Database>,
    stripe: Arc<Stripe>,
    jobs: JobsServiceClient<TracedChannel>,
    /// Prices custom battery packs (the deposit invoices).
    shop: ShopServiceClient<TracedChannel>,
    /// Clients' contact details for their Stripe Customer.
    garage: GarageServiceClient<TracedChannel>,
}

impl Billing {
    pub fn new(
        db: Arc<Database>,
        stripe: Arc<Stripe>,
        jobs: JobsServiceClient<TracedChannel>,
        shop: ShopServiceClient<TracedChannel>,
        garage: GarageServiceClient<TracedChannel>,
    ) -> Self {
        Self {
            db,
            stripe,
            jobs,
            shop,
            garage,
        }
    }

    /// The client's contact details from garage (for Stripe's customer and receipts).
    async fn client_contact(&self, client_id: &str) -> Result<garage::Client, Status> {
        let mut g = self.garage.clone();
        grpc::call(
            "GarageService/GetClient",
            g.get_client(auth::request(
                &Actor::System("billing".into()),
                garage::GetClientRequest {
                    client_id: client_id.to_owned(),
                },
            )),
        )
        .await
        .map(|r| r.into_inner())
        .map_err(|_| {
            Status::unavailable(
                "We can't reach your garage record right now; try again in a minute.",
            )
        })
    }

    /// The client's Stripe Customer, made once (idempotency key per client) and remembered.
    async fn stripe_customer(&self, client_id: &str) -> Result<String, Status> {
        let id = client_id.to_owned();
        if let Some(c) = self
            .db
            .run(move |c| invoices::stripe_customer(c, &id))
            .await?
        {
            return Ok(c);
        }
        let client = self.client_contact(client_id).await?;
        let form: Vec<(String, String)> = vec![
            ("email".into(), client.email),
            ("name".into(), client.name),
            ("metadata[client_id]".into(), client_id.to_owned()),
        ];
        let customer = self
            .stripe
            .post("/v1/customers", &form, &format!("cust-{client_id}"))
            .await
            .map_err(stripe_status)?;
        let Some(cus) = customer["id"].as_str().map(str::to_owned) else {
            return Err(Status::unavailable(
                "The card processor gave no customer; try again.",
            ));
        };
        let (id, now) = (client_id.to_owned(), now_utc());
        Ok(self
            .db
            .run(move |c| invoices::remember_customer(c, &id, &cus, now))
            .await?)
    }
}

fn invoice_to_pb(i: Invoice) -> pb::Invoice {
    pb::Invoice {
        next_step: i.next_step().into(),
        id: i.id,
        number: i.number,
        source: i.source,
        source_id: i.source_id,
        client_id: i.client_id,
        status: i.status,
        lines: i
            .lines
            .into_iter()
            .map(|l| pb::InvoiceLine {
                kind: l.kind,
                description: l.description,
                quantity: l.quantity,
                unit_price: Some(Money::usd(l.unit_cents)),
                amount: Some(Money::usd(l.amount_cents)),
                taxable: l.taxable,
            })
            .collect(),
        subtotal: Some(Money::usd(i.subtotal_cents)),
        tax_rate_bps: u32::try_from(i.tax_rate_bps).unwrap_or(0),
        tax: Some(Money::usd(i.tax_cents)),
        total: Some(Money::usd(i.total_cents)),
        paid: Some(Money::usd(i.paid_cents)),
        refunded: Some(Money::usd(i.refunded_cents)),
        created_at: Some(Timestamp::from_utc(i.created_at)),
    }
}

/// `"84.0"` → `"84"`, `"67.2"` stays.
fn volts(v: &str) -> &str {
    v.strip_suffix(".0").unwrap_or(v)
}

/// The deposit line of a quote, e.g. "65% deposit: custom battery pack 20S3P (84 V, 21700, regular
/// BMS)": the pack's figures come from shop's quote; cell and BMS are the caller's words as shop
/// accepted them.
fn deposit_line(q: &shop::BatteryPackQuote, cell: &str, bms: &str, deposit_cents: i64) -> String {
    let subtotal = q.subtotal.as_ref().map_or(0, |m| m.amount_cents);
    let percent = if subtotal > 0 {
        (deposit_cents * 100 + subtotal / 2) / subtotal
    } else {
        100
    };
    format!(
        "{percent}% deposit: custom battery pack {} ({} V, {}, {} BMS)",
        q.configuration,
        volts(&q.full_volts),
        cell.trim(),
        bms.trim().to_ascii_lowercase()
    )
}

/// Stripe's answer as a status for the caller (its key never appears in messages).
fn stripe_status(e: StripeError) -> Status {
    e.into_status("please pay at the counter")
}

#[tonic::async_trait]
impl pb::billing_service_server::BillingService for Billing {
    async fn get_tax_rate(
        &self,
        req: Request<pb::GetTaxRateRequest>,
    ) -> Result<Response<pb::GetTaxRateResponse>, Status> {
        let j =
            Jurisdiction::parse(&req.get_ref().jurisdiction).map_err(Status::invalid_argument)?;
        let name = j.as_str().to_owned();
        let rate = self
            .db
            .run(move |c| tax::get(c, &j))
            .await?
            .ok_or_else(|| Status::not_found(format!("no tax rate for {name}")))?;
        Ok(Response::new(pb::GetTaxRateResponse {
            tax_rate: Some(pb::TaxRate {
                jurisdiction: rate.jurisdiction,
                rate_bps: rate.rate_bps,
            }),
        }))
    }

    async fn set_tax_rate(
        &self,
        req: Request<pb::SetTaxRateRequest>,
    ) -> Result<Response<pb::GetTaxRateResponse>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::EditSettings)?;
        let r = req.into_inner();
        let j = Jurisdiction::parse(&r.jurisdiction).map_err(Status::invalid_argument)?;
        let bps = tax::rate_bps(r.rate_bps).map_err(Status::invalid_argument)?;
        let rate = self.db.run(move |c| tax::set(c, &j, bps)).await?;
        tracing::info!(jurisdiction = %rate.jurisdiction, rate_bps = rate.rate_bps, actor = %actor.encode(), "tax rate set");
        Ok(Response::new(pb::GetTaxRateResponse {
            tax_rate: Some(pb::TaxRate {
                jurisdiction: rate.jurisdiction,
                rate_bps: rate.rate_bps,
            }),
        }))
    }

    async fn create_job_invoice(
        &self,
        req: Request<pb::CreateJobInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::Invoice)?;
        let r = req.into_inner();
        // The lines come from the job (server-side prices), never from the caller.
        let mut j = self.jobs.clone();
        let bench = grpc::call(
            "JobsService/GetWorkbench",
            j.get_workbench(auth::request(
                &actor,
                jobs::GetWorkbenchRequest {
                    job_id: r.job_id.clone(),
                },
            )),
        )
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                Status::not_found("No such job.")
            }
            _ => Status::unavailable("jobs is unavailable; try again in a minute"),
        })?
        .into_inner();
        let job = bench.job.unwrap_or_default();
        let mut lines: Vec<Line> = bench
            .lines
            .into_iter()
            .map(|l| {
                let amount = l.amount.map(|m| m.amount_cents).unwrap_or(0);
                let unit = l.unit_price.map(|m| m.amount_cents).unwrap_or(0);
                let labor = l.kind == "labor";
                Line {
                    description: if labor {
                        format!("{} ({} h)", l.description, l.hours)
                    } else {
                        l.description
                    },
                    // Labor is one line at its computed amount; parts keep quantity × unit.
                    quantity: if labor { 1 } else { l.quantity.max(1) },
                    unit_cents: if labor { amount } else { unit },
                    amount_cents: amount,
                    // Maryland: parts are taxed, repair labor is not.
                    taxable: !labor,
                    kind: l.kind,
                }
            })
            .collect();
        for f in r.fees {
            let unit = f.unit_price.map(|m| m.amount_cents).unwrap_or(0);
            lines.push(Line {
                kind: "fee".into(),
                description: f.description,
                quantity: f.quantity.max(1),
                unit_cents: unit,
                amount_cents: 0,
                taxable: false,
            });
        }
        let now = now_utc();
        let invoice = self
            .db
            .run(move |c| {
                let j = Jurisdiction::parse(JURISDICTION).map_err(DomainError::Invalid)?;
                let bps = tax::get(c, &j)?.map(|t| t.rate_bps).unwrap_or(0);
                invoices::create(
                    c,
                    NewInvoice {
                        source: "job",
                        source_id: job.id,
                        client_id: job.client_id,
                        lines,
                        tax_rate_bps: i32::try_from(bps).unwrap_or(0),
                    },
                    now,
                )
            })
            .await?;
        tracing::info!(invoice = %invoice.number, total_cents = invoice.total_cents, "invoice drafted");
        Ok(Response::new(invoice_to_pb(invoice)))
    }

    async fn issue_invoice(
        &self,
        req: Request<pb::IssueInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        auth::require(&auth::actor(&req)?, Permission::Invoice)?;
        let id = req.into_inner().id;
        let now = now_utc();
        let inv = self.db.run(move |c| invoices::issue(c, &id, now)).await?;
        Ok(Response::new(invoice_to_pb(inv)))
    }

    async fn void_invoice(
        &self,
        req: Request<pb::VoidInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        auth::require(&auth::actor(&req)?, Permission::Invoice)?;
        let id = req.into_inner().id;
        let now = now_utc();
        let inv = self.db.run(move |c| invoices::void(c, &id, now)).await?;
        Ok(Response::new(invoice_to_pb(inv)))
    }

    async fn get_invoice(
        &self,
        req: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let owner = auth::actor(&req)?.client_id().map(str::to_owned);
        let id = req.into_inner().id;
        let inv = self
            .db
            .run(move |c| invoices::get(c, &id, owner.as_deref()))
            .await?;
        Ok(Response::new(invoice_to_pb(inv)))
    }

    async fn list_invoices(
        &self,
        req: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let status = match r.status.trim() {
            "" => None,
            s => match invoices::STATUSES.iter().find(|k| **k == s) {
                Some(k) => Some(*k),
                None => {
                    return Err(Status::invalid_argument(format!(
                        "`{s}` is not an invoice status (one of {}).",
                        invoices::STATUSES.join(", ")
                    )));
                }
            },
        };
        let (client, drafts) = match &actor {
            Actor::Client(id) => (Some(id.clone()), false),
            _ if r.client_id.is_empty() => {
                auth::require(&actor, Permission::Invoice)?;
                (None, true)
            }
            _ => (Some(r.client_id), true),
        };
        let list = self
            .db
            .run(move |c| {
                let listing = invoices::Listing {
                    client_id: client.as_deref(),
                    include_drafts: drafts,
                    status,
                };
                invoices::list(c, &listing)
            })
            .await?;
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: list.into_iter().map(invoice_to_pb).collect(),
        }))
    }

    async fn pay_invoice(
        &self,
        req: Request<pb::PayInvoiceRequest>,
    ) -> Result<Response<pb::PayInvoiceResponse>, Status> {
        let owner = auth::client(&req)?;
        let r = req.into_inner();
        let id = r.id.clone();
        let inv = self
            .db
            .run(move |c| invoices::payable(c, &id, Some(&owner)))
            .await?;
        let due = inv.due_cents();
        let form: Vec<(String, String)> = [
            ("mode", "payment".to_owned()),
            ("success_url", r.success_url),
            ("cancel_url", r.cancel_url),
            ("client_reference_id", inv.id.clone()),
            ("metadata[invoice_id]", inv.id.clone()),
            ("payment_intent_data[metadata][invoice_id]", inv.id.clone()),
            ("line_items[0][quantity]", "1".to_owned()),
            ("line_items[0][price_data][currency]", "usd".to_owned()),
            ("line_items[0][price_data][unit_amount]", due.to_string()),
            (
                "line_items[0][price_data][product_data][name]",
                format!("Juice Junkiez invoice {}", inv.number),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // The receipt address Stripe shows on its page (best effort: garage may be down).
        let mut form = form;
        if let Ok(contact) = self.client_contact(&inv.client_id).await {
            form.push(("customer_email".to_owned(), contact.email));
        }
        // One session per invoice and amount due: a double click opens the same page.
        // (The key also says whether the email was known: Stripe refuses a reused key whose
        // parameters differ.)
        let with_email = form.iter().any(|(k, _)| k == "customer_email");
        let key = format!(
            "{}-checkout-{due}-{}",
            inv.id,
            if with_email { "e" } else { "n" }
        );
        let session = self
            .stripe
            .post("/v1/checkout/sessions", &form, &key)
            .await
            .map_err(stripe_status)?;
        let (Some(sid), Some(url)) = (session["id"].as_str(), session["url"].as_str()) else {
            return Err(Status::unavailable(
                "The card processor gave no payment page; try again.",
            ));
        };
        let (inv_id, sid_owned, now) = (inv.id.clone(), sid.to_owned(), now_utc());
        self.db
            .run(move |c| invoices::attach_checkout(c, &inv_id, &sid_owned, now))
            .await?;
        Ok(Response::new(pb::PayInvoiceResponse {
            checkout_url: url.to_owned(),
            checkout_session_id: sid.to_owned(),
        }))
    }

    async fn create_payment_intent(
        &self,
        req: Request<pb::CreatePaymentIntentRequest>,
    ) -> Result<Response<pb::CreatePaymentIntentResponse>, Status> {
        let owner = auth::client(&req)?;
        let id = req.into_inner().id;
        let inv = self
            .db
            .run(move |c| invoices::payable(c, &id, Some(&owner)))
            .await?;
        let due = inv.due_cents();
        let customer = self.stripe_customer(&inv.client_id).await?;
        let form: Vec<(String, String)> = vec![
            ("amount".into(), due.to_string()),
            ("currency".into(), "usd".into()),
            ("customer".into(), customer),
            ("metadata[invoice_id]".into(), inv.id.clone()),
            ("metadata[invoice_number]".into(), inv.number.clone()),
        ];
        let pi = self
            .stripe
            .post(
                "/v1/payment_intents",
                &form,
                &format!("{}-pi-{due}", inv.id),
            )
            .await
            .map_err(stripe_status)?;
        let Some(pi_id) = pi["id"].as_str().map(str::to_owned) else {
            return Err(Status::unavailable(
                "The card processor gave no payment; try again.",
            ));
        };
        let (inv_id, p, now) = (inv.id.clone(), pi_id.clone(), now_utc());
        self.db
            .run(move |c| invoices::attach_payment_intent(c, &inv_id, &p, now))
            .await?;
        Ok(Response::new(pb::CreatePaymentIntentResponse {
            payment_intent_id: pi_id,
            client_secret: pi["client_secret"].as_str().unwrap_or_default().to_owned(),
            amount: Some(Money::usd(due)),
        }))
    }

    async fn create_quote_deposit(
        &self,
        req: Request<pb::CreateQuoteDepositRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let client = auth::client(&req)?;
        let r = req.into_inner();
        // The amounts come from shop's calculator, never from the caller.
        let mut s = self.shop.clone();
        let q = grpc::call(
            "ShopService/QuoteBatteryPack",
            s.quote_battery_pack(auth::request(
                &Actor::Client(client.clone()),
                shop::QuoteBatteryPackRequest {
                    range_miles: r.range_miles,
                    energy_wh: r.energy_wh,
                    voltage_class: r.voltage_class.clone(),
                    cell: r.cell.clone(),
                    bms: r.bms.clone(),
                    wh_per_mile: r.wh_per_mile,
                },
            )),
        )
        .await
        .map_err(|s| match s.code() {
            // shop's sentence, written for the customer.
            tonic::Code::InvalidArgument => Status::invalid_argument(s.message()),
            _ => Status::unavailable(
                "The battery pack calculator is unavailable; try again in a minute.",
            ),
        })?
        .into_inner();
        let deposit = q
            .deposit
            .as_ref()
            .filter(|m| m.currency.eq_ignore_ascii_case("USD"))
            .map_or(0, |m| m.amount_cents);
        if deposit <= 0 {
            tracing::warn!(configuration = %q.configuration, "shop quoted no deposit");
            return Err(Status::unavailable(
                "The battery pack calculator gave no price; please call the shop.",
            ));
        }
        let description = deposit_line(&q, &r.cell, &r.bms, deposit);
        let now = now_utc();
        let invoice = self
            .db
            .run(move |c| {
                write_transaction(c, |c| {
                    if let Some(same) =
                        invoices::open_quote_deposit(c, &client, &description, deposit)?
                    {
                        return Ok::<_, DomainError>(same);
                    }
                    let j = Jurisdiction::parse(JURISDICTION).map_err(DomainError::Invalid)?;
                    let bps = tax::get(c, &j)?.map(|t| t.rate_bps).unwrap_or(0);
                    let draft = invoices::create(
                        c,
                        NewInvoice {
                            source: "quote",
                            source_id: ids::new_id("quote"),
                            client_id: client,
                            lines: vec![Line {
                                kind: "fee".into(),
                                description,
                                quantity: 1,
                                unit_cents: deposit,
                                amount_cents: deposit,
                                // A deposit on work to come: no sales tax on it.
                                taxable: false,
                            }],
                            tax_rate_bps: i32::try_from(bps).unwrap_or(0),
                        },
                        now,
                    )?;
                    invoices::issue(c, &draft.id, now)
                })
            })
            .await?;
        tracing::info!(
            invoice = %invoice.number,
            configuration = %q.configuration,
            deposit_cents = deposit,
            "battery pack deposit invoiced"
        );
        Ok(Response::new(invoice_to_pb(invoice)))
    }

    async fn refund(
        &self,
        req: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let actor = auth::actor(&req)?;
        auth::require(&actor, Permission::Refund)?;
        let r = req.into_inner();
        let id = r.invoice_id.clone();
        let inv = self.db.run(move |c| invoices::get(c, &id, None)).await?;
        let refundable = inv.paid_cents - inv.refunded_cents;
        let amount = if r.amount_cents == 0 {
            refundable
        } else {
            r.amount_cents
        };
        if amount <= 0 || amount > refundable {
            return Err(Status::invalid_argument(format!(
                "A refund must be between $0.01 and the ${}.{:02} still refundable.",
                refundable / 100,
                refundable % 100
            )));
        }
        let Some(pi) = inv.payment_intent_id.clone() else {
            return Err(Status::failed_precondition(
                "This invoice was not paid by card.",
            ));
        };
        let form: Vec<(String, String)> = vec![
            ("payment_intent".into(), pi),
            ("amount".into(), amount.to_string()),
            ("metadata[invoice_id]".into(), inv.id.clone()),
        ];
        // Keyed by what was already refunded: a retried click refunds once.
        let key = format!("{}-refund-{}-{amount}", inv.id, inv.refunded_cents);
        let refund = self
            .stripe
            .post("/v1/refunds", &form, &key)
            .await
            .map_err(stripe_status)?;
        let rid = refund["id"].as_str().unwrap_or_default().to_owned();
        let (who, now, reason) = (actor.encode(), now_utc(), r.reason);
        let inv = self
            .db
            .run(move |c| invoices::record_refund(c, &inv.id, &rid, amount, &reason, &who, now))
            .await?;
        tracing::info!(invoice = %inv.number, amount_cents = amount, "refund made");
        Ok(Response::new(invoice_to_pb(inv)))
    }

    async fn get_revenue_report(
        &self,
        req: Request<pb::GetRevenueReportRequest>,
    ) -> Result<Response<pb::RevenueReport>, Status> {
        auth::require(&auth::actor(&req)?, Permission::ViewReports)?;
        let weeks = Weeks::ending(req.into_inner().weeks, now_utc())?;
        let r = self.db.run(move |c| reports::load(c, &weeks)).await?;
        Ok(Response::new(revenue_to_pb(&r)))
    }
}

fn revenue_to_pb(r: &RevenueReport) -> pb::RevenueReport {
    let money = |m: &reports::Money| {
        (
            Some(Money::usd(m.paid_cents)),
            Some(Money::usd(m.refunded_cents)),
            Some(Money::usd(m.net_cents())),
        )
    };
    let (paid, refunded, net) = money(&r.total);
    pb::RevenueReport {
        weeks: r
            .weeks
            .iter()
            .map(|w| {
                let (paid, refunded, net) = money(&w.money);
                pb::RevenueWeek {
                    week_start: w.monday.to_string(),
                    paid,
                    refunded,
                    net,
                    invoices_paid: w.money.invoices_paid,
                }
            })
            .collect(),
        paid,
        refunded,
        net,
        invoices_paid: r.total.invoices_paid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deposit_line_names_the_pack() {
        let q = shop::BatteryPackQuote {
            configuration: "20S3P".into(),
            full_volts: "84.0".into(),
            subtotal: Some(Money::usd(63_100)),
            deposit: Some(Money::usd(41_015)),
            ..Default::default()
        };
        assert_eq!(
            deposit_line(&q, "21700", "regular", 41_015),
            "65% deposit: custom battery pack 20S3P (84 V, 21700, regular BMS)"
        );
        let q = shop::BatteryPackQuote {
            configuration: "16S4P".into(),
            full_volts: "67.2".into(),
            subtotal: Some(Money::usd(45_170)),
            ..q
        };
        assert_eq!(
            deposit_line(&q, " 18650 ", "Smart", 29_361),
            "65% deposit: custom battery pack 16S4P (67.2 V, 18650, smart BMS)"
        );
    }
}
