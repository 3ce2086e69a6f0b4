//! The notifications outbox. A change and the messages announcing it commit together; a worker
//! claims due rows (a lease, so a crashed worker's claim runs out), delivers, and records the
//! outcome. Nothing is lost in a crash; a row is marked sent right after the provider accepts it,
//! and each message carries the row id (Message-ID / Idempotency-Key) so a resend after a crash in
//! that instant is recognisable.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::db::DbConnection;
use omneuro_platform::error::DomainError;
use omneuro_platform::ids;

use crate::schema::outbox;

/// How long a claim lasts; a worker that dies mid-send frees the row after this.
pub const LEASE_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BookingConfirmed,
    BookingRescheduled,
    BookingCanceled,
    StatusChanged,
    ReadyForPickup,
    Reminder,
    EstimateReady,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BookingConfirmed => "booking_confirmed",
            Kind::BookingRescheduled => "booking_rescheduled",
            Kind::BookingCanceled => "booking_canceled",
            Kind::StatusChanged => "status_changed",
            Kind::ReadyForPickup => "ready_for_pickup",
            Kind::Reminder => "reminder",
            Kind::EstimateReady => "estimate_ready",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::BookingConfirmed,
            Kind::BookingRescheduled,
            Kind::BookingCanceled,
            Kind::StatusChanged,
            Kind::ReadyForPickup,
            Kind::Reminder,
            Kind::EstimateReady,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// Queues the message on both channels; whether each may go out (consent, STOP) is decided at
/// delivery, so a STOP that arrives after queuing is still honoured.
pub fn enqueue_both(
    conn: &mut DbConnection,
    kind: Kind,
    job_id: &str,
    client_id: &str,
    payload: &serde_json::Value,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    for channel in [Channel::Email, Channel::Sms] {
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(ids::new_id("ntf")),
                outbox::kind.eq(kind.as_str()),
                outbox::channel.eq(channel.as_str()),
                outbox::job_id.eq(job_id),
                outbox::client_id.eq(client_id),
                outbox::payload.eq(payload.to_string()),
                outbox::state.eq("pending"),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub kind: Kind,
    pub channel: Channel,
    pub job_id: String,
    pub client_id: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

/// Claims up to `limit` due rows for this worker.
pub fn claim(
    conn: &mut DbConnection,
    limit: i64,
    now: NaiveDateTime,
) -> Result<Vec<Item>, DomainError> {
    let due: Vec<(String, String, String, String, String, String, i32)> = outbox::table
        .filter(outbox::state.eq("pending"))
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::lease_until
                .is_null()
                .or(outbox::lease_until.lt(now)),
        )
        .order_by((outbox::next_attempt_at, outbox::id))
        .select((
            outbox::id,
            outbox::kind,
            outbox::channel,
            outbox::job_id,
            outbox::client_id,
            outbox::payload,
            outbox::attempts,
        ))
        .limit(limit)
        .load(conn)?;
    let mut claimed = Vec::new();
    for (id, kind, channel, job_id, client_id, payload, attempts) in due {
        let n = diesel::update(
            outbox::table
                .filter(outbox::id.eq(&id))
                .filter(outbox::state.eq("pending"))
                .filter(
                    outbox::lease_until
                        .is_null()
                        .or(outbox::lease_until.lt(now)),
                ),
        )
        .set(outbox::lease_until.eq(Some(now + Duration::seconds(LEASE_SECONDS))))
        .execute(conn)?;
        if n != 1 {
            continue; // another worker got it
        }
        let Some(kind) = Kind::parse(&kind) else {
            finish(conn, &id, "failed", &format!("unknown kind {kind}"), now)?;
            continue;
        };
        claimed.push(Item {
            id,
            kind,
            channel: if channel == "sms" {
                Channel::Sms
            } else {
                Channel::Email
            },
            job_id,
            client_id,
            payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
            attempts,
        });
    }
    Ok(claimed)
}

/// Records a final outcome: `sent`, `skipped` (no consent, no address) or `failed`.
pub fn finish(
    conn: &mut DbConnection,
    id: &str,
    state: &str,
    note: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::state.eq(state),
            outbox::last_error.eq(note.chars().take(500).collect::<String>()),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::done_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed attempt that may succeed later: exponential backoff from `base_ms` (30 s by
/// default: 30 s, 1 min, 2 min, …), never more than an hour.
pub fn retry_later(
    conn: &mut DbConnection,
    id: &str,
    attempts: i32,
    error: &str,
    now: NaiveDateTime,
    base_ms: u64,
) -> Result<NaiveDateTime, DomainError> {
    let base = i64::try_from(base_ms).unwrap_or(30_000);
    let delay = base
        .saturating_mul(1i64 << attempts.clamp(0, 16))
        .min(3_600_000);
    let at = now + Duration::milliseconds(delay);
    diesel::update(outbox::table.find(id))
        .set((
            outbox::attempts.eq(attempts + 1),
            outbox::next_attempt_at.eq(at),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::last_error.eq(error.chars().take(500).collect::<String>()),
        ))
        .execute(conn)?;
    Ok(at)
}

/// Rows still waiting, for metrics and tests.
pub fn pending(conn: &mut DbConnection) -> Result<i64, DomainError> {
    Ok(outbox::table
        .filter(outbox::state.eq("pending"))
        .count()
        .get_result(conn)?)
}
