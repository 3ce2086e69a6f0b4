//! Invoices: sequential numbers, lines with Maryland tax on taxable lines, statuses derived from
//! what was paid and refunded, and payments recorded once per Stripe PaymentIntent.
//!
//! Status: draft → open → paid, then partially_refunded / refunded; void from draft or an unpaid
//! open invoice. Money facts only grow (a payment row per PaymentIntent, the refunded total is the
//! largest total Stripe reported), so duplicate and out-of-order webhooks settle on the same state.

use chrono::{Datelike, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::{ids, per_backend};

use crate::schema::{
    invoice_lines, invoice_numbers, invoices, payments, refunds, stripe_customers,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: String,
    pub description: String,
    pub quantity: i32,
    pub unit_cents: i64,
    pub amount_cents: i64,
    pub taxable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub source: String,
    pub source_id: String,
    pub client_id: String,
    pub status: String,
    pub currency: String,
    pub subtotal_cents: i64,
    pub tax_rate_bps: i32,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub payment_intent_id: Option<String>,
    pub created_at: NaiveDateTime,
    /// Where the receipt goes when there is no client to look up (a shop order's buyer).
    pub email: Option<String>,
    pub lines: Vec<Line>,
}

impl Invoice {
    pub fn due_cents(&self) -> i64 {
        (self.total_cents - self.paid_cents).max(0)
    }

    pub fn next_step(&self) -> &'static str {
        match self.status.as_str() {
            "draft" => "The shop is still preparing this invoice.",
            "open" if self.source == "quote" => {
                "Pay the deposit online with a card, or at the counter, and we start your build; the balance is due at pick-up."
            }
            "open" => "Pay online with a card, or at the counter when you pick up.",
            "paid" => "Paid. Thank you!",
            "partially_refunded" => "Paid; part of it was refunded to your card.",
            "refunded" => "Refunded to your card.",
            _ => "This invoice was canceled; nothing is owed.",
        }
    }
}

/// Sales tax on `taxable` cents at `bps` basis points, rounded half up to the cent.
pub fn tax(taxable: i64, bps: i32) -> i64 {
    (taxable * i64::from(bps) + 5_000) / 10_000
}

