//! Sign-in and sign-out. The email/password form refuses everyone until staff accounts exist; the
//! staff key form (shown only when a key is configured) opens a 12-hour staff session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web as aweb};
use askama::Template;
use omneuro_platform::config::LinksConfig;
use omneuro_platform::web;
use serde::Deserialize;

use crate::Portal;
use crate::pages::{forbidden, page, see_other};
use crate::staff::{CLOSED, SESSION_SECS, Staff, session_cookie};

const ACCOUNTS_OFF: &str = "Staff sign-in isn't switched on yet: staff accounts arrive with the next portal release. Nobody can sign in until then.";
/// The same words for an empty and a wrong key.
const WRONG_KEY: &str = "That staff key didn't work. Check it and try again.";

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn<'a> {
    links: &'a LinksConfig,
    email: &'a str,
    message: Option<&'a str>,
    /// Whether the staff key form is offered (a key is configured).
    key_on: bool,
    /// Why staff pages are closed, when they are.
    closed: Option<&'a str>,
    /// The double-submit CSRF token (empty when staff pages are closed: nothing can be posted).
    csrf: &'a str,
}

fn signin_page(
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    message: Option<&str>,
) -> HttpResponse {
    let links = &state.links;
    if state.staff_key.is_none() {
        let t = SignIn {
            links,
            email,
            message,
            key_on: false,
            closed: Some(CLOSED),
            csrf: "",
        };
        return page(&t, status, req, &[]);
    }
    let csrf = web::csrf(req, None, state.environment);
    let t = SignIn {
        links,
        email,
        message,
        key_on: true,
        closed: None,
        csrf: &csrf.token,
    };
    let cookies: Vec<String> = csrf.set_cookie.into_iter().collect();
    page(&t, status, req, &cookies)
}

pub async fn form(state: aweb::Data<Portal>, req: HttpRequest) -> HttpResponse {
    if Staff::check(&req).is_ok() {
        return see_other("/jobs", &[]);
    }
    signin_page(&state, &req, StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    staff_key: String,
}

pub async fn submit(
    state: aweb::Data<Portal>,
    form: aweb::Form<SignInForm>,
    req: HttpRequest,
) -> HttpResponse {
    let email: String = form.email.trim().chars().take(254).collect();
    let Some(key) = &state.staff_key else {
        return signin_page(
            &state,
            &req,
            StatusCode::SERVICE_UNAVAILABLE,
            &email,
            Some(ACCOUNTS_OFF),
        );
    };
    if !web::csrf_ok(&req, None, &form.csrf, &state.links.tech_url) {
        return forbidden(&req);
    }
    if form.staff_key.is_empty() && (!email.is_empty() || !form.password.is_empty()) {
        // The account form: no accounts yet.
        return signin_page(
            &state,
            &req,
            StatusCode::SERVICE_UNAVAILABLE,
            &email,
            Some(ACCOUNTS_OFF),
        );
    }
    let ip = web::client_ip(&req);
    if key.accepts(&form.staff_key) {
        tracing::info!(client.ip = %ip, "staff signed in with the staff key");
        return see_other(
            "/jobs",
            &[session_cookie(&state, key.session(), SESSION_SECS)],
        );
    }
    tracing::warn!(client.ip = %ip, "staff sign-in refused: wrong or empty staff key");
    signin_page(&state, &req, StatusCode::UNAUTHORIZED, "", Some(WRONG_KEY))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the staff session in this browser (the cookie goes; see [`crate::staff`] on revocation).
pub async fn signout(
    state: aweb::Data<Portal>,
    form: aweb::Form<CsrfForm>,
    req: HttpRequest,
) -> HttpResponse {
    if let Ok(staff) = Staff::check(&req)
        && !staff.csrf_ok(&req, &state, &form.csrf)
    {
        return forbidden(&req);
    }
    see_other("/signin", &[session_cookie(&state, "", 0)])
}
