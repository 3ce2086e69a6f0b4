//! The bench side of a job: diagnostics notes, labor and parts lines, the tech assigned, and the
//! estimate the client approves or declines (once) from a link or from their garage.
//!
//! Prices are the server's: labor is hours × the shop's rate given by staff, a part is a shop
//! product at its catalog price when it is added. An estimate is a snapshot of the lines when it
//! was sent; a new estimate supersedes the previous open one.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::ids;
use serde::{Deserialize, Serialize};

use crate::kbsync;
use crate::outbox::{self, Kind};
use crate::schema::{estimates, job_lines, job_notes, work_orders};
use crate::workorders::{self, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: String,
    /// `labor` or `part`.
    pub kind: String,
    pub description: String,
    pub product_id: Option<String>,
    pub quantity: i32,
    pub hours_hundredths: i32,
    pub unit_price_cents: i64,
    pub amount_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: String,
    pub at: NaiveDateTime,
    pub author: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub id: String,
    pub job_id: String,
    pub token: String,
    pub lines: Vec<Line>,
    pub total_cents: i64,
    pub currency: String,
    /// sent, approved, declined, superseded
    pub status: String,
    pub sent_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub vehicle_label: String,
}

/// "1.5" → 150 hundredths of an hour (0.25 h steps are fine; at most 99.99 h).
pub fn parse_hours(s: &str) -> Result<i32, DomainError> {
    let bad = || DomainError::invalid("Hours should be a number like 1.5 (at most 99.99).");
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let w: i32 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let f: i32 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let h = w
        .checked_mul(100)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(bad)?;
    if h == 0 || h > 9999 {
        return Err(bad());
    }
    Ok(h)
}

fn open_job(conn: &mut DbConnection, job_id: &str) -> Result<workorders::WorkOrder, DomainError> {
    let job = workorders::get(conn, job_id, None)?;
    if matches!(job.status, Status::Delivered | Status::Canceled) {
        return Err(DomainError::conflict(
            "This job is closed; its lines can no longer change.",
        ));
    }
    Ok(job)
}

pub fn add_note(
    conn: &mut DbConnection,
    job_id: &str,
    author: &str,
    body: &str,
    now: NaiveDateTime,
) -> Result<Note, DomainError> {
    let body = text("note", body, 4000, true)?;
    if body.is_empty() {
        return Err(DomainError::invalid("Write something in the note."));
    }
    let id = ids::new_id("note");
    write_transaction(conn, |c| {
        workorders::get(c, job_id, None)?;
        diesel::insert_into(job_notes::table)
            .values((
                job_notes::id.eq(&id),
                job_notes::job_id.eq(job_id),
                job_notes::at.eq(now),
                job_notes::author.eq(author),
                job_notes::body.eq(&body),
            ))
            .execute(c)?;
        kbsync::enqueue(c, job_id, kbsync::Event::Note, now)
    })?;
    Ok(Note {
        id,
        at: now,
        author: author.to_owned(),
        body,
    })
}

pub fn notes(conn: &mut DbConnection, job_id: &str) -> Result<Vec<Note>, DomainError> {
    Ok(job_notes::table
        .filter(job_notes::job_id.eq(job_id))
        .order_by((job_notes::at, job_notes::id))
        .select((
            job_notes::id,
            job_notes::at,
            job_notes::author,
            job_notes::body,
        ))
        .load::<(String, NaiveDateTime, String, String)>(conn)?
        .into_iter()
        .map(|(id, at, author, body)| Note {
            id,
            at,
            author,
            body,
        })
        .collect())
}

/// A labor line: `hours` × `rate_cents` per hour.
pub fn add_labor(
    conn: &mut DbConnection,
    job_id: &str,
    description: &str,
    hours: &str,
    rate_cents: i64,
    added_by: &str,
    now: NaiveDateTime,
) -> Result<Line, DomainError> {
    let description = text("description", description, 200, false)?;
    if description.is_empty() {
        return Err(DomainError::invalid("Say what the labor is for."));
    }
    let h = parse_hours(hours)?;
    if !(0..=100_000).contains(&rate_cents) {
        return Err(DomainError::invalid(
            "The hourly rate should be between $0 and $1,000.",
        ));
    }
    open_job(conn, job_id)?;
    let amount = (i64::from(h) * rate_cents + 50) / 100;
    insert_line(
        conn,
        job_id,
        &ids::new_id("line"),
        "labor",
        &description,
        None,
        1,
        h,
        rate_cents,
        amount,
        added_by,
        now,
    )
}

