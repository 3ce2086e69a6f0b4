//! The owner's revenue report, week by week ([`omneuro_platform::weeks`]: ISO weeks, Monday
//! 00:00 UTC, the current week last), in cents:
//!
//! - **paid**: payments recorded that week (`payments`, one row per Stripe PaymentIntent, by
//!   when billing recorded it); **invoices paid**: invoices with a payment that week;
//! - **refunded**: refunds made that week (`refunds`, by when they were made). A refund made in
//!   Stripe's dashboard reaches billing only as the invoice's cumulative `refunded_cents` (the
//!   `charge.refunded` webhook), without a row of its own: what an invoice's total says beyond
//!   its `refunds` rows counts in the week the invoice last changed;
//! - **net**: paid − refunded (negative when refunds outweigh payments).
//!
//! The shop invoices in one currency (USD); amounts are summed as they are.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::db::DbConnection;
use omneuro_platform::error::DomainError;
use omneuro_platform::weeks::Weeks;

use crate::schema::{invoices, payments, refunds};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Money {
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub invoices_paid: u32,
}

impl Money {
    pub fn net_cents(&self) -> i64 {
        self.paid_cents - self.refunded_cents
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueWeek {
    /// The Monday the week starts on.
    pub monday: NaiveDate,
    pub money: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueReport {
    pub weeks: Vec<RevenueWeek>,
    /// Over the whole period (an invoice paid in two weeks counts once here).
    pub total: Money,
}

/// A payment: which invoice, how much, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub invoice_id: String,
    pub cents: i64,
    pub at: NaiveDateTime,
}

/// A refund (or the part of an invoice's refunded total without a row), and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    pub cents: i64,
    pub at: NaiveDateTime,
}

/// The report from payments and refunds (anything outside `weeks` is ignored).
pub fn compute(weeks: &Weeks, payments: &[Payment], refunds: &[Refund]) -> RevenueReport {
    let mut out: Vec<RevenueWeek> = weeks
        .mondays()
        .into_iter()
        .map(|monday| RevenueWeek {
            monday,
            money: Money::default(),
        })
        .collect();
    let mut paid_in: Vec<HashSet<&str>> = vec![HashSet::new(); out.len()];
    let mut all_paid: HashSet<&str> = HashSet::new();
    let mut total = Money::default();
    for p in payments {
        if let Some(i) = weeks.index(p.at)
            && let Some(w) = out.get_mut(i)
        {
            w.money.paid_cents += p.cents;
            total.paid_cents += p.cents;
            if let Some(set) = paid_in.get_mut(i) {
                set.insert(&p.invoice_id);
            }
            all_paid.insert(&p.invoice_id);
        }
    }
    for r in refunds {
        if let Some(w) = weeks.index(r.at).and_then(|i| out.get_mut(i)) {
            w.money.refunded_cents += r.cents;
            total.refunded_cents += r.cents;
        }
    }
    for (w, set) in out.iter_mut().zip(&paid_in) {
        w.money.invoices_paid = u32::try_from(set.len()).unwrap_or(u32::MAX);
    }
    total.invoices_paid = u32::try_from(all_paid.len()).unwrap_or(u32::MAX);
    RevenueReport { weeks: out, total }
}

/// Loads the payments and refunds of `weeks` and works the report out.
pub fn load(conn: &mut DbConnection, weeks: &Weeks) -> Result<RevenueReport, DomainError> {
    let (start, end) = (weeks.start(), weeks.end());
    let payments: Vec<Payment> = payments::table
        .filter(payments::created_at.ge(start))
        .filter(payments::created_at.lt(end))
        .select((
            payments::invoice_id,
            payments::amount_cents,
            payments::created_at,
        ))
        .load::<(String, i64, NaiveDateTime)>(conn)?
        .into_iter()
        .map(|(invoice_id, cents, at)| Payment {
            invoice_id,
            cents,
            at,
        })
        .collect();
    let mut refunds: Vec<Refund> = refunds::table
        .filter(refunds::created_at.ge(start))
        .filter(refunds::created_at.lt(end))
        .select((refunds::amount_cents, refunds::created_at))
        .load::<(i64, NaiveDateTime)>(conn)?
        .into_iter()
        .map(|(cents, at)| Refund { cents, at })
        .collect();
    // Refunded totals beyond the invoice's refund rows (made in Stripe's dashboard).
    let refunded: Vec<(String, i64, NaiveDateTime)> = invoices::table
        .filter(invoices::refunded_cents.gt(0))
        .filter(invoices::updated_at.ge(start))
        .filter(invoices::updated_at.lt(end))
        .select((invoices::id, invoices::refunded_cents, invoices::updated_at))
        .load(conn)?;
    if !refunded.is_empty() {
        let ids: Vec<&str> = refunded.iter().map(|r| r.0.as_str()).collect();
        let mut rows: HashMap<String, i64> = HashMap::new();
        for chunk in ids.chunks(500) {
            let got: Vec<(String, i64)> = refunds::table
                .filter(refunds::invoice_id.eq_any(chunk))
                .select((refunds::invoice_id, refunds::amount_cents))
                .load(conn)?;
            for (id, cents) in got {
                *rows.entry(id).or_default() += cents;
            }
        }
        for (id, total, at) in &refunded {
            let beyond = total - rows.get(id).copied().unwrap_or(0);
            if beyond > 0 {
                refunds.push(Refund {
                    cents: beyond,
                    at: *at,
                });
            }
        }
    }
    Ok(compute(weeks, &payments, &refunds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    /// Mondays 2025-05-26, 06-02 and 06-09 (now Wednesday 06-11).
    fn weeks() -> Weeks {
        Weeks::ending(3, at("2025-06-11 15:00")).unwrap()
    }

    #[test]
    fn payments_and_refunds_fall_in_their_weeks() {
        let pay = |inv: &str, cents, when| Payment {
            invoice_id: inv.into(),
            cents,
            at: at(when),
        };
        let payments = vec![
            pay("inv_a", 10_000, "2025-05-26 00:00"),
            pay("inv_b", 5_300, "2025-05-30 17:00"),
            // inv_b paid the rest the next week: counted as paid in both weeks, once overall.
            pay("inv_b", 700, "2025-06-02 09:00"),
            // Before the period.
            pay("inv_z", 99_900, "2025-05-25 23:59"),
        ];
        let refunds = vec![
            Refund {
                cents: 2_500,
                at: at("2025-06-03 12:00"),
            },
            Refund {
                cents: 1_000,
                at: at("2025-06-10 12:00"),
            },
        ];
        let r = compute(&weeks(), &payments, &refunds);
        let got: Vec<(i64, i64, i64, u32)> = r
            .weeks
            .iter()
            .map(|w| {
                (
                    w.money.paid_cents,
                    w.money.refunded_cents,
                    w.money.net_cents(),
                    w.money.invoices_paid,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (15_300, 0, 15_300, 2),
                (700, 2_500, -1_800, 1),
                (0, 1_000, -1_000, 0)
            ]
        );
        assert_eq!(r.total.paid_cents, 16_000);
        assert_eq!(r.total.refunded_cents, 3_500);
        assert_eq!(r.total.net_cents(), 12_500);
        assert_eq!(r.total.invoices_paid, 2);
        assert_eq!(
            r.weeks[2].monday,
            NaiveDate::from_ymd_opt(2025, 6, 9).unwrap()
        );
    }

    #[test]
    fn nothing_paid_makes_zeros() {
        let r = compute(&weeks(), &[], &[]);
        assert_eq!(r.weeks.len(), 3);
        assert!(r.weeks.iter().all(|w| w.money == Money::default()));
        assert_eq!(r.total, Money::default());
    }
}
