//! Jobs into the knowledge base (ADR 0014). Every change kb should know about (a job created, a
//! status change, a diagnostics note, a part or labor line added or removed) writes a `kb_outbox` row in the
//! change's own transaction. A worker claims due rows (a lease, as in the notifications outbox),
//! re-renders the job from jobs' current state and puts it into kb as `system:jobs` with
//! `source_ref = "job:<id>"` — one document per job, replaced on every delivery, so a repeated or
//! out-of-order delivery is harmless. While kb (or garage, for the make and model) cannot be
//! reached the rows wait and are retried with backoff; they are never given up.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::config::WorkerConfig;
use omneuro_platform::db::{Database, DbConnection, now_utc};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::TracedChannel;
use omneuro_platform::ids;
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::kb::v1 as kbpb;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use tracing::Instrument;

use crate::estimates::{self, Line, Note};
use crate::schema::kb_outbox;
use crate::workorders::{self, WorkOrder};

/// How long a claim lasts; a worker that dies mid-delivery frees the row after this.
pub const LEASE_SECONDS: i64 = 60;
/// The longest wait between two attempts while kb is down.
pub const MAX_RETRY_MS: i64 = 60_000;

/// What happened to the job (kept for logs and the backlog; the delivery always re-renders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Created,
    StatusChanged,
    Note,
    LineAdded,
    LineRemoved,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::StatusChanged => "status_changed",
            Event::Note => "note",
            Event::LineAdded => "line_added",
            Event::LineRemoved => "line_removed",
        }
    }
}

