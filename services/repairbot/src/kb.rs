//! [`KbSearch`] over kb's `Search` RPC, made as the caller: a client searches as themself (kb gives
//! them shop-wide client-visible documents and their own), a visitor as `system:repairbot` with the
//! CLIENT audience and no client (shop-wide client-visible only), staff as themselves (everything).
//! Staff-only documents therefore never reach a client's or visitor's conversation: kb filters them
//! before they leave kb.
//!
//! [`KbGraph`] over kb's graph RPCs (`PartsForSymptom`, `JobsMentioning`), for staff only: made as
//! the staff member (kb refuses anyone else too).

use omneuro_platform::auth::{self, Actor};
use omneuro_platform::grpc::{TracedChannel, call};
use omneuro_proto::kb::v1 as pb;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;

use crate::tools::{Caller, KbGraph, KbSearch, PartUse, Passage, PastJob};

/// The longest passage handed to the model or shown offline (characters).
const PASSAGE_CHARS: usize = 600;

pub struct KbClient {
    kb: KbServiceClient<TracedChannel>,
}

impl KbClient {
    pub fn new(kb: KbServiceClient<TracedChannel>) -> Self {
        Self { kb }
    }
}

/// Who kb answers for, and as whom the RPC is made.
fn audience(caller: &Caller) -> (Actor, pb::Audience) {
    match caller {
        Caller::Client(id) => (Actor::Client(id.clone()), pb::Audience::Client),
        Caller::Staff(a) => (a.clone(), pb::Audience::Staff),
        Caller::Visitor => (Actor::System(crate::NAME.into()), pb::Audience::Client),
    }
}

#[tonic::async_trait]
impl KbSearch for KbClient {
    async fn search(
        &self,
        caller: &Caller,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Passage>, String> {
        let (actor, audience) = audience(caller);
        let mut kb = self.kb.clone();
        let res = call(
            "KbService/Search",
            kb.search(auth::request(
                &actor,
                pb::SearchRequest {
                    query: query.chars().take(200).collect(),
                    limit: u32::try_from(limit.clamp(1, 10)).unwrap_or(3),
                    audience: audience.into(),
                    client_id: String::new(),
                    // kb's best ranking (hybrid when it has embeddings).
                    mode: pb::SearchMode::Unspecified.into(),
                },
            )),
        )
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?;
        let mut out: Vec<Passage> = Vec::new();
        for h in res.into_inner().hits {
            // One passage per document: the best-scoring chunk (kb returns best first).
            if out.iter().any(|p| p.doc_id == h.document_id) {
                continue;
            }
            let title = if h.heading.is_empty() || h.heading == h.title {
                h.title
            } else {
                format!("{} › {}", h.title, h.heading)
            };
            // Staff open a document in the portal. Clients and visitors only ever get
            // client-visible documents here: a product's opens its shop page, any other its
            // public help page (site's `/help/{doc}` asks kb again as the reader).
            let url = if caller.is_staff() {
                format!("/kb/{}", h.document_id)
            } else if let Some(product) = h.source_ref.strip_prefix("product:").filter(|p| {
                !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }) {
                format!("/shop/p/{product}")
            } else {
                format!("/help/{}", h.document_id)
            };
            out.push(Passage {
                doc_id: h.document_id,
                title,
                text: h.text.chars().take(PASSAGE_CHARS).collect(),
                url,
            });
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl KbGraph for KbClient {
    async fn parts_for_symptom(
        &self,
        staff: &Actor,
        model: &str,
        symptom: &str,
    ) -> Result<Vec<PartUse>, tonic::Status> {
        let mut kb = self.kb.clone();
        let res = call(
            "KbService/PartsForSymptom",
            kb.parts_for_symptom(auth::request(
                staff,
                pb::PartsForSymptomRequest {
                    symptom: symptom.chars().take(200).collect(),
                    model: model.chars().take(120).collect(),
                },
            )),
        )
        .await?;
        Ok(res
            .into_inner()
            .parts
            .into_iter()
            .take(10)
            .map(|p| {
                let part = p.part.unwrap_or_default();
                PartUse {
                    label: if part.label.is_empty() {
                        part.key.clone()
                    } else {
                        part.label
                    },
                    key: part.key,
                    job_ids: p.job_ids.into_iter().take(10).collect(),
                }
            })
            .collect())
    }

    async fn past_jobs(
        &self,
        staff: &Actor,
        model: &str,
        text: &str,
    ) -> Result<Vec<PastJob>, tonic::Status> {
        let mut kb = self.kb.clone();
        let res = call(
            "KbService/JobsMentioning",
            kb.jobs_mentioning(auth::request(
                staff,
                pb::JobsMentioningRequest {
                    make_model: model.chars().take(120).collect(),
                    text: text.chars().take(200).collect(),
                },
            )),
        )
        .await?;
        Ok(res
            .into_inner()
            .jobs
            .into_iter()
            .take(10)
            .map(|m| {
                let job = m.job.unwrap_or_default();
                PastJob {
                    label: if job.label.is_empty() {
                        job.key.clone()
                    } else {
                        job.label
                    },
                    job_id: job.key,
                    document_id: m.document_id,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omneuro_platform::auth::StaffRole;

    #[test]
    fn clients_and_visitors_search_as_clients_staff_as_staff() {
        let (who, aud) = audience(&Caller::Client("cli_a".into()));
        assert_eq!(
            (who, aud),
            (Actor::Client("cli_a".into()), pb::Audience::Client)
        );
        // A visitor is never staff to kb: the client audience with no client (shop-wide only).
        let (who, aud) = audience(&Caller::Visitor);
        assert_eq!(aud, pb::Audience::Client);
        assert!(matches!(who, Actor::System(_)));
        let tech = Actor::Staff {
            id: "stf_1".into(),
            role: StaffRole::Tech,
        };
        assert_eq!(
            audience(&Caller::Staff(tech.clone())),
            (tech, pb::Audience::Staff)
        );
    }
}
