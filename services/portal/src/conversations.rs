//! Repairbot's conversations for staff: the newest first (optionally one client's), and one
//! conversation with every message, the tools each reply called and the records it cited.
//! Read from repairbot (`ListConversations`, `GetConversation`) as the signed-in staff member.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_platform::ids;
use omneuro_proto::repairbot::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::board::when;
use crate::pages::page;
use crate::staff::{Nav, Staff};

const REPAIRBOT_DOWN: &str =
    "The assistant's conversations aren't answering right now. Try again in a minute.";

pub struct ConversationRow {
    pub id: String,
    pub who: String,
    pub channel: &'static str,
    pub messages: u32,
    pub last_message: String,
    pub last_at: String,
}

#[derive(Template)]
#[template(path = "conversations.html")]
struct ListPage {
    nav: Nav,
    client: String,
    rows: Vec<ConversationRow>,
    message: Option<String>,
}

pub struct SourceRow {
    pub label: String,
    /// A portal path when the record has a page here (jobs); else empty.
    pub url: String,
}

pub struct ToolRow {
    pub name: String,
    pub arguments: String,
    pub refused: bool,
}

pub struct MessageRow {
    pub user: bool,
    pub text: String,
    pub mode: &'static str,
    pub at: String,
    pub sources: Vec<SourceRow>,
    pub tools: Vec<ToolRow>,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ShowPage {
    nav: Nav,
    id: String,
    who: String,
    channel: &'static str,
    started: String,
    messages: Vec<MessageRow>,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    client: String,
}

fn channel(c: i32) -> &'static str {
    match pb::Channel::try_from(c) {
        Ok(pb::Channel::Web) => "web",
        Ok(pb::Channel::Sms) => "SMS",
        Ok(pb::Channel::Voice) => "phone",
        Ok(pb::Channel::Portal) => "portal",
        _ => "",
    }
}

/// Who the conversation is with: the client, a tech (the portal's own chat has no client), or
/// a visitor who had not signed in.
fn who(client_id: &str, channel: i32) -> String {
    if !client_id.is_empty() {
        client_id.to_owned()
    } else if channel == pb::Channel::Portal as i32 {
        "staff (the techs' assistant)".into()
    } else {
        "visitor (not signed in)".into()
    }
}

fn mode(m: i32) -> &'static str {
    match pb::ReplyMode::try_from(m) {
        Ok(pb::ReplyMode::Model) => "model",
        Ok(pb::ReplyMode::Offline) => "offline assistant",
        Ok(pb::ReplyMode::Refused) => "refused",
        Ok(pb::ReplyMode::Error) => "error",
        _ => "",
    }
}

fn source_row(s: pb::Source) -> SourceRow {
    let url = if s.kind == "job" && ids::is_valid("job", &s.id) {
        format!("/jobs/{}", s.id)
    } else {
        String::new()
    };
    SourceRow {
        label: if s.label.is_empty() { s.id } else { s.label },
        url,
    }
}

/// GET `/conversations[?client=cli_…]`.
pub async fn list(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<ListQuery>,
) -> HttpResponse {
    let client: String = q.client.trim().chars().take(64).collect();
    let mut t = ListPage {
        nav: staff.nav(&req, &state),
        client: client.clone(),
        rows: Vec::new(),
        message: None,
    };
    let mut bot = state.repairbot.clone();
    let res = grpc::call(
        "RepairbotService/ListConversations",
        bot.list_conversations(auth::request(
            &staff.actor(),
            pb::ListConversationsRequest {
                client_id: client,
                limit: 100,
            },
        )),
    )
    .await;
    let status = match res {
        Ok(r) => {
            t.rows = r
                .into_inner()
                .conversations
                .into_iter()
                .map(|s| {
                    let c = s.conversation.unwrap_or_default();
                    ConversationRow {
                        who: who(&c.client_id, c.channel),
                        channel: channel(c.channel),
                        id: c.id,
                        messages: s.message_count,
                        last_message: s.last_message,
                        last_at: s.last_at.map(|t| when(t.unix_micros)).unwrap_or_default(),
                    }
                })
                .collect();
            StatusCode::OK
        }
        Err(s) => {
            let (status, message) = failure(&s, REPAIRBOT_DOWN);
            t.message = Some(message);
            status
        }
    };
    page(&t, status, &req, &[])
}

/// GET `/conversations/{id}`.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
) -> HttpResponse {
    let id = id.into_inner();
    let mut t = ShowPage {
        nav: staff.nav(&req, &state),
        id: id.chars().take(64).collect(),
        who: String::new(),
        channel: "",
        started: String::new(),
        messages: Vec::new(),
        message: None,
    };
    if !ids::is_valid("conv", &id) {
        t.message = Some("There is no conversation with that number.".into());
        return page(&t, StatusCode::NOT_FOUND, &req, &[]);
    }
    let mut bot = state.repairbot.clone();
    let res = grpc::call(
        "RepairbotService/GetConversation",
        bot.get_conversation(auth::request(
            &staff.actor(),
            pb::GetConversationRequest { id },
        )),
    )
    .await;
    let status = match res {
        Ok(r) => {
            let r = r.into_inner();
            let c = r.conversation.unwrap_or_default();
            t.who = who(&c.client_id, c.channel);
            t.channel = channel(c.channel);
            t.started = c
                .started_at
                .map(|s| when(s.unix_micros))
                .unwrap_or_default();
            t.messages = r
                .messages
                .into_iter()
                .map(|m| MessageRow {
                    user: m.role == "user",
                    mode: mode(m.mode),
                    at: m
                        .created_at
                        .map(|s| when(s.unix_micros))
                        .unwrap_or_default(),
                    text: m.content,
                    sources: m.sources.into_iter().map(source_row).collect(),
                    tools: m
                        .tool_calls
                        .into_iter()
                        .map(|tc| ToolRow {
                            name: tc.name,
                            arguments: tc.arguments.chars().take(300).collect(),
                            refused: tc.refused,
                        })
                        .collect(),
                })
                .collect();
            StatusCode::OK
        }
        Err(s) => {
            let (status, message) = failure(&s, REPAIRBOT_DOWN);
            t.message = Some(message);
            status
        }
    };
    page(&t, status, &req, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_say_who_they_are_with() {
        assert_eq!(who("cli_1", pb::Channel::Web as i32), "cli_1");
        assert_eq!(
            who("", pb::Channel::Portal as i32),
            "staff (the techs' assistant)"
        );
        assert_eq!(who("", pb::Channel::Web as i32), "visitor (not signed in)");
    }
}
