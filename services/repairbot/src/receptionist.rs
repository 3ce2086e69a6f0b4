//! The SMS receptionist (ADR 0023): clients' texts answered by the assistant, by SMS.
//!
//! The webhook (`webhooks.rs`) only stores an inbound text — a `sms_texts` row in the same
//! transaction as its `telnyx_events` row — and answers Telnyx at once. The `sms` worker here
//! ([`Receptionist::run`]) then works each row through its states:
//!
//! 1. `pending`: who is texting — garage's `FindClientsByPhone` as `system:repairbot`. A number
//!    that opted out (garage's opt-out on any of its clients, or a STOP kept in `sms_opt_outs`)
//!    gets nothing (`ignored`). HELP and START get fixed answers. Anything else goes into the
//!    number's SMS conversation (the open one, or a new one after [`QUIET_HOURS`] of silence) as
//!    the user's message — stored once, in one transaction with the row — and the assistant
//!    answers exactly as on the site, as that client when the number is exactly one client's,
//!    else as an anonymous visitor. An SMS conversation never books (caller ID is not a sign-in).
//! 2. `sending`: the reply, stored in the conversation in the transaction that moves the row
//!    here, as plain text with absolute links ([`sms_text`]), texted through
//!    [`omneuro_platform::sms`] with the row id as Telnyx's idempotency key. Telnyx down or 5xx:
//!    retried with capped backoff; a permanent refusal (4xx, bad number, SMS off): `failed` with
//!    the reason.
//!
//! Rows are claimed with a lease, so a crashed worker's rows are taken again when it runs out (a
//! stopped one releases them); a text is stored in its conversation once and answered once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::config::WorkerConfig;
use omneuro_platform::db::{Database, DbConnection, DbError, now_utc, write_transaction};
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::ids;
use omneuro_platform::sms::{Sms, is_e164};
use omneuro_platform::telemetry::masked_phone;
use omneuro_proto::garage::v1 as gpb;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use tracing::Instrument;

use crate::assistant::{Assistant, AssistantError, StoredTurn};
use crate::conversations::{self, Channel, NewMessage, Source, Speaker};
use crate::schema::{sms_opt_outs, sms_texts};

/// The shop's name in fixed answers.
pub const SHOP_NAME: &str = "Juice Junkiez";
/// The longest reply texted (about six SMS segments); longer ones are cut at a sentence or word.
pub const MAX_SMS_CHARS: usize = 1_000;
/// The longest inbound text kept (the assistant reads at most 4,000 characters).
pub const MAX_INBOUND_CHARS: usize = 2_000;
/// A number's SMS conversation stays open this long after its last text.
pub const QUIET_HOURS: i64 = 24;
/// A claimed row belongs to the worker this long (the model may take a minute).
pub const LEASE_SECONDS: i64 = 90;
/// The longest wait between two attempts.
pub const MAX_RETRY_MS: i64 = 10 * 60_000;
/// Rows one round claims.
const BATCH: i64 = 10;

/// A keyword text (the carriers' standard words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Stop,
    Start,
    Help,
}

