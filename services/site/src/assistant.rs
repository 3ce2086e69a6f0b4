//! "Ask the shop": the chat with repairbot on the public site and in the garage.
//!
//! - `GET /assistant`: the conversation so far and a form.
//! - `POST /assistant`: the no-JavaScript path — the message goes with `SendMessage`, then 303 back
//!   to the page, which shows the reply and its sources as links.
//! - `POST /assistant/stream`: the same message, the reply relayed from `StreamReply` as
//!   server-sent events (`token`, `tool`, `done` with the sources, or a friendly `error`) as they
//!   come; never buffered. A POST (not an `EventSource` GET) so the message never lands in a URL or
//!   an access log and the form's CSRF check applies unchanged; the page's script reads the
//!   `text/event-stream` body with `fetch`. The relay and the page's script are shared with the
//!   portal's assistant (`omneuro_platform::web`); only how an event reads is this page's.
//!
//! Who is chatting is decided here, never by the browser: the signed-in client (the `jj_session`
//! cookie, checked with garage) or an anonymous visitor (site's own identity, so repairbot only
//! does public look-ups). The conversation id is kept in the `jj_chat` cookie and only reused while
//! it belongs to the same person; the browser sends nothing but the text.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Form, ServiceConfig, get, post};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_platform::web::{self, relay, safe_path, sse_done, sse_one_error, sse_token, sse_tool};
use omneuro_proto::repairbot::v1 as pb;
use serde::Deserialize;
use tonic::Status;

use crate::pages::SiteState;
use crate::visitor::{Chrome, Visitor, forbidden, page, see_other, site_actor};

pub const CHAT_COOKIE: &str = "jj_chat";
/// How long the browser keeps the conversation (30 days).
const CHAT_COOKIE_SECS: i64 = 30 * 24 * 3600;
const OUTAGE: &str =
    "The assistant is taking a break right now. Please try again in a minute, or call the shop.";
const SIGN_IN_UNKNOWN: &str =
    "We can't check your sign-in right now. Please try again in a minute.";

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/assistant", get().to(show))
        .route("/assistant", post().to(send))
        .route("/assistant/stream", post().to(stream_reply));
}

/// A cited record, as the page links it. Only site-relative paths become links.
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
struct AssistantPage<'a> {
    chrome: Chrome<'a>,
    signed_in: bool,
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

fn sources_view(sources: &[pb::Source]) -> Vec<SourceView> {
    sources
        .iter()
        .map(|s| SourceView {
            label: if s.label.is_empty() {
                s.id.clone()
            } else {
                s.label.clone()
            },
            // A path on this site (`/garage/jobs/…`), never another origin or scheme.
            url: safe_path(&s.url),
        })
        .collect()
}

/// The identity repairbot sees: the client, or site itself for a visitor.
fn caller(v: &Visitor) -> Actor {
    v.actor().unwrap_or_else(site_actor)
}

/// Whether conversation `c` is this visitor's: the client's own, or an anonymous one for a visitor.
fn belongs(c: &pb::Conversation, v: &Visitor) -> bool {
    match &v.client {
        Some(client) => c.client_id == client.id,
        None => c.client_id.is_empty(),
    }
}

/// The conversation in the `jj_chat` cookie, with its messages, when it is still this visitor's.
async fn current(
    state: &SiteState,
    req: &HttpRequest,
    v: &Visitor,
) -> Result<Option<(String, Vec<pb::Message>)>, Status> {
    let Some(id) = web::cookie(req, CHAT_COOKIE).filter(|id| id.len() <= 64) else {
        return Ok(None);
    };
    let mut bot = state.upstreams.repairbot.clone();
    let res = grpc::call(
        "RepairbotService/GetConversation",
        bot.get_conversation(auth::request(&caller(v), pb::GetConversationRequest { id })),
    )
    .await;
    match res {
        Ok(r) => {
            let r = r.into_inner();
            Ok(r.conversation
                .filter(|c| belongs(c, v))
                .map(|c| (c.id, r.messages)))
        }
        // Gone, someone else's, or malformed: start afresh.
        Err(s) if grpc_refusal(&s) => Ok(None),
        Err(s) => Err(s),
    }
}

fn grpc_refusal(s: &Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::NotFound | tonic::Code::PermissionDenied | tonic::Code::InvalidArgument
    )
}