/// Queues the job for kb (inside the caller's transaction).
pub fn enqueue(
    conn: &mut DbConnection,
    job_id: &str,
    event: Event,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::insert_into(kb_outbox::table)
        .values((
            kb_outbox::id.eq(ids::new_id("kbe")),
            kb_outbox::job_id.eq(job_id),
            kb_outbox::event.eq(event.as_str()),
            kb_outbox::state.eq("pending"),
            kb_outbox::next_attempt_at.eq(now),
            kb_outbox::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub job_id: String,
    pub event: String,
    pub attempts: i32,
}

/// Rows no worker holds a live claim on.
macro_rules! unleased {
    ($now:expr) => {
        kb_outbox::lease_until
            .is_null()
            .or(kb_outbox::lease_until.lt($now))
    };
}

/// Claims up to `limit` due rows for this worker, oldest first.
pub fn claim(
    conn: &mut DbConnection,
    limit: i64,
    now: NaiveDateTime,
) -> Result<Vec<Item>, DomainError> {
    let due: Vec<(String, String, String, i32)> = kb_outbox::table
        .filter(kb_outbox::state.eq("pending"))
        .filter(kb_outbox::next_attempt_at.le(now))
        .filter(unleased!(now))
        .order_by((kb_outbox::created_at, kb_outbox::id))
        .select((
            kb_outbox::id,
            kb_outbox::job_id,
            kb_outbox::event,
            kb_outbox::attempts,
        ))
        .limit(limit)
        .load(conn)?;
    let mut claimed = Vec::new();
    for (id, job_id, event, attempts) in due {
        let n = diesel::update(
            kb_outbox::table
                .filter(kb_outbox::id.eq(&id))
                .filter(kb_outbox::state.eq("pending"))
                .filter(unleased!(now)),
        )
        .set(kb_outbox::lease_until.eq(Some(now + chrono::Duration::seconds(LEASE_SECONDS))))
        .execute(conn)?;
        if n == 1 {
            claimed.push(Item {
                id,
                job_id,
                event,
                attempts,
            });
        }
    }
    Ok(claimed)
}

/// Delivered (or nothing left to deliver: `note` says why).
pub fn done(
    conn: &mut DbConnection,
    id: &str,
    note: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(kb_outbox::table.find(id))
        .set((
            kb_outbox::state.eq("done"),
            kb_outbox::last_error.eq(note.chars().take(500).collect::<String>()),
            kb_outbox::lease_until.eq(None::<NaiveDateTime>),
            kb_outbox::done_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The delay before attempt `attempts + 1`: `base_ms` doubling per attempt, at most a minute.
pub fn backoff_ms(base_ms: u64, attempts: i32) -> i64 {
    let base = i64::try_from(base_ms).unwrap_or(MAX_RETRY_MS).max(1);
    base.saturating_mul(1i64 << attempts.clamp(0, 16))
        .min(MAX_RETRY_MS)
}

/// Not delivered this time; tried again after the backoff.
pub fn retry_later(
    conn: &mut DbConnection,
    id: &str,
    attempts: i32,
    error: &str,
    now: NaiveDateTime,
    base_ms: u64,
) -> Result<NaiveDateTime, DomainError> {
    let at = now + chrono::Duration::milliseconds(backoff_ms(base_ms, attempts));
    diesel::update(kb_outbox::table.find(id))
        .set((
            kb_outbox::attempts.eq(attempts.saturating_add(1)),
            kb_outbox::next_attempt_at.eq(at),
            kb_outbox::lease_until.eq(None::<NaiveDateTime>),
            kb_outbox::last_error.eq(error.chars().take(500).collect::<String>()),
        ))
        .execute(conn)?;
    Ok(at)
}

/// The backlog: rows waiting for kb and when the oldest was written.
pub fn backlog(conn: &mut DbConnection) -> Result<(i64, Option<NaiveDateTime>), DomainError> {
    let n: i64 = kb_outbox::table
        .filter(kb_outbox::state.eq("pending"))
        .count()
        .get_result(conn)?;
    let oldest: Option<NaiveDateTime> = kb_outbox::table
        .filter(kb_outbox::state.eq("pending"))
        .select(diesel::dsl::min(kb_outbox::created_at))
        .first(conn)?;
    Ok((n, oldest))
}

/// One end of a graph link: (kind, key, label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub kind: &'static str,
    pub key: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFact {
    pub kind: &'static str,
    pub from: End,
    pub to: End,
}

/// The job as kb gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDoc {
    pub title: String,
    pub body: String,
    pub owner_client: String,
    pub source_ref: String,
    pub links: Vec<LinkFact>,
}

/// The make and model garage knows for the job's vehicle ("King Song S22"); empty when unknown.
fn model_name(make: &str, model: &str) -> String {
    format!("{} {}", make.trim(), model.trim())
        .trim()
        .to_owned()
}

fn end(kind: &'static str, key: &str, label: &str) -> End {
    End {
        kind,
        key: key.to_owned(),
        label: label.to_owned(),
    }
}

/// Renders the job (Markdown) and its structured links: client owns vehicle, vehicle is a
/// make/model, vehicle serviced_in job, job used_part product, product fits make/model.
pub fn render(job: &WorkOrder, notes: &[Note], lines: &[Line], make: &str, model: &str) -> JobDoc {
    let model = model_name(make, model);
    let vehicle = if model.is_empty() || job.vehicle_label.contains(&model) {
        job.vehicle_label.clone()
    } else {
        format!("{} ({model})", job.vehicle_label)
    };
    let mut body = format!("# Job {} — {vehicle}\n\n", job.id);
    body.push_str(&format!("- Vehicle: {vehicle}\n"));
    if !model.is_empty() {
        body.push_str(&format!("- Make and model: {model}\n"));
    }
    body.push_str(&format!(
        "- Status: {} ({})\n",
        job.status.label(),
        job.status.as_str()
    ));
    if !job.services.is_empty() {
        body.push_str(&format!("- Services: {}\n", job.services.join(", ")));
    }
    if !job.assigned_tech.is_empty() {
        body.push_str(&format!("- Technician: {}\n", job.assigned_tech));
    }
    body.push_str(&format!(
        "- Opened: {}\n",
        job.created_at.format("%Y-%m-%d")
    ));
    if !job.problem.trim().is_empty() {
        body.push_str(&format!("\n## Problem\n\n{}\n", job.problem.trim()));
    }
    if !notes.is_empty() {
        body.push_str("\n## Diagnostics notes\n\n");
        for n in notes {
            body.push_str(&format!(
                "- {} ({}): {}\n",
                n.at.format("%Y-%m-%d %H:%M"),
                n.author,
                n.body.trim()
            ));
        }
    }
    let parts: Vec<&Line> = lines.iter().filter(|l| l.kind == "part").collect();
    if !parts.is_empty() {
        body.push_str("\n## Parts used\n\n");
        for p in &parts {
            body.push_str(&format!("- {} × {}\n", p.quantity, p.description));
        }
    }
    let labor: Vec<&Line> = lines.iter().filter(|l| l.kind == "labor").collect();
    if !labor.is_empty() {
        body.push_str("\n## Labor\n\n");
        for l in &labor {
            body.push_str(&format!("- {}\n", l.description));
        }
    }
    let history: Vec<String> = job
        .history
        .iter()
        .filter(|e| !e.note.trim().is_empty())
        .map(|e| {
            format!(
                "- {} → {}: {}\n",
                e.at.format("%Y-%m-%d"),
                e.to.as_str(),
                e.note.trim()
            )
        })
        .collect();
    if !history.is_empty() {
        body.push_str("\n## Status notes\n\n");
        body.push_str(&history.concat());
    }

    let client = end("client", &job.client_id, "");
    let veh = end("vehicle", &job.vehicle_id, &job.vehicle_label);
    let this = end("job", &job.id, &format!("Job {} — {vehicle}", job.id));
    let mut links = vec![LinkFact {
        kind: "owns",
        from: client,
        to: veh.clone(),
    }];
    let model_end = (!model.is_empty()).then(|| end("model", &model, &model));
    if let Some(m) = &model_end {
        links.push(LinkFact {
            kind: "is_model",
            from: veh.clone(),
            to: m.clone(),
        });
    }
    links.push(LinkFact {
        kind: "serviced_in",
        from: veh,
        to: this.clone(),
    });
    for p in &parts {
        let Some(product) = p.product_id.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let part = end("product", product, &p.description);
        if links
            .iter()
            .any(|l| l.kind == "used_part" && l.to.key == part.key)
        {
            continue;
        }
        links.push(LinkFact {
            kind: "used_part",
            from: this.clone(),
            to: part.clone(),
        });
        if let Some(m) = &model_end {
            links.push(LinkFact {
                kind: "fits",
                from: part,
                to: m.clone(),
            });
        }
    }
    JobDoc {
        title: format!("Job {} — {vehicle}", job.id),
        body,
        owner_client: job.client_id.clone(),
        source_ref: format!("job:{}", job.id),
        links,
    }
}

fn to_pb(d: JobDoc) -> kbpb::PutDocumentRequest {
    let r = |e: &End| kbpb::EntityRef {
        kind: e.kind.to_owned(),
        key: e.key.clone(),
    };
    kbpb::PutDocumentRequest {
        title: d.title,
        body: d.body,
        visibility: kbpb::Visibility::Staff.into(),
        format: kbpb::Format::Markdown.into(),
        data: Vec::new(),
        owner_client_id: d.owner_client,
        source_ref: d.source_ref,
        links: d
            .links
            .iter()
            .map(|l| kbpb::Link {
                kind: l.kind.to_owned(),
                from: Some(r(&l.from)),
                to: Some(r(&l.to)),
                from_label: l.from.label.clone(),
                to_label: l.to.label.clone(),
            })
            .collect(),
    }
}

/// The worker that puts queued jobs into kb.
pub struct KbSync {
    pub db: Arc<Database>,
    pub garage: GarageServiceClient<TracedChannel>,
    pub kb: KbServiceClient<TracedChannel>,
    pub worker: WorkerConfig,
}

enum Outcome {
    Delivered,
    Gone(String),
    Retry(String),
}

impl KbSync {
    /// Runs until `stop` resolves: due deliveries every `worker.poll_ms`.
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
                continue;
            }
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "kb outbox round failed");
            }
        }
    }

    /// Delivers what is due now; returns how many rows were handled.
    pub async fn deliver_due(&self) -> Result<usize, DomainError> {
        let now = now_utc();
        let items = self.db.run(move |c| claim(c, 20, now)).await?;
        let n = items.len();
        for item in items {
            let span = tracing::info_span!(
                "kb_sync",
                kb_outbox.id = %item.id,
                job.id = %item.job_id,
                event = %item.event
            );
            self.deliver_one(item).instrument(span).await?;
        }
        Ok(n)
    }

    async fn deliver_one(&self, item: Item) -> Result<(), DomainError> {
        let outcome = self.deliver(&item.job_id).await;
        let (id, attempts, now) = (item.id, item.attempts, now_utc());
        let base = self.worker.retry_base_ms;
        match outcome {
            Outcome::Delivered => {
                tracing::debug!("job put into kb");
                self.db.run(move |c| done(c, &id, "", now)).await
            }
            Outcome::Gone(why) => {
                tracing::info!(reason = %why, "nothing to put into kb");
                self.db.run(move |c| done(c, &id, &why, now)).await
            }
            Outcome::Retry(why) => {
                tracing::warn!(error = %why, attempts = attempts + 1, "kb delivery will be retried");
                self.db
                    .run(move |c| retry_later(c, &id, attempts, &why, now, base).map(|_| ()))
                    .await
            }
        }
    }

    async fn deliver(&self, job_id: &str) -> Outcome {
        let id = job_id.to_owned();
        let facts = self
            .db
            .run(move |c| {
                let job = workorders::get(c, &id, None)?;
                let notes = estimates::notes(c, &id)?;
                let lines = estimates::lines(c, &id)?;
                Ok::<_, DomainError>((job, notes, lines))
            })
            .await;
        let (job, notes, lines) = match facts {
            Ok(f) => f,
            Err(DomainError::NotFound(_)) => {
                return Outcome::Gone("the job no longer exists".into());
            }
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let mut g = self.garage.clone();
        let (make, model) = match omneuro_platform::grpc::call(
            "GarageService/GetVehicle",
            g.get_vehicle(auth::request(
                &Actor::System("jobs".into()),
                garage::GetVehicleRequest {
                    id: job.vehicle_id.clone(),
                },
            )),
        )
        .await
        {
            Ok(v) => {
                let v = v.into_inner();
                (v.make_name, v.model_name)
            }
            // A vehicle garage no longer has: the job keeps its label, without a make and model.
            Err(s) if s.code() == tonic::Code::NotFound => (String::new(), String::new()),
            Err(s) => return Outcome::Retry(format!("garage: {}", s.message())),
        };
        let doc = render(&job, &notes, &lines, &make, &model);
        let mut kb = self.kb.clone();
        match omneuro_platform::grpc::call(
            "KbService/PutDocument",
            kb.put_document(auth::request(&Actor::System("jobs".into()), to_pb(doc))),
        )
        .await
        {
            Ok(_) => Outcome::Delivered,
            // kb refuses this document for good (too large, bad fields): retrying cannot help.
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument | tonic::Code::PermissionDenied
                ) =>
            {
                tracing::error!(error = %s.message(), "kb refused the job's document");
                Outcome::Gone(format!("kb refused it: {}", s.message()))
            }
            Err(s) => Outcome::Retry(format!("kb: {} ({:?})", s.message(), s.code())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workorders::Status;

    fn job() -> WorkOrder {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 3, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .unwrap_or_default();
        WorkOrder {
            id: "job_a".into(),
            client_id: "cli_a".into(),
            vehicle_id: "veh_a".into(),
            vehicle_label: "Blue (Begode Master)".into(),
            status: Status::Diagnosing,
            services: vec!["diagnostics".into()],
            problem: "Cuts out.".into(),
            safety_flag: false,
            assigned_tech: String::new(),
            source: "walk_in".into(),
            status_token: None,
            created_at: at,
            updated_at: at,
            appointment: None,
            history: Vec::new(),
        }
    }

    fn part(product: &str, name: &str) -> Line {
        Line {
            id: "line_1".into(),
            kind: "part".into(),
            description: name.into(),
            product_id: Some(product.into()),
            quantity: 1,
            hours_hundredths: 0,
            unit_price_cents: 100,
            amount_cents: 100,
            currency: "USD".into(),
        }
    }

    #[test]
    fn the_job_document_carries_its_facts_and_links() {
        let notes = vec![Note {
            id: "note_1".into(),
            at: job().created_at,
            author: "stf_tech".into(),
            body: "Phase wire scorched".into(),
        }];
        let lines = vec![part("prd_x", "Phase wire"), part("prd_x", "Phase wire")];
        let d = render(&job(), &notes, &lines, "Begode", "Master");
        assert_eq!(d.source_ref, "job:job_a");
        assert_eq!(d.owner_client, "cli_a");
        for s in [
            "Begode Master",
            "Phase wire scorched",
            "1 × Phase wire",
            "diagnosing",
        ] {
            assert!(d.body.contains(s), "{s} in {}", d.body);
        }
        let kinds: Vec<(&str, &str, &str)> = d
            .links
            .iter()
            .map(|l| (l.kind, l.from.key.as_str(), l.to.key.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("owns", "cli_a", "veh_a"),
                ("is_model", "veh_a", "Begode Master"),
                ("serviced_in", "veh_a", "job_a"),
                ("used_part", "job_a", "prd_x"),
                ("fits", "prd_x", "Begode Master"),
            ]
        );
        // Without a make and model from garage: no model links.
        let bare = render(&job(), &[], &[], "", "");
        assert!(bare.links.iter().all(|l| l.kind != "is_model"));
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(backoff_ms(200, 0), 200);
        assert_eq!(backoff_ms(200, 3), 1_600);
        assert_eq!(backoff_ms(30_000, 10), MAX_RETRY_MS);
        assert_eq!(backoff_ms(30_000, i32::MAX), MAX_RETRY_MS);
    }
}
