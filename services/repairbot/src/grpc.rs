//! `omneuro.repairbot.v1.RepairbotService`: the RPCs and their proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::db::Database;
use omneuro_platform::ids;
use omneuro_proto::common::v1::Timestamp;
use omneuro_proto::repairbot::v1 as pb;
use tonic::{Request, Response, Status};

use crate::conversations::{self, Channel, Conversation};

pub struct Repairbot {
    db: Arc<Database>,
}

impl Repairbot {
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::repairbot_service_server::RepairbotService for Repairbot {
    async fn start_conversation(
        &self,
        req: Request<pb::StartConversationRequest>,
    ) -> Result<Response<pb::StartConversationResponse>, Status> {
        let req = req.into_inner();
        let channel = match pb::Channel::try_from(req.channel) {
            Ok(pb::Channel::Web) => Channel::Web,
            Ok(pb::Channel::Sms) => Channel::Sms,
            Ok(pb::Channel::Voice) => Channel::Voice,
            Ok(pb::Channel::Portal) => Channel::Portal,
            _ => {
                return Err(Status::invalid_argument(
                    "channel must be WEB, SMS, VOICE or PORTAL",
                ));
            }
        };
        let client_id = match req.client_id.trim() {
            "" => None,
            id if ids::is_valid("cli", id) => Some(id.to_owned()),
            id => {
                return Err(Status::invalid_argument(format!(
                    "`{id}` is not a client id (cli_…)"
                )));
            }
        };
        let c = self
            .db
            .run(move |conn| conversations::start(conn, channel, client_id))
            .await?;
        Ok(Response::new(pb::StartConversationResponse {
            conversation: Some(to_pb(c)),
        }))
    }

    async fn get_conversation(
        &self,
        req: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let id = req.into_inner().id;
        if !ids::is_valid("conv", &id) {
            return Err(Status::invalid_argument(format!(
                "`{id}` is not a conversation id (conv_…)"
            )));
        }
        let found = self
            .db
            .run(move |conn| conversations::get(conn, &id))
            .await?;
        let c = found.ok_or_else(|| Status::not_found("no such conversation"))?;
        Ok(Response::new(pb::GetConversationResponse {
            conversation: Some(to_pb(c)),
        }))
    }
}

fn to_pb(c: Conversation) -> pb::Conversation {
    let channel = match c.channel {
        Channel::Web => pb::Channel::Web,
        Channel::Sms => pb::Channel::Sms,
        Channel::Voice => pb::Channel::Voice,
        Channel::Portal => pb::Channel::Portal,
    };
    pb::Conversation {
        id: c.id,
        channel: channel.into(),
        client_id: c.client_id.unwrap_or_default(),
        started_at: Some(Timestamp {
            unix_micros: c.started_at.and_utc().timestamp_micros(),
        }),
    }
}
