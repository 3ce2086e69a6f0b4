//! What the page-serving services (site, portal) share about people in browsers: cookies, CSRF
//! protection for every state-changing form, and the client's IP behind nginx.
//!
//! Cookies are host-only (no `Domain`), `HttpOnly`, `Path=/`, `SameSite=Lax` (the CSRF cookie
//! `Strict`) and `Secure` in production, so a public-site cookie never reaches the tech host and
//! the reverse.
//!
//! CSRF: a signed-in form carries a token derived from the session secret (unforgeable without
//! the HttpOnly cookie); an anonymous form (sign-in) carries the value of a random `Strict` cookie
//! (double submit). Either way a POST whose `Origin` is another site is refused.
//!
//! Server-sent events ([`sse`], [`relay`], [`event_stream`]) and [`CHAT_SCRIPT`]: the assistant
//! pages of site and portal relay repairbot's `StreamReply` to the browser the same way; each page
//! only says how one of its events reads ([`relay`]'s `to_event`).

use std::convert::Infallible;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::{Stream, stream};

use crate::config::Environment;
use crate::ids;

pub const CSRF_COOKIE: &str = "omneuro_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value. `max_age` None makes a browser-session cookie; `Some(0)` deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    environment: Environment,
    strict: bool,
) -> String {
    let mut c = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={}",
        if strict { "Strict" } else { "Lax" }
    );
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={}", s.max(0)));
    }
    if environment == Environment::Production {
        c.push_str("; Secure");
    }
    c
}

/// The browser's address: nginx's `X-Real-IP` when the request came through the local edge,
/// otherwise the peer address.
pub fn client_ip(req: &HttpRequest) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    if peer.is_some_and(|ip| ip.is_loopback())
        && let Some(ip) = req
            .headers()
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 64 && v.parse::<std::net::IpAddr>().is_ok())
    {
        return ip.to_owned();
    }
    peer.map(|ip| ip.to_string()).unwrap_or_default()
}

/// The CSRF token a form must carry, and a cookie to set when an anonymous visitor has none yet.
pub struct Csrf {
    pub token: String,
    pub set_cookie: Option<String>,
}

fn session_bound(session: &str) -> String {
    ids::secret_hash(&format!("csrf:{session}"))[..32].to_owned()
}

/// The token for forms on this page: bound to `session` when signed in, else the CSRF cookie.
pub fn csrf(req: &HttpRequest, session: Option<&str>, environment: Environment) -> Csrf {
    if let Some(s) = session {
        return Csrf {
            token: session_bound(s),
            set_cookie: None,
        };
    }
    match cookie(req, CSRF_COOKIE).filter(|v| ids::is_secret_shaped(v)) {
        Some(token) => Csrf {
            token,
            set_cookie: None,
        },
        None => {
            let token = ids::new_secret();
            let set = set_cookie(CSRF_COOKIE, &token, None, environment, true);
            Csrf {
                token,
                set_cookie: Some(set),
            }
        }
    }
}

