//! The assistant's tools: each one an RPC to the service that owns the data, made **as the
//! caller** (`auth::request(&actor, …)`), so the owning service decides what this person may see.
//! A client asking about someone else's job gets the owning service's refusal, never the job.
//!
//! An anonymous visitor is never forwarded as a system identity to a per-client RPC: repairbot
//! refuses job and order look-ups for visitors itself ("sign in first"). Public look-ups
//! (products, free drop-off slots) are made as `system:repairbot`.
//!
//! `search_kb` sits behind [`KbSearch`] (kb's Search RPC in [`crate::kb`], also made as the
//! caller); without one the tool is not offered.
//!
//! `create_booking` (signed-in clients only) never books: it checks the vehicle (garage, as the
//! client), the services and the slot (jobs' free slots) and returns a [`Proposal`] that the
//! assistant stores; [`Tools::book`] makes the `CreateBooking` call once the client has said yes
//! (ADR 0016).

use std::sync::Arc;

use chrono::Utc;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::grpc::{TracedChannel, call};
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::shop::v1 as shop;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use crate::booking::Proposal;
use crate::conversations::{Source, ToolRecord};
use crate::intent;
use crate::llm::ToolSpec;

/// Who is chatting, as far as tools are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A signed-in client: tools run as this client.
    Client(String),
    /// A staff member: tools run as them (the services apply their role).
    Staff(Actor),
    /// Anyone else (site before sign-in): public look-ups only.
    Visitor,
}

impl Caller {
    pub fn from_actor(actor: &Actor) -> Self {
        match actor {
            Actor::Client(id) => Caller::Client(id.clone()),
            Actor::Staff { .. } => Caller::Staff(actor.clone()),
            Actor::System(_) => Caller::Visitor,
        }
    }

    /// The identity a per-client RPC is made with; `None` for a visitor (refused before calling).
    fn private_actor(&self) -> Option<Actor> {
        match self {
            Caller::Client(id) => Some(Actor::Client(id.clone())),
            Caller::Staff(a) => Some(a.clone()),
            Caller::Visitor => None,
        }
    }

    /// The identity a public look-up is made with.
    fn public_actor(&self) -> Actor {
        self.private_actor()
            .unwrap_or_else(|| Actor::System(crate::NAME.into()))
    }

    pub fn is_staff(&self) -> bool {
        matches!(self, Caller::Staff(_))
    }
}

/// A passage the knowledge base found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub doc_id: String,
    pub title: String,
    pub text: String,
    pub url: String,
}

/// The knowledge base's search, as the assistant needs it. The implementation must filter by the
/// caller: staff-only documents never reach a client's or visitor's conversation.
#[tonic::async_trait]
pub trait KbSearch: Send + Sync {
    async fn search(
        &self,
        caller: &Caller,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Passage>, String>;
}

/// A part kb's graph says was used on past jobs for a symptom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartUse {
    pub key: String,
    pub label: String,
    pub job_ids: Vec<String>,
}

/// A past job kb's graph found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastJob {
    pub job_id: String,
    pub label: String,
    pub document_id: String,
}

/// kb's knowledge graph at the bench, for staff only (the tools are never offered to anyone else,
/// and kb refuses other callers too). Errors are kb's status (INVALID_ARGUMENT for an unknown
/// model name).
#[tonic::async_trait]
pub trait KbGraph: Send + Sync {
    async fn parts_for_symptom(
        &self,
        staff: &Actor,
        model: &str,
        symptom: &str,
    ) -> Result<Vec<PartUse>, tonic::Status>;
    async fn past_jobs(
        &self,
        staff: &Actor,
        model: &str,
        text: &str,
    ) -> Result<Vec<PastJob>, tonic::Status>;
}

/// What a tool produced: the record to store (and hand to the model) and the sources it cites.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub record: ToolRecord,
    pub sources: Vec<Source>,
    /// A booking `create_booking` proposes: stored by the assistant, booked only on the client's yes.
    pub proposal: Option<Proposal>,
}

#[derive(Clone)]
pub struct Tools {
    jobs: JobsServiceClient<TracedChannel>,
    shop: ShopServiceClient<TracedChannel>,
    garage: GarageServiceClient<TracedChannel>,
    kb: Option<Arc<dyn KbSearch>>,
    graph: Option<Arc<dyn KbGraph>>,
}

pub const JOB_STATUS: &str = "job_status";
pub const ORDER_STATUS: &str = "order_status";
pub const PRODUCT_SEARCH: &str = "product_search";
pub const AVAILABLE_SLOTS: &str = "available_slots";
pub const SEARCH_KB: &str = "search_kb";
pub const DROPOFF_RULES: &str = "dropoff_rules";
pub const CREATE_BOOKING: &str = "create_booking";
pub const PARTS_FOR_SYMPTOM: &str = "parts_for_symptom";
pub const PAST_JOBS: &str = "past_jobs";

/// Jobs that are over are listed after the open ones.
const CLOSED: &[&str] = &["delivered", "canceled"];

impl Tools {
    pub fn new(
        jobs: JobsServiceClient<TracedChannel>,
        shop: ShopServiceClient<TracedChannel>,
        garage: GarageServiceClient<TracedChannel>,
        kb: Option<Arc<dyn KbSearch>>,
        graph: Option<Arc<dyn KbGraph>>,
    ) -> Self {
        Self {
            jobs,
            shop,
            garage,
            kb,
            graph,
        }
    }

