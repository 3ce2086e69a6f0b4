//! `omneuro.kb.v1.KbService`: the RPCs and their proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::db::{Database, DbError};
use omneuro_platform::ids;
use omneuro_proto::common::v1::Timestamp;
use omneuro_proto::kb::v1 as pb;
use tonic::{Request, Response, Status};

use crate::documents::{self, Document, NewDocument, Visibility};

pub struct Kb {
    db: Arc<Database>,
}

impl Kb {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::kb_service_server::KbService for Kb {
    async fn put_document(
        &self,
        req: Request<pb::PutDocumentRequest>,
    ) -> Result<Response<pb::PutDocumentResponse>, Status> {
        let req = req.into_inner();
        let visibility = match pb::Visibility::try_from(req.visibility) {
            Ok(pb::Visibility::Client) => Visibility::Client,
            Ok(pb::Visibility::Staff) => Visibility::Staff,
            _ => {
                return Err(Status::invalid_argument(
                    "visibility must be CLIENT or STAFF",
                ));
            }
        };
        let doc = NewDocument::parse(&req.title, &req.body, visibility)
            .map_err(Status::invalid_argument)?;
        let (stored, created) =
            self.db
                .run(move |c| documents::put(c, doc))
                .await
                .map_err(|e| match e {
                    // Two writers of the same body at once: the unique hash makes the loser fail; it can retry.
                    DbError::Query(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => Status::aborted("the same document was stored concurrently; retry"),
                    e => e.into(),
                })?;
        Ok(Response::new(pb::PutDocumentResponse {
            document: Some(to_pb(stored)),
            created,
        }))
    }

    async fn get_document(
        &self,
        req: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::GetDocumentResponse>, Status> {
        let id = req.into_inner().id;
        if !ids::is_valid("doc", &id) {
            return Err(Status::invalid_argument(format!(
                "`{id}` is not a document id (doc_…)"
            )));
        }
        let doc = self
            .db
            .run(move |c| documents::get(c, &id))
            .await?
            .ok_or_else(|| Status::not_found("no such document"))?;
        Ok(Response::new(pb::GetDocumentResponse {
            document: Some(to_pb(doc)),
        }))
    }
}

fn to_pb(d: Document) -> pb::Document {
    let visibility = match d.visibility {
        Visibility::Client => pb::Visibility::Client,
        Visibility::Staff => pb::Visibility::Staff,
    };
    pb::Document {
        id: d.id,
        title: d.title,
        body: d.body,
        visibility: visibility.into(),
        content_hash: d.content_hash,
        created_at: Some(Timestamp {
            unix_micros: d.created_at.and_utc().timestamp_micros(),
        }),
    }
}
