//! Booking in the database: the rules as stored data, window load counters, and the booking,
//! reschedule and cancel transactions.
//!
//! Capacity is enforced by one guarded increment (`booked = booked + 1 WHERE booked < capacity`)
//! inside the booking transaction: of two clients racing for the last place, exactly one row
//! update succeeds, on PostgreSQL (row lock, re-checked predicate) and SQLite (one writer).

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc, Weekday};
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::{ids, per_backend};

use crate::booking::{self, BookingRules, Slot, Window};
use crate::outbox::{self, Kind};
use crate::schema::{
    appointments, booking_blackouts, booking_settings, booking_windows, service_offerings,
    window_load, work_orders,
};
use crate::workorders::{self, NewOrder, Status};

const DAYS: [(Weekday, &str); 7] = [
    (Weekday::Sun, "sun"),
    (Weekday::Mon, "mon"),
    (Weekday::Tue, "tue"),
    (Weekday::Wed, "wed"),
    (Weekday::Thu, "thu"),
    (Weekday::Fri, "fri"),
    (Weekday::Sat, "sat"),
];

pub fn day_code(d: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(w, _)| *w == d)
        .map(|(_, c)| *c)
        .unwrap_or("sun")
}

pub fn parse_day(s: &str) -> Option<Weekday> {
    DAYS.iter().find(|(_, c)| *c == s).map(|(w, _)| *w)
}

fn minutes(t: NaiveTime) -> i32 {
    i32::try_from(t.num_seconds_from_midnight() / 60).unwrap_or(0)
}

fn time_of(m: i32) -> NaiveTime {
    let m = u32::try_from(m.clamp(0, 24 * 60 - 1)).unwrap_or(0);
    NaiveTime::from_hms_opt(m / 60, m % 60, 0).unwrap_or(NaiveTime::MIN)
}

/// The rules as stored; the shop's defaults were written by the migration.
pub fn load_rules(conn: &mut DbConnection) -> Result<BookingRules, DomainError> {
    let (tz, days, slot, horizon, lead): (String, String, i32, i32, i32) = booking_settings::table
        .find(1)
        .select((
            booking_settings::timezone,
            booking_settings::dropoff_days,
            booking_settings::slot_minutes,
            booking_settings::horizon_days,
            booking_settings::min_lead_minutes,
        ))
        .first(conn)?;
    let windows = booking_windows::table
        .order_by(booking_windows::start_minute)
        .select((
            booking_windows::code,
            booking_windows::label,
            booking_windows::start_minute,
            booking_windows::end_minute,
            booking_windows::capacity,
        ))
        .load::<(String, String, i32, i32, i32)>(conn)?
        .into_iter()
        .map(|(code, label, s, e, cap)| Window {
            code,
            label,
            start: time_of(s),
            end: time_of(e),
            capacity: u32::try_from(cap).unwrap_or(0),
        })
        .collect();
    let blackouts: BTreeSet<NaiveDate> = booking_blackouts::table
        .select(booking_blackouts::day)
        .load::<NaiveDate>(conn)?
        .into_iter()
        .collect();
    Ok(BookingRules {
        timezone: tz
            .parse()
            .map_err(|_| DomainError::invalid(format!("stored time zone {tz} is unknown")))?,
        dropoff_days: days.split(',').filter_map(parse_day).collect(),
        windows,
        slot_minutes: u32::try_from(slot).unwrap_or(60),
        horizon_days: u32::try_from(horizon).unwrap_or(14),
        min_lead_minutes: u32::try_from(lead).unwrap_or(0),
        blackouts,
    })
}

