//! `omneuro.repairbot.v1.RepairbotService`: the RPCs and their proto ⇄ domain mapping.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::db::{Database, DbError};
use omneuro_platform::ids;
use omneuro_proto::common::v1::Timestamp;
use omneuro_proto::repairbot::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::assistant::{Assistant, Event};
use crate::conversations::{
    self, Channel, Conversation, Mode, Source, Speaker, StoredMessage, ToolRecord,
};

pub struct Repairbot {
    db: Arc<Database>,
    assistant: Arc<Assistant>,
}

impl Repairbot {
    pub fn new(db: Arc<Database>, assistant: Arc<Assistant>) -> Self {
        Self { db, assistant }
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<pb::ReplyEvent, Status>> + Send>>;

fn conversation_id(id: &str) -> Result<String, Status> {
    if ids::is_valid("conv", id) {
        Ok(id.to_owned())
    } else {
        Err(Status::invalid_argument(format!(
            "`{}` is not a conversation id (conv_…)",
            id.chars().take(40).collect::<String>()
        )))
    }
}

#[tonic::async_trait]
impl pb::repairbot_service_server::RepairbotService for Repairbot {
    async fn start_conversation(
        &self,
        req: Request<pb::StartConversationRequest>,
    ) -> Result<Response<pb::StartConversationResponse>, Status> {
        let actor = auth::actor(&req)?;
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
        let client_id = match (&actor, req.client_id.trim()) {
            // A client's conversation is always their own.
            (Actor::Client(me), "") => Some(me.clone()),
            (Actor::Client(me), id) if id == me => Some(me.clone()),
            (Actor::Client(_), _) => {
                return Err(Status::permission_denied(
                    "a client can only start their own conversation",
                ));
            }
            (_, "") => None,
            (_, id) if ids::is_valid("cli", id) => Some(id.to_owned()),
            (_, id) => {
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
        let actor = auth::actor(&req)?;
        let id = conversation_id(&req.into_inner().id)?;
        let found = self
            .db
            .run(move |conn| {
                let Some(c) = conversations::get(conn, &id)? else {
                    return Ok::<_, DbError>(None);
                };
                let messages = conversations::history(conn, &id, 1_000)?;
                Ok(Some((c, messages)))
            })
            .await?;
        let (c, messages) = found.ok_or_else(|| Status::not_found("no such conversation"))?;
        if let Some(owner) = &c.client_id
            && !actor.may_see_client(owner)
        {
            // The same answer as a missing one: ids of other clients' conversations are not confirmed.
            return Err(Status::not_found("no such conversation"));
        }
        Ok(Response::new(pb::GetConversationResponse {
            conversation: Some(to_pb(c)),
            messages: messages.into_iter().map(message_to_pb).collect(),
        }))
    }

    async fn send_message(
        &self,
        req: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let id = conversation_id(&r.conversation_id)?;
        let reply = self.assistant.reply(&actor, &id, &r.text, None).await?;
        Ok(Response::new(pb::SendMessageResponse {
            reply: Some(message_to_pb(reply)),
        }))
    }

    type StreamReplyStream = ReplyStream;

    async fn stream_reply(
        &self,
        req: Request<pb::SendMessageRequest>,
    ) -> Result<Response<Self::StreamReplyStream>, Status> {
        let actor = auth::actor(&req)?;
        let r = req.into_inner();
        let id = conversation_id(&r.conversation_id)?;
        let (out, rx) = mpsc::unbounded_channel::<Result<pb::ReplyEvent, Status>>();
        let assistant = self.assistant.clone();
        tokio::spawn(async move {
            let (etx, mut erx) = mpsc::unbounded_channel::<Event>();
            let fut = assistant.reply(&actor, &id, &r.text, Some(etx));
            tokio::pin!(fut);
            let result = loop {
                tokio::select! {
                    biased;
                    Some(ev) = erx.recv() => {
                        let _ = out.send(Ok(event_to_pb(ev)));
                    }
                    res = &mut fut => break res,
                }
            };
            while let Ok(ev) = erx.try_recv() {
                let _ = out.send(Ok(event_to_pb(ev)));
            }
            let last = result.map_err(Status::from).map(|m| pb::ReplyEvent {
                event: Some(pb::reply_event::Event::Done(message_to_pb(m))),
            });
            // The reply is stored either way; a caller that left just misses the last event.
            let _ = out.send(last);
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_conversations(
        &self,
        req: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        // Staff whose role may view clients (docs/ROLES.md); never a client or a fleet caller.
        auth::require(&auth::actor(&req)?, auth::Permission::ViewClients)?;
        let r = req.into_inner();
        let client_id = match r.client_id.trim() {
            "" => None,
            id if ids::is_valid("cli", id) => Some(id.to_owned()),
            id => {
                return Err(Status::invalid_argument(format!(
                    "`{}` is not a client id (cli_…)",
                    id.chars().take(40).collect::<String>()
                )));
            }
        };
        let limit = match r.limit {
            0 => 50,
            n => i64::from(n.min(200)),
        };
        let list = self
            .db
            .run(move |conn| conversations::list(conn, client_id.as_deref(), limit))
            .await?;
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: list
                .into_iter()
                .map(|s| pb::ConversationSummary {
                    conversation: Some(to_pb(s.conversation)),
                    message_count: s.message_count,
                    last_message: s.last_message,
                    last_at: Some(Timestamp {
                        unix_micros: s.last_at.and_utc().timestamp_micros(),
                    }),
                })
                .collect(),
        }))
    }
}

fn event_to_pb(e: Event) -> pb::ReplyEvent {
    pb::ReplyEvent {
        event: Some(match e {
            Event::Token(t) => pb::reply_event::Event::Token(t),
            Event::ToolCall(t) => pb::reply_event::Event::ToolCall(tool_to_pb(t)),
        }),
    }
}

fn tool_to_pb(t: ToolRecord) -> pb::ToolCallRecord {
    pb::ToolCallRecord {
        name: t.name,
        arguments: t.arguments,
        result: t.result,
        refused: t.refused,
    }
}

fn source_to_pb(s: Source) -> pb::Source {
    pb::Source {
        kind: s.kind,
        id: s.id,
        label: s.label,
        url: s.url,
    }
}

fn message_to_pb(m: StoredMessage) -> pb::Message {
    let mode = match m.mode {
        None => pb::ReplyMode::Unspecified,
        Some(Mode::Model) => pb::ReplyMode::Model,
        Some(Mode::Offline) => pb::ReplyMode::Offline,
        Some(Mode::Refused) => pb::ReplyMode::Refused,
        Some(Mode::Error) => pb::ReplyMode::Error,
    };
    pb::Message {
        id: m.id,
        role: match m.speaker {
            Speaker::User => "user",
            Speaker::Assistant => "assistant",
        }
        .into(),
        content: m.content,
        sources: m.sources.into_iter().map(source_to_pb).collect(),
        tool_calls: m.tool_calls.into_iter().map(tool_to_pb).collect(),
        mode: mode.into(),
        created_at: Some(Timestamp {
            unix_micros: m.created_at.and_utc().timestamp_micros(),
        }),
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
