//! The techs' assistant: the same chat as the site's "Ask the shop", with repairbot, for help at
//! the bench (a job's status, the shop's diagnostics notes, parts that fixed a symptom before).
//!
//! - `GET /assistant`: this staff member's conversation so far and a form.
//! - `POST /assistant`: the no-JavaScript path — `SendMessage`, then 303 back to the page.
//! - `POST /assistant/stream`: the reply relayed from `StreamReply` as server-sent events, with
//!   the script and the relay shared with the site (`omneuro_platform::web`).
//! - `POST /assistant/new`: starts afresh (the next message opens a new conversation).
//!
//! The caller repairbot sees is the signed-in staff member (never anything the browser says), so
//! its tools see staff-only knowledge-base documents and any job, and offer the staff-only tools.
//! The conversation (channel PORTAL, no client) is kept in the `jjt_chat` cookie as
//! `stf_….conv_…` and reused only by the same staff member.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Form};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_platform::ids;
use omneuro_platform::web::{self, relay, sse_done, sse_one_error, sse_token, sse_tool};
use omneuro_proto::repairbot::v1 as pb;
use serde::Deserialize;
use tonic::Status;

use crate::Portal;
use crate::pages::{forbidden, page, see_other};
use crate::staff::{Nav, Staff};

pub const CHAT_COOKIE: &str = "jjt_chat";
const REPAIRBOT_DOWN: &str = "The assistant isn't answering right now. Try again in a minute, or look the job up on the board.";
const EMPTY: &str = "Type a question first.";

/// A cited record, linked to its portal page when it has one.
pub struct SourceView {
    pub label: String,
    pub url: String,
}

pub struct MessageView {
    pub mine: bool,
    pub text: String,
    pub sources: Vec<SourceView>,
}

#[derive(Template)]
#[template(path = "assistant.html")]
struct AssistantPage {
    nav: Nav,
    messages: Vec<MessageView>,
    error: String,
    text: String,
    chat_script: &'static str,
}

#[derive(Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Where a source opens in the portal: a job on the board, a knowledge-base document on its
/// page; anything else (a shop product, the public booking page) is shown as text.
fn portal_url(s: &pb::Source) -> String {
    match s.kind.as_str() {
        "job" if ids::is_valid("job", &s.id) => format!("/jobs/{}", s.id),
        "doc" if ids::is_valid("doc", &s.id) => format!("/kb/{}", s.id),
        _ => String::new(),
    }
}

fn sources_view(sources: &[pb::Source]) -> Vec<SourceView> {
    sources
        .iter()
        .map(|s| SourceView {
            label: if s.label.is_empty() {
                s.id.clone()
            } else {
                s.label.clone()
            },
            url: portal_url(s),
        })
        .collect()
}

/// The conversation id in the cookie, when the cookie is this staff member's.
fn cookie_conversation(req: &HttpRequest, staff: &Staff) -> Option<String> {
    let value = web::cookie(req, CHAT_COOKIE)?;
    let (owner, id) = value.split_once('.')?;
    (owner == staff.member().id && ids::is_valid("conv", id)).then(|| id.to_owned())
}

fn chat_cookie(state: &Portal, value: &str) -> String {
    let max_age = if value.is_empty() { Some(0) } else { None };
    web::set_cookie(CHAT_COOKIE, value, max_age, state.environment, false)
}

/// This staff member's conversation with its messages, if the cookie names one that is still a
/// portal chat (not a client's conversation).
async fn current(
    state: &Portal,
    req: &HttpRequest,
    staff: &Staff,
) -> Result<Option<(String, Vec<pb::Message>)>, Status> {
    let Some(id) = cookie_conversation(req, staff) else {
        return Ok(None);
    };
    let mut bot = state.repairbot_replies.clone();
    let res = grpc::call(
        "RepairbotService/GetConversation",
        bot.get_conversation(auth::request(
            &staff.actor(),
            pb::GetConversationRequest { id },
        )),
    )
    .await;
    match res {
        Ok(r) => {
            let r = r.into_inner();
            Ok(r.conversation
                .filter(|c| c.channel == pb::Channel::Portal as i32 && c.client_id.is_empty())
                .map(|c| (c.id, r.messages)))
        }
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(None)
        }
        Err(s) => Err(s),
    }
}

/// The conversation to write to (started when there is none) and the cookie for a new one.
async fn ensure(
    state: &Portal,
    req: &HttpRequest,
    staff: &Staff,
) -> Result<(String, Option<String>), Status> {
    if let Some((id, _)) = current(state, req, staff).await? {
        return Ok((id, None));
    }
    let mut bot = state.repairbot_replies.clone();
    let c = grpc::call(
        "RepairbotService/StartConversation",
        bot.start_conversation(auth::request(
            &staff.actor(),
            pb::StartConversationRequest {
                channel: pb::Channel::Portal.into(),
                client_id: String::new(),
            },
        )),
    )
    .await?
    .into_inner()
    .conversation
    .ok_or_else(|| Status::internal("repairbot started no conversation"))?;
    let cookie = chat_cookie(state, &format!("{}.{}", staff.member().id, c.id));
    Ok((c.id, Some(cookie)))
}

fn friendly(s: &Status) -> (StatusCode, String) {
    failure(s, REPAIRBOT_DOWN)
}

