//! Jobs into the knowledge base (ADR 0014, ADR 0020). Every change kb should know about (a job
//! created, a status change, a diagnostics note, a part or labor line added or removed) writes a
//! `kb_outbox` row in the change's own transaction ([`enqueue`]). The shared worker
//! ([`omneuro_platform::kb_outbox::Worker`]) claims due rows with a lease and asks [`JobDocs`] for
//! the job as it is now; it goes into kb as `system:jobs` with `source_ref = "job:<id>"` — one
//! document per job, replaced on every delivery, so a repeated or out-of-order delivery is
//! harmless. While kb (or garage, for the make and model) cannot be reached the rows wait and are
//! retried with backoff; they are never given up.

use std::sync::Arc;

use chrono::NaiveDateTime;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::db::{Database, DbConnection};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::TracedChannel;
use omneuro_platform::kb_outbox::{Doc, End, LinkFact, Outbox, Render, Renderer, Visibility};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;

use crate::estimates::{self, Line, Note};
use crate::workorders::{self, WorkOrder};

/// jobs' `kb_outbox`: it came first, and names its key column `job_id` (the bare job id).
pub const OUTBOX: Outbox = Outbox::with_key_column("job_id");

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
    Ok(OUTBOX.enqueue(conn, job_id, event.as_str(), now)?)
}

/// The make and model garage knows for the job's vehicle ("King Song S22"); empty when unknown.
fn model_name(make: &str, model: &str) -> String {
    format!("{} {}", make.trim(), model.trim())
        .trim()
        .to_owned()
}

fn end(kind: &'static str, key: &str, label: &str) -> End {
    End::new(kind, key, label)
}

/// Renders the job (Markdown) and its structured links: client owns vehicle, vehicle is a
/// make/model, vehicle serviced_in job, job used_part product, product fits make/model.
pub fn render(job: &WorkOrder, notes: &[Note], lines: &[Line], make: &str, model: &str) -> Doc {
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
    Doc {
        title: format!("Job {} — {vehicle}", job.id),
        body,
        visibility: Visibility::Staff,
        owner_client: job.client_id.clone(),
        source_ref: format!("job:{}", job.id),
        links,
    }
}

/// Renders a queued job for the shared worker: staff-only, owned by the job's client.
pub struct JobDocs {
    pub db: Arc<Database>,
    pub garage: GarageServiceClient<TracedChannel>,
}

impl Renderer for JobDocs {
    async fn render(&self, job_id: &str) -> Render {
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
                return Render::Nothing("the job no longer exists".into());
            }
            Err(e) => return Render::Retry(e.to_string()),
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
            Err(s) => return Render::Retry(format!("garage: {}", s.message())),
        };
        Render::Put(render(&job, &notes, &lines, &make, &model))
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
}
