//! `omneuro.kb.v1.KbService`: who may call what, and the proto ⇄ domain mapping.
//!
//! | RPC | callers |
//! |---|---|
//! | `PutDocument`, `DeleteDocument` | staff who may edit the knowledge base (owner, tech), system workers |
//! | `GetDocument`, `Search` | anyone known; a client only sees client-visible documents that are shop-wide or their own (redacted); staff and system callers may ask for that client audience (site does, for a visitor) |
//! | `ListDocuments` | staff (any role), system workers |
//! | `RebuildIndex` | system callers (`kb rebuild-index`), the owner |
//! | `Neighbours`, `JobsMentioning`, `PartsForSymptom`, `Path` | staff (any role), system workers |

use std::sync::Arc;

use omneuro_platform::auth::{self, Actor, Permission, StaffRole};
use omneuro_platform::db::{self, Database};
use omneuro_platform::ids;
use omneuro_proto::common::v1::Timestamp;
use omneuro_proto::kb::v1 as pb;
use tonic::{Request, Response, Status};

use crate::chunking::{self, ChunkConfig};
use crate::documents::{self, Document, HEADING_SEP, ListQuery, PutOutcome, Visibility};
use crate::extract::SourceFormat;
use crate::graph::{self, EdgeKind, EntityKind, EntityRef};
use crate::redact;
use crate::service::{Audience, Content, Hit, Kb, KbError, PutInput, SearchMode};

impl From<KbError> for Status {
    fn from(e: KbError) -> Self {
        match e {
            KbError::Invalid(m) | KbError::TooLarge(m) => Status::invalid_argument(m),
            KbError::NotFound(m) => Status::not_found(m),
            KbError::Concurrent => Status::aborted(e.to_string()),
            KbError::Db(e) => e.into(),
            KbError::DenseOff(m) => Status::failed_precondition(m),
            KbError::Embed(e) => {
                tracing::warn!(error = %e, "embedding failed");
                Status::unavailable(format!(
                    "dense search cannot answer right now ({e}); try again or ask for BM25"
                ))
            }
            KbError::Index(m) => {
                tracing::error!(error = %m, "search index failed");
                Status::internal(
                    "the search index failed; the change is stored and the index is rebuilt on restart",
                )
            }
        }
    }
}

pub struct KbGrpc {
    kb: Arc<Kb>,
    /// For reads that need no index and no write lock (the document list).
    db: Arc<Database>,
}

impl KbGrpc {
    pub fn new(kb: Arc<Kb>, db: Arc<Database>) -> Self {
        Self { kb, db }
    }
}

fn may_list(actor: &Actor) -> Result<(), Status> {
    match actor {
        Actor::Staff { .. } | Actor::System(_) => Ok(()),
        Actor::Client(_) => Err(Status::permission_denied(
            "the list of documents is for shop staff",
        )),
    }
}

/// The document and its readable sections; for a client audience with the same redaction as
/// search results (title, body, headings and text).
fn readable(mut doc: Document, client_facing: bool) -> (Document, Vec<pb::DocumentSection>) {
    let mut sections = sections(&doc);
    if client_facing {
        doc.title = redact::redact(&doc.title);
        doc.body = redact::redact(&doc.body);
        for s in &mut sections {
            s.heading = redact::redact(&s.heading);
            s.text = redact::redact(&s.text);
        }
    }
    (doc, sections)
}

/// The body as readable sections: one per heading, paragraphs whole (no size limit, no overlap).
fn sections(d: &Document) -> Vec<pb::DocumentSection> {
    let config = ChunkConfig {
        max_chars: d.body.chars().count().max(1),
        overlap_chars: 0,
    };
    chunking::chunk(&d.body, d.format.chunk_format(), config)
        .into_iter()
        .map(|c| pb::DocumentSection {
            heading: c.heading_path.join(HEADING_SEP),
            text: c.text,
        })
        .collect()
}

fn may_write(actor: &Actor) -> Result<(), Status> {
    match actor {
        Actor::Staff { .. } => auth::require(actor, Permission::EditKnowledgeBase),
        Actor::System(_) => Ok(()),
        Actor::Client(_) => Err(Status::permission_denied(
            "only shop staff may change the knowledge base",
        )),
    }
}

