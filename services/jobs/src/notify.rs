//! The notifications worker: delivers the outbox by email (SMTP) and SMS (Telnyx), honouring the
//! client's consent and STOP at the moment of sending, with retries and backoff; and queues the
//! day-before drop-off reminders.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::config::{LinksConfig, WorkerConfig};
use omneuro_platform::db::{Database, DbConnection, now_utc};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::TracedChannel;
use omneuro_platform::mail::{Attachment, Mail, Mailer};
use omneuro_platform::sms::Sms;
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;

use crate::booking_store;
use crate::outbox::{self, Channel, Item, Kind};
use crate::schema::{appointments, work_orders};

pub struct Notifier {
    pub db: Arc<Database>,
    pub mailer: Arc<Mailer>,
    pub sms: Arc<Sms>,
    pub garage: GarageServiceClient<TracedChannel>,
    pub links: LinksConfig,
    pub worker: WorkerConfig,
}

/// What one attempt came to.
enum Outcome {
    Sent,
    Skipped(String),
    Retry(String),
    Failed(String),
}

impl Notifier {
    /// Runs until `stop` resolves: reminders, then due deliveries, every `worker.poll_ms`.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_millis(self.worker.poll_ms.max(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            if !self.db.is_migrated() {
                continue; // the database is not there yet; the watcher will migrate it
            }
            if let Err(e) = self.queue_reminders().await {
                tracing::warn!(error = %e, "reminders not queued this round");
            }
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "outbox round failed");
            }
        }
    }

    /// Delivers what is due now; returns how many rows were handled.
    pub async fn deliver_due(&self) -> Result<usize, DomainError> {
        let now = now_utc();
        let items = self.db.run(move |c| outbox::claim(c, 20, now)).await?;
        let n = items.len();
        for item in items {
            let span = tracing::info_span!(
                "notify",
                notification.id = %item.id,
                job.id = %item.job_id,
                kind = item.kind.as_str(),
                channel = item.channel.as_str()
            );
            self.deliver_one(item).instrument(span).await?;
        }
        Ok(n)
    }

    /// One claimed row: deliver it and record the outcome.
    async fn deliver_one(&self, item: Item) -> Result<(), DomainError> {
        let outcome = self.deliver(&item).await;
        let (id, attempts, now) = (item.id.clone(), item.attempts, now_utc());
        let max = i32::try_from(self.worker.max_attempts).unwrap_or(i32::MAX);
        let base = self.worker.retry_base_ms;
        match outcome {
            Outcome::Sent => {
                tracing::info!("notification sent");
                self.db
                    .run(move |c| outbox::finish(c, &id, "sent", "", now))
                    .await
            }
            Outcome::Skipped(why) => {
                tracing::info!(reason = %why, "notification skipped");
                self.db
                    .run(move |c| outbox::finish(c, &id, "skipped", &why, now))
                    .await
            }
            Outcome::Retry(why) if attempts + 1 < max => {
                tracing::warn!(error = %why, attempts = attempts + 1, "notification will be retried");
                self.db
                    .run(move |c| {
                        outbox::retry_later(c, &id, attempts, &why, now, base).map(|_| ())
                    })
                    .await
            }
            Outcome::Retry(why) | Outcome::Failed(why) => {
                tracing::error!(error = %why, "notification given up");
                self.db
                    .run(move |c| outbox::finish(c, &id, "failed", &why, now))
                    .await
            }
        }
    }

    async fn deliver(&self, item: &Item) -> Outcome {
        let mut g = self.garage.clone();
        let client = match omneuro_platform::grpc::call(
            "GarageService/GetClient",
            g.get_client(auth::request(
                &Actor::System("jobs".into()),
                garage::GetClientRequest {
                    client_id: item.client_id.clone(),
                },
            )),
        )
        .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => {
                return Outcome::Skipped("client no longer exists".into());
            }
            Err(s) => return Outcome::Retry(format!("garage: {}", s.message())),
        };
        let job_id = item.job_id.clone();
        let token = match self
            .db
            .run(move |c| {
                work_orders::table
                    .find(&job_id)
                    .select(work_orders::status_token)
                    .first::<Option<String>>(c)
                    .optional()
                    .map_err(DomainError::from)
            })
            .await
        {
            Ok(t) => t.flatten(),
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let status_url =
            token.map(|t| format!("{}/status/{t}", self.links.public_url.trim_end_matches('/')));
        let msg = render(
            item,
            &client,
            status_url.as_deref(),
            &self.links.public_url,
            Utc::now(),
        );
        match item.channel {
            Channel::Email => {
                if !client.email_consent {
                    return Outcome::Skipped("no email consent".into());
                }
                let res = self
                    .mailer
                    .send(Mail {
                        to: client.email.clone(),
                        subject: msg.subject,
                        text: msg.email_text,
                        html: None,
                        attachments: msg
                            .ics
                            .map(|ics| Attachment {
                                filename: "juice-junkiez-drop-off.ics".into(),
                                content_type: "text/calendar; charset=utf-8; method=PUBLISH".into(),
                                body: ics.into_bytes(),
                            })
                            .into_iter()
                            .collect(),
                        message_id: Some(format!("<{}@omneuro.juicejunkiez.com>", item.id)),
                    })
                    .await;
                match res {
                    Ok(()) => Outcome::Sent,
                    Err(e) if e.is_permanent() => Outcome::Failed(e.to_string()),
                    Err(e) => Outcome::Retry(e.to_string()),
                }
            }
            Channel::Sms => {
                if client.sms_opted_out {
                    return Outcome::Skipped("client texted STOP".into());
                }
                if !client.sms_consent || client.phone.is_empty() {
                    return Outcome::Skipped("no SMS consent or number".into());
                }
                if !self.sms.is_on() {
                    return Outcome::Skipped("SMS is off".into());
                }
                match self
                    .sms
                    .send(&client.phone, &msg.sms_text, Some(&item.id))
                    .await
                {
                    Ok(_) => Outcome::Sent,
                    Err(e) if e.is_permanent() => Outcome::Failed(e.to_string()),
                    Err(e) => Outcome::Retry(e.to_string()),
                }
            }
        }
    }

    /// Queues a reminder for every drop-off tomorrow (shop time) that has none yet.
    pub async fn queue_reminders(&self) -> Result<usize, DomainError> {
        self.db.run(move |c| queue_reminders(c, Utc::now())).await
    }
}

