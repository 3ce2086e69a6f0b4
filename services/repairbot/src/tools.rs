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

use std::sync::Arc;

use omneuro_platform::auth::{self, Actor};
use omneuro_platform::grpc::{TracedChannel, call};
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::shop::v1 as shop;
use omneuro_proto::shop::v1::shop_service_client::ShopServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use crate::conversations::{Source, ToolRecord};
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

/// What a tool produced: the record to store (and hand to the model) and the sources it cites.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub record: ToolRecord,
    pub sources: Vec<Source>,
}

#[derive(Clone)]
pub struct Tools {
    jobs: JobsServiceClient<TracedChannel>,
    shop: ShopServiceClient<TracedChannel>,
    kb: Option<Arc<dyn KbSearch>>,
}

pub const JOB_STATUS: &str = "job_status";
pub const ORDER_STATUS: &str = "order_status";
pub const PRODUCT_SEARCH: &str = "product_search";
pub const AVAILABLE_SLOTS: &str = "available_slots";
pub const SEARCH_KB: &str = "search_kb";
pub const DROPOFF_RULES: &str = "dropoff_rules";

/// Jobs that are over are listed after the open ones.
const CLOSED: &[&str] = &["delivered", "canceled"];

impl Tools {
    pub fn new(
        jobs: JobsServiceClient<TracedChannel>,
        shop: ShopServiceClient<TracedChannel>,
        kb: Option<Arc<dyn KbSearch>>,
    ) -> Self {
        Self { jobs, shop, kb }
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
            description: "The next free drop-off windows for booking a repair.",
            parameters: json!({"type":"object","properties":{}}),
        });
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
            .map(|w| json!({"date": w.date, "window": w.label, "free": w.remaining}))
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
}