/// The next number of the year: JJ-2026-0001, JJ-2026-0002, … (no gaps from races: the guarded
/// update retries on a number someone else just took).
fn next_number(conn: &mut DbConnection, year: i32) -> Result<String, DomainError> {
    per_backend!(&mut *conn, |c| diesel::insert_into(invoice_numbers::table)
        .values((
            invoice_numbers::year.eq(year),
            invoice_numbers::next_number.eq(1)
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    for _ in 0..20 {
        let n: i32 = invoice_numbers::table
            .find(year)
            .select(invoice_numbers::next_number)
            .first(conn)?;
        let took = diesel::update(
            invoice_numbers::table
                .filter(invoice_numbers::year.eq(year))
                .filter(invoice_numbers::next_number.eq(n)),
        )
        .set(invoice_numbers::next_number.eq(n + 1))
        .execute(conn)?;
        if took == 1 {
            return Ok(format!("JJ-{year}-{n:04}"));
        }
    }
    Err(DomainError::Unavailable(
        "Invoice numbering is busy; try again.".into(),
    ))
}

pub struct NewInvoice {
    pub source: &'static str,
    pub source_id: String,
    pub client_id: String,
    pub lines: Vec<Line>,
    pub tax_rate_bps: i32,
}

/// A draft invoice with its lines and totals.
pub fn create(
    conn: &mut DbConnection,
    n: NewInvoice,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    if n.lines.is_empty() {
        return Err(DomainError::conflict(
            "There is nothing to invoice yet: add labor or parts to the job first.",
        ));
    }
    let mut lines = Vec::with_capacity(n.lines.len());
    for l in n.lines {
        if l.quantity < 1 || l.unit_cents < 0 {
            return Err(DomainError::invalid(
                "Every line needs a quantity of at least 1 and a price of at least $0.",
            ));
        }
        lines.push(Line {
            description: text("line description", &l.description, 200, false)?,
            amount_cents: l
                .unit_cents
                .checked_mul(i64::from(l.quantity))
                .ok_or_else(|| DomainError::invalid("A line is too large."))?,
            ..l
        });
    }
    let subtotal: i64 = lines.iter().map(|l| l.amount_cents).sum();
    let taxable: i64 = lines
        .iter()
        .filter(|l| l.taxable)
        .map(|l| l.amount_cents)
        .sum();
    let tax_cents = tax(taxable, n.tax_rate_bps);
    write_transaction(conn, |c| {
        let open_already: i64 = invoices::table
            .filter(invoices::source.eq(n.source))
            .filter(invoices::source_id.eq(&n.source_id))
            .filter(invoices::status.ne("void"))
            .count()
            .get_result(c)?;
        if open_already > 0 {
            return Err(DomainError::conflict(
                "This job already has an invoice; void it first to make a new one.",
            ));
        }
        let id = ids::new_id("inv");
        let number = next_number(c, now.year())?;
        diesel::insert_into(invoices::table)
            .values((
                invoices::id.eq(&id),
                invoices::number.eq(&number),
                invoices::source.eq(n.source),
                invoices::source_id.eq(&n.source_id),
                invoices::client_id.eq(&n.client_id),
                invoices::status.eq("draft"),
                invoices::subtotal_cents.eq(subtotal),
                invoices::tax_rate_bps.eq(n.tax_rate_bps),
                invoices::tax_cents.eq(tax_cents),
                invoices::total_cents.eq(subtotal + tax_cents),
                invoices::created_at.eq(now),
                invoices::updated_at.eq(now),
            ))
            .execute(c)?;
        for (i, l) in lines.iter().enumerate() {
            diesel::insert_into(invoice_lines::table)
                .values((
                    invoice_lines::id.eq(ids::new_id("invl")),
                    invoice_lines::invoice_id.eq(&id),
                    invoice_lines::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                    invoice_lines::kind.eq(&l.kind),
                    invoice_lines::description.eq(&l.description),
                    invoice_lines::quantity.eq(l.quantity),
                    invoice_lines::unit_cents.eq(l.unit_cents),
                    invoice_lines::amount_cents.eq(l.amount_cents),
                    invoice_lines::taxable.eq(l.taxable),
                ))
                .execute(c)?;
        }
        get(c, &id, None)
    })
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i32,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    NaiveDateTime,
    Option<String>,
);

macro_rules! columns {
    () => {
        (
            invoices::id,
            invoices::number,
            invoices::source,
            invoices::source_id,
            invoices::client_id,
            invoices::status,
            invoices::currency,
            invoices::subtotal_cents,
            invoices::tax_rate_bps,
            invoices::tax_cents,
            invoices::total_cents,
            invoices::paid_cents,
            invoices::refunded_cents,
            invoices::payment_intent_id,
            invoices::created_at,
            invoices::email,
        )
    };
}

fn complete(conn: &mut DbConnection, r: Row) -> Result<Invoice, DomainError> {
    let lines = invoice_lines::table
        .filter(invoice_lines::invoice_id.eq(&r.0))
        .order_by(invoice_lines::position)
        .select((
            invoice_lines::kind,
            invoice_lines::description,
            invoice_lines::quantity,
            invoice_lines::unit_cents,
            invoice_lines::amount_cents,
            invoice_lines::taxable,
        ))
        .load::<(String, String, i32, i64, i64, bool)>(conn)?
        .into_iter()
        .map(
            |(kind, description, quantity, unit_cents, amount_cents, taxable)| Line {
                kind,
                description,
                quantity,
                unit_cents,
                amount_cents,
                taxable,
            },
        )
        .collect();
    Ok(Invoice {
        id: r.0,
        number: r.1,
        source: r.2,
        source_id: r.3,
        client_id: r.4,
        status: r.5,
        currency: r.6,
        subtotal_cents: r.7,
        tax_rate_bps: r.8,
        tax_cents: r.9,
        total_cents: r.10,
        paid_cents: r.11,
        refunded_cents: r.12,
        payment_intent_id: r.13,
        created_at: r.14,
        email: r.15,
        lines,
    })
}

/// A paid shop order as shop reports it (`OrderPaid`): what its invoice is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSale {
    pub order_id: String,
    /// Empty for an anonymous shopper.
    pub client_id: String,
    /// The buyer's address for the receipt (None: look the client up).
    pub email: Option<String>,
    /// The items (parts, taxable).
    pub lines: Vec<Line>,
    pub tax_rate_bps: i32,
    /// The tax Stripe charged (never recomputed: the invoice says what was paid).
    pub tax_cents: i64,
}

/// The order's invoice, made once: paid orders are invoiced when their payment is recorded, in
/// the same transaction as the Stripe event. Another call for the same order gets the same
/// invoice back (the unique index on order invoices settles a race: the loser's transaction
/// fails and Stripe's retry finds the invoice).
pub fn order_invoice(
    conn: &mut DbConnection,
    sale: &OrderSale,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    if let Some(id) = by_source(conn, "order", &sale.order_id)? {
        return get(conn, &id, None);
    }
    if sale.lines.is_empty() {
        return Err(DomainError::invalid(format!(
            "order {} has no items to invoice",
            sale.order_id
        )));
    }
    let subtotal: i64 = sale.lines.iter().map(|l| l.amount_cents).sum();
    let taxable: i64 = sale
        .lines
        .iter()
        .filter(|l| l.taxable)
        .map(|l| l.amount_cents)
        .sum();
    if tax(taxable, sale.tax_rate_bps) != sale.tax_cents {
        tracing::warn!(
            order.id = %sale.order_id,
            tax_cents = sale.tax_cents,
            "order tax differs from the rate applied to its items; invoicing what was charged"
        );
    }
    let id = ids::new_id("inv");
    let number = next_number(conn, now.year())?;
    diesel::insert_into(invoices::table)
        .values((
            invoices::id.eq(&id),
            invoices::number.eq(&number),
            invoices::source.eq("order"),
            invoices::source_id.eq(&sale.order_id),
            invoices::client_id.eq(&sale.client_id),
            // Open, so the payment recorded next makes it paid.
            invoices::status.eq("open"),
            invoices::subtotal_cents.eq(subtotal),
            invoices::tax_rate_bps.eq(sale.tax_rate_bps),
            invoices::tax_cents.eq(sale.tax_cents),
            invoices::total_cents.eq(subtotal + sale.tax_cents),
            invoices::email.eq(sale.email.as_deref()),
            invoices::created_at.eq(now),
            invoices::updated_at.eq(now),
        ))
        .execute(conn)?;
    for (i, l) in sale.lines.iter().enumerate() {
        diesel::insert_into(invoice_lines::table)
            .values((
                invoice_lines::id.eq(ids::new_id("invl")),
                invoice_lines::invoice_id.eq(&id),
                invoice_lines::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                invoice_lines::kind.eq(&l.kind),
                invoice_lines::description.eq(&l.description),
                invoice_lines::quantity.eq(l.quantity),
                invoice_lines::unit_cents.eq(l.unit_cents),
                invoice_lines::amount_cents.eq(l.amount_cents),
                invoice_lines::taxable.eq(l.taxable),
            ))
            .execute(conn)?;
    }
    get(conn, &id, None)
}

/// The (non-void) invoice made from `source` `source_id` (a job, an order, a quote), if any.
pub fn by_source(
    conn: &mut DbConnection,
    source: &str,
    source_id: &str,
) -> Result<Option<String>, DomainError> {
    Ok(invoices::table
        .filter(invoices::source.eq(source))
        .filter(invoices::source_id.eq(source_id))
        .filter(invoices::status.ne("void"))
        .order_by(invoices::created_at.desc())
        .select(invoices::id)
        .first(conn)
        .optional()?)
}

/// The client's open, still unpaid quote invoice whose only line is `description` at
/// `amount_cents`, if any: asking for the same build again (a double click) gets that invoice back
/// instead of a second one.
pub fn open_quote_deposit(
    conn: &mut DbConnection,
    client_id: &str,
    description: &str,
    amount_cents: i64,
) -> Result<Option<Invoice>, DomainError> {
    let rows = invoices::table
        .filter(invoices::source.eq("quote"))
        .filter(invoices::client_id.eq(client_id))
        .filter(invoices::status.eq("open"))
        .filter(invoices::paid_cents.eq(0))
        .filter(invoices::total_cents.eq(amount_cents))
        .order_by((invoices::created_at.desc(), invoices::id.desc()))
        .select(columns!())
        .limit(20)
        .load::<Row>(conn)?;
    for r in rows {
        let inv = complete(conn, r)?;
        if let [line] = inv.lines.as_slice()
            && line.description == description
            && line.amount_cents == amount_cents
        {
            return Ok(Some(inv));
        }
    }
    Ok(None)
}

/// One invoice; a client (`owner`) sees only their own, and never a draft.
pub fn get(conn: &mut DbConnection, id: &str, owner: Option<&str>) -> Result<Invoice, DomainError> {
    let not_found = || DomainError::not_found("No such invoice.");
    if !ids::is_valid("inv", id) {
        return Err(not_found());
    }
    let mut q = invoices::table
        .filter(invoices::id.eq(id))
        .select(columns!())
        .into_boxed();
    if let Some(o) = owner {
        q = q
            .filter(invoices::client_id.eq(o.to_owned()))
            .filter(invoices::status.ne("draft"));
    }
    let row = q.first::<Row>(conn).optional()?.ok_or_else(not_found)?;
    complete(conn, row)
}

/// A client's invoices (drafts hidden), or every invoice of a client for staff.
/// Every status an invoice can be in.
pub const STATUSES: [&str; 6] = [
    "draft",
    "open",
    "paid",
    "partially_refunded",
    "refunded",
    "void",
];

/// Which invoices to list, newest first (at most 200).
pub struct Listing<'a> {
    /// One client's, or every client's.
    pub client_id: Option<&'a str>,
    pub include_drafts: bool,
    /// Only this status (one of [`STATUSES`]).
    pub status: Option<&'a str>,
}

pub fn list(conn: &mut DbConnection, l: &Listing<'_>) -> Result<Vec<Invoice>, DomainError> {
    let mut q = invoices::table
        .order_by((invoices::created_at.desc(), invoices::id.desc()))
        .select(columns!())
        .limit(200)
        .into_boxed();
    if let Some(client_id) = l.client_id {
        q = q.filter(invoices::client_id.eq(client_id.to_owned()));
    }
    if !l.include_drafts {
        q = q.filter(invoices::status.ne("draft"));
    }
    if let Some(status) = l.status {
        q = q.filter(invoices::status.eq(status.to_owned()));
    }
    let rows = q.load::<Row>(conn)?;
    rows.into_iter().map(|r| complete(conn, r)).collect()
}

fn set_status(
    conn: &mut DbConnection,
    id: &str,
    from: &[&str],
    to: &str,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    write_transaction(conn, |c| {
        let inv = get(c, id, None)?;
        if !from.contains(&inv.status.as_str()) || (to == "void" && inv.paid_cents > 0) {
            return Err(DomainError::conflict(format!(
                "An invoice that is {} cannot become {to}.",
                inv.status
            )));
        }
        diesel::update(
            invoices::table
                .filter(invoices::id.eq(id))
                .filter(invoices::status.eq(&inv.status)),
        )
        .set((invoices::status.eq(to), invoices::updated_at.eq(now)))
        .execute(c)?;
        get(c, id, None)
    })
}

pub fn issue(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    set_status(conn, id, &["draft"], "open", now)
}

pub fn void(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<Invoice, DomainError> {
    set_status(conn, id, &["draft", "open"], "void", now)
}

/// An open invoice with something left to pay (the client's pay button).
pub fn payable(
    conn: &mut DbConnection,
    id: &str,
    owner: Option<&str>,
) -> Result<Invoice, DomainError> {
    let inv = get(conn, id, owner)?;
    if inv.status != "open" || inv.due_cents() == 0 {
        return Err(DomainError::conflict(match inv.status.as_str() {
            "paid" | "partially_refunded" | "refunded" => "This invoice is already paid.",
            "void" => "This invoice was canceled; nothing is owed.",
            _ => "This invoice isn't ready to pay yet.",
        }));
    }
    Ok(inv)
}

pub fn attach_payment_intent(
    conn: &mut DbConnection,
    id: &str,
    payment_intent: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(invoices::table.find(id))
        .set((
            invoices::payment_intent_id.eq(Some(payment_intent)),
            invoices::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn attach_checkout(
    conn: &mut DbConnection,
    id: &str,
    session: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(invoices::table.find(id))
        .set((
            invoices::checkout_session_id.eq(Some(session)),
            invoices::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes the invoice's row lock for the rest of the transaction (a no-op write), so concurrent
/// payments and refunds of one invoice apply one after the other and each reads the latest facts
/// (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serializes writers).
fn lock(conn: &mut DbConnection, id: &str) -> Result<(), DomainError> {
    diesel::update(invoices::table.find(id))
        .set(invoices::id.eq(id))
        .execute(conn)?;
    Ok(())
}

/// The status the money says (never leaves draft or void).
fn derived_status(current: &str, total: i64, paid: i64, refunded: i64) -> String {
    match current {
        "draft" | "void" => current.to_owned(),
        _ if paid >= total && paid > 0 => {
            if refunded >= paid {
                "refunded".into()
            } else if refunded > 0 {
                "partially_refunded".into()
            } else {
                "paid".into()
            }
        }
        _ => "open".into(),
    }
}

fn recompute(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    let paid: i64 = payments::table
        .filter(payments::invoice_id.eq(id))
        .select(payments::amount_cents)
        .load::<i64>(conn)?
        .iter()
        .sum();
    let inv = get(conn, id, None)?;
    let status = derived_status(&inv.status, inv.total_cents, paid, inv.refunded_cents);
    diesel::update(invoices::table.find(id))
        .set((
            invoices::paid_cents.eq(paid),
            invoices::status.eq(&status),
            invoices::updated_at.eq(now),
        ))
        .execute(conn)?;
    get(conn, id, None)
}

/// Records the payment of PaymentIntent `pi` on an invoice, once. Returns the invoice and
/// whether this call recorded it (false for a replay).
pub fn record_payment(
    conn: &mut DbConnection,
    invoice_id: &str,
    pi: &str,
    amount_cents: i64,
    currency: &str,
    now: NaiveDateTime,
) -> Result<(Invoice, bool), DomainError> {
    lock(conn, invoice_id)?;
    let inv = get(conn, invoice_id, None)?;
    if !currency.eq_ignore_ascii_case(&inv.currency) {
        return Err(DomainError::invalid(format!(
            "payment currency {currency} does not match the invoice's {}",
            inv.currency
        )));
    }
    let inserted = per_backend!(&mut *conn, |c| diesel::insert_into(payments::table)
        .values((
            payments::id.eq(ids::new_id("pay")),
            payments::invoice_id.eq(invoice_id),
            payments::payment_intent_id.eq(pi),
            payments::amount_cents.eq(amount_cents),
            payments::currency.eq(inv.currency.as_str()),
            payments::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    if inv.payment_intent_id.is_none() {
        attach_payment_intent(conn, invoice_id, pi, now)?;
    }
    Ok((recompute(conn, invoice_id, now)?, inserted == 1))
}

/// The invoice paid by PaymentIntent `pi`, if any.
pub fn by_payment_intent(conn: &mut DbConnection, pi: &str) -> Result<Option<String>, DomainError> {
    let direct: Option<String> = invoices::table
        .filter(invoices::payment_intent_id.eq(pi))
        .select(invoices::id)
        .first(conn)
        .optional()?;
    if direct.is_some() {
        return Ok(direct);
    }
    Ok(payments::table
        .filter(payments::payment_intent_id.eq(pi))
        .select(payments::invoice_id)
        .first(conn)
        .optional()?)
}

/// Stripe's cumulative refunded amount for the invoice's payment; only ever grows.
pub fn record_refunded_total(
    conn: &mut DbConnection,
    invoice_id: &str,
    refunded_total: i64,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    lock(conn, invoice_id)?;
    diesel::update(
        invoices::table
            .filter(invoices::id.eq(invoice_id))
            .filter(invoices::refunded_cents.lt(refunded_total)),
    )
    .set(invoices::refunded_cents.eq(refunded_total))
    .execute(conn)?;
    recompute(conn, invoice_id, now)
}

/// A refund staff made through Stripe (recorded with Stripe's refund id).
pub fn record_refund(
    conn: &mut DbConnection,
    invoice_id: &str,
    stripe_refund_id: &str,
    amount_cents: i64,
    reason: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<Invoice, DomainError> {
    write_transaction(conn, |c| {
        lock(c, invoice_id)?;
        let inv = get(c, invoice_id, None)?;
        per_backend!(&mut *c, |cc| diesel::insert_into(refunds::table)
            .values((
                refunds::id.eq(ids::new_id("ref")),
                refunds::invoice_id.eq(invoice_id),
                refunds::stripe_refund_id.eq(Some(stripe_refund_id)),
                refunds::amount_cents.eq(amount_cents),
                refunds::reason.eq(reason),
                refunds::created_by.eq(by),
                refunds::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(cc))?;
        let total: i64 = refunds::table
            .filter(refunds::invoice_id.eq(invoice_id))
            .select(refunds::amount_cents)
            .load::<i64>(c)?
            .iter()
            .sum();
        record_refunded_total(c, &inv.id, total, now)
    })
}

/// Whether the paid receipt still has to be emailed.
pub fn receipt_due(conn: &mut DbConnection, id: &str) -> Result<bool, DomainError> {
    Ok(invoices::table
        .find(id)
        .select(invoices::receipt_sent_at)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .is_some_and(|sent| sent.is_none()))
}

pub fn mark_receipt_sent(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(invoices::table.find(id))
        .set(invoices::receipt_sent_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// The receipt: plain text and HTML (every value escaped).
pub fn receipt(inv: &Invoice, name: &str) -> (String, String, String) {
    let money = |c: i64| format!("${}.{:02}", c / 100, c % 100);
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let hello = if name.is_empty() {
        "Hi,".to_owned()
    } else {
        format!("Hi {name},")
    };
    let subject = format!(
        "Receipt for invoice {}: {} paid",
        inv.number,
        money(inv.paid_cents)
    );
    let mut text = format!(
        "{hello}\n\nThanks for your payment. Invoice {}:\n\n",
        inv.number
    );
    let mut rows = String::new();
    for l in &inv.lines {
        text.push_str(&format!(
            "  {} × {}  {}\n",
            l.quantity,
            l.description,
            money(l.amount_cents)
        ));
        rows.push_str(&format!(
            "<tr><td>{}</td><td style=\"text-align:right\">{}</td><td style=\"text-align:right\">{}</td></tr>",
            esc(&l.description),
            l.quantity,
            money(l.amount_cents)
        ));
    }
    text.push_str(&format!(
        "\nSubtotal {}\nMaryland sales tax {}\nTotal {}\nPaid {}\n\nJuice Junkiez · 409 S Addison St, Baltimore, MD 21223\n",
        money(inv.subtotal_cents),
        money(inv.tax_cents),
        money(inv.total_cents),
        money(inv.paid_cents)
    ));
    let html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif\"><p>{}</p><p>Thanks for your payment. Invoice <strong>{}</strong>:</p>\
         <table style=\"border-collapse:collapse;min-width:20rem\"><tr><th style=\"text-align:left\">Item</th><th>Qty</th><th>Amount</th></tr>{rows}\
         <tr><td>Subtotal</td><td></td><td style=\"text-align:right\">{}</td></tr>\
         <tr><td>Maryland sales tax</td><td></td><td style=\"text-align:right\">{}</td></tr>\
         <tr><td><strong>Total paid</strong></td><td></td><td style=\"text-align:right\"><strong>{}</strong></td></tr></table>\
         <p style=\"color:#555\">Juice Junkiez · 409 S Addison St, Baltimore, MD 21223</p></body></html>",
        esc(&hello),
        esc(&inv.number),
        money(inv.subtotal_cents),
        money(inv.tax_cents),
        money(inv.paid_cents)
    );
    (subject, text, html)
}

/// The client's Stripe Customer, if one was made.
pub fn stripe_customer(
    conn: &mut DbConnection,
    client_id: &str,
) -> Result<Option<String>, DomainError> {
    Ok(stripe_customers::table
        .find(client_id)
        .select(stripe_customers::customer_id)
        .first(conn)
        .optional()?)
}

/// Remembers the client's Stripe Customer (the first one recorded wins).
pub fn remember_customer(
    conn: &mut DbConnection,
    client_id: &str,
    customer_id: &str,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    per_backend!(&mut *conn, |c| diesel::insert_into(stripe_customers::table)
        .values((
            stripe_customers::client_id.eq(client_id),
            stripe_customers::customer_id.eq(customer_id),
            stripe_customers::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    stripe_customer(conn, client_id)?
        .ok_or_else(|| DomainError::Unavailable("customer not stored".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_rounds_half_up_and_status_follows_the_money() {
        assert_eq!(tax(10_000, 600), 600);
        assert_eq!(tax(1_999, 600), 120); // 119.94 → 120
        assert_eq!(tax(1_991, 600), 119); // 119.46 → 119
        assert_eq!(derived_status("open", 1000, 0, 0), "open");
        assert_eq!(derived_status("open", 1000, 1000, 0), "paid");
        assert_eq!(
            derived_status("paid", 1000, 1000, 300),
            "partially_refunded"
        );
        assert_eq!(derived_status("paid", 1000, 1000, 1000), "refunded");
        // A refund seen before its payment (out of order) settles once the payment arrives.
        assert_eq!(derived_status("open", 1000, 0, 1000), "open");
        assert_eq!(derived_status("open", 1000, 1000, 1000), "refunded");
        assert_eq!(derived_status("void", 1000, 0, 0), "void");
        assert_eq!(derived_status("draft", 1000, 1000, 0), "draft");
    }
}