/// This visitor's conversation, started when there is none; plus the cookie to set for a new one.
async fn ensure(
    state: &SiteState,
    req: &HttpRequest,
    v: &Visitor,
) -> Result<(String, Option<String>), Status> {
    if let Some((id, _)) = current(state, req, v).await? {
        return Ok((id, None));
    }
    let mut bot = state.upstreams.repairbot.clone();
    let c = grpc::call(
        "RepairbotService/StartConversation",
        bot.start_conversation(auth::request(
            &caller(v),
            pb::StartConversationRequest {
                channel: pb::Channel::Web.into(),
                client_id: String::new(),
            },
        )),
    )
    .await?
    .into_inner()
    .conversation
    .ok_or_else(|| Status::internal("repairbot started no conversation"))?;
    let cookie = web::set_cookie(
        CHAT_COOKIE,
        &c.id,
        Some(CHAT_COOKIE_SECS),
        state.environment,
        false,
    );
    Ok((c.id, Some(cookie)))
}

/// A failed call in a sentence a person can act on.
fn friendly(s: &Status) -> (StatusCode, String) {
    failure(s, OUTAGE)
}

async fn render(
    state: &SiteState,
    req: &HttpRequest,
    mut v: Visitor,
    status: StatusCode,
    error: String,
    text: String,
) -> HttpResponse {
    let (messages, error) = match current(state, req, &v).await {
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
            (
                Vec::new(),
                if error.is_empty() {
                    OUTAGE.to_owned()
                } else {
                    error
                },
            )
        }
    };
    v.form_csrf(state, req);
    let p = AssistantPage {
        chrome: v.chrome(&state.links),
        signed_in: v.client.is_some(),
        messages,
        error,
        text,
        chat_script: web::CHAT_SCRIPT,
    };
    page(&p, status, req, &v.cookies)
}

async fn show(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    render(
        &state,
        &req,
        v,
        StatusCode::OK,
        String::new(),
        String::new(),
    )
    .await
}

/// The no-JavaScript path: send, then back to the page (303), which shows the reply.
async fn send(state: Data<SiteState>, req: HttpRequest, form: Form<MessageForm>) -> HttpResponse {
    let mut v = Visitor::of(&state, &req).await;
    let form = form.into_inner();
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    if v.garage_down {
        let err = SIGN_IN_UNKNOWN.to_owned();
        return render(
            &state,
            &req,
            v,
            StatusCode::SERVICE_UNAVAILABLE,
            err,
            form.text,
        )
        .await;
    }
    let (id, cookie) = match ensure(&state, &req, &v).await {
        Ok(x) => x,
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: no conversation");
            let (status, msg) = friendly(&s);
            return render(&state, &req, v, status, msg, form.text).await;
        }
    };
    v.cookies.extend(cookie);
    let mut bot = state.upstreams.repairbot.clone();
    let res = grpc::call(
        "RepairbotService/SendMessage",
        bot.send_message(auth::request(
            &caller(&v),
            pb::SendMessageRequest {
                conversation_id: id,
                text: form.text.clone(),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/assistant#latest", &v.cookies),
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: message not answered");
            let (status, msg) = friendly(&s);
            render(&state, &req, v, status, msg, form.text).await
        }
    }
}

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

/// The streaming path: repairbot's `StreamReply`, relayed event by event.
async fn stream_reply(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<MessageForm>,
) -> HttpResponse {
    let mut v = Visitor::of(&state, &req).await;
    let form = form.into_inner();
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    if v.garage_down {
        return sse_one_error(SIGN_IN_UNKNOWN.to_owned(), &v.cookies);
    }
    let (id, cookie) = match ensure(&state, &req, &v).await {
        Ok(x) => x,
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: no conversation");
            return sse_one_error(friendly(&s).1, &v.cookies);
        }
    };
    v.cookies.extend(cookie);
    let mut bot = state.upstreams.repairbot.clone();
    let res = grpc::call(
        "RepairbotService/StreamReply",
        bot.stream_reply(auth::request(
            &caller(&v),
            pb::SendMessageRequest {
                conversation_id: id,
                text: form.text,
            },
        )),
    )
    .await;
    let replies = match res {
        Ok(r) => r.into_inner(),
        Err(s) => {
            tracing::warn!(error = %s, "repairbot: message not answered");
            return sse_one_error(friendly(&s).1, &v.cookies);
        }
    };
    web::event_stream(relay(replies, event_bytes, |s| friendly(s).1), &v.cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_done_event_links_only_site_paths() {
        let done = event_bytes(pb::ReplyEvent {
            event: Some(pb::reply_event::Event::Done(pb::Message {
                id: "msg_1".into(),
                content: "Ready".into(),
                sources: vec![pb::Source {
                    kind: "job".into(),
                    id: "job_1".into(),
                    label: "Segway".into(),
                    url: "javascript:x".into(),
                }],
                ..Default::default()
            })),
        })
        .unwrap_or_default();
        let text = String::from_utf8_lossy(&done);
        assert!(text.starts_with("event: done\n"), "{text}");
        assert!(text.contains("\"url\":\"\""), "{text}");
    }
}