    /// Whether the knowledge base is connected (search_kb offered).
    pub fn has_kb(&self) -> bool {
        self.kb.is_some()
    }

    /// The tools offered to the model for this caller.
    pub fn specs(&self, caller: &Caller) -> Vec<ToolSpec> {
        let mut v = Vec::new();
        if !matches!(caller, Caller::Visitor) {
            v.push(ToolSpec {
                name: JOB_STATUS,
                description: "Status of the caller's repair jobs. Give job_id (job_…) for one job; leave it out to list the caller's jobs.",
                parameters: json!({"type":"object","properties":{"job_id":{"type":"string"}}}),
            });
            v.push(ToolSpec {
                name: ORDER_STATUS,
                description: "Status of one of the caller's store orders, by order_id (ord_…).",
                parameters: json!({"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}),
            });
        }
        v.push(ToolSpec {
            name: PRODUCT_SEARCH,
            description: "Search the shop's products (parts, tires, batteries, accessories). Optional fitment: make_id (mk_…) and model_id (mdl_…).",
            parameters: json!({"type":"object","properties":{"query":{"type":"string"},"make_id":{"type":"string"},"model_id":{"type":"string"}},"required":["query"]}),
        });
        v.push(ToolSpec {
            name: DROPOFF_RULES,
            description: "The shop's drop-off days and hours (when vehicles can be brought in).",
            parameters: json!({"type":"object","properties":{}}),
        });
        v.push(ToolSpec {
            name: AVAILABLE_SLOTS,
            description: "The next free drop-off windows for booking a repair, with their start times.",
            parameters: json!({"type":"object","properties":{}}),
        });
        if matches!(caller, Caller::Client(_)) {
            v.push(ToolSpec {
                name: CREATE_BOOKING,
                description: "Propose booking a repair drop-off for the client. This does NOT book: it checks the slot and the client must reply yes to the question that follows. date: YYYY-MM-DD (or today/tomorrow/a weekday), start: HH:MM from available_slots; vehicle_id (veh_…) when the client has more than one vehicle; services: service codes (default diagnostics); problem: the client's words.",
                parameters: json!({"type":"object","properties":{"date":{"type":"string"},"start":{"type":"string"},"window_code":{"type":"string"},"vehicle_id":{"type":"string"},"services":{"type":"array","items":{"type":"string"}},"problem":{"type":"string"}},"required":["date","start"]}),
            });
        }
        if self.graph.is_some() && caller.is_staff() {
            v.push(ToolSpec {
                name: PARTS_FOR_SYMPTOM,
                description: "Staff only. Parts used on past jobs of a make/model whose job notes mention the symptom, most jobs first. model: make and model (\"King Song S22\"); symptom: a few words (\"cuts out under load\").",
                parameters: json!({"type":"object","properties":{"model":{"type":"string"},"symptom":{"type":"string"}},"required":["model","symptom"]}),
            });
            v.push(ToolSpec {
                name: PAST_JOBS,
                description: "Staff only. Past jobs on a make/model whose notes contain every word of text. model: make and model; text: words to find.",
                parameters: json!({"type":"object","properties":{"model":{"type":"string"},"text":{"type":"string"}},"required":["model"]}),
            });
        }
        if self.kb.is_some() {
            v.push(ToolSpec {
                name: SEARCH_KB,
                description: "Search the shop's knowledge base (policies, how-tos, diagnostics notes).",
                parameters: json!({"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}),
            });
        }
        v
    }

    /// Runs tool `name` with the model's JSON `arguments` as `caller`. Never fails: a bad argument
    /// or a refusal is a result the model (and the log) can read.
    pub async fn run(&self, caller: &Caller, name: &str, arguments: &str) -> ToolOutcome {
        let args: Value = serde_json::from_str(arguments).unwrap_or(Value::Null);
        let arg = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(200).collect::<String>())
        };
        let mut proposal = None;
        let (result, sources, refused) = match name {
            JOB_STATUS => self.job_status(caller, arg("job_id")).await,
            ORDER_STATUS => self.order_status(caller, arg("order_id")).await,
            PRODUCT_SEARCH => {
                let query = arg("query").unwrap_or_default();
                self.product_search(caller, &query, arg("make_id"), arg("model_id"))
                    .await
            }
            AVAILABLE_SLOTS => self.available_slots(caller).await,
            DROPOFF_RULES => self.dropoff_rules(caller).await,
            SEARCH_KB => {
                self.search_kb(caller, &arg("query").unwrap_or_default())
                    .await
            }
            PARTS_FOR_SYMPTOM | PAST_JOBS => {
                self.graph_lookup(
                    caller,
                    name,
                    &arg("model").unwrap_or_default(),
                    &arg("symptom").or_else(|| arg("text")).unwrap_or_default(),
                )
                .await
            }
            CREATE_BOOKING => {
                let services = match args.get("services") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|s| s.trim().to_lowercase())
                        .filter(|s| !s.is_empty())
                        .take(10)
                        .collect(),
                    Some(Value::String(s)) if !s.trim().is_empty() => {
                        vec![s.trim().to_lowercase()]
                    }
                    _ => Vec::new(),
                };
                let ask = BookingAsk {
                    date: arg("date"),
                    start: arg("start"),
                    window_code: arg("window_code"),
                    vehicle_id: arg("vehicle_id"),
                    vehicle_hint: arg("vehicle_hint"),
                    services,
                    problem: args
                        .get("problem")
                        .and_then(Value::as_str)
                        .map(|p| p.trim().chars().take(2_000).collect())
                        .unwrap_or_default(),
                };
                let (result, sources, refused, p) = self.propose_booking(caller, ask).await;
                proposal = p;
                (result, sources, refused)
            }
            other => (
                json!({"error": format!("there is no tool named `{other}`")}),
                Vec::new(),
                true,
            ),
        };
        ToolOutcome {
            record: ToolRecord {
                name: name.chars().take(64).collect(),
                arguments: arguments.chars().take(2_000).collect(),
                result: result.to_string(),
                refused,
            },
            sources,
            proposal,
        }
    }