/// The keyword a text is, if it is one word of the list (case and trailing `.`/`!` ignored).
pub fn keyword(text: &str) -> Option<Keyword> {
    if crate::webhooks::is_stop(text) {
        return Some(Keyword::Stop);
    }
    let word = text
        .trim()
        .trim_end_matches(['.', '!'])
        .to_ascii_uppercase();
    match word.as_str() {
        "START" | "UNSTOP" => Some(Keyword::Start),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// The fixed answer to HELP.
pub fn help_text(public_url: &str) -> String {
    format!(
        "{SHOP_NAME} — e-bike and scooter repair. Text your question and our assistant answers; \
         hours and drop-off times: {public_url}/garage/book. Reply STOP to opt out."
    )
}

/// The fixed answer to START: garage has no way to clear a client's opt-out for them, so the
/// profile is where job texts come back on (ADR 0023).
pub fn start_text(public_url: &str) -> String {
    format!(
        "{SHOP_NAME}: this number can text us again. To get repair updates by text too, turn \
         texts on in your profile at {public_url}/garage. Reply HELP for help, STOP to opt out."
    )
}

// ---------------------------------------------------------------------------------------------
// Written by the webhook, in its transaction.

/// Stores an inbound text to answer (inside the webhook's transaction); returns its row id.
pub fn record_inbound(
    conn: &mut DbConnection,
    event_id: &str,
    phone: &str,
    body: &str,
    now: NaiveDateTime,
) -> Result<String, DbError> {
    let id = ids::new_id("sms");
    let body: String = body.trim().chars().take(MAX_INBOUND_CHARS).collect();
    diesel::insert_into(sms_texts::table)
        .values((
            sms_texts::id.eq(&id),
            sms_texts::event_id.eq(event_id),
            sms_texts::phone.eq(phone.trim()),
            sms_texts::body.eq(&body),
            sms_texts::state.eq("pending"),
            sms_texts::attempts.eq(0),
            sms_texts::next_attempt_at.eq(now),
            sms_texts::last_error.eq(""),
            sms_texts::received_at.eq(now),
            sms_texts::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Remembers a STOP from `phone` (any number, a client's or not).
pub fn record_opt_out(
    conn: &mut DbConnection,
    phone: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::delete(sms_opt_outs::table.find(phone)).execute(conn)?;
    diesel::insert_into(sms_opt_outs::table)
        .values((
            sms_opt_outs::phone.eq(phone),
            sms_opt_outs::opted_out_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// START from `phone`: the STOP kept here is forgotten.
pub fn clear_opt_out(conn: &mut DbConnection, phone: &str) -> Result<(), DbError> {
    diesel::delete(sms_opt_outs::table.find(phone)).execute(conn)?;
    Ok(())
}

fn opted_out_here(conn: &mut DbConnection, phone: &str) -> Result<bool, DbError> {
    Ok(sms_opt_outs::table
        .find(phone)
        .select(sms_opt_outs::phone)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

// ---------------------------------------------------------------------------------------------
// The reply as a text message.

/// The assistant's reply as an SMS: Markdown links and emphasis made plain, site links made
/// absolute with `public_url`, the records it used linked at the end, at most [`MAX_SMS_CHARS`].
pub fn sms_text(reply: &str, sources: &[Source], public_url: &str) -> String {
    let base = public_url.trim().trim_end_matches('/');
    let text = absolute_links(&plain(reply), base);
    let mut links: Vec<String> = Vec::new();
    for s in sources {
        if s.url.starts_with('/') {
            let url = format!("{base}{}", s.url);
            if !text.contains(&url) && !links.contains(&url) {
                links.push(url);
            }
        }
    }
    links.truncate(2);
    let tail: String = links.iter().map(|l| format!("\n{l}")).collect();
    let budget = MAX_SMS_CHARS.saturating_sub(tail.chars().count());
    format!("{}{tail}", clip(text.trim(), budget))
}

/// `[label](url)` → `label (url)`; `**`, `__` and backticks dropped.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            let target = &after[close + 2..];
            target
                .find(')')
                .filter(|end| !target[..*end].contains(char::is_whitespace))
                .map(|end| (close, end))
        });
        match link {
            Some((close, end)) => {
                let label = &after[..close];
                let url = &after[close + 2..close + 2 + end];
                out.push_str(&rest[..open]);
                if label.trim().is_empty() || label.trim() == url {
                    out.push_str(url);
                } else {
                    out.push_str(&format!("{label} ({url})"));
                }
                rest = &after[close + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "").replace("__", "").replace('`', "")
}

/// Site paths (`/garage/book`) at the start of a word become `{base}/garage/book`.
fn absolute_links(s: &str, base: &str) -> String {
    let mut out = String::with_capacity(s.len() + 64);
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_word = prev.is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '"' | '\''));
        if c == '/' && starts_word && chars.peek().is_some_and(|n| n.is_ascii_alphanumeric()) {
            out.push_str(base);
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// At most `max` characters, cut after a sentence when one ends in the second half, else at a
/// word, with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    let half = head.len() / 2;
    let sentence = head
        .char_indices()
        .filter(|(i, c)| {
            *i >= half
                && (matches!(c, '.' | '!' | '?') || *c == '\n')
                && head[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8())
        .next_back();
    if let Some(end) = sentence {
        return head[..end].trim_end().to_owned();
    }
    let word = head.rfind(char::is_whitespace).unwrap_or(head.len());
    format!("{}…", head[..word].trim_end())
}

// ---------------------------------------------------------------------------------------------
// The worker.

#[derive(Debug, Clone, Queryable)]
struct Row {
    id: String,
    phone: String,
    body: String,
    state: String,
    conversation_id: Option<String>,
    client_id: Option<String>,
    user_message_id: Option<String>,
    reply: Option<String>,
    attempts: i32,
}

/// The rows waiting, by state, as the backlog log line reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub pending: i64,
    pub sending: i64,
    pub failed: i64,
}

pub fn backlog(conn: &mut DbConnection) -> Result<Backlog, DbError> {
    let count = |conn: &mut DbConnection, state: &str| -> Result<i64, DbError> {
        Ok(sms_texts::table
            .filter(sms_texts::state.eq(state))
            .count()
            .get_result(conn)?)
    };
    Ok(Backlog {
        pending: count(conn, "pending")?,
        sending: count(conn, "sending")?,
        failed: count(conn, "failed")?,
    })
}

fn claim(conn: &mut DbConnection, now: NaiveDateTime) -> Result<Vec<Row>, DbError> {
    let due: Vec<Row> = sms_texts::table
        .filter(sms_texts::state.eq_any(["pending", "sending"]))
        .filter(sms_texts::next_attempt_at.le(now))
        .filter(
            sms_texts::lease_until
                .is_null()
                .or(sms_texts::lease_until.lt(now)),
        )
        .order((sms_texts::received_at, sms_texts::id))
        .limit(BATCH)
        .select((
            sms_texts::id,
            sms_texts::phone,
            sms_texts::body,
            sms_texts::state,
            sms_texts::conversation_id,
            sms_texts::client_id,
            sms_texts::user_message_id,
            sms_texts::reply,
            sms_texts::attempts,
        ))
        .load(conn)?;
    let until = now + chrono::Duration::seconds(LEASE_SECONDS);
    let mut claimed = Vec::with_capacity(due.len());
    for row in due {
        let n = diesel::update(
            sms_texts::table
                .find(&row.id)
                .filter(sms_texts::state.eq(&row.state))
                .filter(
                    sms_texts::lease_until
                        .is_null()
                        .or(sms_texts::lease_until.lt(now)),
                ),
        )
        .set(sms_texts::lease_until.eq(until))
        .execute(conn)?;
        if n == 1 {
            claimed.push(row);
        }
    }
    Ok(claimed)
}

/// The number's open SMS conversation with the same client, or a new one.
fn open_conversation(
    conn: &mut DbConnection,
    phone: &str,
    client_id: Option<&str>,
    this_text: &str,
    now: NaiveDateTime,
) -> Result<String, DbError> {
    let last: Option<(Option<String>, NaiveDateTime)> = sms_texts::table
        .filter(sms_texts::phone.eq(phone))
        .filter(sms_texts::id.ne(this_text))
        .filter(sms_texts::conversation_id.is_not_null())
        .order(sms_texts::received_at.desc())
        .select((sms_texts::conversation_id, sms_texts::received_at))
        .first(conn)
        .optional()?;
    if let Some((Some(conv), at)) = last
        && at >= now - chrono::Duration::hours(QUIET_HOURS)
        && let Some(c) = conversations::get(conn, &conv)?
        && c.channel == Channel::Sms
        && c.client_id.as_deref() == client_id
    {
        return Ok(c.id);
    }
    Ok(conversations::start(conn, Channel::Sms, client_id.map(str::to_owned))?.id)
}

/// The delay before attempt `attempts + 1`: `base_ms` doubling, at most [`MAX_RETRY_MS`].
pub fn backoff_ms(base_ms: u64, attempts: i32) -> i64 {
    let base = i64::try_from(base_ms).unwrap_or(MAX_RETRY_MS).max(1);
    base.saturating_mul(1i64 << attempts.clamp(0, 20))
        .min(MAX_RETRY_MS)
}

pub struct Receptionist {
    db: Arc<Database>,
    assistant: Arc<Assistant>,
    garage: GarageServiceClient<TracedChannel>,
    sms: Sms,
    worker: WorkerConfig,
    /// Rows this worker has claimed and not settled yet: released when it is stopped mid-round.
    held: std::sync::Mutex<Vec<String>>,
}

/// What became of one attempt at a row.
enum Step {
    /// Settled for good in `state` (`sent`, `failed`, `ignored`), with a note.
    Settle {
        state: &'static str,
        note: String,
        telnyx_id: Option<String>,
    },
    /// The reply is ready: text it now.
    Send(String),
    /// Not now: try again later; counts as an attempt unless `delay_ms` is given.
    Later { why: String, delay_ms: Option<i64> },
    /// Texting the reply failed for now (counts as an attempt).
    SendLater(String),
}

impl Receptionist {
    pub fn new(
        db: Arc<Database>,
        assistant: Arc<Assistant>,
        garage: GarageServiceClient<TracedChannel>,
        sms: Sms,
        worker: WorkerConfig,
    ) -> Self {
        Self {
            db,
            assistant,
            garage,
            sms,
            worker,
            held: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn hold(&self, ids: &[String]) {
        if let Ok(mut h) = self.held.lock() {
            h.extend(ids.iter().cloned());
        }
    }

    fn unhold(&self, id: &str) {
        if let Ok(mut h) = self.held.lock() {
            h.retain(|x| x != id);
        }
    }

    /// Stopped mid-round: the rows it held are free for the next start at once (their state
    /// says what is left; a resend carries the same idempotency key).
    async fn release(&self) {
        let ids: Vec<String> = self
            .held
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        if ids.is_empty() {
            return;
        }
        let n = ids.len();
        let released = self
            .db
            .run(move |c| {
                diesel::update(sms_texts::table.filter(sms_texts::id.eq_any(&ids)))
                    .set(sms_texts::lease_until.eq(None::<NaiveDateTime>))
                    .execute(c)?;
                Ok::<_, DbError>(())
            })
            .await;
        match released {
            Ok(()) => tracing::info!(
                rows = n,
                "sms receptionist stopped mid-round; rows released"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sms rows not released; taken again when their lease runs out")
            }
        }
    }
    /// Runs until `stop` resolves: due rows every `worker.poll_ms`. A round cut short by `stop`
    /// leaves its rows leased; they are taken again when the lease runs out, and their state says
    /// what is left to do (the text is stored once; Telnyx's idempotency key covers a resend).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        if let Some(why) = self.sms.off_reason() {
            tracing::warn!(
                reason = %why,
                "SMS is off: clients' texts are stored and answered in their conversations, but no reply is texted (replies are marked failed); set sms.from_number and the secret /omneuro/telnyx/api_key"
            );
        }
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_millis(self.worker.poll_ms.max(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported = None;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            if !self.db.is_migrated() {
                continue;
            }
            tokio::select! {
                _ = &mut stop => {
                    self.release().await;
                    return;
                }
                round = self.round() => {
                    if let Err(e) = round {
                        tracing::warn!(error = %e, "sms receptionist round failed");
                    }
                }
            }
            match self.db.run(backlog).await {
                Ok(b) if reported != Some(b) => {
                    tracing::info!(
                        sms.pending = b.pending,
                        sms.sending = b.sending,
                        sms.failed = b.failed,
                        "sms receptionist backlog"
                    );
                    reported = Some(b);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "sms backlog not counted"),
            }
        }
    }

    /// Works the rows due now; returns how many.
    pub async fn round(&self) -> Result<usize, DbError> {
        let now = now_utc();
        let rows = self.db.run(move |c| claim(c, now)).await?;
        let n = rows.len();
        self.hold(&rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        for row in rows {
            let span = tracing::info_span!("sms_text", sms.id = %row.id, sms.state = %row.state, sms.from = %masked_phone(&row.phone));
            let worked = self.work(&row).instrument(span).await;
            if worked.is_ok() {
                self.unhold(&row.id);
            }
            worked?;
        }
        Ok(n)
    }

    async fn work(&self, row: &Row) -> Result<(), DbError> {
        let mut step = if row.state == "sending" {
            Step::Send(row.reply.clone().unwrap_or_default())
        } else {
            self.answer(row).await
        };
        if let Step::Send(text) = step {
            step = self.send(row, &text).await;
        }
        self.settle(row, step).await
    }

    async fn settle(&self, row: &Row, step: Step) -> Result<(), DbError> {
        let (id, attempts, now) = (row.id.clone(), row.attempts, now_utc());
        let max = i32::try_from(self.worker.max_attempts.max(1)).unwrap_or(i32::MAX);
        let base = self.worker.retry_base_ms;
        let (step, answered) = match step {
            Step::SendLater(why) => (
                Step::Later {
                    why,
                    delay_ms: None,
                },
                true,
            ),
            other => (other, false),
        };
        match step {
            Step::Settle {
                state,
                note,
                telnyx_id,
            } => {
                if state == "failed" {
                    tracing::warn!(sms.id = %id, reason = %note, "sms reply failed");
                } else {
                    tracing::info!(sms.id = %id, sms.state = state, note = %note, "sms text settled");
                }
                self.db
                    .run(move |c| {
                        diesel::update(sms_texts::table.find(&id))
                            .set((
                                sms_texts::state.eq(state),
                                sms_texts::last_error.eq(clip(&note, 500)),
                                sms_texts::telnyx_message_id.eq(telnyx_id),
                                sms_texts::lease_until.eq(None::<NaiveDateTime>),
                                sms_texts::updated_at.eq(now),
                            ))
                            .execute(c)?;
                        Ok::<_, DbError>(())
                    })
                    .await
            }
            Step::Later { why, delay_ms } => {
                let counted = delay_ms.is_none();
                let attempts = if counted {
                    attempts.saturating_add(1)
                } else {
                    attempts
                };
                if counted && attempts >= max {
                    let what = if answered {
                        "not texted"
                    } else {
                        "not answered"
                    };
                    return Box::pin(self.settle(
                        &Row {
                            attempts,
                            ..row.clone()
                        },
                        Step::Settle {
                            state: "failed",
                            note: format!("{what} after {attempts} attempts: {why}"),
                            telnyx_id: None,
                        },
                    ))
                    .await;
                }
                let delay = delay_ms.unwrap_or_else(|| backoff_ms(base, attempts - 1));
                let at = now + chrono::Duration::milliseconds(delay);
                tracing::info!(sms.id = %id, retry_in_ms = delay, reason = %why, "sms text waits");
                self.db
                    .run(move |c| {
                        diesel::update(sms_texts::table.find(&id))
                            .set((
                                sms_texts::attempts.eq(attempts),
                                sms_texts::next_attempt_at.eq(at),
                                sms_texts::last_error.eq(clip(&why, 500)),
                                sms_texts::lease_until.eq(None::<NaiveDateTime>),
                                sms_texts::updated_at.eq(now),
                            ))
                            .execute(c)?;
                        Ok::<_, DbError>(())
                    })
                    .await
            }
            Step::Send(_) | Step::SendLater(_) => Ok(()),
        }
    }

    /// Texts the reply; the row id is the idempotency key, so a resend after a lost answer is
    /// not a second text.
    async fn send(&self, row: &Row, text: &str) -> Step {
        match self.sms.send(&row.phone, text, Some(&row.id)).await {
            Ok(sent) => Step::Settle {
                state: "sent",
                note: String::new(),
                telnyx_id: Some(sent.id),
            },
            Err(e) if e.is_permanent() => Step::Settle {
                state: "failed",
                note: e.to_string(),
                telnyx_id: None,
            },
            Err(e) => Step::SendLater(e.to_string()),
        }
    }

    /// Marks the row `sending` with `reply` (a fixed answer, no conversation).
    async fn fixed_reply(&self, row: &Row, reply: String) -> Step {
        let (id, text, now) = (row.id.clone(), reply.clone(), now_utc());
        let saved = self
            .db
            .run(move |c| {
                diesel::update(sms_texts::table.find(&id))
                    .set((
                        sms_texts::state.eq("sending"),
                        sms_texts::reply.eq(&text),
                        sms_texts::updated_at.eq(now),
                    ))
                    .execute(c)?;
                Ok::<_, DbError>(())
            })
            .await;
        match saved {
            Ok(()) => Step::Send(reply),
            Err(e) => Step::Later {
                why: e.to_string(),
                delay_ms: None,
            },
        }
    }

    async fn answer(&self, row: &Row) -> Step {
        if !is_e164(&row.phone) {
            return Step::Settle {
                state: "ignored",
                note: "the sender is not a phone number we can text".into(),
                telnyx_id: None,
            };
        }
        let url = self.assistant.public_url().to_owned();
        // Who is texting: garage, as the receptionist (a system caller).
        let mut g = self.garage.clone();
        let clients = match grpc::call(
            "GarageService/FindClientsByPhone",
            g.find_clients_by_phone(auth::request(
                &Actor::System(crate::NAME.into()),
                gpb::FindClientsByPhoneRequest {
                    phone: row.phone.clone(),
                },
            )),
        )
        .await
        {
            Ok(r) => r.into_inner().clients,
            Err(s) if s.code() == tonic::Code::InvalidArgument => Vec::new(),
            Err(s) => {
                return Step::Later {
                    why: format!("garage did not say whose number this is: {}", s.message()),
                    delay_ms: None,
                };
            }
        };
        let phone = row.phone.clone();
        let here = match self.db.run(move |c| opted_out_here(c, &phone)).await {
            Ok(b) => b,
            Err(e) => {
                return Step::Later {
                    why: e.to_string(),
                    delay_ms: None,
                };
            }
        };
        let opted_out = here || clients.iter().any(|c| c.sms_opted_out);
        match keyword(&row.body) {
            // Opting in again is answered (carriers expect the confirmation).
            Some(Keyword::Start) => return self.fixed_reply(row, start_text(&url)).await,
            _ if opted_out => {
                return Step::Settle {
                    state: "ignored",
                    note: "the number opted out of texts (STOP)".into(),
                    telnyx_id: None,
                };
            }
            Some(Keyword::Help) => return self.fixed_reply(row, help_text(&url)).await,
            Some(Keyword::Stop) => {
                return Step::Settle {
                    state: "ignored",
                    note: "STOP is recorded by the webhook".into(),
                    telnyx_id: None,
                };
            }
            None => {}
        }
        // Caller ID names the client only when the number is exactly one client's. A text
        // already in its conversation keeps that conversation's owner.
        let client_id = match (&row.user_message_id, clients.as_slice()) {
            (Some(_), _) => row.client_id.clone(),
            (None, [one]) => Some(one.id.clone()),
            (None, _) => None,
        };
        let actor = match &client_id {
            Some(id) => Actor::Client(id.clone()),
            None => Actor::System(crate::NAME.into()),
        };
        // The text into its conversation, once (a retry finds it stored).
        let (conversation_id, user_message_id) =
            match (row.conversation_id.clone(), row.user_message_id.clone()) {
                (Some(c), Some(m)) => (c, m),
                _ => {
                    let (row_id, phone, body, who, client) = (
                        row.id.clone(),
                        row.phone.clone(),
                        row.body.clone(),
                        actor.encode(),
                        client_id.clone(),
                    );
                    let stored = self
                        .db
                        .run(move |c| {
                            write_transaction(c, |c| {
                                let now = now_utc();
                                let conv =
                                    open_conversation(c, &phone, client.as_deref(), &row_id, now)?;
                                let m = conversations::append(
                                    c,
                                    &conv,
                                    &NewMessage {
                                        speaker: Speaker::User,
                                        content: &body,
                                        mode: None,
                                        tool_calls: &[],
                                        sources: &[],
                                        actor: &who,
                                        prompt_tokens: 0,
                                        completion_tokens: 0,
                                    },
                                )?;
                                diesel::update(sms_texts::table.find(&row_id))
                                    .set((
                                        sms_texts::conversation_id.eq(&conv),
                                        sms_texts::client_id.eq(&client),
                                        sms_texts::user_message_id.eq(&m.id),
                                        sms_texts::updated_at.eq(now),
                                    ))
                                    .execute(c)?;
                                Ok::<_, DbError>((conv, m.id))
                            })
                        })
                        .await;
                    match stored {
                        Ok(s) => s,
                        Err(e) => {
                            return Step::Later {
                                why: e.to_string(),
                                delay_ms: None,
                            };
                        }
                    }
                }
            };
        // The assistant's answer; the row moves to `sending` in the reply's transaction.
        let (row_id, base) = (row.id.clone(), url.clone());
        let after = Box::new(
            move |c: &mut DbConnection, m: &conversations::StoredMessage| {
                let text = sms_text(&m.content, &m.sources, &base);
                diesel::update(sms_texts::table.find(&row_id))
                    .set((
                        sms_texts::state.eq("sending"),
                        sms_texts::reply.eq(&text),
                        sms_texts::updated_at.eq(now_utc()),
                    ))
                    .execute(c)?;
                Ok::<_, DbError>(())
            },
        );
        let reply = self
            .assistant
            .reply_to_stored(
                &actor,
                &conversation_id,
                &row.body,
                StoredTurn {
                    user_message_id,
                    after,
                },
            )
            .await;
        match reply {
            Ok(m) => Step::Send(sms_text(&m.content, &m.sources, &url)),
            Err(AssistantError::RateLimited) => Step::Later {
                why: "too many texts from this number in a minute".into(),
                delay_ms: Some(60_000),
            },
            Err(AssistantError::Db(e)) => Step::Later {
                why: e.to_string(),
                delay_ms: None,
            },
            Err(e) => Step::Settle {
                state: "failed",
                note: format!("not answered: {e}"),
                telnyx_id: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        assert_eq!(keyword(" stop "), Some(Keyword::Stop));
        assert_eq!(keyword("Unstop"), Some(Keyword::Start));
        assert_eq!(keyword("START!"), Some(Keyword::Start));
        assert_eq!(keyword("help"), Some(Keyword::Help));
        assert_eq!(keyword("help me with my scooter"), None);
        assert_eq!(keyword("book me tomorrow at 10"), None);
    }

    #[test]
    fn replies_become_plain_texts_with_absolute_links() {
        let src = |url: &str| Source {
            kind: "job".into(),
            id: "job_1".into(),
            label: "x".into(),
            url: url.into(),
        };
        let t = sms_text(
            "Your **scooter** is ready. Book at /garage/book or see [the job](/garage/jobs/job_1).",
            &[src("/garage/jobs/job_1"), src("/garage/jobs/job_2")],
            "https://jj.example/",
        );
        assert_eq!(
            t,
            "Your scooter is ready. Book at https://jj.example/garage/book or see the job (https://jj.example/garage/jobs/job_1).\nhttps://jj.example/garage/jobs/job_2"
        );
        assert_eq!(
            absolute_links("a/b https://x.y/z (/p) /", "B"),
            "a/b https://x.y/z (B/p) /"
        );
        assert_eq!(plain("[a](b c) [x]"), "[a](b c) [x]");
    }

    #[test]
    fn long_replies_are_cut_at_a_sentence_or_a_word() {
        let long = "One sentence here. ".repeat(100);
        let t = sms_text(&long, &[], "https://x");
        assert!(t.chars().count() <= MAX_SMS_CHARS);
        assert!(t.ends_with("here."), "{t}");
        let words = "word ".repeat(400);
        let t = sms_text(&words, &[], "https://x");
        assert!(
            t.chars().count() <= MAX_SMS_CHARS && t.ends_with("word…"),
            "{t}"
        );
        let with_link = sms_text(
            &long,
            &[Source {
                kind: "job".into(),
                id: "j".into(),
                label: "j".into(),
                url: "/garage/jobs/j".into(),
            }],
            "https://x",
        );
        assert!(with_link.chars().count() <= MAX_SMS_CHARS);
        assert!(
            with_link.ends_with("\nhttps://x/garage/jobs/j"),
            "{with_link}"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1_000, 0), 1_000);
        assert_eq!(backoff_ms(1_000, 3), 8_000);
        assert_eq!(backoff_ms(1_000, 60), MAX_RETRY_MS);
    }
}