fn may_query_graph(actor: &Actor) -> Result<(), Status> {
    match actor {
        Actor::Staff { .. } | Actor::System(_) => Ok(()),
        Actor::Client(_) => Err(Status::permission_denied(
            "the knowledge graph is for shop staff",
        )),
    }
}

fn entity_ref(r: Option<pb::EntityRef>, what: &str) -> Result<EntityRef, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument(format!("name the {what} (kind and key)")))?;
    EntityRef::parse(&r.kind, &r.key).map_err(|m| Status::invalid_argument(format!("{what}: {m}")))
}

fn model_ref(name: &str) -> Result<EntityRef, Status> {
    EntityRef::new(EntityKind::Model, name)
        .map_err(|_| Status::invalid_argument("name the make and model (\"King Song S22\")"))
}

fn links(list: Vec<pb::Link>) -> Result<Vec<graph::Link>, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, l)| {
            let kind = EdgeKind::parse(&l.kind).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "links[{i}]: `{}` is not an edge kind (owns, is_model, serviced_in, used_part, fits, mentions, about)",
                    l.kind
                ))
            })?;
            Ok(graph::Link {
                kind,
                from: entity_ref(l.from, &format!("links[{i}].from"))?,
                to: entity_ref(l.to, &format!("links[{i}].to"))?,
                from_label: l.from_label,
                to_label: l.to_label,
            })
        })
        .collect()
}

fn entity_to_pb(e: graph::Entity) -> pb::Entity {
    pb::Entity {
        kind: e.r.kind.as_str().to_owned(),
        key: e.r.key,
        label: e.label,
    }
}

fn nonempty(s: String) -> Option<String> {
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn visibility(v: i32) -> Result<Visibility, Status> {
    match pb::Visibility::try_from(v) {
        Ok(pb::Visibility::Client) => Ok(Visibility::Client),
        Ok(pb::Visibility::Staff) => Ok(Visibility::Staff),
        _ => Err(Status::invalid_argument(
            "visibility must be CLIENT or STAFF",
        )),
    }
}

fn format(f: i32) -> Result<SourceFormat, Status> {
    match pb::Format::try_from(f) {
        Ok(pb::Format::Unspecified | pb::Format::Text) => Ok(SourceFormat::Text),
        Ok(pb::Format::Markdown) => Ok(SourceFormat::Markdown),
        Ok(pb::Format::Html) => Ok(SourceFormat::Html),
        Ok(pb::Format::Pdf) => Ok(SourceFormat::Pdf),
        Err(_) => Err(Status::invalid_argument(
            "format must be TEXT, MARKDOWN, HTML or PDF",
        )),
    }
}

/// The audience a search or read answers for: a client always for themself; staff and system
/// callers for everyone, or client-facing when they ask (repairbot answering a client).
fn audience(actor: &Actor, asked: i32, client_id: String) -> Result<Audience, Status> {
    let asked = pb::Audience::try_from(asked)
        .map_err(|_| Status::invalid_argument("audience must be STAFF or CLIENT"))?;
    let client_id = nonempty(client_id);
    if let Some(id) = &client_id
        && !ids::is_valid("cli", id)
    {
        return Err(Status::invalid_argument(format!(
            "`{id}` is not a client id (cli_…)"
        )));
    }
    match actor {
        Actor::Client(me) => {
            if asked == pb::Audience::Staff {
                return Err(Status::permission_denied(
                    "a client may not search as staff",
                ));
            }
            if client_id.as_ref().is_some_and(|c| c != me) {
                return Err(Status::permission_denied(
                    "a client may only search their own records",
                ));
            }
            Ok(Audience::Client(Some(me.clone())))
        }
        Actor::Staff { .. } | Actor::System(_) => Ok(match asked {
            pb::Audience::Client => Audience::Client(client_id),
            _ => Audience::Staff,
        }),
    }
}

fn ts(t: chrono::NaiveDateTime) -> Option<Timestamp> {
    Some(Timestamp {
        unix_micros: t.and_utc().timestamp_micros(),
    })
}

fn to_pb(d: Document) -> pb::Document {
    let visibility = match d.visibility {
        Visibility::Client => pb::Visibility::Client,
        Visibility::Staff => pb::Visibility::Staff,
    };
    let format = match d.format {
        SourceFormat::Text => pb::Format::Text,
        SourceFormat::Markdown => pb::Format::Markdown,
        SourceFormat::Html => pb::Format::Html,
        SourceFormat::Pdf => pb::Format::Pdf,
    };
    pb::Document {
        id: d.id,
        title: d.title,
        body: d.body,
        visibility: visibility.into(),
        content_hash: d.content_hash,
        created_at: ts(d.created_at),
        format: format.into(),
        owner_client_id: d.owner_client.unwrap_or_default(),
        source_ref: d.source_ref.unwrap_or_default(),
        updated_at: ts(d.updated_at),
        chunk_count: d.chunk_count,
    }
}

fn hit_to_pb(h: Hit) -> pb::SearchHit {
    let c = h.chunk;
    pb::SearchHit {
        chunk_id: c.id,
        document_id: c.document_id,
        source_ref: c.source_ref.unwrap_or_default(),
        title: c.title,
        heading: c.heading,
        text: c.text,
        snippet: h.snippet,
        score: h.score,
        start_char: u32::try_from(c.start_char).unwrap_or(0),
        end_char: u32::try_from(c.end_char).unwrap_or(0),
    }
}

fn check_doc_id(id: &str) -> Result<(), Status> {
    if ids::is_valid("doc", id) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "`{id}` is not a document id (doc_…)"
        )))
    }
}