    /// `parts_for_symptom` / `past_jobs`: kb's graph, as the staff member; sources link the jobs
    /// in the portal.
    async fn graph_lookup(
        &self,
        caller: &Caller,
        tool: &str,
        model: &str,
        text: &str,
    ) -> (Value, Vec<Source>, bool) {
        let Caller::Staff(actor) = caller else {
            return refusal("That look-up is for the shop's staff only.");
        };
        let Some(graph) = &self.graph else {
            return (
                json!({"error": "The knowledge base is not connected."}),
                Vec::new(),
                false,
            );
        };
        if model.is_empty() {
            return (
                json!({"error": "Name the make and model (\"King Song S22\")."}),
                Vec::new(),
                false,
            );
        }
        let job_source = |id: &str, label: String| Source {
            kind: "job".into(),
            id: id.to_owned(),
            label,
            url: format!("/jobs/{id}"),
        };
        let failed = |s: tonic::Status| match s.code() {
            Code::InvalidArgument | Code::NotFound => {
                (json!({"error": s.message()}), Vec::new(), false)
            }
            _ => unavailable(&s),
        };
        if tool == PARTS_FOR_SYMPTOM {
            if text.is_empty() {
                return (
                    json!({"error": "Say the symptom (\"cuts out under load\")."}),
                    Vec::new(),
                    false,
                );
            }
            match graph.parts_for_symptom(actor, model, text).await {
                Ok(parts) => {
                    let mut sources: Vec<Source> = Vec::new();
                    for id in parts.iter().flat_map(|p| p.job_ids.iter()).take(6) {
                        let s = job_source(id, id.clone());
                        if !sources.contains(&s) {
                            sources.push(s);
                        }
                    }
                    let list: Vec<Value> = parts
                        .iter()
                        .map(|p| json!({"part": p.label, "key": p.key, "jobs": p.job_ids}))
                        .collect();
                    (json!({ "parts": list }), sources, false)
                }
                Err(s) => failed(s),
            }
        } else {
            match graph.past_jobs(actor, model, text).await {
                Ok(jobs) => {
                    let sources = jobs
                        .iter()
                        .take(6)
                        .map(|j| job_source(&j.job_id, j.label.clone()))
                        .collect();
                    let list: Vec<Value> = jobs
                        .iter()
                        .map(|j| json!({"job_id": j.job_id, "label": j.label, "doc_id": j.document_id}))
                        .collect();
                    (json!({ "jobs": list }), sources, false)
                }
                Err(s) => failed(s),
            }
        }
    }

    /// `create_booking`: checks everything `CreateBooking` will (the vehicle is the client's, the
    /// services are offered, the slot is free) and returns the proposal to confirm. Books nothing.
    async fn propose_booking(
        &self,
        caller: &Caller,
        ask: BookingAsk,
    ) -> (Value, Vec<Source>, bool, Option<Proposal>) {
        let book_page = || Source {
            kind: "slots".into(),
            id: "booking".into(),
            label: "Book a drop-off".into(),
            url: "/garage/book".into(),
        };
        let client_id = match caller {
            Caller::Client(id) => id.clone(),
            Caller::Visitor => {
                let (v, _, r) = refusal(
                    "Only a signed-in client can book through the assistant: please sign in, or book at /garage/book.",
                );
                return (v, vec![book_page()], r, None);
            }
            Caller::Staff(_) => {
                let (v, s, r) = refusal(
                    "The assistant books only for the signed-in client. Staff book a client's drop-off from the portal (walk-in or the client's page).",
                );
                return (v, s, r, None);
            }
        };
        let actor = Actor::Client(client_id.clone());
        // Whatever is missing, the booking page is the other way to book.
        let failed = |v: Value| (v, vec![book_page()], false, None);

        // The free slots first: they give the shop's time zone for "tomorrow".
        let mut jobs_client = self.jobs.clone();
        let availability = match call(
            "jobs.ListAvailability",
            jobs_client.list_availability(auth::request(&actor, jobs::ListAvailabilityRequest {})),
        )
        .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => {
                let (v, src, r) = unavailable(&s);
                return (v, src, r, None);
            }
        };
        let free = free_windows(&availability.windows);
        let today = availability
            .timezone
            .parse::<chrono_tz::Tz>()
            .map(|tz| Utc::now().with_timezone(&tz).date_naive())
            .unwrap_or_else(|_| Utc::now().date_naive());
        let day = ask
            .date
            .as_deref()
            .and_then(|d| intent::booking_when(d).day)
            .map(|d| d.resolve(today));
        let start = ask
            .start
            .as_deref()
            .and_then(|t| {
                chrono::NaiveTime::parse_from_str(t, "%H:%M")
                    .ok()
                    .or_else(|| intent::booking_when(&format!("at {t}")).time)
            })
            .map(|t| t.format("%H:%M").to_string());
        let (Some(day), Some(start)) = (day, start) else {
            return failed(json!({
                "error": "Say which day and time to drop off (for example: tomorrow at 10).",
                "free": free,
            }));
        };
        let date = day.format("%Y-%m-%d").to_string();
        let window = availability.windows.iter().find(|w| {
            w.date == date
                && ask
                    .window_code
                    .as_deref()
                    .is_none_or(|c| c == w.window_code)
                && w.slots.iter().any(|s| s.start == start)
        });
        let Some(window) = window.filter(|w| w.remaining > 0) else {
            let why = if window.is_some() {
                format!("{date} at {start} is fully booked.")
            } else {
                format!("There is no drop-off time on {date} at {start}.")
            };
            return failed(json!({
                "error": format!("{why} Pick one of the free times."),
                "free": free,
            }));
        };