/// A part line at the catalog price the caller looked up in shop (never a price from a browser).
#[allow(clippy::too_many_arguments)]
pub fn add_part(
    conn: &mut DbConnection,
    job_id: &str,
    line_id: &str,
    product_id: &str,
    name: &str,
    quantity: i32,
    unit_price_cents: i64,
    currency: &str,
    added_by: &str,
    now: NaiveDateTime,
) -> Result<Line, DomainError> {
    if !(1..=100).contains(&quantity) {
        return Err(DomainError::invalid(
            "Quantity should be between 1 and 100.",
        ));
    }
    if currency != "USD" {
        return Err(DomainError::invalid("Only USD parts can go on a job."));
    }
    open_job(conn, job_id)?;
    let amount = unit_price_cents
        .checked_mul(i64::from(quantity))
        .ok_or_else(|| DomainError::invalid("That line is too large."))?;
    insert_line(
        conn,
        job_id,
        line_id,
        "part",
        name,
        Some(product_id),
        quantity,
        0,
        unit_price_cents,
        amount,
        added_by,
        now,
    )
}

#[allow(clippy::too_many_arguments)]
fn insert_line(
    conn: &mut DbConnection,
    job_id: &str,
    line_id: &str,
    kind: &str,
    description: &str,
    product_id: Option<&str>,
    quantity: i32,
    hours_hundredths: i32,
    unit_price_cents: i64,
    amount_cents: i64,
    added_by: &str,
    now: NaiveDateTime,
) -> Result<Line, DomainError> {
    if !ids::is_valid("line", line_id) {
        return Err(DomainError::invalid("not a line id"));
    }
    let id = line_id.to_owned();
    write_transaction(conn, |c| {
        diesel::insert_into(job_lines::table)
            .values((
                job_lines::id.eq(&id),
                job_lines::job_id.eq(job_id),
                job_lines::kind.eq(kind),
                job_lines::description.eq(description),
                job_lines::product_id.eq(product_id),
                job_lines::quantity.eq(quantity),
                job_lines::hours_hundredths.eq(hours_hundredths),
                job_lines::unit_price_cents.eq(unit_price_cents),
                job_lines::amount_cents.eq(amount_cents),
                job_lines::added_by.eq(added_by),
                job_lines::created_at.eq(now),
            ))
            .execute(c)?;
        kbsync::enqueue(c, job_id, kbsync::Event::LineAdded, now)
    })?;
    Ok(Line {
        id,
        kind: kind.into(),
        description: description.into(),
        product_id: product_id.map(str::to_owned),
        quantity,
        hours_hundredths,
        unit_price_cents,
        amount_cents,
        currency: "USD".into(),
    })
}

/// (product, quantity) of a part line of this job; None for labor or an unknown line.
pub fn part_of_line(
    conn: &mut DbConnection,
    job_id: &str,
    line_id: &str,
) -> Result<Option<(String, i32)>, DomainError> {
    let row: Option<(Option<String>, i32)> = job_lines::table
        .filter(job_lines::id.eq(line_id))
        .filter(job_lines::job_id.eq(job_id))
        .filter(job_lines::kind.eq("part"))
        .select((job_lines::product_id, job_lines::quantity))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(p, q)| p.map(|p| (p, q))))
}

pub fn remove_line(
    conn: &mut DbConnection,
    job_id: &str,
    line_id: &str,
) -> Result<(), DomainError> {
    open_job(conn, job_id)?;
    write_transaction(conn, |c| {
        let n = diesel::delete(
            job_lines::table
                .filter(job_lines::id.eq(line_id))
                .filter(job_lines::job_id.eq(job_id)),
        )
        .execute(c)?;
        if n == 0 {
            return Err(DomainError::not_found("No such line on this job."));
        }
        kbsync::enqueue(
            c,
            job_id,
            kbsync::Event::LineRemoved,
            omneuro_platform::db::now_utc(),
        )
    })
}

pub fn lines(conn: &mut DbConnection, job_id: &str) -> Result<Vec<Line>, DomainError> {
    Ok(job_lines::table
        .filter(job_lines::job_id.eq(job_id))
        .order_by((job_lines::created_at, job_lines::id))
        .select((
            job_lines::id,
            job_lines::kind,
            job_lines::description,
            job_lines::product_id,
            job_lines::quantity,
            job_lines::hours_hundredths,
            job_lines::unit_price_cents,
            job_lines::amount_cents,
            job_lines::currency,
        ))
        .load::<(
            String,
            String,
            String,
            Option<String>,
            i32,
            i32,
            i64,
            i64,
            String,
        )>(conn)?
        .into_iter()
        .map(|r| Line {
            id: r.0,
            kind: r.1,
            description: r.2,
            product_id: r.3,
            quantity: r.4,
            hours_hundredths: r.5,
            unit_price_cents: r.6,
            amount_cents: r.7,
            currency: r.8,
        })
        .collect())
}