#[tonic::async_trait]
impl pb::kb_service_server::KbService for KbGrpc {
    async fn put_document(
        &self,
        req: Request<pb::PutDocumentRequest>,
    ) -> Result<Response<pb::PutDocumentResponse>, Status> {
        may_write(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let visibility = visibility(req.visibility)?;
        let format = format(req.format)?;
        let content = match (req.body.is_empty(), req.data.is_empty()) {
            (false, false) => {
                return Err(Status::invalid_argument(
                    "send the content in `body` or in `data`, not both",
                ));
            }
            (true, false) => Content::Bytes(req.data),
            (false, true) => Content::Text(req.body),
            (true, true) => return Err(Status::invalid_argument("the document is empty")),
        };
        let (stored, outcome) = self
            .kb
            .put(PutInput {
                title: req.title,
                content,
                format,
                visibility,
                owner_client: nonempty(req.owner_client_id),
                source_ref: nonempty(req.source_ref),
                links: links(req.links)?,
            })
            .await?;
        Ok(Response::new(pb::PutDocumentResponse {
            document: Some(to_pb(stored)),
            created: outcome == PutOutcome::Created,
            replaced: outcome == PutOutcome::Replaced,
        }))
    }

    async fn get_document(
        &self,
        req: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::GetDocumentResponse>, Status> {
        let actor = auth::actor(&req)?;
        let req = req.into_inner();
        let id = req.id;
        check_doc_id(&id)?;
        let audience = audience(&actor, req.audience, req.client_id)?;
        let doc = self.kb.get(id, &audience).await?;
        let client_facing = matches!(audience, Audience::Client(_));
        // Sectioning and redacting a long document is CPU work: off the async threads.
        let (doc, sections) = db::blocking(move || readable(doc, client_facing))
            .await
            .map_err(|e| KbError::Index(format!("background task failed: {e}")))?;
        Ok(Response::new(pb::GetDocumentResponse {
            document: Some(to_pb(doc)),
            sections,
        }))
    }

    async fn delete_document(
        &self,
        req: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<pb::DeleteDocumentResponse>, Status> {
        may_write(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let id = match (nonempty(req.id), nonempty(req.source_ref)) {
            (Some(id), None) => {
                check_doc_id(&id)?;
                id
            }
            (None, Some(source)) => self.kb.id_by_source(source).await?,
            _ => {
                return Err(Status::invalid_argument(
                    "name the document by `id` or by `source_ref` (one of them)",
                ));
            }
        };
        let removed = self.kb.delete(id.clone()).await?;
        Ok(Response::new(pb::DeleteDocumentResponse {
            id,
            chunks_removed: removed,
        }))
    }

    async fn search(
        &self,
        req: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let actor = auth::actor(&req)?;
        let req = req.into_inner();
        let audience = audience(&actor, req.audience, req.client_id)?;
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        let mode = match pb::SearchMode::try_from(req.mode) {
            Ok(pb::SearchMode::Unspecified) => SearchMode::Auto,
            Ok(pb::SearchMode::Bm25) => SearchMode::Bm25,
            Ok(pb::SearchMode::Dense) => SearchMode::Dense,
            Ok(pb::SearchMode::Hybrid) => SearchMode::Hybrid,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "search mode {} is not one kb knows",
                    req.mode
                )));
            }
        };
        let (hits, used) = self
            .kb
            .search_with(req.query, limit, audience, mode)
            .await?;
        Ok(Response::new(pb::SearchResponse {
            hits: hits.into_iter().map(hit_to_pb).collect(),
            mode: match used {
                SearchMode::Dense => pb::SearchMode::Dense,
                SearchMode::Hybrid => pb::SearchMode::Hybrid,
                SearchMode::Bm25 | SearchMode::Auto => pb::SearchMode::Bm25,
            }
            .into(),
        }))
    }

