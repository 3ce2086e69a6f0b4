//! Signing in: email and password, then the authenticator code (or a recovery code), or — for an
//! owner without one yet — setting up the authenticator app. Each completed step gets a new
//! session cookie, so a cookie planted before sign-in is never the signed-in one.
//!
//! Failures get the same words for an unknown address and a wrong password, a growing pause
//! after the second failure, and a lockout ([`crate::accounts`]).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web as aweb};
use askama::Template;
use omneuro_platform::config::LinksConfig;
use omneuro_platform::db::now_utc;
use omneuro_platform::error::DomainError;
use omneuro_platform::http::refusal_status;
use omneuro_platform::web;
use serde::Deserialize;

use crate::Portal;
use crate::accounts::{self, Opened, Refused, Session, Stage};
use crate::pages::{forbidden, outage, page, see_other};
use crate::staff::{SESSION_COOKIE, Staff, origin, session_cookie};
use crate::totp;

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn<'a> {
    links: &'a LinksConfig,
    email: &'a str,
    message: Option<&'a str>,
    notice: Option<&'a str>,
    csrf: &'a str,
}

fn signin_page(
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    message: Option<&str>,
    notice: Option<&str>,
    extra_cookies: &[String],
) -> HttpResponse {
    let csrf = web::csrf(req, None, state.environment);
    let t = SignIn {
        links: &state.links,
        email,
        message,
        notice,
        csrf: &csrf.token,
    };
    let mut cookies: Vec<String> = csrf.set_cookie.into_iter().collect();
    cookies.extend_from_slice(extra_cookies);
    page(&t, status, req, &cookies)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    welcome: Option<String>,
}

pub async fn form(
    state: aweb::Data<Portal>,
    q: aweb::Query<SignInQuery>,
    req: HttpRequest,
) -> HttpResponse {
    if Staff::check(&req).await.is_ok() {
        return see_other("/jobs", &[]);
    }
    let notice = q
        .welcome
        .as_ref()
        .map(|_| "Your account is ready. Sign in with your email and new password.");
    signin_page(&state, &req, StatusCode::OK, "", None, notice, &[])
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Where a freshly opened session goes next.
fn after(opened: &Opened) -> &'static str {
    match opened.stage {
        Stage::SignedIn => "/jobs",
        Stage::SecondFactor => "/signin/code",
        Stage::Enroll => "/signin/enroll",
    }
}

pub async fn submit(
    state: aweb::Data<Portal>,
    form: aweb::Form<SignInForm>,
    req: HttpRequest,
) -> HttpResponse {
    let email: String = form.email.trim().chars().take(254).collect();
    if !web::csrf_ok(&req, None, &form.csrf, &state.links.tech_url) {
        return forbidden(&req);
    }
    let who = origin(&req);
    let (cfg, pw, typed) = (state.staff.clone(), form.password.clone(), email.clone());
    let result = state
        .db
        .run(move |c| accounts::sign_in(c, &typed, &pw, &who, &cfg, now_utc()))
        .await;
    match result {
        Ok(opened) => {
            tracing::info!(staff.id = %opened.member.id, stage = ?opened.stage, "staff password accepted");
            see_other(after(&opened), &[session_cookie(&state, &opened.token)])
        }
        Err(Refused { error, failures }) => {
            // 401 for a wrong address or password, 429 while locked.
            let Some(status) = refusal_status(error.code()) else {
                return outage(&req, &error);
            };
            tracing::warn!(client.ip = %web::client_ip(&req), failures, "staff sign-in refused");
            tokio::time::sleep(Duration::from_millis(accounts::failure_delay_ms(failures))).await;
            signin_page(
                &state,
                &req,
                status,
                &email,
                Some(&error.to_string()),
                None,
                &[],
            )
        }
    }
}

/// The half-open session of this browser (password checked, a second step due), if any.
async fn half_open(state: &Portal, req: &HttpRequest) -> Option<(String, Session)> {
    let token = web::cookie(req, SESSION_COOKIE)?;
    let (t, cfg) = (token.clone(), state.staff.clone());
    let s = state
        .db
        .run(move |c| accounts::authenticate(c, &t, &cfg, now_utc()))
        .await
        .ok()?;
    (s.stage != Stage::SignedIn).then_some((token, s))
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage<'a> {
    email: &'a str,
    message: Option<&'a str>,
    csrf: &'a str,
}

fn code_page(
    state: &Portal,
    req: &HttpRequest,
    token: &str,
    s: &Session,
    status: StatusCode,
    message: Option<&str>,
) -> HttpResponse {
    let csrf = web::csrf(req, Some(token), state.environment);
    let t = CodePage {
        email: &s.member.email,
        message,
        csrf: &csrf.token,
    };
    page(&t, status, req, &[])
}

pub async fn code_form(state: aweb::Data<Portal>, req: HttpRequest) -> HttpResponse {
    match half_open(&state, &req).await {
        Some((token, s)) if s.stage == Stage::SecondFactor => {
            code_page(&state, &req, &token, &s, StatusCode::OK, None)
        }
        Some(_) => see_other("/signin/enroll", &[]),
        None => see_other("/signin", &[]),
    }
}

/// A form with only its CSRF token and a one-time code (sign-in step, authenticator set-up).
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) code: String,
}

