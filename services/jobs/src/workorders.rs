//! Work orders: the status workflow (legal moves only), the full history, the client's view, and
//! the no-login status link.
//!
//! intake → diagnosing → awaiting_approval → awaiting_parts → in_progress → awaiting_payment →
//! ready → delivered, plus canceled. Every move is one transaction: the status, a history row
//! (who, when, from, to, note) and the notification rows in the outbox.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::ids;

use crate::kbsync;
use crate::outbox::{self, Kind};
use crate::schema::{appointments, work_order_events, work_orders};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Intake,
    Diagnosing,
    AwaitingApproval,
    AwaitingParts,
    InProgress,
    AwaitingPayment,
    Ready,
    Delivered,
    Canceled,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Intake,
        Status::Diagnosing,
        Status::AwaitingApproval,
        Status::AwaitingParts,
        Status::InProgress,
        Status::AwaitingPayment,
        Status::Ready,
        Status::Delivered,
        Status::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Intake => "intake",
            Status::Diagnosing => "diagnosing",
            Status::AwaitingApproval => "awaiting_approval",
            Status::AwaitingParts => "awaiting_parts",
            Status::InProgress => "in_progress",
            Status::AwaitingPayment => "awaiting_payment",
            Status::Ready => "ready",
            Status::Delivered => "delivered",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// What the client reads.
    pub fn label(self) -> &'static str {
        match self {
            Status::Intake => "Booked in",
            Status::Diagnosing => "Diagnosing",
            Status::AwaitingApproval => "Waiting for your approval",
            Status::AwaitingParts => "Waiting for parts",
            Status::InProgress => "Being repaired",
            Status::AwaitingPayment => "Waiting for payment",
            Status::Ready => "Ready for pick-up",
            Status::Delivered => "Picked up",
            Status::Canceled => "Canceled",
        }
    }

    /// The next step, in the client's words.
    pub fn next_step(self) -> &'static str {
        match self {
            Status::Intake => {
                "Bring your ride in at your drop-off time; we start with a diagnosis."
            }
            Status::Diagnosing => {
                "A tech is finding the cause. You'll get an estimate before any paid work."
            }
            Status::AwaitingApproval => "Your estimate is ready: approve or decline it.",
            Status::AwaitingParts => "Parts are on order; we'll carry on as soon as they arrive.",
            Status::InProgress => "The repair is under way.",
            Status::AwaitingPayment => "The work is done; pay your invoice and it's ready to go.",
            Status::Ready => "Come and pick it up at 409 S Addison St during opening hours.",
            Status::Delivered => "All done. Ride safe!",
            Status::Canceled => "This job was canceled. Book again any time.",
        }
    }

    /// The moves the workshop may make from here.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Intake => &[Diagnosing, Canceled],
            Diagnosing => &[
                AwaitingApproval,
                AwaitingParts,
                InProgress,
                AwaitingPayment,
                Ready,
                Canceled,
            ],
            AwaitingApproval => &[AwaitingParts, InProgress, Ready, Canceled],
            AwaitingParts => &[InProgress, Canceled],
            InProgress => &[AwaitingParts, AwaitingPayment, Ready],
            AwaitingPayment => &[Ready],
            Ready => &[Delivered],
            Delivered | Canceled => &[],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        self.next().contains(&to)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: NaiveDateTime,
    pub actor: String,
    pub from: Option<Status>,
    pub to: Status,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentInfo {
    pub id: String,
    pub day: chrono::NaiveDate,
    pub window_code: String,
    pub start_local: String,
    pub starts_at: NaiveDateTime,
    pub booked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkOrder {
    pub id: String,
    pub client_id: String,
    pub vehicle_id: String,
    pub vehicle_label: String,
    pub status: Status,
    pub services: Vec<String>,
    pub problem: String,
    pub safety_flag: bool,
    pub assigned_tech: String,
    pub source: String,
    pub status_token: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub appointment: Option<AppointmentInfo>,
    pub history: Vec<Event>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
);

macro_rules! columns {
    () => {
        (
            work_orders::id,
            work_orders::client_id,
            work_orders::vehicle_id,
            work_orders::vehicle_label,
            work_orders::status,
            work_orders::services,
            work_orders::problem,
            work_orders::safety_flag,
            work_orders::assigned_tech,
            work_orders::source,
            work_orders::status_token,
            work_orders::created_at,
            work_orders::updated_at,
        )
    };
}

fn from_row(r: Row) -> WorkOrder {
    WorkOrder {
        id: r.0,
        client_id: r.1,
        vehicle_id: r.2,
        vehicle_label: r.3,
        status: Status::parse(&r.4).unwrap_or(Status::Intake),
        services: r
            .5
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        problem: r.6,
        safety_flag: r.7,
        assigned_tech: r.8,
        source: r.9,
        status_token: r.10,
        created_at: r.11,
        updated_at: r.12,
        appointment: None,
        history: Vec::new(),
    }
}

/// Loads the appointment (latest) and history of one order.
fn complete(conn: &mut DbConnection, w: WorkOrder) -> Result<WorkOrder, DomainError> {
    let mut all = complete_all(conn, vec![w])?;
    all.pop()
        .ok_or_else(|| DomainError::not_found("No such job in your garage."))
}

/// Rows fetched per `IN (…)` query, well under either backend's parameter limit.
const BATCH: usize = 500;

type AppointmentRow = (
    String,
    String,
    chrono::NaiveDate,
    String,
    String,
    NaiveDateTime,
    String,
);
type EventRow = (
    String,
    NaiveDateTime,
    String,
    Option<String>,
    String,
    String,
);

/// Loads the appointment (latest) and history of each order: two queries per batch of orders,
/// not two per order (the staff board lists hundreds).
fn complete_all(
    conn: &mut DbConnection,
    mut orders: Vec<WorkOrder>,
) -> Result<Vec<WorkOrder>, DomainError> {
    let mut appts: HashMap<String, AppointmentInfo> = HashMap::new();
    let mut history: HashMap<String, Vec<Event>> = HashMap::new();
    for chunk in orders.chunks(BATCH) {
        let ids: Vec<&str> = chunk.iter().map(|w| w.id.as_str()).collect();
        let rows: Vec<AppointmentRow> = appointments::table
            .filter(appointments::job_id.eq_any(&ids))
            .order_by((appointments::job_id, appointments::created_at.desc()))
            .select((
                appointments::job_id,
                appointments::id,
                appointments::day,
                appointments::window_code,
                appointments::start_local,
                appointments::starts_at,
                appointments::status,
            ))
            .load(conn)?;
        for a in rows {
            // Newest first within a job: keep the first one seen.
            appts.entry(a.0).or_insert(AppointmentInfo {
                id: a.1,
                day: a.2,
                window_code: a.3,
                start_local: a.4,
                starts_at: a.5,
                booked: a.6 == "booked",
            });
        }
        let events: Vec<EventRow> = work_order_events::table
            .filter(work_order_events::job_id.eq_any(&ids))
            .order_by((
                work_order_events::job_id,
                work_order_events::at,
                work_order_events::id,
            ))
            .select((
                work_order_events::job_id,
                work_order_events::at,
                work_order_events::actor,
                work_order_events::from_status,
                work_order_events::to_status,
                work_order_events::note,
            ))
            .load(conn)?;
        for (job, at, actor, from, to, note) in events {
            history.entry(job).or_default().push(Event {
                at,
                actor,
                from: from.as_deref().and_then(Status::parse),
                to: Status::parse(&to).unwrap_or(Status::Intake),
                note,
            });
        }
    }
    for w in &mut orders {
        w.appointment = appts.remove(&w.id);
        w.history = history.remove(&w.id).unwrap_or_default();
    }
    Ok(orders)
}

/// One order; a client (`owner`) sees only their own (anything else is "not found").
pub fn get(
    conn: &mut DbConnection,
    id: &str,
    owner: Option<&str>,
) -> Result<WorkOrder, DomainError> {
    let not_found = || DomainError::not_found("No such job in your garage.");
    if !ids::is_valid("job", id) {
        return Err(not_found());
    }
    let mut q = work_orders::table
        .filter(work_orders::id.eq(id))
        .select(columns!())
        .into_boxed();
    if let Some(o) = owner {
        q = q.filter(work_orders::client_id.eq(o.to_owned()));
    }
    let row = q.first::<Row>(conn).optional()?.ok_or_else(not_found)?;
    complete(conn, from_row(row))
}

/// A client's orders, newest first (with appointment and history).
pub fn list_for_client(
    conn: &mut DbConnection,
    client_id: &str,
) -> Result<Vec<WorkOrder>, DomainError> {
    let rows = work_orders::table
        .filter(work_orders::client_id.eq(client_id))
        .order_by((work_orders::created_at.desc(), work_orders::id.desc()))
        .select(columns!())
        .limit(200)
        .load::<Row>(conn)?;
    complete_all(conn, rows.into_iter().map(from_row).collect())
}

/// Orders in the given statuses (all when empty), oldest first: the staff board.
pub fn list_by_status(
    conn: &mut DbConnection,
    statuses: &[Status],
) -> Result<Vec<WorkOrder>, DomainError> {
    let mut q = work_orders::table
        .order_by((work_orders::created_at, work_orders::id))
        .select(columns!())
        .limit(500)
        .into_boxed();
    if !statuses.is_empty() {
        q = q.filter(work_orders::status.eq_any(statuses.iter().map(|s| s.as_str())));
    }
    let rows = q.load::<Row>(conn)?;
    complete_all(conn, rows.into_iter().map(from_row).collect())
}

/// The order behind a status link, if the link is live.
pub fn by_status_token(conn: &mut DbConnection, token: &str) -> Result<WorkOrder, DomainError> {
    let gone =
        || DomainError::not_found("This status link is not valid (it may have been replaced).");
    if !ids::is_secret_shaped(token) {
        return Err(gone());
    }
    let row = work_orders::table
        .filter(work_orders::status_token.eq(token))
        .select(columns!())
        .first::<Row>(conn)
        .optional()?
        .ok_or_else(gone)?;
    complete(conn, from_row(row))
}

/// Replaces the status link (the old one stops working) and returns the new token.
pub fn renew_status_link(
    conn: &mut DbConnection,
    id: &str,
    owner: Option<&str>,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let w = get(conn, id, owner)?;
    let token = ids::new_secret();
    diesel::update(work_orders::table.find(&w.id))
        .set((
            work_orders::status_token.eq(Some(&token)),
            work_orders::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Ends the status link; nothing replaces it until renewed.
pub fn revoke_status_link(
    conn: &mut DbConnection,
    id: &str,
    owner: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    let w = get(conn, id, owner)?;
    diesel::update(work_orders::table.find(&w.id))
        .set((
            work_orders::status_token.eq(None::<String>),
            work_orders::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub struct NewOrder<'a> {
    pub client_id: &'a str,
    pub vehicle_id: &'a str,
    pub vehicle_label: &'a str,
    pub services: &'a [String],
    pub problem: &'a str,
    pub safety_flag: bool,
    pub source: &'a str,
    pub actor: &'a str,
    pub note: &'a str,
}

/// Inserts an order in `intake` with its first history row (inside the caller's transaction).
pub fn insert(
    conn: &mut DbConnection,
    o: NewOrder<'_>,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let id = ids::new_id("job");
    diesel::insert_into(work_orders::table)
        .values((
            work_orders::id.eq(&id),
            work_orders::client_id.eq(o.client_id),
            work_orders::vehicle_id.eq(o.vehicle_id),
            work_orders::vehicle_label.eq(o.vehicle_label),
            work_orders::status.eq(Status::Intake.as_str()),
            work_orders::services.eq(o.services.join(",")),
            work_orders::problem.eq(o.problem),
            work_orders::safety_flag.eq(o.safety_flag),
            work_orders::source.eq(o.source),
            work_orders::status_token.eq(Some(ids::new_secret())),
            work_orders::created_at.eq(now),
            work_orders::updated_at.eq(now),
        ))
        .execute(conn)?;
    record(conn, &id, o.actor, None, Status::Intake, o.note, now)?;
    kbsync::enqueue(conn, &id, kbsync::Event::Created, now)?;
    Ok(id)
}

fn record(
    conn: &mut DbConnection,
    job_id: &str,
    actor: &str,
    from: Option<Status>,
    to: Status,
    note: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::insert_into(work_order_events::table)
        .values((
            work_order_events::id.eq(ids::new_id("evt")),
            work_order_events::job_id.eq(job_id),
            work_order_events::at.eq(now),
            work_order_events::actor.eq(actor),
            work_order_events::from_status.eq(from.map(Status::as_str)),
            work_order_events::to_status.eq(to.as_str()),
            work_order_events::note.eq(note),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves an order to `to` if the workflow allows it; records history and queues the client's
/// notifications, all in one transaction; a guarded update settles two concurrent moves on one.
pub fn move_status(
    conn: &mut DbConnection,
    id: &str,
    to: Status,
    actor: &str,
    note: &str,
    now: NaiveDateTime,
) -> Result<WorkOrder, DomainError> {
    let note = text("note", note, 2000, true)?;
    write_transaction(conn, |c| {
        let w = get(c, id, None)?;
        if !w.status.can_move_to(to) {
            let allowed: Vec<&str> = w.status.next().iter().map(|s| s.as_str()).collect();
            return Err(DomainError::conflict(format!(
                "A job that is {} cannot move to {}; from here it can go to: {}.",
                w.status.as_str(),
                to.as_str(),
                if allowed.is_empty() {
                    "nothing (it is closed)".to_owned()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        // The guarded update makes two racing moves from the same status settle on one.
        let n = diesel::update(
            work_orders::table
                .filter(work_orders::id.eq(&w.id))
                .filter(work_orders::status.eq(w.status.as_str())),
        )
        .set((
            work_orders::status.eq(to.as_str()),
            work_orders::updated_at.eq(now),
        ))
        .execute(c)?;
        if n != 1 {
            return Err(DomainError::conflict(
                "Someone else just moved this job; reload and try again.",
            ));
        }
        record(c, &w.id, actor, Some(w.status), to, &note, now)?;
        kbsync::enqueue(c, &w.id, kbsync::Event::StatusChanged, now)?;
        if to == Status::Canceled {
            release_appointment(c, &w.id, now)?;
        }
        let kind = if to == Status::Ready {
            Kind::ReadyForPickup
        } else {
            Kind::StatusChanged
        };
        outbox::enqueue_both(
            c,
            kind,
            &w.id,
            &w.client_id,
            &serde_json::json!({
                "job_id": w.id,
                "vehicle": w.vehicle_label,
                "from": w.status.as_str(),
                "to": to.as_str(),
                "label": to.label(),
                "next_step": to.next_step(),
                "note": note,
            }),
            now,
        )?;
        get(c, &w.id, None)
    })
}

/// Frees the window place of a job's live appointment (when the job is canceled).
pub fn release_appointment(
    conn: &mut DbConnection,
    job_id: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    let live: Option<(String, chrono::NaiveDate, String)> = appointments::table
        .filter(appointments::job_id.eq(job_id))
        .filter(appointments::status.eq("booked"))
        .select((
            appointments::id,
            appointments::day,
            appointments::window_code,
        ))
        .first(conn)
        .optional()?;
    if let Some((appt, day, window)) = live {
        crate::booking_store::release(conn, day, &window)?;
        diesel::update(appointments::table.find(appt))
            .set((
                appointments::status.eq("canceled"),
                appointments::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_allows_only_its_moves() {
        use Status::*;
        assert!(Intake.can_move_to(Diagnosing));
        assert!(Diagnosing.can_move_to(Ready));
        assert!(Ready.can_move_to(Delivered));
        assert!(!Intake.can_move_to(Ready));
        assert!(!Delivered.can_move_to(Intake));
        assert!(!Canceled.can_move_to(Intake));
        assert!(!AwaitingPayment.can_move_to(Canceled));
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert!(!s.can_move_to(s), "{s:?} to itself");
        }
        assert_eq!(Status::parse("done"), None);
    }
}