/// Replaces the rules (validated first). Existing bookings stay; only new ones follow the new rules.
pub fn save_rules(
    conn: &mut DbConnection,
    rules: &BookingRules,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    rules
        .validate()
        .map_err(|e| DomainError::invalid(e.to_string()))?;
    let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    write_transaction(conn, |c| {
        diesel::update(booking_settings::table.find(1))
            .set((
                booking_settings::timezone.eq(rules.timezone.name()),
                booking_settings::dropoff_days.eq(rules
                    .dropoff_days
                    .iter()
                    .map(|d| day_code(*d))
                    .collect::<Vec<_>>()
                    .join(",")),
                booking_settings::slot_minutes.eq(as_i32(rules.slot_minutes)),
                booking_settings::horizon_days.eq(as_i32(rules.horizon_days)),
                booking_settings::min_lead_minutes.eq(as_i32(rules.min_lead_minutes)),
                booking_settings::updated_at.eq(now),
            ))
            .execute(c)?;
        diesel::delete(booking_windows::table).execute(c)?;
        for w in &rules.windows {
            diesel::insert_into(booking_windows::table)
                .values((
                    booking_windows::code.eq(&w.code),
                    booking_windows::label.eq(&w.label),
                    booking_windows::start_minute.eq(minutes(w.start)),
                    booking_windows::end_minute.eq(minutes(w.end)),
                    booking_windows::capacity.eq(as_i32(w.capacity)),
                ))
                .execute(c)?;
        }
        diesel::delete(booking_blackouts::table).execute(c)?;
        for d in &rules.blackouts {
            diesel::insert_into(booking_blackouts::table)
                .values((
                    booking_blackouts::day.eq(d),
                    booking_blackouts::reason.eq(""),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Bookings held per (day, window) from `from` on: one indexed range read.
pub fn load_counts(
    conn: &mut DbConnection,
    from: NaiveDate,
) -> Result<HashMap<(NaiveDate, String), u32>, DomainError> {
    Ok(window_load::table
        .filter(window_load::day.ge(from))
        .select((
            window_load::day,
            window_load::window_code,
            window_load::booked,
        ))
        .load::<(NaiveDate, String, i32)>(conn)?
        .into_iter()
        .map(|(d, w, n)| ((d, w), u32::try_from(n).unwrap_or(0)))
        .collect())
}

/// Takes one place in a window, or says it is full.
fn reserve(
    conn: &mut DbConnection,
    day: NaiveDate,
    window: &str,
    capacity: u32,
) -> Result<(), DomainError> {
    per_backend!(&mut *conn, |c| diesel::insert_into(window_load::table)
        .values((
            window_load::day.eq(day),
            window_load::window_code.eq(window),
            window_load::booked.eq(0)
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    let n = diesel::update(
        window_load::table
            .filter(window_load::day.eq(day))
            .filter(window_load::window_code.eq(window))
            .filter(window_load::booked.lt(i32::try_from(capacity).unwrap_or(i32::MAX))),
    )
    .set(window_load::booked.eq(window_load::booked + 1))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(DomainError::conflict(
            "Sorry, that window just filled up. Please pick another time.",
        ))
    }
}

/// Gives a place back (cancel, reschedule).
pub fn release(conn: &mut DbConnection, day: NaiveDate, window: &str) -> Result<(), DomainError> {
    diesel::update(
        window_load::table
            .filter(window_load::day.eq(day))
            .filter(window_load::window_code.eq(window))
            .filter(window_load::booked.gt(0)),
    )
    .set(window_load::booked.eq(window_load::booked - 1))
    .execute(conn)?;
    Ok(())
}

/// A requested slot as the client typed it.
#[derive(Debug, Clone)]
pub struct SlotRequest {
    pub date: String,
    pub window_code: String,
    pub start: String,
}

fn parse_slot(
    rules: &BookingRules,
    r: &SlotRequest,
    now: chrono::DateTime<Utc>,
) -> Result<Slot, DomainError> {
    let date = NaiveDate::parse_from_str(r.date.trim(), "%Y-%m-%d")
        .map_err(|_| DomainError::invalid("Pick a drop-off date."))?;
    let start = NaiveTime::parse_from_str(r.start.trim(), "%H:%M")
        .map_err(|_| DomainError::invalid("Pick a drop-off time."))?;
    booking::check_slot(rules, now, date, r.window_code.trim(), start)
        .map_err(|e| DomainError::invalid(e.to_string()))
}

pub struct BookingInput {
    pub vehicle_id: String,
    pub vehicle_label: String,
    pub services: Vec<String>,
    pub problem: String,
    pub safety_flag: bool,
    pub slot: SlotRequest,
}

pub struct Booked {
    pub job_id: String,
    pub appointment_id: String,
    pub slot: Slot,
    pub window_label: String,
}

/// Checks the services against the active catalog; returns them de-duplicated in catalog order.
pub fn valid_services(
    conn: &mut DbConnection,
    requested: &[String],
) -> Result<Vec<String>, DomainError> {
    if requested.is_empty() {
        return Err(DomainError::invalid(
            "Pick at least one service (diagnostics if you're not sure).",
        ));
    }
    let active: Vec<String> = service_offerings::table
        .filter(service_offerings::active.eq(true))
        .order_by(service_offerings::sort_order)
        .select(service_offerings::code)
        .load(conn)?;
    if let Some(bad) = requested.iter().find(|r| !active.contains(r)) {
        return Err(DomainError::invalid(format!(
            "We don't offer a service called \"{}\".",
            bad.chars().take(40).collect::<String>()
        )));
    }
    Ok(active
        .into_iter()
        .filter(|a| requested.contains(a))
        .collect())
}

/// Books a drop-off: checks the slot against the rules, takes a place in the window, opens the
/// work order in `intake`, and queues the confirmation — one transaction.
pub fn book(
    conn: &mut DbConnection,
    client_id: &str,
    input: BookingInput,
    now: chrono::DateTime<Utc>,
) -> Result<Booked, DomainError> {
    let problem = text("problem description", &input.problem, 2000, true)?;
    let label = text("vehicle", &input.vehicle_label, 200, false)?;
    let t = now.naive_utc();
    write_transaction(conn, |c| {
        let rules = load_rules(c)?;
        let slot = parse_slot(&rules, &input.slot, now)?;
        let services = valid_services(c, &input.services)?;
        let window = rules
            .window(&slot.window_code)
            .ok_or_else(|| DomainError::invalid("Pick a drop-off window."))?
            .clone();
        reserve(c, slot.date, &slot.window_code, window.capacity)?;
        let note = format!(
            "Booked online for drop-off {} {} ({})",
            slot.date.format("%a %b %-d"),
            slot.start_local.format("%H:%M"),
            window.label
        );
        let job_id = workorders::insert(
            c,
            NewOrder {
                client_id,
                vehicle_id: &input.vehicle_id,
                vehicle_label: &label,
                services: &services,
                problem: &problem,
                safety_flag: input.safety_flag,
                source: "booking",
                actor: &format!("client:{client_id}"),
                note: &note,
            },
            t,
        )?;
        let appointment_id = ids::new_id("apt");
        diesel::insert_into(appointments::table)
            .values((
                appointments::id.eq(&appointment_id),
                appointments::job_id.eq(&job_id),
                appointments::client_id.eq(client_id),
                appointments::day.eq(slot.date),
                appointments::window_code.eq(&slot.window_code),
                appointments::start_local.eq(slot.start_local.format("%H:%M").to_string()),
                appointments::starts_at.eq(slot.start_utc.naive_utc()),
                appointments::status.eq("booked"),
                appointments::created_at.eq(t),
                appointments::updated_at.eq(t),
            ))
            .execute(c)?;
        outbox::enqueue_both(
            c,
            Kind::BookingConfirmed,
            &job_id,
            client_id,
            &serde_json::json!({
                "job_id": job_id,
                "appointment_id": appointment_id,
                "vehicle": label,
                "services": services,
                "safety_flag": input.safety_flag,
                "date": slot.date.to_string(),
                "window": window.label,
                "start_local": slot.start_local.format("%H:%M").to_string(),
                "starts_at": slot.start_utc.to_rfc3339(),
                "ends_at": slot.end_utc.to_rfc3339(),
            }),
            t,
        )?;
        Ok(Booked {
            job_id,
            appointment_id,
            slot,
            window_label: window.label,
        })
    })
}

/// Moves a booked drop-off to another slot (the old place is freed, the new one taken, or
/// nothing changes).
pub fn reschedule(
    conn: &mut DbConnection,
    job_id: &str,
    owner: Option<&str>,
    actor: &str,
    slot: SlotRequest,
    now: chrono::DateTime<Utc>,
) -> Result<Booked, DomainError> {
    let t = now.naive_utc();
    write_transaction(conn, |c| {
        let job = workorders::get(c, job_id, owner)?;
        let appt = job
            .appointment
            .clone()
            .filter(|a| a.booked && job.status == Status::Intake)
            .ok_or_else(|| {
                DomainError::conflict("Only a booked drop-off that hasn't started can be moved.")
            })?;
        let rules = load_rules(c)?;
        let new = parse_slot(&rules, &slot, now)?;
        let window = rules
            .window(&new.window_code)
            .ok_or_else(|| DomainError::invalid("Pick a drop-off window."))?
            .clone();
        // Claim the appointment as it was read: of two concurrent moves only one changes it
        // (the other waits on the row on PostgreSQL, then finds it changed and stops).
        let claimed = diesel::update(
            appointments::table
                .filter(appointments::id.eq(&appt.id))
                .filter(appointments::status.eq("booked"))
                .filter(appointments::day.eq(appt.day))
                .filter(appointments::window_code.eq(&appt.window_code))
                .filter(appointments::start_local.eq(&appt.start_local)),
        )
        .set((
            appointments::day.eq(new.date),
            appointments::window_code.eq(&new.window_code),
            appointments::start_local.eq(new.start_local.format("%H:%M").to_string()),
            appointments::starts_at.eq(new.start_utc.naive_utc()),
            appointments::reminder_queued_at.eq(None::<NaiveDateTime>),
            appointments::updated_at.eq(t),
        ))
        .execute(c)?;
        if claimed != 1 {
            return Err(DomainError::conflict(
                "This booking was just changed elsewhere; reload and try again.",
            ));
        }
        if (new.date, new.window_code.as_str()) != (appt.day, appt.window_code.as_str()) {
            reserve(c, new.date, &new.window_code, window.capacity)?;
            release(c, appt.day, &appt.window_code)?;
        }
        diesel::update(work_orders::table.find(&job.id))
            .set(work_orders::updated_at.eq(t))
            .execute(c)?;
        outbox::enqueue_both(
            c,
            Kind::BookingRescheduled,
            &job.id,
            &job.client_id,
            &serde_json::json!({
                "job_id": job.id,
                "appointment_id": appt.id,
                "vehicle": job.vehicle_label,
                "date": new.date.to_string(),
                "window": window.label,
                "start_local": new.start_local.format("%H:%M").to_string(),
                "starts_at": new.start_utc.to_rfc3339(),
                "ends_at": new.end_utc.to_rfc3339(),
                "by": actor,
            }),
            t,
        )?;
        Ok(Booked {
            job_id: job.id,
            appointment_id: appt.id,
            slot: new,
            window_label: window.label,
        })
    })
}