pub async fn code_submit(
    state: aweb::Data<Portal>,
    form: aweb::Form<CodeForm>,
    req: HttpRequest,
) -> HttpResponse {
    let Some((token, s)) = half_open(&state, &req).await else {
        return see_other("/signin", &[]);
    };
    if s.stage != Stage::SecondFactor {
        return see_other("/signin/enroll", &[]);
    }
    if !web::csrf_ok(&req, Some(&token), &form.csrf, &state.links.tech_url) {
        return forbidden(&req);
    }
    let code: String = form.code.chars().take(64).collect();
    let (who, cfg, s2) = (origin(&req), state.staff.clone(), s.clone());
    let result = state
        .db
        .run(move |c| accounts::second_factor(c, &s2, &code, &who, &cfg, now_utc()))
        .await;
    match result {
        Ok(opened) => {
            tracing::info!(staff.id = %opened.member.id, "staff signed in");
            see_other("/jobs", &[session_cookie(&state, &opened.token)])
        }
        Err(Refused { error, failures }) => match &error {
            DomainError::Unauthenticated(m) => {
                tokio::time::sleep(Duration::from_millis(accounts::failure_delay_ms(failures)))
                    .await;
                code_page(&state, &req, &token, &s, StatusCode::UNAUTHORIZED, Some(m))
            }
            DomainError::RateLimited(m) => signin_page(
                &state,
                &req,
                StatusCode::TOO_MANY_REQUESTS,
                &s.member.email,
                Some(m),
                None,
                &[session_cookie(&state, "")],
            ),
            other => outage(&req, other),
        },
    }
}

#[derive(Template)]
#[template(path = "enroll.html")]
struct EnrollPage<'a> {
    email: &'a str,
    /// The key grouped in fours for typing.
    key: String,
    uri: String,
    /// The same URI as a QR code (inline SVG), for scanning with a phone.
    qr: String,
    message: Option<&'a str>,
    csrf: &'a str,
    /// Where the form posts (the sign-in step or the account page).
    action: &'a str,
}

/// A TOTP key in groups of four, easier to type into an app.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The set-up page for an authenticator app, for the sign-in step and the account page alike.
pub fn enroll_page(
    req: &HttpRequest,
    csrf: &str,
    email: &str,
    secret: &str,
    action: &str,
    status: StatusCode,
    message: Option<&str>,
) -> HttpResponse {
    let uri = totp::otpauth_uri(secret, email, "Juice Junkiez");
    let t = EnrollPage {
        email,
        key: grouped(secret),
        qr: totp::qr_svg(&uri),
        uri,
        message,
        csrf,
        action,
    };
    page(&t, status, req, &[])
}

pub async fn enroll_form(state: aweb::Data<Portal>, req: HttpRequest) -> HttpResponse {
    match half_open(&state, &req).await {
        Some((token, s)) if s.stage == Stage::Enroll => match &s.pending_totp_secret {
            Some(secret) => {
                let csrf = web::csrf(&req, Some(&token), state.environment).token;
                enroll_page(
                    &req,
                    &csrf,
                    &s.member.email,
                    secret,
                    "/signin/enroll",
                    StatusCode::OK,
                    None,
                )
            }
            None => see_other("/signin", &[session_cookie(&state, "")]),
        },
        Some(_) => see_other("/signin/code", &[]),
        None => see_other("/signin", &[]),
    }
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage<'a> {
    codes: &'a [String],
    next: &'a str,
}

/// The recovery codes, shown once.
pub fn recovery_page(
    req: &HttpRequest,
    codes: &[String],
    next: &str,
    cookies: &[String],
) -> HttpResponse {
    page(&RecoveryPage { codes, next }, StatusCode::OK, req, cookies)
}

pub async fn enroll_submit(
    state: aweb::Data<Portal>,
    form: aweb::Form<CodeForm>,
    req: HttpRequest,
) -> HttpResponse {
    let Some((token, s)) = half_open(&state, &req).await else {
        return see_other("/signin", &[]);
    };
    if s.stage != Stage::Enroll {
        return see_other("/signin/code", &[]);
    }
    if !web::csrf_ok(&req, Some(&token), &form.csrf, &state.links.tech_url) {
        return forbidden(&req);
    }
    let code: String = form.code.chars().take(64).collect();
    let (who, cfg, s2) = (origin(&req), state.staff.clone(), s.clone());
    let result = state
        .db
        .run(move |c| accounts::finish_totp(c, &s2, &code, &who, &cfg, now_utc()))
        .await;
    match result {
        Ok((opened, codes)) => {
            tracing::info!(staff.id = %opened.member.id, "staff set up TOTP and signed in");
            recovery_page(
                &req,
                &codes,
                "/jobs",
                &[session_cookie(&state, &opened.token)],
            )
        }
        Err(DomainError::Invalid(m)) => {
            let csrf = web::csrf(&req, Some(&token), state.environment).token;
            let secret = s.pending_totp_secret.clone().unwrap_or_default();
            enroll_page(
                &req,
                &csrf,
                &s.member.email,
                &secret,
                "/signin/enroll",
                StatusCode::BAD_REQUEST,
                Some(&m),
            )
        }
        Err(DomainError::Conflict(_)) => see_other("/signin", &[session_cookie(&state, "")]),
        Err(e) => outage(&req, &e),
    }
}

/// A form that carries only its CSRF token (sign-out and other one-button posts).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// Ends the staff session in this browser: on the server and the cookie.
pub async fn signout(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<CsrfForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let s = staff.session.clone();
    if let Err(e) = state
        .db
        .run(move |c| accounts::sign_out(c, &s, false, now_utc()))
        .await
    {
        return outage(&req, &e);
    }
    see_other("/signin", &[session_cookie(&state, "")])
}