/// Whether a POST may change anything: same-origin (when the browser says) and the right token.
pub fn csrf_ok(
    req: &HttpRequest,
    session: Option<&str>,
    submitted: &str,
    own_origin: &str,
) -> bool {
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        && origin != "null"
        && !own_origin
            .trim_end_matches('/')
            .eq_ignore_ascii_case(origin)
    {
        return false;
    }
    let expected = match session {
        Some(s) => Some(session_bound(s)),
        None => cookie(req, CSRF_COOKIE),
    };
    expected.is_some_and(|e| {
        !submitted.is_empty() && constant_time_eq(e.as_bytes(), submitted.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------
// Server-sent events.

/// The assistant pages' script (streams a reply into `#chat` from the form `#chat-form`'s action
/// + `/stream`); pages put it in a `<script>` element unescaped.
pub const CHAT_SCRIPT: &str = include_str!("chat.js");

/// One server-sent event; `data` is JSON, so it is always one line.
pub fn sse(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The chat's events, as [`CHAT_SCRIPT`] reads them: a piece of the reply's text ...
pub fn sse_token(text: &str) -> Bytes {
    sse("token", &serde_json::json!({ "text": text }))
}

/// ... a look-up made (the browser learns that it happened, not what came back) ...
pub fn sse_tool(name: &str, refused: bool) -> Bytes {
    sse(
        "tool",
        &serde_json::json!({ "name": name, "refused": refused }),
    )
}

/// ... and the stored reply with its sources as (label, link); an empty link is shown as text.
pub fn sse_done(id: &str, text: &str, sources: &[(String, String)]) -> Bytes {
    let sources: Vec<serde_json::Value> = sources
        .iter()
        .map(|(label, url)| serde_json::json!({ "label": label, "url": url }))
        .collect();
    sse(
        "done",
        &serde_json::json!({ "id": id, "text": text, "sources": sources }),
    )
}

/// The `error` event the chat script shows in place of the reply.
pub fn sse_error(message: &str) -> Bytes {
    sse("error", &serde_json::json!({ "message": message }))
}

/// A `text/event-stream` response that passes every event on at once (nginx too), with `cookies`.
pub fn event_stream(
    body: impl Stream<Item = Result<Bytes, Infallible>> + 'static,
    cookies: &[String],
) -> HttpResponse {
    let mut b = HttpResponse::Ok();
    b.content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"));
    for c in cookies {
        b.append_header(("set-cookie", c.as_str()));
    }
    b.streaming(body)
}

/// An event stream of a single `error` event (the call could not start).
pub fn sse_one_error(message: String, cookies: &[String]) -> HttpResponse {
    event_stream(
        stream::once(async move { Ok(sse_error(&message)) }),
        cookies,
    )
}

/// A gRPC server stream as server-sent events, one by one as they arrive (never buffered):
/// `to_event` turns a message into an event (or skips it); a broken stream ends with an `error`
/// event saying `on_error`.
pub fn relay<T: Send + 'static>(
    replies: tonic::Streaming<T>,
    to_event: fn(T) -> Option<Bytes>,
    on_error: fn(&tonic::Status) -> String,
) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static {
    stream::unfold(Some(replies), move |replies| async move {
        let mut replies = replies?;
        loop {
            match replies.message().await {
                Ok(Some(m)) => {
                    if let Some(bytes) = to_event(m) {
                        return Some((Ok(bytes), Some(replies)));
                    }
                }
                Ok(None) => return None,
                Err(s) => {
                    tracing::warn!(error = %s, "reply stream broke");
                    return Some((Ok(sse_error(&on_error(&s))), None));
                }
            }
        }
    })
}

/// A link a page may show from another service's data: a path on this host (`/jobs/…`), never
/// another origin or scheme; anything else is empty (shown as text).
pub fn safe_path(url: &str) -> String {
    if url.starts_with('/') && !url.starts_with("//") && !url.contains('\\') {
        url.to_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn cookies_are_read_and_written_safely() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "a=1; jj_session=abc; b=2"))
            .to_http_request();
        assert_eq!(cookie(&req, "jj_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&req, "nope"), None);
        let dev = set_cookie("s", "v", Some(60), Environment::Development, false);
        assert_eq!(dev, "s=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
        let prod = set_cookie("s", "v", None, Environment::Production, true);
        assert!(prod.ends_with("SameSite=Strict; Secure"));
    }

    #[test]
    fn csrf_needs_the_token_and_the_same_origin() {
        let session = ids::new_secret();
        let t = csrf(
            &TestRequest::default().to_http_request(),
            Some(&session),
            Environment::Development,
        );
        let same = TestRequest::default()
            .insert_header((header::ORIGIN, "http://localhost:8080"))
            .to_http_request();
        assert!(csrf_ok(
            &same,
            Some(&session),
            &t.token,
            "http://localhost:8080/"
        ));
        assert!(!csrf_ok(
            &same,
            Some(&session),
            "forged",
            "http://localhost:8080"
        ));
        assert!(!csrf_ok(
            &same,
            Some(&ids::new_secret()),
            &t.token,
            "http://localhost:8080"
        ));
        let evil = TestRequest::default()
            .insert_header((header::ORIGIN, "https://evil.example"))
            .to_http_request();
        assert!(!csrf_ok(
            &evil,
            Some(&session),
            &t.token,
            "http://localhost:8080"
        ));

        // Anonymous: the double-submit cookie.
        let fresh = csrf(
            &TestRequest::default().to_http_request(),
            None,
            Environment::Development,
        );
        let cookie_value = fresh.set_cookie.unwrap();
        assert!(cookie_value.contains("SameSite=Strict"));
        let back = TestRequest::default()
            .insert_header((header::COOKIE, format!("{CSRF_COOKIE}={}", fresh.token)))
            .to_http_request();
        assert!(csrf_ok(&back, None, &fresh.token, "http://localhost:8080"));
        assert!(!csrf_ok(
            &TestRequest::default().to_http_request(),
            None,
            &fresh.token,
            "http://localhost:8080"
        ));
    }

    #[test]
    fn only_paths_on_this_host_become_links() {
        assert_eq!(safe_path("/garage/jobs/job_1"), "/garage/jobs/job_1");
        assert_eq!(safe_path("//evil.example/x"), "");
        assert_eq!(safe_path("javascript:alert(1)"), "");
        assert_eq!(safe_path("https://evil.example"), "");
        assert_eq!(safe_path("/\\evil.example"), "");
        assert_eq!(safe_path(""), "");
    }

    #[test]
    fn events_are_one_json_line_each() {
        let b = sse("token", &serde_json::json!({ "text": "a\nb" }));
        assert_eq!(&b[..], b"event: token\ndata: {\"text\":\"a\\nb\"}\n\n");
        assert!(CHAT_SCRIPT.contains("/stream") && !CHAT_SCRIPT.contains("</script"));
    }
}