/// Reminders for tomorrow's drop-offs (local date), each appointment once.
pub fn queue_reminders(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, DomainError> {
    let rules = booking_store::load_rules(conn)?;
    let today = now.with_timezone(&rules.timezone).date_naive();
    let Some(tomorrow) = today.succ_opt() else {
        return Ok(0);
    };
    let due: Vec<(String, String, String, String, String)> = appointments::table
        .inner_join(work_orders::table)
        .filter(appointments::day.eq(tomorrow))
        .filter(appointments::status.eq("booked"))
        .filter(appointments::reminder_queued_at.is_null())
        .select((
            appointments::id,
            appointments::job_id,
            appointments::client_id,
            appointments::start_local,
            work_orders::vehicle_label,
        ))
        .load(conn)?;
    let t = now.naive_utc();
    let mut n = 0;
    for (appt, job, client, start, vehicle) in due {
        conn.transaction(|c| {
            let claimed = diesel::update(
                appointments::table
                    .filter(appointments::id.eq(&appt))
                    .filter(appointments::reminder_queued_at.is_null()),
            )
            .set(appointments::reminder_queued_at.eq(Some(t)))
            .execute(c)?;
            if claimed == 1 {
                outbox::enqueue_both(
                    c,
                    Kind::Reminder,
                    &job,
                    &client,
                    &serde_json::json!({"job_id": job, "vehicle": vehicle, "date": tomorrow.to_string(), "start_local": start}),
                    t,
                )?;
            }
            Ok::<_, DomainError>(())
        })?;
        n += 1;
    }
    Ok(n)
}

pub struct Message {
    pub subject: String,
    pub email_text: String,
    pub sms_text: String,
    pub ics: Option<String>,
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or_default()
}

fn friendly_date(d: &str) -> String {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map(|d| d.format("%A, %B %-d").to_string())
        .unwrap_or_else(|_| d.to_owned())
}

/// The words of each notification (email and SMS), from the outbox payload.
pub fn render(
    item: &Item,
    client: &garage::Client,
    status_url: Option<&str>,
    public_url: &str,
    now: DateTime<Utc>,
) -> Message {
    let p = &item.payload;
    let vehicle = s(p, "vehicle");
    let hello = if client.name.is_empty() {
        "Hi,".to_owned()
    } else {
        format!("Hi {},", client.name)
    };
    let link = status_url
        .map(|u| format!("\n\nFollow your repair: {u}"))
        .unwrap_or_default();
    let short_link = status_url.map(|u| format!(" {u}")).unwrap_or_default();
    let sign = "\n\nJuice Junkiez · 409 S Addison St, Baltimore, MD 21223";
    let when = format!(
        "{} at {} ({})",
        friendly_date(s(p, "date")),
        s(p, "start_local"),
        s(p, "window")
    );
    let (subject, body, sms, ics) = match item.kind {
        Kind::BookingConfirmed | Kind::BookingRescheduled => {
            let verb = if item.kind == Kind::BookingConfirmed {
                "booked"
            } else {
                "moved"
            };
            let safety = if p
                .get("safety_flag")
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
            {
                "\n\nYou told us about a safety concern (like a swollen or hot battery). Don't charge it, keep it away from things that burn, and tell us at the door."
            } else {
                ""
            };
            (
                format!(
                    "Drop-off {verb}: {vehicle}, {}",
                    friendly_date(s(p, "date"))
                ),
                format!(
                    "{hello}\n\nYour drop-off is {verb} for {when}. Bring {vehicle} to 409 S Addison St, Baltimore. The calendar invite is attached.{safety}{link}"
                ),
                format!(
                    "Juice Junkiez: drop-off {verb} for {when}, {vehicle}.{short_link} Reply STOP to opt out."
                ),
                Some(ics(item, vehicle, p, now)),
            )
        }
        Kind::Reminder => (
            format!("Reminder: drop-off tomorrow at {}", s(p, "start_local")),
            format!(
                "{hello}\n\nSee you tomorrow at {} with {vehicle}. Drop-off is at 409 S Addison St, Baltimore.{link}",
                s(p, "start_local")
            ),
            format!(
                "Juice Junkiez: see you tomorrow at {} with {vehicle}.{short_link} Reply STOP to opt out.",
                s(p, "start_local")
            ),
            None,
        ),
        Kind::EstimateReady => {
            let total = p.get("total_cents").and_then(|v| v.as_i64()).unwrap_or(0);
            let dollars = format!("${}.{:02}", total / 100, total % 100);
            let url = format!(
                "{}/estimate/{}",
                public_url.trim_end_matches('/'),
                s(p, "estimate_token")
            );
            (
                format!("Your estimate for {vehicle}: {dollars}"),
                format!(
                    "{hello}\n\nWe've looked at {vehicle}. The repair comes to {dollars}. Approve or decline it here (no sign-in needed): {url}\n\nNothing is done until you approve.{link}"
                ),
                format!(
                    "Juice Junkiez: your estimate for {vehicle} is {dollars}. Approve or decline: {url} Reply STOP to opt out."
                ),
                None,
            )
        }
        Kind::BookingCanceled => (
            format!("Booking canceled: {vehicle}"),
            format!(
                "{hello}\n\nYour booking for {vehicle} is canceled. Book again any time from your garage."
            ),
            format!(
                "Juice Junkiez: your booking for {vehicle} is canceled. Reply STOP to opt out."
            ),
            None,
        ),
        Kind::StatusChanged | Kind::ReadyForPickup => {
            let note = s(p, "note");
            let note = if note.is_empty() {
                String::new()
            } else {
                format!("\n\nFrom the bench: {note}")
            };
            (
                format!("{vehicle}: {}", s(p, "label")),
                format!(
                    "{hello}\n\n{vehicle} is now: {}.\n{}{note}{link}",
                    s(p, "label"),
                    s(p, "next_step")
                ),
                format!(
                    "Juice Junkiez: {vehicle} is now {}.{short_link} Reply STOP to opt out.",
                    s(p, "label").to_lowercase()
                ),
                None,
            )
        }
    };
    Message {
        subject,
        email_text: format!("{body}{sign}\n"),
        sms_text: sms,
        ics,
    }
}

fn ics_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

fn ics_text(t: &str) -> String {
    t.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for ch in line.chars() {
        let w = ch.len_utf8();
        if width + w > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += w;
    }
    out
}

/// An RFC 5545 calendar with the drop-off as one event (UID = the appointment, so a reschedule
/// updates the same event in the client's calendar).
pub fn ics(item: &Item, vehicle: &str, p: &serde_json::Value, now: DateTime<Utc>) -> String {
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Juice Junkiez//Omneuro//EN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@juicejunkiez.com", s(p, "appointment_id")),
        format!("DTSTAMP:{}", now.format("%Y%m%dT%H%M%SZ")),
        format!(
            "SEQUENCE:{}",
            if item.kind == Kind::BookingRescheduled {
                1
            } else {
                0
            }
        ),
        format!("DTSTART:{}", ics_time(s(p, "starts_at"))),
        format!("DTEND:{}", ics_time(s(p, "ends_at"))),
        format!(
            "SUMMARY:{}",
            ics_text(&format!("Drop-off at Juice Junkiez: {vehicle}"))
        ),
        format!(
            "LOCATION:{}",
            ics_text("409 S Addison St, Baltimore, MD 21223")
        ),
        format!(
            "DESCRIPTION:{}",
            ics_text(&format!(
                "Bring {vehicle} for: {}.",
                p.get("services")
                    .and_then(|v| v.as_array())
                    .map(|a| a
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ))
        ),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    lines
        .iter()
        .map(|l| fold(l))
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: Kind, payload: serde_json::Value) -> Item {
        Item {
            id: "ntf_1".into(),
            kind,
            channel: Channel::Email,
            job_id: "job_1".into(),
            client_id: "cli_1".into(),
            payload,
            attempts: 0,
        }
    }

    #[test]
    fn booking_mail_has_a_valid_calendar_invite_and_the_status_link() {
        let p = serde_json::json!({
            "appointment_id": "apt_1", "vehicle": "Begode Master", "services": ["diagnostics", "battery"],
            "date": "2026-12-01", "window": "Morning", "start_local": "10:00",
            "starts_at": "2026-12-01T15:00:00+00:00", "ends_at": "2026-12-01T16:00:00+00:00", "safety_flag": true,
        });
        let client = garage::Client {
            name: "Ada".into(),
            ..Default::default()
        };
        let m = render(
            &item(Kind::BookingConfirmed, p),
            &client,
            Some("http://x/status/abc"),
            "http://x",
            Utc::now(),
        );
        assert!(m.subject.contains("Begode Master"));
        assert!(
            m.email_text.starts_with("Hi Ada,")
                && m.email_text
                    .contains("Tuesday, December 1 at 10:00 (Morning)")
        );
        assert!(
            m.email_text.contains("http://x/status/abc")
                && m.email_text.contains("Don't charge it")
        );
        assert!(m.sms_text.contains("Reply STOP") && m.sms_text.len() < 320);
        let ics = m.ics.unwrap();
        assert!(ics.contains("DTSTART:20261201T150000Z\r\nDTEND:20261201T160000Z"));
        assert!(ics.contains("LOCATION:409 S Addison St\\, Baltimore\\, MD 21223"));
        assert!(ics.lines().all(|l| l.trim_end_matches('\r').len() <= 75));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn long_lines_fold_at_75_octets() {
        let f = fold(&"x".repeat(160));
        assert!(f.split("\r\n").all(|l| l.len() <= 75));
        assert_eq!(f.replace("\r\n ", ""), "x".repeat(160));
    }
}