        // The vehicle: one of the client's (garage answers for this client only).
        let mut garage_client = self.garage.clone();
        let vehicles = match call(
            "garage.ListVehicles",
            garage_client.list_vehicles(auth::request(
                &actor,
                garage::ListVehiclesRequest::default(),
            )),
        )
        .await
        {
            Ok(r) => r.into_inner().vehicles,
            Err(s) => {
                let (v, src, r) = unavailable(&s);
                return (v, src, r, None);
            }
        };
        let vehicles: Vec<garage::Vehicle> = vehicles.into_iter().filter(|v| !v.archived).collect();
        let vehicle = match pick_vehicle(
            &vehicles,
            ask.vehicle_id.as_deref(),
            ask.vehicle_hint.as_deref(),
        ) {
            Ok(v) => v,
            Err(why) => {
                let list: Vec<Value> = vehicles
                    .iter()
                    .map(|v| json!({"vehicle_id": v.id, "label": v.label}))
                    .collect();
                return failed(json!({ "error": why, "vehicles": list }));
            }
        };

        // The services: offered ones only (jobs checks again when booking).
        let offered = match call(
            "jobs.ListServiceOfferings",
            jobs_client.list_service_offerings(auth::request(
                &actor,
                jobs::ListServiceOfferingsRequest::default(),
            )),
        )
        .await
        {
            Ok(r) => r.into_inner().offerings,
            Err(s) => {
                let (v, src, r) = unavailable(&s);
                return (v, src, r, None);
            }
        };
        let services = match pick_services(&offered, &ask.services) {
            Ok(s) => s,
            Err(why) => {
                let list: Vec<Value> = offered
                    .iter()
                    .map(|o| json!({"code": o.code, "name": o.name}))
                    .collect();
                return failed(json!({ "error": why, "services": list }));
            }
        };
        let names: Vec<String> = services
            .iter()
            .map(|c| {
                offered
                    .iter()
                    .find(|o| &o.code == c)
                    .map(|o| o.name.clone())
                    .unwrap_or_else(|| c.clone())
            })
            .collect();
        let when = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
            .map(|d| d.format("%a %b %-d").to_string())
            .unwrap_or_else(|_| date.clone());
        let summary = format!(
            "your {} ({}), drop-off {when} at {start} ({})",
            vehicle.label,
            names.join(", "),
            window.label
        );
        let proposal = Proposal {
            client_id,
            vehicle_id: vehicle.id.clone(),
            vehicle_label: vehicle.label.clone(),
            services,
            problem: ask.problem,
            date: date.clone(),
            window_code: window.window_code.clone(),
            start: start.clone(),
            summary: summary.clone(),
        };
        (
            json!({
                "proposed": {
                    "vehicle": vehicle.label,
                    "services": names,
                    "date": date,
                    "start": start,
                    "window": window.label,
                },
                "booked": false,
                "next": "Nothing is booked yet. Ask the client to reply yes to book it; any other reply drops it.",
            }),
            Vec::new(),
            false,
            Some(proposal),
        )
    }

    /// The client said yes: `CreateBooking` as the client, for exactly the confirmed proposal.
    pub async fn book(&self, p: &Proposal) -> ToolOutcome {
        let actor = Actor::Client(p.client_id.clone());
        let mut jobs_client = self.jobs.clone();
        let res = call(
            "jobs.CreateBooking",
            jobs_client.create_booking(auth::request(
                &actor,
                jobs::CreateBookingRequest {
                    vehicle_id: p.vehicle_id.clone(),
                    services: p.services.clone(),
                    problem: p.problem.clone(),
                    safety_flag: false,
                    slot: Some(jobs::Slot {
                        date: p.date.clone(),
                        window_code: p.window_code.clone(),
                        start: p.start.clone(),
                        starts_at: None,
                    }),
                },
            )),
        )
        .await;
        let (result, sources, refused) = match res {
            Ok(j) => {
                let j = j.into_inner();
                (
                    json!({"booked": true, "job_id": j.id, "vehicle": j.vehicle_label, "status_label": j.status_label}),
                    vec![Source {
                        kind: "job".into(),
                        id: j.id.clone(),
                        label: format!("{} — {}", j.vehicle_label, j.status_label),
                        url: format!("/garage/jobs/{}", j.id),
                    }],
                    false,
                )
            }
            // jobs' refusals are written for the client ("That window is full…").
            Err(s) => match s.code() {
                Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::AlreadyExists
                | Code::ResourceExhausted
                | Code::NotFound
                | Code::PermissionDenied => (
                    json!({"booked": false, "refused": s.message()}),
                    Vec::new(),
                    true,
                ),
                _ => unavailable(&s),
            },
        };
        let arguments = json!({
            "vehicle_id": p.vehicle_id,
            "services": p.services,
            "date": p.date,
            "window_code": p.window_code,
            "start": p.start,
            "confirmed": true,
        });
        ToolOutcome {
            record: ToolRecord {
                name: CREATE_BOOKING.into(),
                arguments: arguments.to_string(),
                result: result.to_string(),
                refused,
            },
            sources,
            proposal: None,
        }
    }

    async fn job_status(
        &self,
        caller: &Caller,
        job_id: Option<String>,
    ) -> (Value, Vec<Source>, bool) {
        let Some(actor) = caller.private_actor() else {
            return refusal("Only a signed-in client can see their repairs: please sign in.");
        };
        let mut jobs_client = self.jobs.clone();
        let list = match job_id {
            Some(id) => {
                let res = call(
                    "jobs.GetJob",
                    jobs_client.get_job(auth::request(&actor, jobs::GetJobRequest { id })),
                )
                .await;
                match res {
                    Ok(j) => vec![j.into_inner()],
                    Err(s) => return refused_by_owner(&s, "repair job"),
                }
            }
            None if caller.is_staff() => {
                return refusal("Name the job (job_…) to look it up.");
            }
            None => {
                let res = call(
                    "jobs.ListJobs",
                    jobs_client.list_jobs(auth::request(&actor, jobs::ListJobsRequest::default())),
                )
                .await;
                match res {
                    Ok(r) => {
                        let mut jobs = r.into_inner().jobs;
                        jobs.sort_by_key(|j| CLOSED.contains(&j.status.as_str()));
                        jobs.truncate(5);
                        jobs
                    }
                    Err(s) => return refused_by_owner(&s, "repair job"),
                }
            }
        };
        let staff = caller.is_staff();
        let sources = list
            .iter()
            .map(|j| Source {
                kind: "job".into(),
                id: j.id.clone(),
                label: format!("{} — {}", j.vehicle_label, j.status_label),
                url: if staff {
                    format!("/jobs/{}", j.id)
                } else {
                    format!("/garage/jobs/{}", j.id)
                },
            })
            .collect();
        let jobs: Vec<Value> = list
            .iter()
            .map(|j| {
                let appt = j
                    .appointment
                    .as_ref()
                    .map(|a| format!("{} {}", a.date, a.start))
                    .unwrap_or_default();
                json!({
                    "job_id": j.id,
                    "vehicle": j.vehicle_label,
                    "status": j.status,
                    "status_label": j.status_label,
                    "next_step": j.next_step,
                    "services": j.services,
                    "drop_off": appt,
                })
            })
            .collect();
        (json!({ "jobs": jobs }), sources, false)
    }

    async fn order_status(
        &self,
        caller: &Caller,
        order_id: Option<String>,
    ) -> (Value, Vec<Source>, bool) {
        let Some(actor) = caller.private_actor() else {
            return refusal("Only a signed-in client can see their orders: please sign in.");
        };
        let Some(id) = order_id else {
            return (
                json!({"error": "Ask for the order number (ord_…) from the order confirmation email."}),
                Vec::new(),
                false,
            );
        };
        let mut shop_client = self.shop.clone();
        let res = call(
            "shop.GetOrder",
            shop_client.get_order(auth::request(
                &actor,
                shop::GetOrderRequest {
                    id,
                    status_token: String::new(),
                },
            )),
        )
        .await;
        let o = match res {
            Ok(o) => o.into_inner(),
            Err(s) => return refused_by_owner(&s, "order"),
        };
        let items: Vec<Value> = o
            .items
            .iter()
            .map(|i| json!({"product_id": i.product_id, "name": i.name, "quantity": i.quantity}))
            .collect();
        let total = money(o.total.as_ref());
        let source = Source {
            kind: "order".into(),
            id: o.id.clone(),
            label: format!("Order {} — {}", o.id, order_status_label(&o.status)),
            url: if o.status_token.is_empty() {
                String::new()
            } else {
                format!("/shop/orders/{}", o.status_token)
            },
        };
        (
            json!({"order_id": o.id, "status": o.status, "status_label": order_status_label(&o.status), "items": items, "total": total}),
            vec![source],
            false,
        )
    }

    async fn product_search(
        &self,
        caller: &Caller,
        query: &str,
        make_id: Option<String>,
        model_id: Option<String>,
    ) -> (Value, Vec<Source>, bool) {
        let words = query_words(query);
        if words.is_empty() {
            return (
                json!({"error": "Say what to look for (a part, a tire size, a battery)."}),
                Vec::new(),
                false,
            );
        }
        let fits = make_id
            .map(|make_id| {
                vec![shop::Fitment {
                    make_id,
                    model_id: model_id.unwrap_or_default(),
                }]
            })
            .unwrap_or_default();
        let mut shop_client = self.shop.clone();
        let res = call(
            "shop.ListProducts",
            shop_client.list_products(auth::request(
                &caller.public_actor(),
                shop::ListProductsRequest {
                    page: Some(PageRequest {
                        page_size: 200,
                        page_token: String::new(),
                    }),
                    fits,
                    ..Default::default()
                },
            )),
        )
        .await;
        let products = match res {
            Ok(r) => r.into_inner().products,
            Err(s) => return unavailable(&s),
        };
        let found = rank_products(&words, products);
        let sources = found
            .iter()
            .map(|p| Source {
                kind: "product".into(),
                id: p.id.clone(),
                label: p.name.clone(),
                url: format!("/shop/p/{}", p.id),
            })
            .collect();
        let list: Vec<Value> = found
            .iter()
            .map(|p| {
                json!({
                    "product_id": p.id,
                    "name": p.name,
                    "price": money(p.price.as_ref()),
                    "in_stock": p.stock,
                    "category": p.category,
                })
            })
            .collect();
        (json!({ "products": list }), sources, false)
    }

    async fn available_slots(&self, caller: &Caller) -> (Value, Vec<Source>, bool) {
        let mut jobs_client = self.jobs.clone();
        let res = call(
            "jobs.ListAvailability",
            jobs_client.list_availability(auth::request(
                &caller.public_actor(),
                jobs::ListAvailabilityRequest {},
            )),
        )
        .await;
        let r = match res {
            Ok(r) => r.into_inner(),
            Err(s) => return unavailable(&s),
        };
        let windows: Vec<Value> = r
            .windows
            .iter()
            .filter(|w| w.remaining > 0)
            .take(6)
            .map(|w| {
                json!({
                    "date": w.date,
                    "window": w.label,
                    "window_code": w.window_code,
                    "free": w.remaining,
                    "starts": w.slots.iter().map(|s| s.start.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let source = Source {
            kind: "slots".into(),
            id: "booking".into(),
            label: "Book a drop-off".into(),
            url: "/garage/book".into(),
        };
        (
            json!({"timezone": r.timezone, "windows": windows, "book_at": "/garage/book"}),
            vec![source],
            false,
        )
    }

    async fn dropoff_rules(&self, caller: &Caller) -> (Value, Vec<Source>, bool) {
        let mut jobs_client = self.jobs.clone();
        let res = call(
            "jobs.GetBookingRules",
            jobs_client.get_booking_rules(auth::request(
                &caller.public_actor(),
                jobs::GetBookingRulesRequest {},
            )),
        )
        .await;
        let r = match res {
            Ok(r) => r.into_inner(),
            Err(s) => return unavailable(&s),
        };
        let days: Vec<&str> = r.dropoff_days.iter().map(|d| day_name(d)).collect();
        let windows: Vec<String> = r
            .windows
            .iter()
            .filter(|w| w.capacity > 0)
            .map(|w| format!("{} {}–{}", w.label, w.start, w.end))
            .collect();
        let source = Source {
            kind: "slots".into(),
            id: "booking".into(),
            label: "Book a drop-off".into(),
            url: "/garage/book".into(),
        };
        (
            json!({"dropoff_days": days, "windows": windows, "timezone": r.timezone, "book_at": "/garage/book"}),
            vec![source],
            false,
        )
    }

    async fn search_kb(&self, caller: &Caller, query: &str) -> (Value, Vec<Source>, bool) {
        let Some(kb) = &self.kb else {
            return (
                json!({"error": "The knowledge base is not connected."}),
                Vec::new(),
                false,
            );
        };
        match kb.search(caller, query, 3).await {
            Ok(passages) => {
                let sources = passages
                    .iter()
                    .map(|p| Source {
                        kind: "doc".into(),
                        id: p.doc_id.clone(),
                        label: p.title.clone(),
                        url: p.url.clone(),
                    })
                    .collect();
                let list: Vec<Value> = passages
                    .iter()
                    .map(|p| json!({"doc_id": p.doc_id, "title": p.title, "text": p.text}))
                    .collect();
                (json!({ "passages": list }), sources, false)
            }
            Err(e) => {
                tracing::warn!(error = %e, "kb search failed");
                (
                    json!({"error": "The knowledge base is unavailable."}),
                    Vec::new(),
                    false,
                )
            }
        }
    }
}

/// What `create_booking` was asked for (model arguments or the offline rules).
#[derive(Debug, Clone, Default)]
struct BookingAsk {
    date: Option<String>,
    start: Option<String>,
    window_code: Option<String>,
    vehicle_id: Option<String>,
    /// Words naming the vehicle ("my Segway"); the offline rules pass the message.
    vehicle_hint: Option<String>,
    services: Vec<String>,
    problem: String,
}

/// The next free windows, as the model and the offline answer list them.
fn free_windows(windows: &[jobs::WindowAvailability]) -> Vec<Value> {
    windows
        .iter()
        .filter(|w| w.remaining > 0)
        .take(6)
        .map(|w| {
            json!({
                "date": w.date,
                "window": w.label,
                "starts": w.slots.iter().map(|s| s.start.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The vehicle to book: the one named (id or label), the one the hint's words point at, or the
/// only one. Err: what to ask the client.
fn pick_vehicle<'a>(
    vehicles: &'a [garage::Vehicle],
    id: Option<&str>,
    hint: Option<&str>,
) -> Result<&'a garage::Vehicle, String> {
    if vehicles.is_empty() {
        return Err("There is no vehicle in your garage yet: add it at /garage, then book.".into());
    }
    if let Some(id) = id {
        let id_lower = id.to_lowercase();
        return vehicles
            .iter()
            .find(|v| v.id == id || v.label.to_lowercase() == id_lower)
            .ok_or_else(|| {
                "That vehicle isn't in your garage. Which of your vehicles is it?".into()
            });
    }
    if let Some(hint) = hint {
        let words = query_words(hint);
        let matching: Vec<&garage::Vehicle> = vehicles
            .iter()
            .filter(|v| {
                let label = format!("{} {} {}", v.label, v.make_name, v.model_name).to_lowercase();
                words.iter().any(|w| {
                    w.len() >= 3 && label.split(|c: char| !c.is_alphanumeric()).any(|l| l == w)
                })
            })
            .collect();
        if let [one] = matching.as_slice() {
            return Ok(*one);
        }
    }
    match vehicles {
        [one] => Ok(one),
        _ => {
            let labels: Vec<&str> = vehicles.iter().map(|v| v.label.as_str()).collect();
            Err(format!(
                "Which vehicle should I book: {}? Name it, for example: book my {} for tomorrow at 10.",
                labels.join(", "),
                labels.first().copied().unwrap_or("scooter")
            ))
        }
    }
}

/// The service codes to book: the ones asked for (by code or name), else diagnostics.
fn pick_services(
    offered: &[jobs::ServiceOffering],
    asked: &[String],
) -> Result<Vec<String>, String> {
    let offered: Vec<&jobs::ServiceOffering> = offered.iter().filter(|o| o.active).collect();
    if asked.is_empty() {
        return offered
            .iter()
            .find(|o| o.code == "diagnostics")
            .or_else(|| offered.first())
            .map(|o| vec![o.code.clone()])
            .ok_or_else(|| "The shop isn't taking bookings right now; please call.".into());
    }
    let mut codes = Vec::new();
    for a in asked {
        let found = offered
            .iter()
            .find(|o| o.code == *a || o.name.to_lowercase() == *a)
            .ok_or_else(|| {
                format!(
                    "The shop doesn't offer \"{}\". Pick from the list.",
                    a.chars().take(40).collect::<String>()
                )
            })?;
        if !codes.contains(&found.code) {
            codes.push(found.code.clone());
        }
    }
    Ok(codes)
}

fn refusal(why: &str) -> (Value, Vec<Source>, bool) {
    (json!({ "refused": why }), Vec::new(), true)
}

/// The owning service said no (or does not know the record for this caller).
fn refused_by_owner(s: &tonic::Status, what: &str) -> (Value, Vec<Source>, bool) {
    match s.code() {
        Code::NotFound | Code::PermissionDenied | Code::InvalidArgument | Code::Unauthenticated => {
            refusal(&format!(
                "No {what} with that number belongs to this account. The assistant can only look up the caller's own records."
            ))
        }
        _ => unavailable(s),
    }
}

fn unavailable(s: &tonic::Status) -> (Value, Vec<Source>, bool) {
    tracing::warn!(grpc.code = ?s.code(), "tool look-up failed");
    (
        json!({"error": "That look-up is unavailable right now."}),
        Vec::new(),
        false,
    )
}

fn day_name(d: &str) -> &str {
    match d {
        "sun" => "Sunday",
        "mon" => "Monday",
        "tue" => "Tuesday",
        "wed" => "Wednesday",
        "thu" => "Thursday",
        "fri" => "Friday",
        "sat" => "Saturday",
        other => other,
    }
}

pub fn money(m: Option<&Money>) -> String {
    let cents = m.map(|m| m.amount_cents).unwrap_or(0);
    format!("${}.{:02}", cents / 100, (cents % 100).abs())
}

pub fn order_status_label(s: &str) -> &'static str {
    match s {
        "pending_payment" => "waiting for payment",
        "paid" => "paid, being packed",
        "fulfilled" => "shipped / ready",
        "expired" => "expired (not paid)",
        "canceled" => "canceled",
        _ => "in progress",
    }
}

const STOP: &[&str] = &[
    "do", "the", "and", "for", "you", "any", "have", "sell", "stock", "with", "some", "need",
    "want", "looking", "buy", "carry", "your", "what", "which", "does", "get", "can", "got", "are",
    "new",
];

/// Lower-case words of 2+ letters worth matching ("10 inch tube" → ["10", "inch", "tube"]).
pub fn query_words(q: &str) -> Vec<String> {
    q.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 2 && !STOP.contains(w))
        .map(|w| {
            let es = ["xes", "ches", "shes", "sses"]
                .iter()
                .any(|e| w.ends_with(e));
            let singular = if es {
                w.strip_suffix("es")
            } else {
                w.strip_suffix('s')
                    .filter(|s| s.len() >= 3 && !s.ends_with('s'))
            };
            singular.unwrap_or(w).to_owned()
        })
        .take(8)
        .collect()
}

/// The products matching most query words (name counts double), best first, at most five.
pub fn rank_products(words: &[String], products: Vec<shop::Product>) -> Vec<shop::Product> {
    let mut scored: Vec<(usize, shop::Product)> = products
        .into_iter()
        .filter_map(|p| {
            let name = p.name.to_lowercase();
            let rest = format!("{} {} {}", p.description, p.category, p.slug).to_lowercase();
            let score: usize = words
                .iter()
                .map(|w| {
                    if name.contains(w.as_str()) {
                        2
                    } else {
                        usize::from(rest.contains(w.as_str()))
                    }
                })
                .sum();
            (score > 0).then_some((score, p))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.stock.cmp(&a.1.stock)));
    let best = scored.first().map(|s| s.0).unwrap_or(0);
    scored
        .into_iter()
        .filter(|(s, _)| *s * 2 >= best)
        .take(5)
        .map(|(_, p)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_singular_and_stopwords() {
        assert_eq!(
            query_words("Do you have any 10 inch tires?"),
            vec!["10", "inch", "tire"]
        );
        assert_eq!(query_words("boxes"), vec!["box"]);
    }

    #[test]
    fn products_ranked_by_name_first() {
        let p = |id: &str, name: &str, desc: &str| shop::Product {
            id: id.into(),
            name: name.into(),
            description: desc.into(),
            ..Default::default()
        };
        let found = rank_products(
            &query_words("inner tube"),
            vec![
                p("prd_a", "Brake pads", "for disc brakes"),
                p("prd_b", "10\" inner tube", "butyl"),
                p("prd_c", "Tire levers", "to fit a tube"),
            ],
        );
        let ids: Vec<&str> = found.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, vec!["prd_b"]);
    }

    /// A graph that answers the same to anyone who gets through (the tools must keep others out).
    struct FakeGraph;

    #[tonic::async_trait]
    impl KbGraph for FakeGraph {
        async fn parts_for_symptom(
            &self,
            _staff: &Actor,
            _model: &str,
            _symptom: &str,
        ) -> Result<Vec<PartUse>, tonic::Status> {
            Ok(vec![PartUse {
                key: "prd_controller".into(),
                label: "36V controller".into(),
                job_ids: vec!["job_past1".into(), "job_past2".into()],
            }])
        }
        async fn past_jobs(
            &self,
            _staff: &Actor,
            _model: &str,
            _text: &str,
        ) -> Result<Vec<PastJob>, tonic::Status> {
            Ok(vec![PastJob {
                job_id: "job_past1".into(),
                label: "Kaabo Mantis".into(),
                document_id: "doc_1".into(),
            }])
        }
    }

    /// Tools whose services are nowhere (connected lazily; the graph is the fake).
    fn tools() -> Tools {
        let ch = || {
            omneuro_platform::grpc::channel(
                "http://127.0.0.1:9",
                std::time::Duration::from_millis(200),
                std::time::Duration::from_millis(200),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        Tools::new(
            JobsServiceClient::new(ch()),
            ShopServiceClient::new(ch()),
            GarageServiceClient::new(ch()),
            None,
            Some(Arc::new(FakeGraph)),
        )
    }

    fn names(specs: &[ToolSpec]) -> Vec<&'static str> {
        specs.iter().map(|s| s.name).collect()
    }

    fn tech() -> Caller {
        Caller::Staff(Actor::Staff {
            id: "stf_1".into(),
            role: auth::StaffRole::Tech,
        })
    }

    #[tokio::test]
    async fn staff_tools_for_staff_booking_for_clients_only() {
        let t = tools();
        let client = names(&t.specs(&Caller::Client("cli_1".into())));
        assert!(client.contains(&CREATE_BOOKING));
        assert!(!client.contains(&PARTS_FOR_SYMPTOM) && !client.contains(&PAST_JOBS));
        let visitor = names(&t.specs(&Caller::Visitor));
        assert!(!visitor.contains(&CREATE_BOOKING) && !visitor.contains(&PAST_JOBS));
        let staff = names(&t.specs(&tech()));
        assert!(staff.contains(&PARTS_FOR_SYMPTOM) && staff.contains(&PAST_JOBS));
        assert!(!staff.contains(&CREATE_BOOKING));
    }

    #[tokio::test]
    async fn graph_tools_answer_staff_and_refuse_everyone_else() {
        let t = tools();
        let args = r#"{"model":"Kaabo Mantis","symptom":"cuts out"}"#;
        for caller in [Caller::Client("cli_1".into()), Caller::Visitor] {
            let out = t.run(&caller, PARTS_FOR_SYMPTOM, args).await;
            assert!(out.record.refused, "{:?}", out.record);
            assert!(!out.record.result.contains("controller") && out.sources.is_empty());
            let out = t.run(&caller, PAST_JOBS, args).await;
            assert!(out.record.refused && out.sources.is_empty());
        }
        let out = t.run(&tech(), PARTS_FOR_SYMPTOM, args).await;
        assert!(!out.record.refused);
        assert!(
            out.record.result.contains("36V controller"),
            "{}",
            out.record.result
        );
        let links: Vec<&str> = out.sources.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(links, ["/jobs/job_past1", "/jobs/job_past2"]);
        let out = t
            .run(
                &tech(),
                PAST_JOBS,
                r#"{"model":"Kaabo Mantis","text":"throttle"}"#,
            )
            .await;
        assert_eq!(out.sources[0].url, "/jobs/job_past1");
        // A missing model is asked for, not sent to kb.
        let out = t.run(&tech(), PAST_JOBS, "{}").await;
        assert!(
            out.record.result.contains("make and model"),
            "{}",
            out.record.result
        );
    }

    #[tokio::test]
    async fn create_booking_refuses_visitors_and_staff_before_any_call() {
        let t = tools();
        let args = r#"{"date":"tomorrow","start":"10:00"}"#;
        let out = t.run(&Caller::Visitor, CREATE_BOOKING, args).await;
        assert!(out.record.refused && out.proposal.is_none());
        assert!(
            out.record.result.contains("sign in"),
            "{}",
            out.record.result
        );
        assert_eq!(out.sources[0].url, "/garage/book");
        let out = t.run(&tech(), CREATE_BOOKING, args).await;
        assert!(out.record.refused && out.proposal.is_none());
        assert!(
            out.record.result.contains("portal"),
            "{}",
            out.record.result
        );
    }
}
