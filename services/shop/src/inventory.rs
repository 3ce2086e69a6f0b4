//! The inventory ledger: one record of every stock change, for web orders and work-order parts.
//!
//! Truth lives in two counters per product, changed only by guarded SQL updates so no race can
//! oversell: `on_hand` (in the shop) and `reserved` (held by open checkouts). Available =
//! on_hand − reserved. Every change also writes a ledger row (why, by whom, for which order/job),
//! so the counters always equal the sum of the ledger.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::DbConnection;
use omneuro_platform::error::DomainError;
use omneuro_platform::ids;

use crate::schema::{inventory_ledger, products};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Restock,
    Adjustment,
    Reserve,
    Release,
    Sale,
    JobPart,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Restock => "restock",
            Reason::Adjustment => "adjustment",
            Reason::Reserve => "reserve",
            Reason::Release => "release",
            Reason::Sale => "sale",
            Reason::JobPart => "job_part",
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn ledger(
    conn: &mut DbConnection,
    product: &str,
    on_hand: i64,
    reserved: i64,
    reason: Reason,
    ref_id: &str,
    note: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::insert_into(inventory_ledger::table)
        .values((
            inventory_ledger::id.eq(ids::new_id("led")),
            inventory_ledger::product_id.eq(product),
            inventory_ledger::on_hand_delta.eq(on_hand),
            inventory_ledger::reserved_delta.eq(reserved),
            inventory_ledger::reason.eq(reason.as_str()),
            inventory_ledger::ref_id.eq(ref_id),
            inventory_ledger::note.eq(note),
            inventory_ledger::actor.eq(actor),
            inventory_ledger::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

fn available(conn: &mut DbConnection, product: &str) -> Result<i64, DomainError> {
    let (on_hand, reserved): (i64, i64) = products::table
        .find(product)
        .select((products::on_hand, products::reserved))
        .first(conn)?;
    Ok((on_hand - reserved).max(0))
}

/// Holds `qty` for an order being paid; refused (nothing changes) when fewer are available.
pub fn reserve(
    conn: &mut DbConnection,
    product: &str,
    name: &str,
    qty: i64,
    order: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    let n = diesel::update(
        products::table
            .filter(products::id.eq(product))
            .filter((products::on_hand - products::reserved).ge(qty)),
    )
    .set(products::reserved.eq(products::reserved + qty))
    .execute(conn)?;
    if n != 1 {
        let left = available(conn, product)?;
        return Err(DomainError::conflict(if left == 0 {
            format!("Sorry, {name} just sold out.")
        } else {
            format!("Sorry, only {left} × {name} left; lower the quantity and try again.")
        }));
    }
    ledger(
        conn,
        product,
        0,
        qty,
        Reason::Reserve,
        order,
        "",
        actor,
        now,
    )
}

/// Gives back what an unpaid order held (expired or canceled checkout).
pub fn release(
    conn: &mut DbConnection,
    product: &str,
    qty: i64,
    order: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    let n = diesel::update(
        products::table
            .filter(products::id.eq(product))
            .filter(products::reserved.ge(qty)),
    )
    .set(products::reserved.eq(products::reserved - qty))
    .execute(conn)?;
    if n == 1 {
        ledger(
            conn,
            product,
            0,
            -qty,
            Reason::Release,
            order,
            "",
            actor,
            now,
        )?;
    }
    Ok(())
}

/// Turns an order's reservation into a sale: it leaves the shelf.
pub fn take(
    conn: &mut DbConnection,
    product: &str,
    qty: i64,
    order: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    let n = diesel::update(
        products::table
            .filter(products::id.eq(product))
            .filter(products::reserved.ge(qty))
            .filter(products::on_hand.ge(qty)),
    )
    .set((
        products::reserved.eq(products::reserved - qty),
        products::on_hand.eq(products::on_hand - qty),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(DomainError::conflict(
            "stock counters disagree with the order's reservation",
        ));
    }
    ledger(
        conn,
        product,
        -qty,
        -qty,
        Reason::Sale,
        order,
        "",
        actor,
        now,
    )
}

/// Staff: a restock (+) or a correction (±) with a reason; never below what is reserved.
pub fn adjust(
    conn: &mut DbConnection,
    product: &str,
    delta: i64,
    note: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<i64, DomainError> {
    if delta == 0 || delta.abs() > 100_000 {
        return Err(DomainError::invalid(
            "Change the stock by a non-zero amount (at most 100,000).",
        ));
    }
    let note = omneuro_platform::error::text("reason", note, 200, false)?;
    if note.is_empty() {
        return Err(DomainError::invalid(
            "Say why the stock changes (restock, count, damage, …).",
        ));
    }
    let n = diesel::update(
        products::table
            .filter(products::id.eq(product))
            .filter((products::on_hand + delta).ge(products::reserved)),
    )
    .set(products::on_hand.eq(products::on_hand + delta))
    .execute(conn)?;
    if n != 1 {
        let exists: i64 = products::table
            .filter(products::id.eq(product))
            .count()
            .get_result(conn)?;
        return Err(if exists == 0 {
            DomainError::not_found("No such product.")
        } else {
            DomainError::conflict("That would leave less on hand than open orders hold.")
        });
    }
    let reason = if delta > 0 {
        Reason::Restock
    } else {
        Reason::Adjustment
    };
    ledger(conn, product, delta, 0, reason, "", &note, actor, now)?;
    available(conn, product)
}

/// Whether a ledger row with this reason and reference exists (job parts are keyed by line).
fn recorded(conn: &mut DbConnection, reason: Reason, ref_id: &str) -> Result<bool, DomainError> {
    let n: i64 = inventory_ledger::table
        .filter(inventory_ledger::reason.eq(reason.as_str()))
        .filter(inventory_ledger::ref_id.eq(ref_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// A part put on a work order (`line` is the job line's id): off the shelf at once, no checkout.
/// Again for the same line: nothing happens.
pub fn use_for_job(
    conn: &mut DbConnection,
    product: &str,
    qty: i64,
    line: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    if !(1..=100).contains(&qty) {
        return Err(DomainError::invalid(
            "Quantity should be between 1 and 100.",
        ));
    }
    omneuro_platform::db::write_transaction(conn, |c| {
        if recorded(c, Reason::JobPart, line)? {
            return Ok(());
        }
        let n = diesel::update(
            products::table
                .filter(products::id.eq(product))
                .filter((products::on_hand - products::reserved).ge(qty)),
        )
        .set(products::on_hand.eq(products::on_hand - qty))
        .execute(c)?;
        if n != 1 {
            let left = available(c, product).unwrap_or(0);
            return Err(DomainError::conflict(format!(
                "Only {left} of that part in stock; restock it or order it in."
            )));
        }
        ledger(c, product, -qty, 0, Reason::JobPart, line, "", actor, now)
    })
}

/// The part of a removed job line goes back on the shelf, once.
pub fn return_from_job(
    conn: &mut DbConnection,
    line: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    omneuro_platform::db::write_transaction(conn, |c| {
        let used: Option<(String, i64)> = inventory_ledger::table
            .filter(inventory_ledger::reason.eq(Reason::JobPart.as_str()))
            .filter(inventory_ledger::ref_id.eq(line))
            .select((
                inventory_ledger::product_id,
                inventory_ledger::on_hand_delta,
            ))
            .first(c)
            .optional()?;
        let Some((product, delta)) = used else {
            return Ok(());
        };
        let returned = inventory_ledger::table
            .filter(inventory_ledger::reason.eq(Reason::Adjustment.as_str()))
            .filter(inventory_ledger::ref_id.eq(line))
            .count()
            .get_result::<i64>(c)?;
        if returned > 0 {
            return Ok(());
        }
        diesel::update(products::table.find(&product))
            .set(products::on_hand.eq(products::on_hand - delta))
            .execute(c)?;
        ledger(
            c,
            &product,
            -delta,
            0,
            Reason::Adjustment,
            line,
            "returned from a job",
            actor,
            now,
        )
    })
}

/// (on_hand, reserved) according to the ledger; equals the counters.
pub fn ledger_totals(conn: &mut DbConnection, product: &str) -> Result<(i64, i64), DomainError> {
    let rows: Vec<(i64, i64)> = inventory_ledger::table
        .filter(inventory_ledger::product_id.eq(product))
        .select((
            inventory_ledger::on_hand_delta,
            inventory_ledger::reserved_delta,
        ))
        .load(conn)?;
    Ok(rows.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y)))
}
