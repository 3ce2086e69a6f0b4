//! The temporary staff guard, written once: the staff key from the secret store, the `jjt_staff`
//! session cookie derived from it, and the [`Staff`] extractor every staff handler takes.
//!
//! - No key configured: every staff page answers 503 "closed". Never open.
//! - Key configured: the cookie must equal `secret_hash("portal-staff:" + key)` (compared in
//!   constant time), else the request is sent to `/signin`.
//!
//! The session value follows from the key alone, so it cannot be revoked one browser at a time:
//! sign-out removes the cookie from that browser, and changing the key ends every session. Real
//! staff accounts replace all of this.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web as aweb};
use askama::Template;
use omneuro_platform::auth::{Actor, StaffRole};
use omneuro_platform::http::{error_page, request_id};
use omneuro_platform::ids::secret_hash;
use omneuro_platform::secrets::Secret;
use omneuro_platform::web;

use crate::Portal;
use crate::pages::{page, see_other};

/// The portal's session cookie (host-only: the tech host never shares it with the public site).
pub const STAFF_COOKIE: &str = "jjt_staff";
/// How long a staff session lasts: one long shift.
pub const SESSION_SECS: i64 = 12 * 60 * 60;

pub const CLOSED: &str = "Staff pages are closed: no staff key is configured (secret /omneuro/portal/staff_key). Staff accounts arrive with the portal release.";

/// Who the portal says is calling when it calls jobs for someone holding the staff key.
pub fn staff_actor() -> Actor {
    Actor::Staff {
        id: "stf_staffkey".into(),
        role: StaffRole::Tech,
    }
}

/// The configured staff key, kept only as the session value it yields.
pub struct StaffKey {
    session: String,
}

impl StaffKey {
    pub fn new(key: &Secret) -> Self {
        Self {
            session: session_for(key.expose()),
        }
    }

    /// Whether `submitted` is the key. Both sides are hashed first, so the comparison takes the
    /// same time whatever was typed (length included).
    pub fn accepts(&self, submitted: &str) -> bool {
        !submitted.is_empty() && constant_time_eq(&session_for(submitted), &self.session)
    }

    /// Whether a cookie value is the session this key yields.
    pub fn session_ok(&self, cookie: &str) -> bool {
        constant_time_eq(cookie, &self.session)
    }

    /// The cookie value a browser gets after signing in with the key.
    pub fn session(&self) -> &str {
        &self.session
    }
}

fn session_for(key: &str) -> String {
    secret_hash(&format!("portal-staff:{key}"))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Set-Cookie` for the staff session (`value` empty with `Some(0)` removes it).
pub fn session_cookie(state: &Portal, value: &str, max_age: i64) -> String {
    web::set_cookie(STAFF_COOKIE, value, Some(max_age), state.environment, false)
}

/// Someone holding the staff key. Taking it as a handler argument is the guard: without a valid
/// session the handler never runs (303 `/signin`, or 503 when staff pages are closed).
pub struct Staff {
    session: String,
}

impl Staff {
    pub fn actor(&self) -> Actor {
        staff_actor()
    }

    /// The CSRF token for this page's forms (bound to the session).
    pub fn csrf(&self, req: &HttpRequest, state: &Portal) -> String {
        web::csrf(req, Some(&self.session), state.environment).token
    }

    /// Whether a POST carries this session's CSRF token and comes from the tech host.
    pub fn csrf_ok(&self, req: &HttpRequest, state: &Portal, submitted: &str) -> bool {
        web::csrf_ok(req, Some(&self.session), submitted, &state.links.tech_url)
    }

    /// The guard itself: `Ok` for a valid staff session, else an error carrying the response to
    /// send instead (303 `/signin`, or the 503 "closed" page), so the extractor can return it.
    pub fn check(req: &HttpRequest) -> Result<Staff, actix_web::Error> {
        let refuse = |res: HttpResponse| InternalError::from_response("staff only", res).into();
        let Some(state) = req.app_data::<aweb::Data<Portal>>() else {
            tracing::error!("portal state missing from the app");
            return Err(refuse(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &request_id(req),
            )));
        };
        let Some(key) = &state.staff_key else {
            return Err(refuse(closed(req)));
        };
        match web::cookie(req, STAFF_COOKIE) {
            Some(v) if key.session_ok(&v) => Ok(Staff { session: v }),
            // A stale or forged cookie goes away so the browser stops sending it.
            Some(_) => Err(refuse(see_other(
                "/signin",
                &[session_cookie(state, "", 0)],
            ))),
            None => Err(refuse(see_other("/signin", &[]))),
        }
    }
}

impl FromRequest for Staff {
    type Error = actix_web::Error;
    type Future = Ready<Result<Staff, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Staff::check(req))
    }
}

#[derive(Template)]
#[template(path = "closed.html")]
struct ClosedPage<'a> {
    message: &'a str,
}

/// 503: staff pages are closed because no staff key is configured.
pub fn closed(req: &HttpRequest) -> HttpResponse {
    page(
        &ClosedPage { message: CLOSED },
        StatusCode::SERVICE_UNAVAILABLE,
        req,
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_yields_one_session_and_nothing_else_passes() {
        let k = StaffKey::new(&Secret::new("correct horse"));
        assert_eq!(k.session(), secret_hash("portal-staff:correct horse"));
        assert!(k.accepts("correct horse"));
        for wrong in ["", "correct hors", "correct horse ", "CORRECT HORSE"] {
            assert!(!k.accepts(wrong), "{wrong:?}");
        }
        assert!(k.session_ok(&secret_hash("portal-staff:correct horse")));
        assert!(!k.session_ok(&secret_hash("portal-staff:other")));
        assert!(!k.session_ok("correct horse"));
        assert!(!k.session_ok(""));
    }
}
