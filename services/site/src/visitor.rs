//! Who is looking at the page: the client behind the `jj_session` cookie (checked with garage on
//! every request that carries one), the CSRF token for the page's forms, and the page chrome.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::config::LinksConfig;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, request_id};
use omneuro_platform::web::{self, Csrf};
use omneuro_proto::garage::v1 as garage;

use crate::pages::SiteState;

pub const SESSION_COOKIE: &str = "jj_session";

/// site itself, when it calls garage before anyone is signed in.
pub fn site_actor() -> Actor {
    Actor::System("site".into())
}

pub struct Visitor {
    /// The session secret, when it is still valid.
    pub session: Option<String>,
    pub client: Option<garage::Client>,
    /// The CSRF token for this page's forms (session-bound; anonymous pages with a form call
    /// [`Visitor::form_csrf`]).
    pub csrf: String,
    /// Set-Cookie headers to send with the page (expired session removed, CSRF cookie).
    pub cookies: Vec<String>,
    /// garage did not answer: the visitor may be signed in, we cannot tell.
    pub garage_down: bool,
}

/// What every page's header and footer need.
pub struct Chrome<'a> {
    pub links: &'a LinksConfig,
    pub signed_in: bool,
    pub csrf: String,
}

impl Visitor {
    pub async fn of(state: &SiteState, req: &HttpRequest) -> Visitor {
        let mut cookies = Vec::new();
        let mut garage_down = false;
        let mut client = None;
        let mut session = web::cookie(req, SESSION_COOKIE);
        if let Some(token) = session.clone() {
            let mut g = state.upstreams.garage.clone();
            let res = grpc::call(
                "GarageService/Authenticate",
                g.authenticate(auth::request(
                    &site_actor(),
                    garage::AuthenticateRequest {
                        session_token: token,
                    },
                )),
            )
            .await;
            match res {
                Ok(r) => client = r.into_inner().client,
                Err(s) if s.code() == tonic::Code::Unauthenticated => {
                    session = None;
                    cookies.push(state.session_cookie("", Some(0)));
                }
                Err(_) => {
                    session = None;
                    garage_down = true;
                }
            }
        }
        let csrf = match &session {
            Some(s) => web::csrf(req, Some(s), state.environment).token,
            None => String::new(),
        };
        Visitor {
            session,
            client,
            csrf,
            cookies,
            garage_down,
        }
    }

    pub fn chrome<'a>(&self, links: &'a LinksConfig) -> Chrome<'a> {
        Chrome {
            links,
            signed_in: self.client.is_some(),
            csrf: self.csrf.clone(),
        }
    }

    /// The CSRF token for a form on an anonymous page (sets the double-submit cookie if needed).
    pub fn form_csrf(&mut self, state: &SiteState, req: &HttpRequest) -> String {
        if self.csrf.is_empty() {
            let Csrf { token, set_cookie } = web::csrf(req, None, state.environment);
            self.cookies.extend(set_cookie);
            self.csrf = token;
        }
        self.csrf.clone()
    }

    /// The signed-in client as a gRPC caller.
    pub fn actor(&self) -> Option<Actor> {
        self.client.as_ref().map(|c| Actor::Client(c.id.clone()))
    }

    /// Whether a POST from this visitor carries a valid CSRF token (and comes from our origin).
    pub fn csrf_ok(&self, state: &SiteState, req: &HttpRequest, submitted: &str) -> bool {
        web::csrf_ok(
            req,
            self.session.as_deref(),
            submitted,
            &state.links.public_url,
        )
    }
}

/// Renders a page with the visitor's cookies.
pub fn page(
    t: &impl Template,
    status: StatusCode,
    req: &HttpRequest,
    cookies: &[String],
) -> HttpResponse {
    match t.render() {
        Ok(html) => {
            let mut b = HttpResponse::build(status);
            b.content_type("text/html; charset=utf-8")
                .insert_header(("cache-control", "no-store"));
            for c in cookies {
                b.append_header(("set-cookie", c.as_str()));
            }
            b.body(html)
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, &request_id(req))
        }
    }
}

/// 303 See Other to `to`, with cookies.
pub fn see_other(to: &str, cookies: &[String]) -> HttpResponse {
    let mut b = HttpResponse::SeeOther();
    b.insert_header(("location", to));
    for c in cookies {
        b.append_header(("set-cookie", c.as_str()));
    }
    b.finish()
}

/// A form post that failed the CSRF check: nothing changes, and the page says why.
pub fn forbidden(req: &HttpRequest) -> HttpResponse {
    tracing::warn!("form post refused: CSRF token or origin did not match");
    error_page(StatusCode::FORBIDDEN, &request_id(req))
}

/// Pages reached by a bearer link (status, estimate, order): never indexed, nor leaked through
/// the Referer header.
pub fn private(resp: &mut HttpResponse) {
    use actix_web::http::header::{HeaderName, HeaderValue, REFERRER_POLICY};
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex"),
    );
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