async fn render(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    error: String,
    text: String,
    cookies: &[String],
) -> HttpResponse {
    let (messages, error) = match current(state, req, staff).await {
        Ok(found) => (
            found
                .map(|(_, ms)| {
                    ms.iter()
                        .map(|m| MessageView {
                            mine: m.role == "user",
                            text: m.content.clone(),
                            sources: sources_view(&m.sources),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            error,
        ),
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: conversation not loaded");
            let outage = if error.is_empty() {
                REPAIRBOT_DOWN.to_owned()
            } else {
                error
            };
            (Vec::new(), outage)
        }
    };
    let p = AssistantPage {
        nav: staff.nav(req, state),
        messages,
        error,
        text,
        chat_script: web::CHAT_SCRIPT,
    };
    page(&p, status, req, cookies)
}

/// GET `/assistant`.
pub async fn show(staff: Staff, state: Data<Portal>, req: HttpRequest) -> HttpResponse {
    render(
        &staff,
        &state,
        &req,
        StatusCode::OK,
        String::new(),
        String::new(),
        &[],
    )
    .await
}

/// POST `/assistant`: the no-JavaScript path — send, then back to the page (303).
pub async fn send(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<MessageForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    if form.text.trim().is_empty() {
        let status = StatusCode::BAD_REQUEST;
        return render(&staff, &state, &req, status, EMPTY.into(), form.text, &[]).await;
    }
    let (id, cookie) = match ensure(&state, &req, &staff).await {
        Ok(x) => x,
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: no conversation");
            let (status, msg) = friendly(&s);
            return render(&staff, &state, &req, status, msg, form.text, &[]).await;
        }
    };
    let cookies: Vec<String> = cookie.into_iter().collect();
    let mut bot = state.repairbot_replies.clone();
    let res = grpc::call(
        "RepairbotService/SendMessage",
        bot.send_message(auth::request(
            &staff.actor(),
            pb::SendMessageRequest {
                conversation_id: id,
                text: form.text.clone(),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/assistant#latest", &cookies),
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: message not answered");
            let (status, msg) = friendly(&s);
            render(&staff, &state, &req, status, msg, form.text, &cookies).await
        }
    }
}

/// POST `/assistant/new`: forget the conversation; the next message starts a new one.
pub async fn start_over(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<CsrfForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    see_other("/assistant", &[chat_cookie(&state, "")])
}

/// One of repairbot's reply events as the page's script reads it; sources link into the portal.
fn event_bytes(ev: pb::ReplyEvent) -> Option<Bytes> {
    Some(match ev.event? {
        pb::reply_event::Event::Token(t) => sse_token(&t),
        pb::reply_event::Event::ToolCall(t) => sse_tool(&t.name, t.refused),
        pb::reply_event::Event::Done(m) => {
            let sources: Vec<(String, String)> = sources_view(&m.sources)
                .into_iter()
                .map(|s| (s.label, s.url))
                .collect();
            sse_done(&m.id, &m.content, &sources)
        }
    })
}

/// POST `/assistant/stream`: repairbot's `StreamReply`, relayed event by event.
pub async fn stream_reply(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<MessageForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    if form.text.trim().is_empty() {
        return sse_one_error(EMPTY.into(), &[]);
    }
    let (id, cookie) = match ensure(&state, &req, &staff).await {
        Ok(x) => x,
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: no conversation");
            return sse_one_error(friendly(&s).1, &[]);
        }
    };
    let cookies: Vec<String> = cookie.into_iter().collect();
    let mut bot = state.repairbot_replies.clone();
    let res = grpc::call(
        "RepairbotService/StreamReply",
        bot.stream_reply(auth::request(
            &staff.actor(),
            pb::SendMessageRequest {
                conversation_id: id,
                text: form.text,
            },
        )),
    )
    .await;
    match res {
        Ok(r) => web::event_stream(
            relay(r.into_inner(), event_bytes, |s| friendly(s).1),
            &cookies,
        ),
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: message not answered");
            sse_one_error(friendly(&s).1, &cookies)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(kind: &str, id: &str, url: &str) -> pb::Source {
        pb::Source {
            kind: kind.into(),
            id: id.into(),
            label: String::new(),
            url: url.into(),
        }
    }

    #[test]
    fn sources_link_to_portal_pages_only() {
        assert_eq!(portal_url(&source("job", "job_a1", "")), "/jobs/job_a1");
        assert_eq!(portal_url(&source("doc", "doc_b2", "")), "/kb/doc_b2");
        // The public site's paths and anything malformed are shown as text.
        assert_eq!(portal_url(&source("product", "prd_1", "/shop/p/prd_1")), "");
        assert_eq!(portal_url(&source("job", "job_x/../../x", "")), "");
        assert_eq!(portal_url(&source("doc", "javascript:x", "")), "");
        let done = event_bytes(pb::ReplyEvent {
            event: Some(pb::reply_event::Event::Done(pb::Message {
                id: "msg_1".into(),
                content: "Ready".into(),
                sources: vec![source("job", "job_a1", "/garage/jobs/job_a1")],
                ..Default::default()
            })),
        })
        .unwrap_or_default();
        let text = String::from_utf8_lossy(&done);
        assert!(text.contains("\"url\":\"/jobs/job_a1\""), "{text}");
    }
}