pub fn assign(
    conn: &mut DbConnection,
    job_id: &str,
    tech: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    let tech = text("tech", tech, 60, false)?;
    workorders::get(conn, job_id, None)?;
    diesel::update(work_orders::table.find(job_id))
        .set((
            work_orders::assigned_tech.eq(&tech),
            work_orders::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

type EstimateRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    String,
);

fn estimate_from(r: EstimateRow) -> Estimate {
    Estimate {
        id: r.0,
        job_id: r.1,
        token: r.2,
        lines: serde_json::from_str(&r.3).unwrap_or_default(),
        total_cents: r.4,
        currency: r.5,
        status: r.6,
        sent_at: r.7,
        decided_at: r.8,
        vehicle_label: r.9,
    }
}

macro_rules! estimate_columns {
    () => {
        (
            estimates::id,
            estimates::job_id,
            estimates::token,
            estimates::lines,
            estimates::total_cents,
            estimates::currency,
            estimates::status,
            estimates::sent_at,
            estimates::decided_at,
            work_orders::vehicle_label,
        )
    };
}

/// The job's newest estimate, if any.
pub fn latest(conn: &mut DbConnection, job_id: &str) -> Result<Option<Estimate>, DomainError> {
    Ok(estimates::table
        .inner_join(work_orders::table)
        .filter(estimates::job_id.eq(job_id))
        .order_by((estimates::sent_at.desc(), estimates::id.desc()))
        .select(estimate_columns!())
        .first::<EstimateRow>(conn)
        .optional()?
        .map(estimate_from))
}

pub fn by_token(conn: &mut DbConnection, token: &str) -> Result<Estimate, DomainError> {
    let gone = || DomainError::not_found("This estimate link is not valid.");
    if !ids::is_secret_shaped(token) {
        return Err(gone());
    }
    estimates::table
        .inner_join(work_orders::table)
        .filter(estimates::token.eq(token))
        .select(estimate_columns!())
        .first::<EstimateRow>(conn)
        .optional()?
        .map(estimate_from)
        .ok_or_else(gone)
}

/// Sends the estimate: snapshot of the lines, the previous open one superseded, the job moved to
/// awaiting_approval, the client told (with the approve/decline link) — one transaction.
pub fn send(
    conn: &mut DbConnection,
    job_id: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Estimate, DomainError> {
    write_transaction(conn, |c| {
        let job = open_job(c, job_id)?;
        let lines = lines(c, job_id)?;
        if lines.is_empty() {
            return Err(DomainError::conflict(
                "Add labor or parts before sending an estimate.",
            ));
        }
        if job.status != Status::AwaitingApproval
            && !job.status.can_move_to(Status::AwaitingApproval)
        {
            return Err(DomainError::conflict(format!(
                "A job that is {} cannot get an estimate now.",
                job.status.as_str()
            )));
        }
        diesel::update(
            estimates::table
                .filter(estimates::job_id.eq(job_id))
                .filter(estimates::status.eq("sent")),
        )
        .set(estimates::status.eq("superseded"))
        .execute(c)?;
        let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
        let (id, token) = (ids::new_id("est"), ids::new_secret());
        diesel::insert_into(estimates::table)
            .values((
                estimates::id.eq(&id),
                estimates::job_id.eq(job_id),
                estimates::token.eq(&token),
                estimates::lines.eq(serde_json::to_string(&lines).unwrap_or_else(|_| "[]".into())),
                estimates::total_cents.eq(total),
                estimates::status.eq("sent"),
                estimates::sent_at.eq(now),
            ))
            .execute(c)?;
        if job.status != Status::AwaitingApproval {
            workorders::move_status(
                c,
                job_id,
                Status::AwaitingApproval,
                actor,
                "Estimate sent",
                now,
            )?;
        }
        outbox::enqueue_both(
            c,
            Kind::EstimateReady,
            job_id,
            &job.client_id,
            &serde_json::json!({ "job_id": job_id, "vehicle": job.vehicle_label, "total_cents": total, "estimate_token": token }),
            now,
        )?;
        by_token(c, &token)
    })
}

/// The client's answer, once: approved → the repair starts (in_progress); declined → the vehicle
/// is made ready to collect. `owner` confines a client to their own job.
pub fn decide(
    conn: &mut DbConnection,
    token: &str,
    approve: bool,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Estimate, DomainError> {
    write_transaction(conn, |c| {
        let est = by_token(c, token)?;
        let n = diesel::update(
            estimates::table
                .filter(estimates::id.eq(&est.id))
                .filter(estimates::status.eq("sent")),
        )
        .set((
            estimates::status.eq(if approve { "approved" } else { "declined" }),
            estimates::decided_at.eq(Some(now)),
            estimates::decided_by.eq(actor),
        ))
        .execute(c)?;
        if n != 1 {
            return Err(DomainError::conflict(match est.status.as_str() {
                "approved" => "This estimate was already approved.",
                "declined" => "This estimate was already declined.",
                _ => "This estimate was replaced by a newer one; use the newest link.",
            }));
        }
        let (to, note) = if approve {
            (Status::InProgress, "Estimate approved by the client")
        } else {
            (
                Status::Ready,
                "Estimate declined by the client; nothing further will be done",
            )
        };
        workorders::move_status(c, &est.job_id, to, actor, note, now)?;
        by_token(c, token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_read_like_a_tech_writes_them() {
        assert_eq!(parse_hours("1.5").unwrap(), 150);
        assert_eq!(parse_hours("0.25").unwrap(), 25);
        assert_eq!(parse_hours("2").unwrap(), 200);
        assert_eq!(parse_hours(".5").unwrap(), 50);
        for bad in ["", "0", "1.555", "-1", "abc", "100", "1,5", "."] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
    }
}