    async fn neighbours(
        &self,
        req: Request<pb::NeighboursRequest>,
    ) -> Result<Response<pb::NeighboursResponse>, Status> {
        may_query_graph(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let of = entity_ref(req.entity, "entity")?;
        let kinds = req
            .edge_kinds
            .iter()
            .map(|k| {
                EdgeKind::parse(k)
                    .ok_or_else(|| Status::invalid_argument(format!("`{k}` is not an edge kind")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        let (me, list) = self.kb.neighbours(of, kinds, limit).await?;
        Ok(Response::new(pb::NeighboursResponse {
            entity: Some(entity_to_pb(me)),
            neighbours: list
                .into_iter()
                .map(|n| pb::Neighbour {
                    entity: Some(entity_to_pb(n.entity)),
                    edge_kind: n.edge.as_str().to_owned(),
                    outgoing: n.outgoing,
                    source_refs: n.source_refs,
                })
                .collect(),
        }))
    }

    async fn jobs_mentioning(
        &self,
        req: Request<pb::JobsMentioningRequest>,
    ) -> Result<Response<pb::JobsMentioningResponse>, Status> {
        may_query_graph(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let model = model_ref(&req.make_model)?;
        let jobs = self.kb.jobs_mentioning(model, req.text).await?;
        Ok(Response::new(pb::JobsMentioningResponse {
            jobs: jobs
                .into_iter()
                .map(|m| pb::JobMatch {
                    job: Some(entity_to_pb(m.job)),
                    source_ref: m.source_ref,
                    document_id: m.document_id,
                })
                .collect(),
        }))
    }

    async fn parts_for_symptom(
        &self,
        req: Request<pb::PartsForSymptomRequest>,
    ) -> Result<Response<pb::PartsForSymptomResponse>, Status> {
        may_query_graph(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let model = model_ref(&req.model)?;
        let parts = self.kb.parts_for_symptom(model, req.symptom).await?;
        Ok(Response::new(pb::PartsForSymptomResponse {
            parts: parts
                .into_iter()
                .map(|p| pb::PartUse {
                    part: Some(entity_to_pb(p.part)),
                    job_ids: p.jobs,
                })
                .collect(),
        }))
    }

    async fn path(
        &self,
        req: Request<pb::PathRequest>,
    ) -> Result<Response<pb::PathResponse>, Status> {
        may_query_graph(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let from = entity_ref(req.from, "from")?;
        let to = entity_ref(req.to, "to")?;
        let depth = usize::try_from(req.max_depth).unwrap_or(usize::MAX);
        let steps = self.kb.path(from, to, depth).await?;
        Ok(Response::new(pb::PathResponse {
            found: steps.is_some(),
            steps: steps
                .unwrap_or_default()
                .into_iter()
                .map(|s| pb::PathStep {
                    entity: Some(entity_to_pb(s.entity)),
                    edge_kind: s.edge.map(|e| e.as_str().to_owned()).unwrap_or_default(),
                    forward: s.forward,
                })
                .collect(),
        }))
    }

    async fn list_documents(
        &self,
        req: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        may_list(&auth::actor(&req)?)?;
        let req = req.into_inner();
        let vis = match pb::Visibility::try_from(req.visibility) {
            Ok(pb::Visibility::Unspecified) => None,
            Ok(pb::Visibility::Client) => Some(Visibility::Client),
            Ok(pb::Visibility::Staff) => Some(Visibility::Staff),
            Err(_) => {
                return Err(Status::invalid_argument(
                    "visibility must be CLIENT, STAFF or unspecified (both)",
                ));
            }
        };
        let page = req.page.unwrap_or_default();
        let q = ListQuery::parse(
            vis,
            &req.source_kind,
            &req.title_contains,
            page.page_size,
            &page.page_token,
        )
        .map_err(Status::invalid_argument)?;
        let (docs, next, total) = self.db.run(move |c| documents::list(c, &q)).await?;
        Ok(Response::new(pb::ListDocumentsResponse {
            documents: docs.into_iter().map(to_pb).collect(),
            page: Some(omneuro_proto::common::v1::PageResponse {
                next_page_token: next.unwrap_or_default(),
            }),
            total,
        }))
    }

    async fn rebuild_index(
        &self,
        req: Request<pb::RebuildIndexRequest>,
    ) -> Result<Response<pb::RebuildIndexResponse>, Status> {
        match auth::actor(&req)? {
            Actor::System(_)
            | Actor::Staff {
                role: StaffRole::Owner,
                ..
            } => {}
            _ => {
                return Err(Status::permission_denied(
                    "only the owner or the kb command may rebuild the index",
                ));
            }
        }
        let stats = self.kb.rebuild().await?;
        Ok(Response::new(pb::RebuildIndexResponse {
            documents: u32::try_from(stats.documents).unwrap_or(u32::MAX),
            chunks: u32::try_from(stats.chunks).unwrap_or(u32::MAX),
            duration_ms: stats.duration_ms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str, format: SourceFormat) -> Document {
        let t = chrono::NaiveDateTime::default();
        Document {
            id: "doc_test".into(),
            title: "Call 410-555-0123".into(),
            body: body.into(),
            visibility: Visibility::Client,
            content_hash: String::new(),
            format,
            owner_client: None,
            source_ref: None,
            created_at: t,
            updated_at: t,
            chunk_count: 1,
        }
    }

    #[test]
    fn documents_read_as_whole_sections_and_clients_get_them_redacted() {
        let long = "word ".repeat(600);
        let body = format!(
            "# Care\n\n## Battery\n\nMail ana@example.com.\n\n{long}\n\n## Tires\n\n<b>Pump</b> them."
        );
        let (same, sections) = readable(doc(&body, SourceFormat::Markdown), false);
        assert_eq!(same.body, body);
        assert_eq!(sections.len(), 2, "one per section, however long");
        assert_eq!(sections[0].heading, "Care › Battery");
        assert!(
            sections[0]
                .text
                .starts_with("Mail ana@example.com.\n\nword word")
        );
        let (redacted, sections) = readable(doc(&body, SourceFormat::Markdown), true);
        assert_eq!(redacted.title, "Call [phone]");
        assert!(redacted.body.contains("[email]") && !redacted.body.contains("ana@"));
        assert!(sections[0].text.starts_with("Mail [email]."));
        // HTML reads as its text.
        let (_, sections) = readable(
            doc(
                "<h1>Reset</h1><p>Hold <b>power</b>.</p><script>x()</script>",
                SourceFormat::Html,
            ),
            false,
        );
        assert_eq!(sections.len(), 1);
        assert_eq!(
            (sections[0].heading.as_str(), sections[0].text.as_str()),
            ("Reset", "Hold power.")
        );
    }
}
