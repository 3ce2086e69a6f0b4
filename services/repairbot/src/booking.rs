//! Bookings through the assistant (ADR 0016): the `create_booking` tool only *proposes* a
//! booking; the proposal is stored here, one per conversation, and only the client's next message
//! can confirm it. Reading it deletes it ([`take`]), so a proposal is used once, whatever the
//! next message says; an expired one is never booked.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, write_transaction};

use crate::schema::booking_proposals as bp;

/// How long a client has to say yes.
pub const PROPOSAL_MINUTES: i64 = 15;

/// A booking the client is asked to confirm: everything `CreateBooking` needs, checked against
/// the client's garage, the offered services and the free slots when it was made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Proposal {
    pub client_id: String,
    pub vehicle_id: String,
    pub vehicle_label: String,
    pub services: Vec<String>,
    pub problem: String,
    /// YYYY-MM-DD, shop time.
    pub date: String,
    pub window_code: String,
    /// "10:00", shop time.
    pub start: String,
    /// What the client is asked to confirm ("your Segway (diagnostics), drop-off Fri Nov 27 at 10:00").
    pub summary: String,
}

/// A stored proposal and when it stops counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub proposal: Proposal,
    pub expires_at: NaiveDateTime,
}

impl Pending {
    pub fn expired(&self, now: NaiveDateTime) -> bool {
        now >= self.expires_at
    }
}

/// Stores `p` as the conversation's proposal (replacing an earlier one), valid for
/// [`PROPOSAL_MINUTES`] from `now`.
pub fn put(
    conn: &mut DbConnection,
    conversation: &str,
    p: &Proposal,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let services = serde_json::to_string(&p.services).unwrap_or_else(|_| "[]".into());
    write_transaction(conn, |c| {
        diesel::delete(bp::table.find(conversation)).execute(c)?;
        diesel::insert_into(bp::table)
            .values((
                bp::conversation_id.eq(conversation),
                bp::client_id.eq(&p.client_id),
                bp::vehicle_id.eq(&p.vehicle_id),
                bp::vehicle_label.eq(&p.vehicle_label),
                bp::services.eq(&services),
                bp::problem.eq(&p.problem),
                bp::slot_date.eq(&p.date),
                bp::window_code.eq(&p.window_code),
                bp::slot_start.eq(&p.start),
                bp::summary.eq(&p.summary),
                bp::created_at.eq(now),
                bp::expires_at.eq(now + Duration::minutes(PROPOSAL_MINUTES)),
            ))
            .execute(c)?;
        Ok(())
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
    String,
    String,
    NaiveDateTime,
);

/// Removes and returns the conversation's proposal, expired or not. Of two messages racing for the
/// same proposal only one gets it (the one whose delete removed the row).
pub fn take(conn: &mut DbConnection, conversation: &str) -> Result<Option<Pending>, DbError> {
    write_transaction(conn, |c| {
        let row: Option<Row> = bp::table
            .find(conversation)
            .select((
                bp::client_id,
                bp::vehicle_id,
                bp::vehicle_label,
                bp::services,
                bp::problem,
                bp::slot_date,
                bp::window_code,
                bp::slot_start,
                bp::summary,
                bp::expires_at,
            ))
            .first(c)
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        if diesel::delete(bp::table.find(conversation)).execute(c)? == 0 {
            return Ok(None);
        }
        let (
            client_id,
            vehicle_id,
            vehicle_label,
            services,
            problem,
            date,
            window_code,
            start,
            summary,
            expires_at,
        ) = row;
        Ok(Some(Pending {
            proposal: Proposal {
                client_id,
                vehicle_id,
                vehicle_label,
                services: serde_json::from_str(&services).unwrap_or_default(),
                problem,
                date,
                window_code,
                start,
                summary,
            },
            expires_at,
        }))
    })
}
